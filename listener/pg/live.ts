/**
 * The live feed across replicas. Replicas commit in parallel, so `seq` order is not commit order; instead
 * every row records its inserting transaction's id (`tx`, xid8), and the stream's order is (tx, seq). A
 * reader takes only rows with `tx` below the xmin of its statement's snapshot (`pg_current_snapshot()` is
 * that snapshot): every transaction with a lower id has ended (committed rows are visible to the same
 * snapshot, aborted ones never will be), and every transaction still running or not yet started has an id
 * at or above xmin. So no row can later appear at or below a position already read: the stream is gap-free
 * and exactly-once, at the price of waiting for the oldest open transaction (of the whole cluster).
 *
 * One LISTEN connection per replica wakes a reader (every commit notifies; reads start at least `gapMs`
 * apart, so under load one read covers many commits); a poll, which never overlaps the previous one, catches
 * lost notifications and a horizon moved by transactions that do not notify. Rows are fetched only while
 * this replica has subscribers; with none, only the current end of the stream is looked up (the snapshot's
 * xmin, no table access), where the first subscriber starts.
 *
 * A replica's own commits are not read back: the writer hands each commit's rows and transaction id to
 * {@link LiveFeed.committed}, the read leaves those transactions out, and they are merged in by position once
 * the horizon has passed them. A commit whose answer came after a read had already returned its rows (or
 * that wrote ids already stored) is simply read from the table. Errors are logged and retried; they never
 * end the process.
 * @module
 */
import type { Sql } from "postgres";
import type { StoredEntry } from "../store_api.ts";
import type { EventFilter } from "../filter.ts";
import { eventsWhere } from "./sql_filter.ts";
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

