/**
 * Retry timing for delivery: exponential backoff with full jitter (AWS style), and the server's `Retry-After`
 * (seconds or an HTTP date) honoured on 429/503: never retry sooner than it asks, up to a sane maximum.
 * Pure: the clock and the random source are parameters.
 * @module
 */

/** Backoff settings, in milliseconds. */
export interface BackoffOptions {
  /** The first retry waits up to this long. */
  baseMs: number;
  /** No computed wait exceeds this. */
  capMs: number;
  /** A server's Retry-After is honoured up to this long (a larger value is capped to it). */
  maxRetryAfterMs: number;
}

/** Defaults: 250 ms base, 30 s cap, Retry-After honoured up to 5 minutes. */
export const DEFAULT_BACKOFF: BackoffOptions = { baseMs: 250, capMs: 30_000, maxRetryAfterMs: 300_000 };

/** Full jitter: a uniform wait in [0, min(cap, base·2^attempt)); `attempt` counts from 0. */
export function backoffDelay(
  attempt: number,
  options: BackoffOptions,
  random: () => number = Math.random,
): number {
  const exp = Math.min(options.capMs, options.baseMs * 2 ** Math.max(0, Math.min(attempt, 60)));
  return Math.floor(random() * exp);
}

/**
 * A `Retry-After` header value in milliseconds from `now`: delay-seconds ("120") or an HTTP date
 * ("Wed, 21 Oct 2015 07:28:00 GMT"); undefined when absent or unreadable; 0 for a date in the past.
 */
export function parseRetryAfter(
  value: string | null | undefined,
  now: number = Date.now(),
): number | undefined {
  if (value === null || value === undefined) return undefined;
  const v = value.trim();
  if (v === "") return undefined;
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  if (!/[a-z]/i.test(v)) return undefined; // e.g. "-5" or "1.5": not a delay-seconds value, not a date
  const at = Date.parse(v);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - now);
}

/**
 * The wait before retry number `attempt` (from 0): the jittered backoff, but never less than the server's
 * Retry-After (`retryAfterMs`, when given), which is itself capped at `maxRetryAfterMs`.
 */
export function retryDelay(
  attempt: number,
  retryAfterMs: number | undefined,
  options: BackoffOptions,
  random: () => number = Math.random,
): number {
  const jittered = backoffDelay(attempt, options, random);
  if (retryAfterMs === undefined) return jittered;
  return Math.max(jittered, Math.min(retryAfterMs, options.maxRetryAfterMs));
}
