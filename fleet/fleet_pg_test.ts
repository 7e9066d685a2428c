import assert from "node:assert/strict";
import { runFleet } from "./run.ts";
import { summary } from "./main.ts";
import { pgFleetSkipReason, smallRun } from "./testing.ts";

const skip = pgFleetSkipReason();
if (skip) console.log(`fleet_pg_test.ts: skipped: ${skip}`);
const pgRun = (over = {}) => smallRun({ store: "postgres", replicas: 2, ...over });

Deno.test({
  name:
    "fleet: 50 hosts against 2 PostgreSQL replicas: every event stored once, /ports on both equals the truth",
  ignore: skip !== undefined,
  fn: async () => {
    const r = await runFleet(pgRun());
    console.log(summary(r));
    assert.ok(r.ok, r.problems.join("\n"));
    assert.equal(r.eventsFrom, "postgres");
    assert.equal(r.ports.length, 2);
    assert.ok(r.traffic.every((t) => t.requests > 0), "both replicas took traffic");
  },
});

Deno.test({
  name: "fleet: one of 2 PostgreSQL replicas killed with SIGKILL mid-run: failover, still exactly once",
  ignore: skip !== undefined,
  fn: async () => {
    const r = await runFleet(pgRun({ killReplicaAtS: 1.5, replicaDownS: 1.5 }));
    console.log(summary(r));
    assert.ok(r.ok, r.problems.join("\n"));
    assert.equal(r.chaos.length, 2);
    assert.ok(r.traffic[0].failures > 0 && r.failovers > 0, "the kill caused no failover");
  },
});

Deno.test({
  name: "fleet: PostgreSQL restarted mid-run: watchers retry, still exactly once",
  ignore: skip !== undefined,
  fn: async () => {
    const r = await runFleet(pgRun({ restartPgAtS: 1.5 }));
    console.log(summary(r));
    assert.ok(r.ok, r.problems.join("\n"));
    assert.equal(r.chaos.length, 1);
  },
});
