import assert from "node:assert/strict";
import { SignInThrottle } from "./throttle.ts";

Deno.test("sign-in throttle: the limit's failures within the window block an address until the oldest leaves", () => {
  const t = new SignInThrottle(3, 1000);
  for (const at of [0, 100, 200]) {
    assert.equal(t.waitMs("a", at), 0);
    t.failed("a", at);
  }
  assert.equal(t.waitMs("a", 300), 700, "the first failure leaves the window at 1000");
  assert.equal(t.waitMs("b", 300), 0, "another address is not affected");
  assert.equal(t.waitMs("a", 1000), 0);
  t.failed("a", 1000);
  assert.equal(t.waitMs("a", 1050), 50, "failures at 100, 200, 1000: blocked until 1100");
  t.succeeded("a");
  assert.equal(t.waitMs("a", 1050), 0, "a right token forgets the failures");
});
