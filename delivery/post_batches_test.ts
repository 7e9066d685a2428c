import assert from "node:assert/strict";
import { toBatches } from "./post_batches.ts";
import { portEventFixture } from "../testing/events.ts";

Deno.test("toBatches: cut by event count and by bytes, in order, each line its event's JSON", () => {
  const events = Array.from({ length: 7 }, (_, i) => portEventFixture(1000 + i));
  const byCount = toBatches(events, 3, 1 << 20);
  assert.deepEqual(byCount.map((b) => b.events.length), [3, 3, 1]);
  assert.deepEqual(byCount.flatMap((b) => b.events), events);
  assert.deepEqual(byCount.flatMap((b) => b.lines), events.map((e) => JSON.stringify(e)));
  const line = JSON.stringify(events[0]).length + 1;
  assert.deepEqual(toBatches(events, 100, 2 * line + 1).map((b) => b.events.length), [2, 2, 2, 1]);
  // An event larger than the byte limit goes alone; nothing is dropped.
  assert.deepEqual(toBatches(events.slice(0, 2), 100, 10).map((b) => b.events.length), [1, 1]);
  assert.deepEqual(toBatches([], 10, 10), []);
});

Deno.test("toBatches: sizes count UTF-8 bytes, and lines handed over are used as they are; a wrong count is an error", () => {
  const wide = portEventFixture(2000, { container_name: "é".repeat(100) });
  const bytes = new TextEncoder().encode(JSON.stringify(wide)).length + 1;
  assert.deepEqual(toBatches([wide, wide], 10, 2 * bytes - 1).map((b) => b.events.length), [1, 1]);
  assert.deepEqual(toBatches([wide, wide], 10, 2 * bytes).map((b) => b.events.length), [2]);
  const events = [portEventFixture(1), portEventFixture(2)];
  const given = ['{"made":1}', '{"made":2}'];
  assert.deepEqual(toBatches(events, 10, 1 << 20, given)[0].lines, given);
  // a filtered copy of the events cannot silently lose (or misuse) the lines: the count must match
  assert.throws(() => toBatches(events.slice(1), 10, 1 << 20, given), /2 JSON lines for 1 events/);
});
