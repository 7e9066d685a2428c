/**
 * The alert queues of the PostgreSQL store: table `alert_outbox` (migration 5), shared by the listener
 * replicas, one FIFO per target.
 *
 * - Enqueue: every replica follows every stored record and computes the same transitions, so each inserts the
 *   same rows; `dedupe_key` (target + the transition's key: event id, status, label fingerprint) is UNIQUE and
 *   the insert does `ON CONFLICT DO NOTHING`: one row per transition, whichever replica came first.
 * - Claim: one replica at a time sends a target's rows, in id order (a firing must not overtake its resolve):
 *   the claim takes a transaction-level advisory lock on the target, finds no live lease on it, and leases the
 *   oldest rows (`lease_until` = now + 30 s, `FOR UPDATE SKIP LOCKED`). A replica that dies mid-send leaves a
 *   lease that expires; another replica sends the rows again.
 * - Done: the rows are marked delivered (`done_at`), not deleted: they are kept for an hour, so that a
 *   replica that follows the records late (a slow poll, a reconnect) finds the key taken and does not send
 *   them a second time; then purged. Dead rows (a 4xx) are kept the same way, with the answer.
 * - Retry: `attempts` + 1 and `next_at` = now + 1 s doubling to 60 s, forever.
 *
 * @example
 * ```ts
 * const outbox = new PgAlertOutbox("alertmanager", store.client);
 * await outbox.enqueue([item]); // the keys added: empty when another replica was first
 * ```
 * @module
 */
import type { Sql } from "postgres";
import type { PgClient } from "./client.ts";
import { isUnavailable } from "./errors.ts";
import {
  type AlertQueue,
  type Claim,
  type QueuedAlert,
  retryDelayMs,
  type TargetName,
} from "../alerts/queue.ts";

/** How the outbox keeps rows. */
export interface OutboxOptions {
  /** How long a claim owns its rows (ms, default 30 s); a send takes at most its timeout (10 s). */
  leaseMs?: number;
  /** How long delivered and dead rows are kept against late duplicates (ms, default 1 hour). */
  keepDoneMs?: number;
  /** How often the sender looks for rows (ms, default 1000): other replicas' rows wake no one here. */
  pollMs?: number;
}

/** One target's rows of `alert_outbox`. */
export class PgAlertOutbox implements AlertQueue {
  readonly pollMs: number;
  readonly #leaseMs: number;
  readonly #keepDoneMs: number;
  #depth = 0;
  #lastPurge = 0;

  constructor(readonly target: TargetName, readonly client: PgClient, options: OutboxOptions = {}) {
    this.#leaseMs = options.leaseMs ?? 30_000;
    this.#keepDoneMs = options.keepDoneMs ?? 3_600_000;
    this.pollMs = options.pollMs ?? 1000;
  }

