import assert from "node:assert/strict";
import { backoffDelay, DEFAULT_BACKOFF, parseRetryAfter, retryDelay } from "./backoff.ts";

const opts = { baseMs: 100, capMs: 1_000, maxRetryAfterMs: 60_000 };

Deno.test("backoffDelay: full jitter within [0, min(cap, base*2^n))", () => {
  assert.equal(backoffDelay(0, opts, () => 0), 0);
  assert.equal(backoffDelay(0, opts, () => 0.999999), 99);
  assert.equal(backoffDelay(1, opts, () => 0.5), 100);
  assert.equal(backoffDelay(3, opts, () => 0.5), 400);
  assert.equal(backoffDelay(4, opts, () => 0.999999), 999, "capped at capMs");
  assert.equal(backoffDelay(10_000, opts, () => 0.999999), 999, "huge attempts do not overflow");
  assert.equal(backoffDelay(-3, opts, () => 0.5), 50, "negative attempts count as 0");
  for (let i = 0; i < 200; i++) {
    const d = backoffDelay(i % 12, opts);
    assert.ok(d >= 0 && d < Math.min(opts.capMs, opts.baseMs * 2 ** (i % 12)), `delay ${d}`);
  }
});

Deno.test("parseRetryAfter: delay-seconds and HTTP dates", () => {
  const now = Date.parse("2026-11-25T08:00:00Z");
  assert.equal(parseRetryAfter("0", now), 0);
  assert.equal(parseRetryAfter("3", now), 3_000);
  assert.equal(parseRetryAfter(" 120 ", now), 120_000);
  assert.equal(parseRetryAfter("Wed, 25 Nov 2026 08:00:07 GMT", now), 7_000);
  assert.equal(parseRetryAfter("Wed, 25 Nov 2026 07:59:00 GMT", now), 0, "a past date: retry now");
  for (const bad of [undefined, null, "", "soon", "-5", "1.5", "Thu, 99 Foo 2026 xx GMT"]) {
    assert.equal(parseRetryAfter(bad, now), undefined, String(bad));
  }
});

Deno.test("retryDelay: never less than Retry-After, which is capped", () => {
  assert.equal(retryDelay(0, undefined, opts, () => 0.5), 50);
  assert.equal(retryDelay(0, 2_000, opts, () => 0.5), 2_000, "Retry-After beats a shorter backoff");
  assert.equal(retryDelay(5, 10, opts, () => 0.9), 900, "a longer backoff stays");
  assert.equal(retryDelay(0, 3_600_000, opts, () => 0), 60_000, "capped at maxRetryAfterMs");
  assert.equal(retryDelay(0, 0, opts, () => 0), 0);
  assert.ok(
    DEFAULT_BACKOFF.baseMs < DEFAULT_BACKOFF.capMs &&
      DEFAULT_BACKOFF.capMs <= DEFAULT_BACKOFF.maxRetryAfterMs,
  );
});
