import assert from "node:assert/strict";
import { type Action, clientOf, specText, Workload } from "./workload.ts";
import { Rng } from "./rng.ts";

const OPTIONS = { ports: [20100, 20101, 20102], maxProcs: 5 };

/** Run `steps` steps where every action succeeds; the kinds of actions seen. */
function drive(seed: number, steps: number): { w: Workload; log: Action[] } {
  const w = new Workload(new Rng(seed), OPTIONS);
  const log: Action[] = [];
  for (let i = 0; i < steps; i++) {
    const step = i % 10 === 9 ? w.closeHalf() : w.nextStep();
    for (const a of step) {
      w.describe(a);
      w.applied(a, true);
      log.push(a);
    }
  }
  return { w, log };
}

Deno.test("workload: the same seed proposes the same steps", () => {
  assert.deepEqual(drive(1234, 60).log, drive(1234, 60).log);
  assert.notDeepEqual(drive(1234, 60).log, drive(1235, 60).log);
});

Deno.test("workload: every kind of action comes up, within the limits", () => {
  const { log } = drive(99, 600);
  const kinds = new Set(log.map((a) => a.kind === "close" ? `close:${a.why}` : a.kind));
  for (
    const k of ["spawn", "open", "connect", "fork", "close:close", "close:parent-close", "close:half", "exit"]
  ) {
    assert.ok(kinds.has(k), `${k} in ${[...kinds]}`);
  }
  assert.ok(log.some((a) => a.kind === "open" && a.twinOf !== undefined), "a reuseport twin");
  assert.ok(log.some((a) => a.kind === "open" && a.besideOf !== undefined), "another address on a port");
  assert.ok(log.some((a) => a.kind === "exit" && a.how === "kill"), "a SIGKILL");
  for (const a of log) {
    if (a.kind === "open") assert.ok(OPTIONS.ports.includes(a.spec.port));
  }
});

Deno.test("workload: a fork shares the sockets; a parent close leaves the child's; exit forgets them", () => {
  const w = new Workload(new Rng(1), OPTIONS);
  const spec = {
    proto: "tcp" as const,
    family: 6 as const,
    host: "::",
    v6only: false,
    port: 20100,
    reuseport: true,
  };
  w.applied({ kind: "spawn", proc: 1 }, true);
  w.applied({ kind: "open", proc: 1, sock: 1, spec }, true);
  w.applied({ kind: "open", proc: 1, sock: 2, spec: { ...spec, port: 20101 } }, false); // EADDRINUSE
  assert.deepEqual([...w.socks.keys()], [1]);
  w.applied({ kind: "fork", proc: 1, child: 2 }, true);
  assert.deepEqual(w.holders(1), [1, 2]);
  assert.equal(
    w.describe({ kind: "close", proc: 1, sock: 1, why: "parent-close" }),
    "p1 parent-close s1 tcp [::]:20100 dual-stack reuseport (still held by p2)",
  );
  // The parent's copy is the one a parent-close may pick: it is proposed, with weight, until taken.
  let proposed = false;
  for (let i = 0; i < 200 && !proposed; i++) {
    const [a] = w.nextStep();
    proposed = a.kind === "close" && a.why === "parent-close" && a.proc === 1 && a.sock === 1;
  }
  assert.ok(proposed);
  w.applied({ kind: "close", proc: 1, sock: 1, why: "parent-close" }, true);
  assert.deepEqual(w.holders(1), [2]);
  w.applied({ kind: "exit", proc: 2, how: "kill" }, true);
  assert.deepEqual([...w.socks.keys()], []);
  assert.deepEqual(w.endAll().map((a) => `${a.kind} p${a.proc}`), ["exit p1"]);
});

Deno.test("workload: steps are mostly one action, sometimes 2 to 4", () => {
  const w = new Workload(new Rng(3), OPTIONS);
  const lengths = Array.from({ length: 400 }, () => w.stepLength());
  assert.ok(lengths.every((n) => n >= 1 && n <= 4));
  const ones = lengths.filter((n) => n === 1).length;
  assert.ok(ones > 200 && ones < 360, `${ones} of 400 are 1`);
  assert.deepEqual(new Set(lengths), new Set([1, 2, 3, 4]));
});

Deno.test("workload: texts of specs and TCP clients of each kind of listener", () => {
  const base = { proto: "tcp" as const, port: 1, reuseport: false };
  assert.equal(specText({ ...base, family: 4, host: "0.0.0.0", v6only: null }), "tcp 0.0.0.0:1");
  assert.equal(specText({ ...base, family: 6, host: "::1", v6only: true }), "tcp [::1]:1 v6only");
  const rng = new Rng(5);
  assert.equal(clientOf({ ...base, family: 4, host: "0.0.0.0", v6only: null }, rng).host, "127.0.0.1");
  assert.equal(
    clientOf({ ...base, family: 6, host: "::ffff:127.0.0.1", v6only: false }, rng).host,
    "127.0.0.1",
  );
  assert.equal(clientOf({ ...base, family: 6, host: "::", v6only: true }, rng).host, "::1");
  assert.equal(clientOf({ ...base, family: 6, host: "::1", v6only: true }, rng).host, "::1");
});
