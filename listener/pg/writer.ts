/**
 * Group commit into PostgreSQL. Concurrent ingest calls of one replica queue their records; one transaction
 * takes everything queued (up to `maxBatch` records) and writes it with one statement (one round trip, its
 * own implicit transaction): a multi-row INSERT of the events, one `port_state` upsert, and NOTIFY; a call
 * resolves only after that commit. Ids are almost always new, so the insert is a plain one (no speculative
 * insertion, nothing returned); when it meets a stored id (a retry), the batch is written again with
 * ON CONFLICT (id) DO NOTHING RETURNING id, which tells the duplicates apart.
 *
 * Order and duplicates: transactions of every replica commit in parallel; each row records its transaction's
 * id (`tx`) and its ordinal in the batch (`seq`), which give the stream its order without serializing writers
 * (see live.ts). An id repeated
 * within a batch or already stored (through any replica) is acknowledged as a duplicate and stored once. Two
 * transactions inserting the same ids in different orders can deadlock; the one PostgreSQL cancels is
 * retried here (a few times) before its callers see an error.
 *
 * Overload: {@link GroupWriter.wouldWaitMs} estimates how long new records would wait, from the recent
 * commit throughput, so that the store refuses early (503) instead of queueing past the clients' timeouts.
 * @module
 */
import type { Record_ } from "../validate.ts";
import type { IngestResult, StoreHooks } from "../store_api.ts";
import { eventColumns, type EventRow, eventRow, lineOf, portColumns, portRows } from "./rows.ts";
import { isUnavailable, toStoreError } from "./errors.ts";
import type { PgClient } from "./client.ts";

/** The channel the writer notifies after each commit (no payload: readers look for what is readable). */
export const CHANNEL = "portwatch_events";

interface Pending {
  records: Record_[];
  /** The JSON line of each record. */
  lines: string[];
  /** When it was queued (performance.now()). */
  at: number;
  resolve(r: IngestResult): void;
  reject(e: unknown): void;
}

/** A row one commit stored: its id, line and record. */
export interface StoredRow {
  id: string;
  line: string;
  record: Record_;
}

/** What one commit did, for metrics. */
export interface CommitStats {
  seconds: number;
  rows: number;
  ok: boolean;
}

/** Options of {@link GroupWriter}. */
export interface WriterOptions {
  /** Most records in one transaction (default 5000). */
  maxBatch?: number;
  /** Transactions in flight at once from this replica (default 2: one commits while the next is sent). */
  inFlight?: number;
  /** Most records queued before new calls are refused as unavailable (default 200000). */
  maxQueued?: number;
  /**
   * A transaction starts once this many bytes of JSON lines are queued or the oldest record has waited
   * `lingerMs`: fewer, larger commits (each costs a round trip, a WAL flush, a notification and a stream read
   * in every replica) for a few ms of latency. Default 24 KiB: the listener lets 64 KiB of request bodies
   * wait for the store at once (app.ts INGEST_BYTES), so a larger threshold would only be reached by time.
   */
  lingerBytes?: number;
  /** See `lingerRecords`, ms (default 10; 0 starts every transaction at once). */
  lingerMs?: number;
}

/** Batches concurrent ingest calls into shared transactions. */
export class GroupWriter {
  #queue: Pending[] = [];
  #queued = 0;
  #running = 0;
  readonly maxBatch: number;
  readonly inFlight: number;
  readonly maxQueued: number;
  readonly lingerBytes: number;
  #queuedBytes = 0;
  readonly lingerMs: number;
  #linger: ReturnType<typeof setTimeout> | undefined;
  /** Called after every commit attempt. */
  onCommit?: (s: CommitStats) => void;
  /**
   * Called after each successful commit: with its transaction id and its rows in store order (seq 1, 2, ...)
   * when every record of it was new, else with neither (the stream then reads them from the table).
   */
  onStored?: (tx?: string, rows?: readonly StoredRow[]) => void;
  /** Deadlocks and serialization failures retried (metrics). */
  retries = 0;
  /** Batches written again skipping ids already stored, after their plain insert met one (metrics). */
  duplicateFallbacks = 0;
  /** Recent throughput, events per second of commit time (an exponential average). */
  #rate = 0;

  constructor(readonly client: PgClient, readonly hooks: () => StoreHooks, opts: WriterOptions = {}) {
    this.maxBatch = opts.maxBatch ?? 5000;
    this.inFlight = opts.inFlight ?? 2;
    this.maxQueued = opts.maxQueued ?? 200_000;
    this.lingerBytes = opts.lingerBytes ?? 24 * 1024;
    this.lingerMs = opts.lingerMs ?? 10;
  }

  /** Records waiting for a transaction. */
  get queued(): number {
    return this.#queued;
  }

