import assert from "node:assert/strict";
import { humanLine, toPortEvent } from "./event_build.ts";
import type { Identity } from "./scope/identity.ts";
import type { TrackedPort } from "./tracker.ts";
import { NO_META } from "./scope/runtime_state.ts";
import { PortEventSchema } from "../events/schema.ts";

const ID = "7a3b9c1d2e4f5061728394a5b6c7d8e9f00112233445566778899aabbccddeef";
const port: TrackedPort = {
  proto: "tcp",
  port: 5000,
  family: 4,
  addrs: ["0.0.0.0"],
  inodes: [1],
  pids: [42],
  netns: 4026532300,
  since: 0,
  seen: 0,
  lastPids: [42],
};
const now = new Date("2026-11-25T08:00:00.000Z");

Deno.test("toPortEvent: the namespace's identity gives container, image and compose labels", () => {
  const identity: Identity = {
    host: "node-1",
    container_id: ID,
    container_name: "portwatcher",
    runtime: "docker",
    image: "portwatch_portwatcher",
    compose_project: "portwatch",
    compose_service: "portwatcher",
  };
  const e = toPortEvent({ kind: "open", port }, identity, "polling", now);
  assert.deepEqual(
    [e.container_id, e.container_name, e.image, e.compose_project, e.compose_service, e.host],
    [ID, "portwatcher", "portwatch_portwatcher", "portwatch", "portwatcher", "node-1"],
  );
  assert.ok(PortEventSchema.safeParse(e).success);
  // A host's identity (no lookup fields at all): the new fields are null, not absent.
  const host = toPortEvent(
    { kind: "open", port },
    {
      host: "node-1",
      container_id: null,
      container_name: null,
      runtime: null,
    },
    "polling",
    now,
  );
  assert.deepEqual([host.image, host.compose_project, host.compose_service], [null, null, null]);
});

Deno.test("toPortEvent: a container named per socket (Tracee) takes image and labels from the runtime's state", () => {
  const identity: Identity = { host: "node-1", container_id: null, container_name: null, runtime: null };
  const asked: string[] = [];
  const meta = (id: string) => {
    asked.push(id);
    return { ...NO_META, id: ID, name: "portwatcher", image: "portwatch_portwatcher", compose_project: "pw" };
  };
  const tracee = { ...port, container: { id: ID, name: null } };
  const e = toPortEvent({ kind: "open", port: tracee }, identity, "ebpf", now, undefined, meta);
  assert.deepEqual(asked, [ID]);
  assert.deepEqual([e.container_id, e.container_name, e.image, e.compose_project, e.compose_service], [
    ID,
    "portwatcher",
    "portwatch_portwatcher",
    "pw",
    null,
  ]);
  // Tracee's own name wins; with no state found, image and labels are null.
  const named = { ...port, container: { id: ID, name: "from-tracee" } };
  const n = toPortEvent({ kind: "open", port: named }, identity, "ebpf", now, undefined, () => null);
  assert.deepEqual([n.container_name, n.image], ["from-tracee", null]);
});

Deno.test("toPortEvent and humanLine: a change carries pids now, last_pids and last_addrs before", () => {
  const identity: Identity = { host: "node-1", container_id: null, container_name: null, runtime: null };
  const change = {
    kind: "change" as const,
    port: { ...port, pids: [43], addrs: ["0.0.0.0", "::"] },
    before: { pids: [42], addrs: ["0.0.0.0"] },
  };
  const e = toPortEvent(change, identity, "polling", now);
  assert.equal(PortEventSchema.safeParse(e).success, true);
  assert.deepEqual([e.event, e.pids, e.last_pids, e.addrs, e.last_addrs], [
    "change",
    [43],
    [42],
    ["0.0.0.0", "::"],
    ["0.0.0.0"],
  ]);
  assert.equal(
    humanLine(e),
    "Port changed: 5000 (pids: 43; last pids: 42; addrs: 0.0.0.0,::; last addrs: 0.0.0.0)",
  );
  const same = toPortEvent(
    { ...change, before: { pids: [42], addrs: change.port.addrs } },
    identity,
    "polling",
    now,
  );
  assert.equal(humanLine(same), "Port changed: 5000 (pids: 43; last pids: 42)");
});
