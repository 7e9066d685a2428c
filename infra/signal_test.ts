import assert from "node:assert/strict";
import { Signal } from "./signal.ts";
import { elapse } from "./wait.ts";

Deno.test("Signal: fire wakes every current waiter; a wait with a timeout ends by itself", async () => {
  const s = new Signal();
  const woken: number[] = [];
  const a = s.wait().then(() => woken.push(1));
  const b = s.wait(60_000).then(() => woken.push(2));
  s.fire();
  await Promise.all([a, b]);
  assert.deepEqual(woken.sort(), [1, 2]);
  const t0 = performance.now();
  await s.wait(20); // nobody fires
  assert.ok(performance.now() - t0 >= 15);
  // A fire with nobody waiting is not remembered: the next waiter waits for the next fire.
  s.fire();
  let later = false;
  const c = s.wait().then(() => later = true);
  await elapse(10, "a window in which the earlier fire must not wake the new waiter");
  assert.equal(later, false);
  s.fire();
  await c;
  assert.equal(later, true);
});