  /**
   * About how long `n` more records would wait before being committed, ms: what is queued (plus `n`) at the
   * recent throughput of this replica's transactions (several in flight). 0 until the first commit.
   */
  wouldWaitMs(n: number): number {
    if (this.#rate <= 0) return 0;
    return ((this.#queued + n) / (this.#rate * this.inFlight)) * 1000;
  }

  #observe(rows: number, seconds: number): void {
    if (seconds <= 0) return;
    const r = rows / seconds;
    this.#rate = this.#rate === 0 ? r : this.#rate * 0.8 + r * 0.2;
  }

  /** Store `records`; resolves after the commit that holds them. */
  write(records: Record_[], prepared?: readonly (string | undefined)[]): Promise<IngestResult> {
    if (records.length === 0) return Promise.resolve({ stored: 0, duplicates: 0, ids: [] });
    const lines = new Array<string>(records.length);
    let bytes = 0;
    for (let i = 0; i < records.length; i++) {
      const line = prepared?.[i] ?? lineOf(records[i]);
      lines[i] = line;
      bytes += line.length;
    }
    return new Promise((resolve, reject) => {
      this.#queue.push({ records, lines, at: performance.now(), resolve, reject });
      this.#queued += records.length;
      this.#queuedBytes += bytes;
      this.#pump();
    });
  }

  /** Resolves once nothing is queued or being committed. */
  async drain(): Promise<void> {
    while (this.#running > 0 || this.#queue.length > 0) {
      await new Promise<void>((r) => this.#idle.push(r));
    }
  }

  #idle: (() => void)[] = [];

  #pump(): void {
    while (this.#running < this.inFlight && this.#queue.length > 0) {
      if (this.#queuedBytes < this.lingerBytes) {
        const wait = this.lingerMs - (performance.now() - this.#queue[0].at);
        if (wait > 0) {
          this.#linger ??= setTimeout(() => {
            this.#linger = undefined;
            this.#pump();
          }, Math.ceil(wait));
          return;
        }
      }
      clearTimeout(this.#linger);
      this.#linger = undefined;
      const batch: Pending[] = [];
      let n = 0;
      while (this.#queue.length > 0 && (n === 0 || n + this.#queue[0].records.length <= this.maxBatch)) {
        const p = this.#queue.shift()!;
        batch.push(p);
        n += p.records.length;
        for (const l of p.lines) this.#queuedBytes -= l.length;
      }
      this.#queued -= n;
      this.#running++;
      this.#commit(batch, n).finally(() => {
        this.#running--;
        this.#pump();
        if (this.#running === 0 && this.#queue.length === 0) {
          for (const r of this.#idle.splice(0)) r();
        }
      });
    }
  }

  async #commit(batch: Pending[], n: number): Promise<void> {
    // The first occurrence of each id is written; later ones (same batch) are duplicates.
    const first = new Map<string, Record_>();
    const rows: EventRow[] = [];
    const unique: Record_[] = [];
    for (const p of batch) {
      for (let i = 0; i < p.records.length; i++) {
        const r = p.records[i];
        if (first.has(r.id)) continue;
        first.set(r.id, r);
        unique.push(r);
        rows.push(eventRow(r, p.lines[i]));
      }
    }
    const t0 = performance.now();
    const events = eventColumns(rows);
    const ports = portColumns(portRows(unique));
    const sql = this.client.sql;
    let inserted: Set<string> | string;
    let skip = false;
    try {
      for (let attempt = 1;; attempt++) {
        try {
          inserted = await this.#transaction(events, ports, skip);
          break;
        } catch (e) {
          const code = (e as { code?: unknown })?.code;
          if (code === UNIQUE_VIOLATION && !skip) {
            // An id of this batch is stored already (a retry): the batch goes again, skipping what exists.
            skip = true;
            this.duplicateFallbacks++;
            attempt--;
            continue;
          }
          if ((code !== "40P01" && code !== "40001") || attempt >= 4) throw e;
          this.retries++;
        }
      }
      const seconds = (performance.now() - t0) / 1000;
      this.#observe(n, seconds);
      this.onCommit?.({ seconds, rows: n, ok: true });
      if (typeof inserted === "string") {
        this.onStored?.(inserted, rows.map((r, i) => ({ id: r.id, line: r.line, record: unique[i] })));
      } else this.onStored?.();
    } catch (e) {
      this.onCommit?.({ seconds: (performance.now() - t0) / 1000, rows: n, ok: false });
      if (isUnavailable(e)) this.client.failed(sql);
      const err = toStoreError(e, "insert");
      for (const p of batch) p.reject(err);
      return;
    }
    const hooks = this.hooks();
    // Rows are stored in the order given (seq is their ordinal): `unique` is store order.
    const skipped = typeof inserted === "string" ? undefined : inserted;
    const stored = skipped ? unique.filter((r) => skipped.has(r.id)) : unique;
    // Each inserted id is credited to the first call that carried it; every other occurrence is a duplicate.
    const credited = new Set<string>();
    for (const p of batch) {
      let s = 0, d = 0;
      for (const r of p.records) {
        if ((!skipped || skipped.has(r.id)) && first.get(r.id) === r && !credited.has(r.id)) {
          credited.add(r.id);
          s++;
        } else {
          d++;
          hooks.duplicate?.(r);
        }
      }
      p.resolve({ stored: s, duplicates: d, ids: p.records.map((r) => r.id) });
    }
    if (stored.length > 0) hooks.stored?.(stored);
  }

