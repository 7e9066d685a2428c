import assert from "node:assert/strict";
import { uuidv7, uuidv7Time } from "./id.ts";

Deno.test("uuidv7: RFC 9562 layout, version 7, variant 10", () => {
  const id = uuidv7();
  assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
});

Deno.test("uuidv7: carries its millisecond time", () => {
  const t = Date.now() + 1_000_000_000; // ahead of every id made so far, so its own time is used
  assert.equal(uuidv7Time(uuidv7(t)), t);
  assert.equal(uuidv7Time("not-a-uuid"), undefined);
});

Deno.test("uuidv7: strictly increasing within one process, even when the clock stands still or steps back", () => {
  const ids: string[] = [];
  const base = Date.now() + 10_000_000;
  for (let i = 0; i < 10_000; i++) ids.push(uuidv7(i < 5_000 ? base : base - 1000));
  for (let i = 1; i < ids.length; i++) assert.ok(ids[i - 1] < ids[i], `${ids[i - 1]} < ${ids[i]}`);
  assert.equal(new Set(ids).size, ids.length);
});
