import assert from "node:assert/strict";
import { RecentLog } from "./recent.ts";

const line = (i: number, pad = "") => JSON.stringify({ ts: `t${i}`, id: `id-${i}`, n: i, pad });

Deno.test("RecentLog: keeps the last `capacity` lines, in order, across compactions and growth", () => {
  const r = new RecentLog(50);
  let n = 0;
  for (let batch = 0; batch < 400; batch++) {
    const k = 1 + (batch % 7);
    const lines = Array.from({ length: k }, () => line(n++, "é😀x".repeat(batch % 60)));
    const first = r.pushLines(lines.join("\n") + "\n", k);
    assert.equal(first, n - k + 1);
  }
  r.push(line(n++)); // one line, without its "\n"
  assert.equal(r.total, n);
  assert.equal(r.size, 50);
  const held = [...r.entries()];
  assert.deepEqual(held.map((e) => e.record.n), Array.from({ length: 50 }, (_, i) => n - 50 + i));
  assert.deepEqual(held.map((e) => e.seq), Array.from({ length: 50 }, (_, i) => n - 50 + i + 1));
  assert.equal(held[10].line, line(n - 40, "é😀x".repeat((held[10].record.pad as string).length / 4)));
  assert.deepEqual([...r.newestFirst()].map((e) => e.id), held.map((e) => e.id).reverse());
});

Deno.test("RecentLog.after: the entries after an id, none after the newest, undefined when not held", () => {
  const r = new RecentLog(5);
  for (let i = 0; i < 8; i++) r.push(line(i));
  assert.deepEqual(r.after("id-5")!.map((e) => e.id), ["id-6", "id-7"]);
  assert.deepEqual(r.after("id-7"), []);
  assert.equal(r.after("id-2"), undefined);
});

Deno.test("RecentLog: entries read earlier stay valid while more lines are pushed", () => {
  const r = new RecentLog(3);
  r.push(line(0));
  const [e] = [...r.entries()];
  for (let i = 1; i < 1000; i++) r.push(line(i, "x".repeat(200)));
  assert.equal(e.record.n, 0);
});

Deno.test("RecentLog: capacity 0 holds nothing but counts", () => {
  const r = new RecentLog(0);
  r.push(line(0));
  assert.deepEqual([r.size, r.total, [...r.entries()].length], [0, 1, 0]);
});

Deno.test("RecentLog.pushBytes: with the lines' lengths given, the same entries as found by searching", () => {
  const a = new RecentLog(10);
  const b = new RecentLog(10);
  const lines = Array.from({ length: 25 }, (_, i) => line(i, "x".repeat(i)));
  const bytes = new TextEncoder().encode(lines.join("\n") + "\n");
  a.pushBytes(bytes, lines.length);
  b.pushBytes(bytes, lines.length, Int32Array.from(lines, (l) => l.length));
  assert.deepEqual([...a.entries()].map((e) => e.line), [...b.entries()].map((e) => e.line));
  assert.deepEqual([...b.entries()].map((e) => e.line), lines.slice(-10));
});
