/**
 * The live feed across replicas: one LISTEN connection per replica wakes a reader that fetches the rows with
 * `seq` above the last one delivered, in seq order, and hands them to local subscribers. Because insert
 * transactions are serialized (see writer.ts), seq order is commit order and no row can appear later below
 * the cursor. A timer polls as well, so a lost notification or a LISTEN connection being re-established only
 * delays delivery. Errors are logged and retried; they never end the process.
 * @module
 */
import type { Sql } from "postgres";
import type { StoredEntry } from "../store_api.ts";
import { CHANNEL } from "./writer.ts";
import type { PgClient } from "./client.ts";
import { isUnavailable } from "./errors.ts";

/** Rows fetched per round. */
const CHUNK = 2000;

/** Stored entries with their seq. */
export interface SeqEntry extends StoredEntry {
  seq: number;
}

/** Rows with seq above `after`, oldest first, at most `limit`. */
export async function rowsAfter(sql: Sql, after: number, limit = CHUNK): Promise<SeqEntry[]> {
  const rows = await sql`SELECT seq, id, line FROM events WHERE seq > ${after} ORDER BY seq LIMIT ${limit}`;
  return rows.map((r) => ({
    seq: Number(r.seq),
    id: String(r.id),
    line: String(r.line),
    record: JSON.parse(String(r.line)),
  }));
}

/** The highest committed seq (0 when empty). */
export async function maxSeq(sql: Sql): Promise<number> {
  const [r] = await sql`SELECT coalesce(max(seq), 0) AS m FROM events`;
  return Number(r.m);
}

/** Fan-out of rows stored by any replica to this replica's subscribers. */
export class LiveFeed {
  #subs = new Set<(e: StoredEntry) => void>();
  #cursor = 0;
  #highWater = 0;
  #fetching: Promise<void> | undefined;
  #again = false;
  #timer: ReturnType<typeof setInterval> | undefined;
  #unlisten: (() => Promise<void>) | undefined;
  #closed = false;
  /** Notifications received (metrics). */
  notifications = 0;
  /** Fetch errors (metrics). */
  errors = 0;

  constructor(
    readonly client: PgClient,
    readonly pollMs = 1000,
    readonly onError: (e: unknown) => void = () => {},
  ) {}

  /** Learn the current high-water mark, LISTEN, and start the poll timer. */
  async start(): Promise<void> {
    this.#highWater = await maxSeq(this.client.sql);
    await this.#listen(this.client.sql);
    this.#timer = setInterval(() => this.#poll(), this.pollMs);
  }

  /** LISTEN on `sql` (the client's own connection for it); a failure is retried by the next poll. */
  async #listen(sql: Sql): Promise<void> {
    const old = this.#unlisten;
    this.#unlisten = undefined;
    old?.().catch(() => {});
    this.#listening = sql;
    try {
      const l = await sql.listen(CHANNEL, (payload) => {
        this.notifications++;
        this.advance(Number(payload));
      });
      if (this.#closed || this.#listening !== sql) {
        await l.unlisten().catch(() => {});
        return;
      }
      this.#unlisten = l.unlisten;
    } catch (e) {
      if (this.#listening === sql) this.#listening = undefined;
      this.#failed(sql, e);
    }
  }

  #listening: Sql | undefined;

  #failed(sql: Sql, e: unknown): void {
    this.errors++;
    if (isUnavailable(e)) this.client.failed(sql);
    this.onError(e);
  }

  /** Number of subscribers. */
  get size(): number {
    return this.#subs.size;
  }

  /** Subscribe to rows committed from now on. */
  subscribe(fn: (e: StoredEntry) => void): () => void {
    if (this.#subs.size === 0) this.#cursor = this.#highWater;
    this.#subs.add(fn);
    return () => this.#subs.delete(fn);
  }

  /** A commit up to `seq` happened (notification or this replica's own commit). */
  advance(seq: number): void {
    if (Number.isFinite(seq) && seq > this.#highWater) this.#highWater = seq;
    if (this.#subs.size > 0 && this.#highWater > this.#cursor) this.#fetch();
  }

  #poll(): void {
    if (this.#closed) return;
    const sql = this.client.sql;
    if (this.#listening !== sql) this.#listen(sql); // a new client, or LISTEN failed: listen again
    if (this.#subs.size > 0) {
      this.#fetch();
      return;
    }
    maxSeq(sql).then((m) => this.advance(m), (e) => this.#failed(sql, e));
  }

  #fetch(): void {
    if (this.#fetching) {
      this.#again = true;
      return;
    }
    const sql = this.client.sql;
    this.#fetching = (async () => {
      do {
        this.#again = false;
        while (!this.#closed && this.#subs.size > 0) {
          const rows = await rowsAfter(sql, this.#cursor);
          for (const r of rows) {
            this.#cursor = r.seq;
            for (const s of this.#subs) s(r);
          }
          if (this.#cursor > this.#highWater) this.#highWater = this.#cursor;
          if (rows.length < CHUNK) break;
        }
      } while (this.#again && !this.#closed);
    })().catch((e) => this.#failed(sql, e)).finally(() => {
      this.#fetching = undefined;
    });
  }

  /** Stop listening and polling. */
  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#timer);
    await this.#fetching;
    await this.#unlisten?.().catch(() => {});
  }
}
