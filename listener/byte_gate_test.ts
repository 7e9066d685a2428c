import assert from "node:assert/strict";
import { ByteGate } from "./byte_gate.ts";

Deno.test("ByteGate: takes what fits at once, queues the rest in order", async () => {
  const gate = new ByteGate(100);
  assert.deepEqual(gate.acquire(60), undefined);
  const order: number[] = [];
  const b = gate.acquire(50)!.then(() => order.push(50));
  const c = gate.acquire(10)!.then(() => order.push(10)); // would fit, but waits behind 50 (first come, first served)
  await Promise.resolve();
  assert.deepEqual(order, []);
  gate.release(60);
  await Promise.all([b, c]);
  assert.deepEqual(order, [50, 10]);
  assert.deepEqual(gate.used, 60);
  gate.release(50);
  gate.release(10);
  assert.deepEqual(gate.used, 0);
});

Deno.test("ByteGate: a request larger than the limit goes alone", async () => {
  const gate = new ByteGate(100);
  assert.deepEqual(gate.acquire(500), undefined);
  let next = false;
  const p = gate.acquire(1)!.then(() => next = true);
  await Promise.resolve();
  assert.deepEqual(next, false);
  gate.release(500);
  await p;
  assert.deepEqual(gate.used, 1);
});

Deno.test("ByteGate.acquireWithin: a waiter that runs out of time holds nothing and lets the next go", async () => {
  const gate = new ByteGate(100);
  assert.equal(gate.acquireWithin(90, 10), true);
  const late = gate.acquireWithin(50, 20); // waits behind the 90, which is not released in time
  let small = false;
  const next = gate.acquire(5)!.then(() => small = true); // fits, but first come first served: behind the 50
  assert.notEqual(late, true);
  assert.equal(await late, false);
  await next; // the 50 gave up: the 5 fits beside the 90 and goes
  assert.equal(small, true);
  assert.equal(gate.used, 95);
  const inTime = gate.acquireWithin(50, 5_000);
  gate.release(90);
  assert.equal(await inTime, true);
  assert.equal(gate.used, 55);
});
