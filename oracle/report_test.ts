import assert from "node:assert/strict";
import {
  actionTag,
  failureMessage,
  latencyText,
  mismatchSignature,
  type StepFailure,
  summarize,
} from "./report.ts";
import { compareTables, tableFromPorts, tableFromSs } from "./port_table.ts";
import { parseSs } from "./ss_parse.ts";

const want = tableFromSs(parseSs(
  `tcp LISTEN 0 128 0.0.0.0:20100 0.0.0.0:* users:(("python3",pid=20,fd=3),("python3",pid=21,fd=3))\n`,
));
const got =
  tableFromPorts({ count: 1, ports: [{ proto: "tcp", port: 20100, addrs: ["0.0.0.0"], pids: [20] }] })
    .table;
const failure = (label: string, tags: string[]): StepFailure => ({
  step: { label, actions: ["p1 fork -> p2 (shares s1)"], tags },
  mismatches: compareTables(want, got),
  dupes: [],
  want,
  got,
  deadlineMs: 500,
});

Deno.test("report: a failure names the engine, seed, step, diff, both tables and how to rerun", () => {
  const msg = failureMessage("bpftrace", 77, failure("1.2", ["fork"]), [
    { label: "1.1", actions: ["p1 spawn (pid 20)", "p1 open s1 tcp 0.0.0.0:20100"], tags: ["spawn"] },
  ], "ORACLE_SEED=77 deno test -A oracle/");
  assert.equal(
    msg,
    `oracle [bpftrace] seed=77: after step 1.2, the listener's /ports did not agree with \`ss -Hlntup\` within 500 ms.
step 1.2:
  p1 fork -> p2 (shares s1)
differences (expected = ss, got = listener):
  tcp/20100 pids: ss [20,21] listener [20]
expected (ss):
  tcp/20100 pids [20,21] addrs [0.0.0.0]
got (listener /ports):
  tcp/20100 pids [20] addrs [0.0.0.0]
steps before (last 1):
  1.1: p1 spawn (pid 20); p1 open s1 tcp 0.0.0.0:20100
seed=77; rerun: ORACLE_SEED=77 deno test -A oracle/`,
  );
  const late = failureMessage("x", 1, { ...failure("1.2", []), lateMs: 612.4, fresh: [] }, [], "r");
  assert.match(late, /\(1 of them carried over from the step before\)\nagreed late, 612 ms after the step\n/);
  const never = failureMessage("x", 1, { ...failure("1.2", []), lateMs: null, lateLimitMs: 3000 }, [], "r");
  assert.match(never, /still disagreeing 3000 ms after the step: not late, wrong/);
});

Deno.test("report: failures summarized by what differed after which action; latencies", () => {
  assert.deepEqual(
    summarize([failure("1.2", ["fork"]), failure("2.1", ["fork"]), failure("2.3", ["close-half"])]),
    [
      "pids after close-half: 1 step (2.3)",
      "pids after fork: 2 steps (1.2, 2.1)",
    ],
  );
  assert.deepEqual(summarize([{ ...failure("3.1", ["open"]), fresh: [] }]), ["carried over: 1 step (3.1)"]);
  assert.equal(
    mismatchSignature(compareTables(want, got)[0]),
    "tcp/20100 pids 20,21|0.0.0.0 20|0.0.0.0",
  );
  assert.equal(latencyText([]), "no step agreed");
  assert.equal(latencyText([30, 10, 20, 40.4]), "4 steps agreed: median 30 ms, p90 40 ms, max 40 ms");
  assert.equal(actionTag({ kind: "close", proc: 1, sock: 1, why: "parent-close" }), "parent-close");
  assert.equal(actionTag({ kind: "exit", proc: 1, how: "kill" }), "kill");
  const spec = {
    proto: "udp" as const,
    family: 4 as const,
    host: "0.0.0.0",
    v6only: null,
    port: 1,
    reuseport: true,
  };
  assert.equal(actionTag({ kind: "open", proc: 1, sock: 2, spec, twinOf: 1 }), "twin-open");
  assert.equal(actionTag({ kind: "open", proc: 1, sock: 2, spec, besideOf: 1 }), "beside-open");
  assert.equal(actionTag({ kind: "open", proc: 1, sock: 2, spec }), "open");
  assert.equal(actionTag({ kind: "fork", proc: 1, child: 2 }), "fork");
});
