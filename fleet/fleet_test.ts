import assert from "node:assert/strict";
import { runFleet } from "./run.ts";
import { summary } from "./main.ts";
import { smallRun } from "./testing.ts";

Deno.test("fleet: 50 hosts against one file listener: every event stored once, /ports equals the truth", async () => {
  const r = await runFleet(smallRun());
  console.log(summary(r));
  assert.ok(r.ok, r.problems.join("\n"));
  assert.ok(r.delivery.generated > 2000, `only ${r.delivery.generated} events`);
  assert.equal(r.eventsFrom, "log");
  assert.ok(r.ports[0].expected > 100);
  assert.ok(r.lag.samples > 0);
});

Deno.test("fleet: the file listener killed with SIGKILL mid-run and restarted: still exactly once", async () => {
  const r = await runFleet(smallRun({ killReplicaAtS: 1.5, replicaDownS: 1 }));
  console.log(summary(r));
  assert.ok(r.ok, r.problems.join("\n"));
  assert.equal(r.chaos.length, 2);
  assert.ok(r.delivery.retries > 0, "the outage caused no retry: the kill did not happen mid-traffic");
});
