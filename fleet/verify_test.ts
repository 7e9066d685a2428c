import assert from "node:assert/strict";
import { checkEvents, eventsOk } from "./verify.ts";

Deno.test("checkEvents: missing, duplicated and unexpected ids are each found", () => {
  assert.ok(eventsOk(checkEvents(["a", "b"], new Map([["a", 1], ["b", 1]]))));
  const c = checkEvents(["a", "b", "c"], new Map([["a", 1], ["b", 3], ["z", 1]]));
  assert.equal(c.missing, 1);
  assert.equal(c.duplicated, 1);
  assert.equal(c.extraCopies, 2);
  assert.equal(c.unexpected, 1);
  assert.ok(!eventsOk(c));
});
