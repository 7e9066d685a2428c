import assert from "node:assert/strict";
import { Enricher } from "./enrich.ts";
import type { Identity } from "./scope/identity.ts";
import type { PortChange, TrackedPort } from "./tracker.ts";
import { PortEventSchema } from "../events/schema.ts";

const self: Identity = { host: "node-1", container_id: null, container_name: null, runtime: null };
const web: Identity = {
  host: "node-1",
  container_id: "c".repeat(64),
  container_name: "web",
  runtime: "docker",
};
const port = (netns: number, pids: number[]): TrackedPort => ({
  proto: "tcp",
  port: 8080,
  family: 4,
  addrs: ["0.0.0.0"],
  inodes: [1],
  pids,
  netns,
  since: 0,
  seen: 0,
  lastPids: pids,
});
const me = { pid: Deno.pid, comm: "deno", cmdline: "deno test", uid: 0 };

Deno.test("Enricher: identity per namespace (else the fallback), the first holder's process on open and change", () => {
  const asked: number[] = [];
  const enricher = new Enricher({
    identityOf: (netns) => (netns === 2 ? web : undefined),
    processInfo: (pid) => {
      asked.push(pid);
      return pid === Deno.pid ? me : undefined;
    },
  });
  const changes: PortChange[] = [
    { kind: "open", port: port(2, [Deno.pid]) },
    { kind: "change", port: port(1, [Deno.pid, 99]), before: { pids: [99], addrs: ["0.0.0.0"] } },
    { kind: "close", port: { ...port(1, []), lastPids: [Deno.pid] } },
  ];
  const now = new Date("2026-12-07T10:00:00.000Z");
  const events = enricher.events(changes, self, "polling", now);
  for (const e of events) assert.equal(PortEventSchema.safeParse(e).success, true, JSON.stringify(e));
  assert.deepEqual(events.map((e) => [e.event, e.container_name, e.process?.comm]), [
    ["open", "web", "deno"],
    ["change", null, "deno"],
    ["close", null, undefined],
  ]);
  assert.deepEqual(asked, [Deno.pid, Deno.pid], "a close asks for no process");
  assert.ok(events.every((e) => e.observed_at === now.toISOString()));
  assert.equal(new Set(events.map((e) => e.id)).size, 3);
  assert.deepEqual(enricher.holderLines(events[1]), [`  deno ${Deno.pid} uid=0 TCP 0.0.0.0:8080 deno test`]);
  assert.deepEqual(enricher.holderLines(events[2]), []);
});
