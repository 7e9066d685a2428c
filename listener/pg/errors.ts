/**
 * Which database errors mean "PostgreSQL is down or unreachable" (the request may be retried: 503 with
 * Retry-After) and which are bugs (500). Connection failures, server shutdown, too many connections and
 * serialization conflicts are the first kind.
 * @module
 */
import { StoreUnavailableError } from "../store_api.ts";

/** SQLSTATE classes that mean "try again later". */
const RETRYABLE_CLASSES = new Set(["08", "53", "57", "40", "58"]);

/** Error codes the `postgres` client and Node's net layer use for connection trouble. */
const CONNECTION_CODES = new Set([
  "CONNECTION_CLOSED",
  "CONNECTION_ENDED",
  "CONNECTION_DESTROYED",
  "CONNECT_TIMEOUT",
  "ECONNREFUSED",
  "ECONNRESET",
  "EPIPE",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENOTFOUND",
  "EAI_AGAIN",
]);

/** True when `e` says the database cannot be reached or is going away, rather than that the SQL is wrong. */
export function isUnavailable(e: unknown): boolean {
  if (e instanceof StoreUnavailableError) return true;
  const code = (e as { code?: unknown })?.code;
  if (typeof code !== "string") return false;
  if (CONNECTION_CODES.has(code)) return true;
  return /^[0-9A-Z]{5}$/.test(code) && RETRYABLE_CLASSES.has(code.slice(0, 2));
}

/** `e` as a {@link StoreUnavailableError} when it is a connection problem; otherwise `e` itself. */
export function toStoreError(e: unknown, what: string): unknown {
  if (e instanceof StoreUnavailableError) return e;
  if (isUnavailable(e)) {
    return new StoreUnavailableError(`PostgreSQL is unavailable (${what}): ${(e as Error).message}`, {
      cause: e,
    });
  }
  return e;
}

/**
 * The replica is taking more than it can commit in time: the request is refused at once (503 with
 * Retry-After, nothing stored) rather than queued past the client's timeout and then retried anyway.
 */
export class StoreOverloadedError extends StoreUnavailableError {
  constructor(message: string) {
    super(message);
    this.name = "StoreOverloadedError";
  }
}
