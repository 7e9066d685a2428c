import assert from "node:assert/strict";
import { EndHold } from "./reorder.ts";
import type { SocketEvent } from "./socket_event.ts";
import { waitUntil } from "../infra/wait.ts";

const ev = (kind: SocketEvent["kind"], kts: number, port = 80): SocketEvent => ({
  ts: 0,
  kts,
  kind,
  pid: 1,
  port,
});

Deno.test("EndHold: an end read before its older open is applied after it; opens are never held", () => {
  let now = 1000;
  const applied: string[] = [];
  const hold = new EndHold(60, (e) => applied.push(`${e.kind}@${e.kts}`), () => now);
  try {
    hold.push(ev("unlisten", 20)); // CPU 1's buffer, read first
    hold.push(ev("close", 40));
    assert.deepEqual(applied, [], "ends wait");
    hold.push(ev("listen", 10)); // CPU 0's, read after
    hold.push(ev("bind", 30));
    assert.deepEqual(applied, ["listen@10", "bind@30"], "opens at once");
    hold.push(ev("exit", 15)); // older than the held ends, read last
    now += 59;
    hold.release();
    assert.equal(applied.length, 2, "not due yet");
    now += 1;
    hold.release();
    assert.deepEqual(applied.slice(2), ["exit@15", "unlisten@20", "close@40"], "in kernel-time order");
    assert.equal(hold.size, 0);
  } finally {
    hold.stop();
  }
});

Deno.test("EndHold: an older end that arrived later goes with a newer one that is due; flush applies all", () => {
  let now = 0;
  const applied: number[] = [];
  const hold = new EndHold(50, (e) => applied.push(e.kts!), () => now);
  try {
    hold.push(ev("close", 100));
    now = 30;
    hold.push(ev("close", 90)); // older, read later: due at 80, but whatever preceded 100 has arrived by 50
    now = 50;
    hold.release();
    assert.deepEqual(applied, [90, 100]);
    hold.push(ev("exit", 200));
    hold.push(ev("unlisten", 150));
    hold.flush();
    assert.deepEqual(applied, [90, 100, 150, 200]);
  } finally {
    hold.stop();
  }
});

Deno.test("EndHold: events without a kernel time, or a zero window, pass straight through", () => {
  const applied: string[] = [];
  const none = new EndHold(0, (e) => applied.push(e.kind));
  none.push(ev("close", 5));
  const hold = new EndHold(50, (e) => applied.push(e.kind));
  hold.push({ ts: 0, kind: "exit", pid: 1 });
  assert.deepEqual(applied, ["close", "exit"]);
  hold.stop();
});

Deno.test("EndHold: the timer applies a held end once its window has passed", async () => {
  const applied: string[] = [];
  const hold = new EndHold(5, (e) => applied.push(e.kind));
  try {
    hold.push(ev("close", 1));
    await waitUntil("the held close to be applied", () => applied.length > 0, 5_000, 5);
    assert.deepEqual(applied, ["close"]);
  } finally {
    hold.stop();
  }
});

Deno.test("EndHold: while the source is behind, ends wait until it caught up, each at most maxHoldMs", () => {
  let now = 0;
  const applied: string[] = [];
  const hold = new EndHold(60, (e) => applied.push(`${e.kind}@${e.kts}`), () => now, 30, 500);
  try {
    hold.push(ev("close", 200)); // CPU 1's backlog, read first
    hold.holdLonger();
    now = 50;
    hold.holdLonger(); // still draining: nothing before 110
    now = 100;
    hold.release();
    assert.deepEqual(applied, [], "past its window, but the source is behind");
    hold.push(ev("bind", 150)); // CPU 0's backlog: the open, 100 ms after its close
    assert.deepEqual(applied, ["bind@150"], "the open first");
    now = 110;
    hold.release();
    assert.deepEqual(applied, ["bind@150", "close@200"], "caught up: the close");

    // A source that stays behind does not hold an end for longer than maxHoldMs.
    hold.push(ev("unlisten", 300));
    for (now = 120; now < 620; now += 50) {
      hold.holdLonger();
      hold.release();
    }
    assert.equal(applied.length, 2, "held while behind");
    now = 620;
    hold.holdLonger();
    hold.release();
    assert.deepEqual(applied.slice(2), ["unlisten@300"], "applied at its cap");
  } finally {
    hold.stop();
  }
});

Deno.test("EndHold: the timer applies an end once the source caught up (no event after the backlog)", async () => {
  const applied: number[] = [];
  const hold = new EndHold(20, (e) => applied.push(e.kts!), Date.now, 5, 2000);
  try {
    hold.push(ev("close", 1));
    hold.holdLonger();
    const t0 = Date.now();
    await waitUntil("the end to be applied once the source caught up", () => applied.length > 0, 2_000, 5);
    assert.deepEqual(applied, [1]);
    assert.ok(Date.now() - t0 < 1000, "at the floor, not at the cap");
  } finally {
    hold.stop();
  }
});

Deno.test("EndHold: an exec, a fork and a close that was not the last are held like ends, a dup is not", () => {
  let now = 0;
  const applied: string[] = [];
  const hold = new EndHold(50, (e) => applied.push(`${e.kind}@${e.kts}`), () => now);
  try {
    hold.push(ev("exec", 20));
    hold.push({ ...ev("close", 30), last: false });
    hold.push(ev("fork", 35)); // after the close: its child must not inherit what the close ended
    hold.push(ev("dup", 25));
    hold.push(ev("listen", 10)); // the exec'ing process's open, read after
    assert.deepEqual(applied, ["dup@25", "listen@10"]);
    now = 50;
    hold.release();
    assert.deepEqual(applied.slice(2), ["exec@20", "close@30", "fork@35"]);
  } finally {
    hold.stop();
  }
});
