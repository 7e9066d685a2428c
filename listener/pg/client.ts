/**
 * The store's connection to PostgreSQL: a `postgres` (porsager) client that is replaced by a fresh one after
 * the database went away, plus a guard against one known crash of that client.
 *
 * Why replace it: in postgres@3.4.9 a pool slot whose socket closed while a small write was queued keeps a
 * stale write timer; every later connection attempt through that slot sends nothing and times out
 * (porsager/postgres#1208, #1154). A fresh client after an outage reconnects cleanly; the old one is ended in
 * the background (its in-flight queries get up to 0.5 s; one cut short answers 503 and is retried).
 *
 * Why the guard: the same race can make the client call `write` on a closed socket from a `setImmediate`
 * callback, an exception no caller can catch, which would end the process (denoland/deno#34667); Deno's
 * node:net says either "reading 'write'" or "This socket has been ended by the other party" there. And while
 * the database restarts, the client leaves rejections nobody holds (a replaced client's end timeout destroying
 * its connections: CONNECTION_DESTROYED; a reset socket: ECONNRESET, EPIPE). While a client is open,
 * {@link installWriteGuard} turns exactly those into a count; the affected queries were rejected to their
 * callers already (503, retried), and the client is replaced.
 * @module
 */
import postgres, { type Sql } from "postgres";

/** A `postgres` client with the settings the store uses. */
export function connect(url: string, max = 10): Sql {
  return postgres(url, {
    max,
    connect_timeout: 5,
    idle_timeout: 300,
    onnotice: () => {},
    connection: { application_name: "portwatch-listener" },
  });
}

/** True for the client's uncatchable write-after-close exception (either of node:net's wordings). */
export function isWriteAfterClose(e: unknown): boolean {
  return e instanceof Error && /reading 'write'|socket has been ended by the other party/.test(e.message) &&
    /postgres[@/].*connection\.js/.test(e.stack ?? "") && /nextWrite/.test(e.stack ?? "");
}

/** Connection-level failures of the client's sockets while the database restarts. */
const CONNECTION_CODES = new Set([
  "CONNECTION_DESTROYED",
  "CONNECTION_CLOSED",
  "CONNECTION_ENDED",
  "ECONNRESET",
  "EPIPE",
  "ECONNREFUSED",
]);

/**
 * True for a rejection nobody holds that the client's connections leave when the database goes away: an end
 * timeout destroying a replaced client's connections (CONNECTION_DESTROYED), or a socket reset under a
 * pending write or read (ECONNRESET, EPIPE). The queries they concern were rejected to their callers already.
 */
export function isConnectionNoise(e: unknown): boolean {
  if (!(e instanceof Error)) return false;
  const code = (e as { code?: string }).code;
  return (code !== undefined && CONNECTION_CODES.has(code)) ||
    /^(read|write) (ECONNRESET|EPIPE)\b/.test(e.message);
}

let guards = 0;
let swallowed = 0;
const onError = (ev: ErrorEvent) => {
  if (isWriteAfterClose(ev.error)) {
    ev.preventDefault();
    swallowed++;
  }
};
const onRejection = (ev: PromiseRejectionEvent) => {
  if (isConnectionNoise(ev.reason)) {
    ev.preventDefault();
    swallowed++;
  }
};

/** Start guarding (counted: every install needs its uninstall); returns the uninstall function. */
export function installWriteGuard(): () => void {
  if (guards++ === 0) {
    globalThis.addEventListener("error", onError);
    globalThis.addEventListener("unhandledrejection", onRejection);
  }
  let done = false;
  return () => {
    if (done) return;
    done = true;
    if (--guards === 0) {
      globalThis.removeEventListener("error", onError);
      globalThis.removeEventListener("unhandledrejection", onRejection);
    }
  };
}

/** How many write-after-close exceptions the guard stopped (metrics). */
export function swallowedWrites(): number {
  return swallowed;
}

/** The current client, replaced by a fresh one after a connection failure. */
export class PgClient {
  #sql: Sql;
  #lastReset = 0;
  #uninstall = installWriteGuard();
  #old: Promise<void>[] = [];
  /** Clients replaced so far (metrics). */
  resets = 0;
  /** Called with each new client (the live feed listens again on it). */
  onReset?: (sql: Sql) => void;

  constructor(readonly url: string, readonly max = 10, readonly minResetMs = 1000) {
    this.#sql = connect(url, max);
  }

  /** The client to use now; take it per operation, do not keep it. */
  get sql(): Sql {
    return this.#sql;
  }

  /**
   * A connection-level failure happened on `failed`: replace the client, unless it was already replaced
   * or was replaced less than `minResetMs` ago.
   */
  failed(failed: Sql): void {
    if (failed !== this.#sql || performance.now() - this.#lastReset < this.minResetMs) return;
    this.#lastReset = performance.now();
    this.resets++;
    const old = this.#sql;
    this.#sql = connect(this.url, this.max);
    this.#old.push(old.end({ timeout: 0.5 }).catch(() => {}));
    this.onReset?.(this.#sql);
  }

  /** End the current client and wait for replaced ones. */
  async end(): Promise<void> {
    await this.#sql.end({ timeout: 5 }).catch(() => {});
    await Promise.all(this.#old);
    this.#uninstall();
  }
}
