import assert from "node:assert/strict";
import { PortsState } from "./ports_state.ts";

const open = (over: Record<string, unknown>) => ({
  ts: "2026-11-25T08:00:00.000Z",
  id: crypto.randomUUID(),
  event: "open",
  port: 5000,
  proto: "tcp",
  host: "node-1",
  container_id: "7a3b9c1d2e4f5061728394a5b6c7d8e9f00112233445566778899aabbccddeef",
  container_name: "portwatcher",
  netns: 4026532300,
  ...over,
});

Deno.test("PortsState: an open port keeps the container's image and compose labels, refreshed in place", () => {
  const s = new PortsState();
  s.apply(
    open({ image: "portwatch_portwatcher", compose_project: "portwatch", compose_service: "portwatcher" }),
  );
  const [p] = s.list();
  assert.deepEqual([p.container_name, p.image, p.compose_project, p.compose_service], [
    "portwatcher",
    "portwatch_portwatcher",
    "portwatch",
    "portwatcher",
  ]);
  s.apply(open({ image: "portwatch_portwatcher:v2" }));
  assert.equal(s.size, 1);
  assert.deepEqual([s.list()[0].image, s.list()[0].compose_project], ["portwatch_portwatcher:v2", null]);
});

Deno.test("PortsState: events without the fields (older watchers, hosts) list them as null", () => {
  const s = new PortsState();
  s.apply(open({ container_id: null, container_name: null }));
  const [p] = s.list();
  assert.deepEqual([p.image, p.compose_project, p.compose_service], [null, null, null]);
});
