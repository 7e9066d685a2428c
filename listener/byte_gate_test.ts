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
