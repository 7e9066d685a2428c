/**
 * The live feed across replicas. Replicas commit in parallel, so `seq` order is not commit order; instead
 * every row records its inserting transaction's id (`tx`, xid8), and the stream's order is (tx, seq). A
 * reader takes only rows with `tx` below the xmin of its statement's snapshot (`pg_current_snapshot()` is
 * that snapshot): every transaction with a lower id has ended (committed rows are visible to the same
 * snapshot, aborted ones never will be), and every transaction still running or not yet started has an id
 * at or above xmin. So no row can later appear at or below a position already read: the stream is gap-free
 * and exactly-once, at the price of waiting for the oldest open transaction (of the whole cluster).
 *
 * One LISTEN connection per replica wakes a reader (every commit notifies); a poll, which never overlaps the
 * previous one, catches lost notifications and a horizon moved by transactions that do not notify. Rows are
 * fetched only while this replica has subscribers; with none, only the current end of the stream is looked
 * up (the snapshot's xmin, no table access), where the first subscriber starts. Errors are logged and retried; they never end
 * the process.
 * @module
 */
import type { Sql } from "postgres";
import type { StoredEntry } from "../store_api.ts";
import { CHANNEL } from "./writer.ts";
import type { PgClient } from "./client.ts";
import { isUnavailable } from "./errors.ts";

/** Rows fetched per round. */
const CHUNK = 2000;

/** A position in the stream: (tx, seq); rows are delivered in increasing position. */
export interface Position {
  /** Transaction id (xid8) as decimal text. */
  tx: string;
  seq: number;
}

/** Before every row. */
export const START: Position = { tx: "0", seq: 0 };

/** Compare two positions. */
export function comparePositions(a: Position, b: Position): number {
  const ta = BigInt(a.tx), tb = BigInt(b.tx);
  return ta < tb ? -1 : ta > tb ? 1 : a.seq - b.seq;
}

/** A stored entry with its stream position; `record` is parsed from `line` on first use. */
export class FeedEntry implements StoredEntry {
  #record: Record<string, unknown> | undefined;
  constructor(readonly id: string, readonly line: string, readonly pos: Position) {}
  /** The record, parsed once from the line when first asked for. */
  get record(): Record<string, unknown> {
    return this.#record ??= JSON.parse(this.line);
  }
}

/** Rows after position `after` whose transactions have all ended, in stream order, at most `limit`. */
export async function rowsAfter(sql: Sql, after: Position, limit = CHUNK): Promise<FeedEntry[]> {
  const rows = await sql`
    SELECT tx::text AS tx, seq, id, line FROM events
    WHERE (tx, seq) > (${after.tx}::xid8, ${after.seq}::bigint)
      AND tx < pg_snapshot_xmin(pg_current_snapshot())
    ORDER BY tx, seq LIMIT ${limit}`;
  return rows.map((r) =>
    new FeedEntry(String(r.id), String(r.line), { tx: String(r.tx), seq: Number(r.seq) })
  );
}

/**
 * The end of the stream now, without reading the table: (xmin, 0) of the current snapshot. Every row with a
 * lower tx is readable and comes before it; every row of a transaction at or above xmin (seq >= 1) comes after.
 */
export async function streamEnd(sql: Sql): Promise<Position> {
  const [r] = await sql`SELECT pg_snapshot_xmin(pg_current_snapshot())::text AS tx`;
  return { tx: String(r.tx), seq: 0 };
}

/** The position of the row with `id`, if it is stored. */
export async function positionOf(sql: Sql, id: string): Promise<Position | undefined> {
  const [r] = await sql`SELECT tx::text AS tx, seq FROM events WHERE id = ${id}`;
  return r ? { tx: String(r.tx), seq: Number(r.seq) } : undefined;
}

/** Fan-out of rows stored by any replica to this replica's subscribers. */
export class LiveFeed {
  #subs = new Set<(e: StoredEntry) => void>();
  /** Last position delivered (with subscribers) or known to be the end of the stream (without). */
  #cursor: Position = START;
  #running: Promise<void> | undefined;
  #again = false;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #unlisten: (() => Promise<void>) | undefined;
  #listening: Sql | undefined;
  #closed = false;
  /** Notifications received (metrics). */
  notifications = 0;
  /** Fetch errors (metrics). */
  errors = 0;
  /** Rows read for subscribers (metrics, tests). */
  rowsRead = 0;

  constructor(
    readonly client: PgClient,
    readonly pollMs = 1000,
    readonly onError: (e: unknown) => void = () => {},
  ) {}

  /** Learn where the stream ends now, LISTEN, and start polling. */
  async start(): Promise<void> {
    this.#cursor = await streamEnd(this.client.sql);
    await this.#listen(this.client.sql);
    this.#schedule();
  }

  /** LISTEN on `sql` (the client's own connection for it); a failure is retried by the next poll. */
  async #listen(sql: Sql): Promise<void> {
    const old = this.#unlisten;
    this.#unlisten = undefined;
    old?.().catch(() => {});
    this.#listening = sql;
    try {
      const l = await sql.listen(CHANNEL, () => {
        this.notifications++;
        this.advance();
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

  #failed(sql: Sql, e: unknown): void {
    this.errors++;
    if (isUnavailable(e)) this.client.failed(sql);
    this.onError(e);
  }

  /** Number of subscribers. */
  get size(): number {
    return this.#subs.size;
  }

  /**
   * Subscribe to rows committed from now on: the first subscriber starts at the end of the stream as last
   * looked up (a row committed just before may come too; a client resuming by id skips what it replayed).
   */
  subscribe(fn: (e: StoredEntry) => void): () => void {
    this.#subs.add(fn);
    this.advance();
    return () => this.#subs.delete(fn);
  }

  /** Something was committed (a notification or this replica's own commit): read on. */
  advance(): void {
    if (this.#closed) return;
    if (this.#running) {
      this.#again = true;
      return;
    }
    const sql = this.client.sql;
    this.#running = (async () => {
      do {
        this.#again = false;
        if (this.#subs.size === 0) {
          const end = await streamEnd(sql);
          // A subscriber that came meanwhile keeps the older end: a row twice rather than a row missed.
          if (this.#subs.size === 0) this.#cursor = end;
          continue;
        }
        while (!this.#closed && this.#subs.size > 0) {
          const rows = await rowsAfter(sql, this.#cursor);
          this.rowsRead += rows.length;
          for (const r of rows) {
            this.#cursor = r.pos;
            for (const s of this.#subs) s(r);
          }
          if (rows.length < CHUNK) break;
        }
      } while (this.#again && !this.#closed);
    })().catch((e) => this.#failed(sql, e)).finally(() => {
      this.#running = undefined;
      if (this.#again) this.advance();
    });
  }

  /** The next poll, once this one is done (polls never overlap). */
  #schedule(): void {
    if (this.#closed) return;
    this.#timer = setTimeout(async () => {
      const sql = this.client.sql;
      if (this.#listening !== sql) await this.#listen(sql); // a new client, or LISTEN failed
      this.advance();
      await this.#running;
      this.#schedule();
    }, this.pollMs);
  }

  /** Stop listening and polling. */
  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    await this.#running;
    await this.#unlisten?.().catch(() => {});
  }
}
