import assert from "node:assert/strict";
import { answerOf } from "./ingest_answer.ts";

Deno.test("answerOf: 2xx is delivered, with the listener's duplicate count", () => {
  assert.deepEqual(answerOf(200, '{"ok":true,"stored":1,"duplicates":2}', null), {
    kind: "ok",
    duplicates: 2,
  });
  assert.deepEqual(answerOf(204, "", null), { kind: "ok", duplicates: 0 });
});

Deno.test("answerOf: token and URL problems are retried and named as configuration", () => {
  for (
    const [status, hint] of [[401, "LISTENER_TOKEN"], [403, "LISTENER_TOKEN"], [404, "LISTENER_URL"], [
      405,
      "LISTENER_URL",
    ], [302, "LISTENER_URL"]] as const
  ) {
    const a = answerOf(status, '{"ok":false,"error":"nope"}', null);
    assert.equal(a.kind, "retry");
    if (a.kind !== "retry") continue;
    assert.equal(a.failure.config, true);
    assert.equal(a.failure.status, status);
    assert.match(a.failure.error, new RegExp(`^HTTP ${status}: nope \\(is ${hint} right\\?\\)$`));
  }
});

Deno.test("answerOf: overload and server errors are retried after Retry-After; other 4xx are refused", () => {
  const busy = answerOf(503, '{"ok":false,"error":"overloaded"}', "2");
  assert.deepEqual(busy, {
    kind: "retry",
    failure: { status: 503, retryAfterMs: 2000, config: false, error: "HTTP 503: overloaded" },
  });
  for (const s of [408, 429, 500]) assert.equal(answerOf(s, "", null).kind, "retry");
  assert.deepEqual(answerOf(422, '{"ok":false,"error":"item 0 is invalid at `port`"}', null), {
    kind: "refused",
    status: 422,
    error: "item 0 is invalid at `port`",
  });
  // A body that is not JSON is quoted, cut at 500 characters.
  const long = answerOf(400, "x".repeat(600), null);
  assert.equal(long.kind === "refused" && long.error.length, 500);
});
