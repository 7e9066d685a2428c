/**
 * Group commit into PostgreSQL. Concurrent ingest calls of one replica queue their records; one transaction
 * takes everything queued (up to `maxBatch` records) and writes it with one multi-row INSERT ... ON CONFLICT
 * (id) DO NOTHING RETURNING plus one `port_state` upsert, then NOTIFY; a call resolves only after that commit.
 *
 * Order and duplicates: transactions of every replica commit in parallel; each row records its transaction's
 * id (`tx`), which gives the stream its order without serializing writers (see live.ts). An id repeated
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
import { eventColumns, type EventRow, eventRow, lineOf, type PortRow, portRows } from "./rows.ts";
import { isUnavailable, toStoreError } from "./errors.ts";
import type { PgClient } from "./client.ts";

/** The channel the writer notifies after each commit (no payload: readers look for what is readable). */
export const CHANNEL = "portwatch_events";

interface Pending {
  records: Record_[];
  resolve(r: IngestResult): void;
  reject(e: unknown): void;
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
}

/** Batches concurrent ingest calls into shared transactions. */
export class GroupWriter {
  #queue: Pending[] = [];
  #queued = 0;
  #running = 0;
  readonly maxBatch: number;
  readonly inFlight: number;
  readonly maxQueued: number;
  /** Called after every commit attempt. */
  onCommit?: (s: CommitStats) => void;
  /** Called after each successful commit. */
  onStored?: () => void;
  /** Deadlocks and serialization failures retried (metrics). */
  retries = 0;
  /** Recent throughput, events per second of commit time (an exponential average). */
  #rate = 0;

  constructor(readonly client: PgClient, readonly hooks: () => StoreHooks, opts: WriterOptions = {}) {
    this.maxBatch = opts.maxBatch ?? 5000;
    this.inFlight = opts.inFlight ?? 2;
    this.maxQueued = opts.maxQueued ?? 200_000;
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
  write(records: Record_[]): Promise<IngestResult> {
    if (records.length === 0) return Promise.resolve({ stored: 0, duplicates: 0, ids: [] });
    return new Promise((resolve, reject) => {
      this.#queue.push({ records, resolve, reject });
      this.#queued += records.length;
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
      const batch: Pending[] = [];
      let n = 0;
      while (this.#queue.length > 0 && (n === 0 || n + this.#queue[0].records.length <= this.maxBatch)) {
        const p = this.#queue.shift()!;
        batch.push(p);
        n += p.records.length;
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
      for (const r of p.records) {
        if (first.has(r.id)) continue;
        first.set(r.id, r);
        unique.push(r);
        rows.push(eventRow(r, lineOf(r)));
      }
    }
    const ports = portRows(unique);
    const t0 = performance.now();
    const c = eventColumns(rows);
    const sql = this.client.sql;
    let inserted: Map<string, number>;
    try {
      for (let attempt = 1;; attempt++) {
        try {
          inserted = await this.#transaction(c, ports);
          break;
        } catch (e) {
          const code = (e as { code?: unknown })?.code;
          if ((code !== "40P01" && code !== "40001") || attempt >= 4) throw e;
          this.retries++;
        }
      }
      const seconds = (performance.now() - t0) / 1000;
      this.#observe(n, seconds);
      this.onCommit?.({ seconds, rows: n, ok: true });
      this.onStored?.();
    } catch (e) {
      this.onCommit?.({ seconds: (performance.now() - t0) / 1000, rows: n, ok: false });
      if (isUnavailable(e)) this.client.failed(sql);
      const err = toStoreError(e, "insert");
      for (const p of batch) p.reject(err);
      return;
    }
    const hooks = this.hooks();
    const stored = unique.filter((r) => inserted.has(r.id)).sort((a, b) =>
      inserted.get(a.id)! - inserted.get(b.id)!
    );
    // Each inserted id is credited to the first call that carried it; every other occurrence is a duplicate.
    const credited = new Set<string>();
    for (const p of batch) {
      let s = 0, d = 0;
      for (const r of p.records) {
        if (inserted.has(r.id) && first.get(r.id) === r && !credited.has(r.id)) {
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

  /** One insert transaction: the events, the port updates, the notification; the inserted ids' seq. */
  async #transaction(c: string[], ports: PortRow[]): Promise<Map<string, number>> {
    const sql = this.client.sql;
    const results = await sql.begin((tx) => [
      tx`
        INSERT INTO events (id, ts, event, port, proto, source, host, container_id, container_name, line)
        SELECT * FROM unnest(
          string_to_array(${c[0]}::text, chr(30), chr(31)),
          string_to_array(${c[1]}::text, chr(30), chr(31))::timestamptz[],
          string_to_array(${c[2]}::text, chr(30), chr(31)),
          string_to_array(${c[3]}::text, chr(30), chr(31))::integer[],
          string_to_array(${c[4]}::text, chr(30), chr(31)),
          string_to_array(${c[5]}::text, chr(30), chr(31)),
          string_to_array(${c[6]}::text, chr(30), chr(31)),
          string_to_array(${c[7]}::text, chr(30), chr(31)),
          string_to_array(${c[8]}::text, chr(30), chr(31)),
          string_to_array(${c[9]}::text, chr(10)))
        ON CONFLICT (id) DO NOTHING
        RETURNING id, seq`,
      ports.length === 0 ? tx`SELECT 1` : tx`
        INSERT INTO port_state AS p (host, container_id, netns, proto, port, open, container_name,
          observed_at, event_id, since, reopened, entry)
        SELECT * FROM json_to_recordset(${JSON.stringify(ports)}::text::json) AS x(
          host text, container_id text, netns bigint, proto text, port integer, open boolean,
          container_name text, observed_at timestamptz, event_id text, since text, reopened boolean,
          entry text)
        ON CONFLICT (host, container_id, netns, proto, port) DO UPDATE SET
          open = excluded.open,
          container_name = excluded.container_name,
          observed_at = excluded.observed_at,
          event_id = excluded.event_id,
          since = CASE WHEN excluded.open AND p.open AND NOT excluded.reopened THEN p.since
                       ELSE excluded.since END,
          reopened = excluded.reopened,
          entry = excluded.entry
        WHERE (excluded.observed_at, excluded.event_id) > (p.observed_at, p.event_id)`,
      tx`SELECT pg_notify(${CHANNEL}, '')`,
    ]);
    const ret = results[0] as unknown as { id: string; seq: string }[];
    return new Map(ret.map((r) => [r.id, Number(r.seq)]));
  }
}
