import assert from "node:assert/strict";
import { idHash, IdWindow } from "./id_window.ts";

const done = Promise.resolve();

Deno.test("IdWindow: remembers at least the last capacity/2 ids and at most capacity", () => {
  const w = new IdWindow(10);
  for (let i = 0; i < 100; i++) {
    w.add(`id-${i}`, done);
    for (let back = 0; back < 5 && back <= i; back++) {
      assert.ok(w.has(`id-${i - back}`), `${i - back} after ${i}`);
    }
    assert.ok(w.size <= 10);
  }
  assert.ok(!w.has("id-0"));
  assert.ok(!w.has("id-89"));
});

Deno.test("IdWindow: ids whose hashes collide are told apart, and delete removes only the one named", () => {
  // Find two different ids with the same 30-bit hash by brute force over a small space.
  const seen = new Map<number, string>();
  let pair: [string, string] | undefined;
  for (let i = 0; !pair; i++) {
    const id = `k${i}`;
    const h = idHash(id);
    const other = seen.get(h);
    if (other !== undefined) pair = [other, id];
    else seen.set(h, id);
  }
  const [a, b] = pair;
  const w = new IdWindow(100);
  w.add(a, done);
  assert.ok(w.has(a));
  assert.ok(!w.has(b), "a colliding id is not taken for a duplicate");
  w.add(b, done);
  assert.ok(w.has(a) && w.has(b));
  w.delete(a);
  assert.ok(!w.has(a) && w.has(b));
});

Deno.test("IdWindow: capacity 0 remembers nothing", () => {
  const w = new IdWindow(0);
  w.add("a", done);
  assert.equal(w.has("a"), false);
});

Deno.test("IdWindow: UUIDs (kept as 16 bytes) and other ids; case and form matter, as for strings", () => {
  const w = new IdWindow(1000);
  const u = "0192f5a4-7c1e-7d2a-9b3c-4d5e6f708192";
  w.add(u, done);
  assert.ok(w.has(u));
  assert.ok(!w.has(u.toUpperCase()), "an uppercase UUID is another id");
  assert.ok(!w.has(u.replaceAll("-", "")));
  assert.ok(!w.has("0192f5a4-7c1e-7d2a-9b3c-4d5e6f708193"));
  // Not hex digits, whatever their low bits: other ids.
  for (const c of ["\u0230", "\u1030", "g", "G", "\u0000"]) assert.ok(!w.has(c + u.slice(1)), `${c}`);
  w.add(u.toUpperCase(), done);
  assert.ok(w.has(u) && w.has(u.toUpperCase()));
  w.delete(u);
  assert.ok(!w.has(u) && w.has(u.toUpperCase()));
  const many = Array.from({ length: 500 }, () => crypto.randomUUID());
  for (const id of many) w.add(id, done);
  for (const id of many) assert.ok(w.has(id));
  assert.ok(w.get(many[7])?.done instanceof Promise);
});
