/**
 * What the listener's answer to a POST /ingest means for the sender: delivered, to retry (when, and whether the
 * cause is the sender's configuration), or refused for good. Pure.
 * @module
 */
import { parseRetryAfter } from "./backoff.ts";

/** Why a POST did not deliver; `config` marks a cause only the operator can fix (token, URL). */
export type Failure = { status?: number; retryAfterMs?: number; config: boolean; error: string };

/** The outcome of one POST. */
export type Attempt =
  | { kind: "ok"; duplicates: number }
  | { kind: "retry"; failure: Failure }
  | { kind: "refused"; status: number; error: string };

/** Classify an answer: its status, its body text and its Retry-After header. */
export function answerOf(status: number, text: string, retryAfter: string | null): Attempt {
  const s = status;
  let error = text.slice(0, 500);
  let body: Record<string, unknown> | undefined;
  try {
    body = JSON.parse(text);
    if (typeof body?.error === "string") error = body.error;
  } catch { /* not JSON */ }
  if (s >= 200 && s < 300) return { kind: "ok", duplicates: Number(body?.duplicates) || 0 };
  const why = `HTTP ${s}: ${error}`;
  if (s === 401 || s === 403) {
    return {
      kind: "retry",
      failure: { status: s, config: true, error: `${why} (is LISTENER_TOKEN right?)` },
    };
  }
  if (s === 404 || s === 405 || (s >= 300 && s < 400)) {
    return {
      kind: "retry",
      failure: { status: s, config: true, error: `${why} (is LISTENER_URL right?)` },
    };
  }
  if (s === 408 || s === 429 || s >= 500) {
    const retryAfterMs = parseRetryAfter(retryAfter);
    return { kind: "retry", failure: { status: s, retryAfterMs, config: false, error: why } };
  }
  return { kind: "refused", status: s, error };
}