  /** Run `fn` on the current client; a connection failure replaces the client (and is thrown). */
  async #run<T>(fn: (sql: Sql) => Promise<T>): Promise<T> {
    const sql = this.client.sql;
    try {
      return await fn(sql);
    } catch (e) {
      if (isUnavailable(e)) this.client.failed(sql);
      throw e;
    }
  }

  /** Insert `items` in order; the keys inserted (the others were enqueued already, by some replica). */
  async enqueue(items: QueuedAlert[]): Promise<Set<string>> {
    if (items.length === 0) return new Set();
    const rows = items.map((i) => ({ k: `${this.target}|${i.key}`, p: i }));
    const inserted = await this.#run((sql) =>
      sql`INSERT INTO alert_outbox (target, dedupe_key, payload)
        SELECT ${this.target}, r.value->>'k', r.value->'p'
        FROM json_array_elements(${JSON.stringify(rows)}::text::json) WITH ORDINALITY AS r(value, n)
        ORDER BY r.n
        ON CONFLICT (dedupe_key) DO NOTHING
        RETURNING dedupe_key`
    );
    const prefix = this.target.length + 1;
    const out = new Set(inserted.map((r) => String(r.dedupe_key).slice(prefix)));
    this.#depth += out.size;
    return out;
  }

  /** Lease the oldest due rows of this target (at most `max`), unless another replica holds a lease on it. */
  async claim(max: number): Promise<Claim | { waitMs: number } | undefined> {
    await this.#purge();
    const got = await this.#run((sql) =>
      sql.begin(async (tx) => {
        const [lock] = await tx`
          SELECT pg_try_advisory_xact_lock(hashtext('portwatch-alerts'), hashtext(${this.target})) AS ok`;
        if (!lock.ok) return { waitMs: 200 };
        const [busy] = await tx`
          SELECT extract(epoch FROM lease_until - now()) * 1000 AS ms FROM alert_outbox
          WHERE target = ${this.target} AND done_at IS NULL AND lease_until > now()
          ORDER BY lease_until DESC LIMIT 1`;
        if (busy) return { waitMs: Math.max(50, Math.min(this.pollMs, Number(busy.ms))) };
        const head = await tx`
          SELECT id, attempts, extract(epoch FROM next_at - now()) * 1000 AS wait_ms
          FROM alert_outbox WHERE target = ${this.target} AND done_at IS NULL
          ORDER BY id LIMIT ${max} FOR UPDATE SKIP LOCKED`;
        if (head.length === 0) return undefined;
        if (Number(head[0].wait_ms) > 0) return { waitMs: Number(head[0].wait_ms) };
        const ids = [];
        for (const r of head) {
          if (Number(r.wait_ms) > 0) break; // FIFO: a row waiting for its retry holds back what follows it
          ids.push(String(r.id));
        }
        const rows = await tx`
          UPDATE alert_outbox SET lease_until = now() + ${this.#leaseMs / 1000} * interval '1 second'
          WHERE id IN (SELECT unnest(${ids}::bigint[]))
          RETURNING id, payload, attempts`;
        return rows.sort((a, b) => Number(a.id) - Number(b.id));
      })
    );
    await this.#count();
    if (got === undefined || "waitMs" in got) return got;
    const ids = got.map((r) => String(r.id));
    const attempts = Math.max(...got.map((r) => Number(r.attempts)));
    const items = got.map((r) =>
      (typeof r.payload === "string" ? JSON.parse(r.payload) : r.payload) as QueuedAlert
    );
    const finish = async (outcome: string, error: string | null) => {
      await this.#run((sql) =>
        sql`UPDATE alert_outbox SET done_at = now(), outcome = ${outcome}, lease_until = NULL,
          last_error = ${error} WHERE id IN (SELECT unnest(${ids}::bigint[]))`
      );
      this.#depth = Math.max(0, this.#depth - ids.length);
    };
    return {
      items,
      attempts,
      done: () => finish("delivered", null),
      dead: (reason) => finish("dead", `${reason.status ?? ""} ${reason.error}`.trim()),
      retry: async (error) => {
        const delay = retryDelayMs(attempts + 1);
        await this.#run((sql) =>
          sql`UPDATE alert_outbox SET attempts = ${attempts + 1}, lease_until = NULL, last_error = ${error},
            next_at = now() + ${delay / 1000} * interval '1 second'
            WHERE id IN (SELECT unnest(${ids}::bigint[]))`
        );
        return delay;
      },
    };
  }

  /** Rows of this target not yet delivered, as last counted. */
  depth(): number {
    return this.#depth;
  }

  async #count(): Promise<void> {
    const [r] = await this.#run((sql) =>
      sql`SELECT count(*) AS n FROM alert_outbox WHERE target = ${this.target} AND done_at IS NULL`
    );
    this.#depth = Number(r.n);
  }

  /** Drop delivered and dead rows older than the keep time, at most once a minute. */
  async #purge(): Promise<void> {
    if (Date.now() - this.#lastPurge < 60_000) return;
    this.#lastPurge = Date.now();
    await this.#run((sql) =>
      sql`DELETE FROM alert_outbox
        WHERE done_at < now() - ${this.#keepDoneMs / 1000} * interval '1 second' AND target = ${this.target}`
    );
  }

  /** Nothing to release: the store owns the connection. */
  close(): Promise<void> {
    return Promise.resolve();
  }
}