/** A stored entry with its stream position; `record` is parsed from `line` on first use unless given. */
export class FeedEntry implements StoredEntry {
  #record: Record<string, unknown> | undefined;
  constructor(
    readonly id: string,
    readonly line: string,
    readonly pos: Position,
    record?: Record<string, unknown>,
  ) {
    this.#record = record;
  }
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

/** What {@link feedRows} read: the rows, and the horizon (the snapshot's xmin) below which all is final. */
export interface FeedRead {
  rows: FeedEntry[];
  xmin: string;
}

/**
 * Like {@link rowsAfter}, leaving out the rows of transactions `skipTx` (this replica's own, which it holds
 * in memory), and with the horizon the rows were read below. With `only`, just the rows matching at least one
 * of those filters (the subscribers' own, when every one has a filter).
 */
export async function feedRows(
  sql: Sql,
  after: Position,
  skipTx: string[],
  limit = CHUNK,
  only?: EventFilter[],
): Promise<FeedRead> {
  const wanted = only && only.length > 0
    ? sql`AND (${only.map((f) => sql`(${eventsWhere(sql, f)})`).reduce((a, b) => sql`${a} OR ${b}`)})`
    : sql``;
  const rows = await sql`
    SELECT h.xmin::text AS xmin, e.tx::text AS tx, e.seq, e.id, e.line
    FROM (SELECT pg_snapshot_xmin(pg_current_snapshot()) AS xmin) h
    LEFT JOIN LATERAL (
      SELECT tx, seq, id, line FROM events
      WHERE (tx, seq) > (${after.tx}::xid8, ${after.seq}::bigint) AND tx < h.xmin
        AND NOT (tx = ANY(${skipTx}::xid8[])) ${wanted}
      ORDER BY tx, seq LIMIT ${limit}) e ON true`;
  const out: FeedEntry[] = [];
  for (const r of rows) {
    if (r.id === null) continue;
    out.push(new FeedEntry(String(r.id), String(r.line), { tx: String(r.tx), seq: Number(r.seq) }));
  }
  return { rows: out, xmin: String(rows[0].xmin) };
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
  /** Subscribers, with the filter each wants (undefined: every row). */
  #subs = new Map<(e: StoredEntry) => void, EventFilter | undefined>();
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

  /** Rows this replica committed, by transaction, not yet delivered (kept only while there are subscribers). */
  #own = new Map<string, FeedEntry[]>();
  /** When the last read started (performance.now()). */
  #lastRead = -Infinity;
  #gap: ReturnType<typeof setTimeout> | undefined;

  /**
   * `gapMs`: reads start at least this far apart (default 20 ms): under load every commit of every replica
   * notifies, and one read then covers many commits.
   */
  constructor(
    readonly client: PgClient,
    readonly pollMs = 1000,
    readonly onError: (e: unknown) => void = () => {},
    readonly gapMs = 20,
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
  subscribe(fn: (e: StoredEntry) => void, filter?: EventFilter): () => void {
    this.#subs.set(fn, filter && Object.values(filter).some((v) => v !== undefined) ? filter : undefined);
    this.advance();
    return () => this.#subs.delete(fn);
  }

  /**
   * This replica committed `rows` in transaction `tx` (seq 1, 2, ... in that order): they are delivered from
   * memory, in their place in the stream, instead of being read back (see {@link feedRows}). Without `tx`,
   * the commit's rows are read from the table like any other replica's.
   */
  committed(
    tx?: string,
    rows?: readonly { id: string; line: string; record: Record<string, unknown> }[],
  ): void {
    if (tx !== undefined && rows && rows.length > 0 && this.#subs.size > 0) {
      // Rows at or before the cursor were already read from the table (a read raced the commit's answer).
      if (BigInt(tx) > BigInt(this.#cursor.tx)) {
        this.#own.set(tx, rows.map((r, i) => new FeedEntry(r.id, r.line, { tx, seq: i + 1 }, r.record)));
      }
    }
    this.advance();
  }

  /** Something was committed (a notification or this replica's own commit): read on. */
  advance(): void {
    if (this.#closed) return;
    if (this.#running) {
      this.#again = true;
      return;
    }
    if (this.#gap) return;
    const wait = this.gapMs - (performance.now() - this.#lastRead);
    if (wait > 0) {
      this.#gap = setTimeout(() => {
        this.#gap = undefined;
        this.advance();
      }, Math.ceil(wait));
      return;
    }
    this.#lastRead = performance.now();
    const sql = this.client.sql;
    this.#running = (async () => {
      this.#again = false;
      if (this.#subs.size === 0) {
        const end = await streamEnd(sql);
        // A subscriber that came meanwhile keeps the older end: a row twice rather than a row missed.
        if (this.#subs.size === 0) this.#cursor = end;
        return;
      }
      while (!this.#closed && this.#subs.size > 0) {
        const skip = [...this.#own.keys()];
        const { rows, xmin } = await feedRows(sql, this.#cursor, skip, CHUNK, this.#onlyFilters());
        this.rowsRead += rows.length;
        // Everything before `until` is known: the whole horizon, or up to the last row when a chunk was full.
        const full = rows.length === CHUNK;
        const until: Position = full ? rows[rows.length - 1].pos : { tx: xmin, seq: 0 };
        const mine = this.#ownBefore(skip, until);
        let j = 0;
        for (const r of rows) {
          while (j < mine.length && comparePositions(mine[j].pos, r.pos) < 0) this.#deliver(mine[j++]);
          this.#deliver(r);
        }
        while (j < mine.length) this.#deliver(mine[j++]);
        if (!full) {
          // Everything below the horizon was read (or matched no subscriber): the next read starts there, not
          // at the last row delivered, which with filtered reads may lie far behind.
          if (comparePositions(until, this.#cursor) > 0) this.#cursor = until;
          break;
        }
      }
      if (this.#subs.size === 0) this.#own.clear();
    })().catch((e) => this.#failed(sql, e)).finally(() => {
      this.#running = undefined;
      if (this.#again) this.advance();
    });
  }

  /**
   * Own rows (of transactions `txs`, the ones left out of the read) after the cursor and before `until`, in
   * stream order; transactions wholly before `until` are forgotten.
   */
  #ownBefore(txs: string[], until: Position): FeedEntry[] {
    const out: FeedEntry[] = [];
    for (const tx of txs.sort((a, b) => comparePositions({ tx: a, seq: 0 }, { tx: b, seq: 0 }))) {
      const entries = this.#own.get(tx)!;
      for (const e of entries) {
        if (comparePositions(e.pos, until) >= 0) break;
        if (comparePositions(e.pos, this.#cursor) > 0) out.push(e);
      }
      if (comparePositions(entries[entries.length - 1].pos, until) < 0) this.#own.delete(tx);
    }
    return out;
  }

  #deliver(e: FeedEntry): void {
    if (comparePositions(e.pos, this.#cursor) <= 0) return;
    this.#cursor = e.pos;
    for (const s of this.#subs.keys()) s(e);
  }

  /** The subscribers' filters when every one has a filter (the rows to read are those matching any). */
  #onlyFilters(): EventFilter[] | undefined {
    const out: EventFilter[] = [];
    for (const f of this.#subs.values()) {
      if (f === undefined) return undefined;
      out.push(f);
    }
    return out;
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
    clearTimeout(this.#gap);
    await this.#running;
    await this.#unlisten?.().catch(() => {});
  }
}
