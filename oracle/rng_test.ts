import assert from "node:assert/strict";
import { chooseSeed, Rng } from "./rng.ts";

Deno.test("rng: the same seed gives the same sequence; another seed another one", () => {
  const a = new Rng(42), b = new Rng(42), c = new Rng(43);
  const seq = (r: Rng) => Array.from({ length: 8 }, () => r.next());
  const sa = seq(a);
  assert.deepEqual(sa, seq(b));
  assert.notDeepEqual(sa, seq(c));
  for (const x of sa) assert.ok(x >= 0 && x < 1);
});

Deno.test("rng: int, pick, weighted and shuffle stay in range", () => {
  const r = new Rng(7);
  const seen = new Set<number>();
  for (let i = 0; i < 500; i++) {
    const n = r.int(5);
    assert.ok(Number.isInteger(n) && n >= 0 && n < 5);
    seen.add(n);
  }
  assert.equal(seen.size, 5);
  assert.equal(r.pick(["only"]), "only");
  assert.throws(() => r.pick([]));
  for (let i = 0; i < 100; i++) assert.equal(r.weighted({ a: 0, b: 2 }), "b");
  assert.throws(() => r.weighted({ a: 0 }));
  const s = r.shuffle([1, 2, 3, 4, 5]);
  assert.deepEqual([...s].sort(), [1, 2, 3, 4, 5]);
});

Deno.test("rng: ORACLE_SEED is used when set, checked, else a random 32-bit seed", () => {
  assert.equal(chooseSeed("123"), 123);
  assert.equal(chooseSeed(" 4294967295 "), 4294967295);
  assert.equal(chooseSeed(undefined, () => 0.5), 2 ** 31);
  assert.equal(chooseSeed("", () => 0), 0);
  assert.throws(() => chooseSeed("-1"), /ORACLE_SEED/);
  assert.throws(() => chooseSeed("4294967296"), /ORACLE_SEED/);
  assert.throws(() => chooseSeed("abc"), /ORACLE_SEED/);
});
