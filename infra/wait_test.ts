import assert from "node:assert/strict";
import { elapse, waitUntil } from "./wait.ts";

Deno.test("waitUntil: resolves with the first truthy value the check returns", async () => {
  let n = 0;
  const got = await waitUntil("the third poll", () => ++n >= 3 && { n }, 2_000, 1);
  assert.deepEqual(got, { n: 3 });
});

Deno.test("waitUntil: awaits async checks", async () => {
  let n = 0;
  assert.equal(await waitUntil("an async check", () => Promise.resolve(++n === 2), 2_000, 1), true);
});

Deno.test("waitUntil: times out naming what was awaited, with the state at the deadline", async () => {
  await assert.rejects(waitUntil("never", () => false, 30, 5), /timed out after 30 ms waiting for never$/);
  let polls = 0;
  await assert.rejects(
    waitUntil(() => `the flag (${polls} polls)`, () => (polls++, false), 30, 5),
    (e: Error) => /waiting for the flag \(\d+ polls\)$/.test(e.message) && polls > 1,
  );
});

Deno.test("elapse: lets the time pass, and wants a reason", async () => {
  const t0 = performance.now();
  await elapse(20, "the test of elapse");
  assert.ok(performance.now() - t0 >= 19);
  assert.throws(() => elapse(1, " "), /say why/);
});