  /**
   * One statement, so one implicit transaction and one round trip: the events, the port updates and the
   * notification. `skipExisting`: the events are inserted ON CONFLICT DO NOTHING and the inserted ids are
   * returned; otherwise (the common case: new ids) a plain insert, which fails as a whole on a stored id, and
   * what is returned is the transaction's id.
   */
  async #transaction(
    events: string[],
    ports: string[],
    skipExisting: boolean,
  ): Promise<Set<string> | string> {
    const sql = this.client.sql;
    const params = [...events, ...ports, CHANNEL];
    if (!skipExisting) {
      const [r] = await sql.unsafe(WRITE_SQL, params, { prepare: true });
      return String(r.tx);
    }
    const ret = await sql.unsafe(WRITE_SKIPPING_SQL, params, { prepare: true });
    return new Set(ret.filter((r) => r.id !== null).map((r) => String(r.id)));
  }
}

/** SQLSTATE of a unique violation. */
const UNIQUE_VIOLATION = "23505";

/** `string_to_array` of encoded column parameter `$i` (see rows.ts); `''` is one empty value, not none. */
const col = (i: number, type = "") =>
  `(CASE WHEN $${i}::text = '' THEN '{""}' ELSE string_to_array($${i}::text, chr(30), chr(31)) END)${type}`;
/** Like {@link col} for a column that may have no rows at all (port updates): `''` is none. */
const list = (i: number, type = "") => `string_to_array($${i}::text, chr(30), chr(31))${type}`;

/**
 * The write: events with (tx, seq) = (this transaction's id, ordinal in the batch), the port updates (a
 * port's newest version wins; see rows.ts), the notification. `$1`-`$10` are the event columns,
 * `$11`-`$22` the port columns, `$23` the channel.
 */
function writeSql(skipExisting: boolean): string {
  return `
    WITH x AS MATERIALIZED (SELECT pg_current_xact_id() AS tx),
    e AS (
      INSERT INTO events (tx, id, ts, event, port, proto, source, host, container_id, container_name, line, seq)
      SELECT x.tx, u.* FROM x, unnest(
        string_to_array($1::text, chr(30)),
        string_to_array($2::text, chr(30))::timestamptz[],
        ${col(3)}, ${col(4, "::integer[]")}, ${col(5)}, ${col(6)}, ${col(7)}, ${col(8)}, ${col(9)},
        string_to_array($10::text, chr(10))) WITH ORDINALITY AS u
      ${skipExisting ? "ON CONFLICT (id) DO NOTHING RETURNING id" : ""}
    ),
    p AS (
      INSERT INTO port_state AS p (host, container_id, netns, proto, port, open, container_name,
        observed_at, event_id, since, reopened, entry)
      SELECT coalesce(host, ''), coalesce(container_id, ''), netns, coalesce(proto, ''), port, open,
        container_name, observed_at, event_id, since, reopened, coalesce(entry, '')
      FROM unnest(${list(11)}, ${list(12)}, ${list(13, "::bigint[]")}, ${list(14)}, ${
    list(15, "::integer[]")
  },
        ${list(16, "::boolean[]")}, ${list(17)}, ${list(18, "::timestamptz[]")}, ${list(19)}, ${list(20)},
        ${list(21, "::boolean[]")}, string_to_array($22::text, chr(10)))
        AS y(host, container_id, netns, proto, port, open, container_name, observed_at, event_id, since,
          reopened, entry)
      ON CONFLICT (host, container_id, netns, proto, port) DO UPDATE SET
        open = excluded.open,
        container_name = excluded.container_name,
        observed_at = excluded.observed_at,
        event_id = excluded.event_id,
        since = CASE WHEN excluded.open AND p.open AND NOT excluded.reopened THEN p.since
                     ELSE excluded.since END,
        reopened = excluded.reopened,
        entry = excluded.entry
      WHERE (excluded.observed_at, excluded.event_id) > (p.observed_at, p.event_id)
    )
    ${
    skipExisting
      ? "SELECT id FROM e UNION ALL SELECT NULL FROM (SELECT pg_notify($23, '')) n"
      : "SELECT pg_notify($23, ''), (SELECT tx FROM x)::text AS tx"
  }`;
}

const WRITE_SQL = writeSql(false);
const WRITE_SKIPPING_SQL = writeSql(true);
