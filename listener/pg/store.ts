/**
 * The PostgreSQL store (`STORE_URL=postgres://...`): the same API as the file store, shared by listener
 * replicas. Writes go through group commit (writer.ts), the live stream through LISTEN/NOTIFY plus polling
 * (live.ts), the schema through migrations.ts, partitions and retention through partitions.ts. When the
 * database is down, calls reject with StoreUnavailableError (the API answers 503 with Retry-After) and the
 * `postgres` client reconnects by itself once it is back.
 * @module
 */
import type { Sql } from "postgres";
import type { Registry } from "../../infra/metrics.ts";
import type { EventFilter } from "../filter.ts";
import { byPlace, type OpenPort } from "../ports_state.ts";
import type { Prepared, Record_ } from "../validate.ts";
import type { IngestResult, Store, StoredEntry, StoreHooks } from "../store_api.ts";
import { migrate } from "./migrations.ts";
import { maintainPartitions, type MaintenanceReport } from "./partitions.ts";
import { GroupWriter, type WriterOptions } from "./writer.ts";
import { LiveFeed, positionOf, rowsAfter, START } from "./live.ts";
import { eventsWhere, portsWhere } from "./sql_filter.ts";
import { openPortOf } from "./rows.ts";
import { isUnavailable, StoreOverloadedError, toStoreError } from "./errors.ts";
import { PgClient } from "./client.ts";
import { redactUrl } from "./url.ts";
import { registerPgMetrics } from "./metrics.ts";
import { PgBaselines } from "./baselines.ts";

/** How the PostgreSQL store connects and keeps data. */
export interface PgStoreOptions extends WriterOptions {
  /** `postgres://user:password@host:port/database`. */
  url: string;
  /** Days of events kept (whole daily partitions are dropped); 0 keeps everything. */
  retentionDays: number;
  /** Connections in the pool (default 10; LISTEN uses one more). */
  poolSize?: number;
  /** Interval of the stream's fallback polling, ms (default 1000). */
  pollMs?: number;
  /** Interval of partition maintenance, ms (default 1 hour). */
  maintenanceMs?: number;
  /** How long start-up retries an unreachable database, ms (default 30 s). */
  startTimeoutMs?: number;
  /**
   * Where the store is, as logs show it (the URL without its password); named like the file store's log
   * path so that code showing `store.options.path` works with either store.
   */
  path?: string;
  /**
   * Refuse new records (503) when the queue ahead of them would take longer than this to commit, ms
   * (default 1000; watchers time out after 2 s). 0 disables it (only `maxQueued` applies).
   */
  maxWaitMs?: number;
  /** Where errors that are handled (logged, retried) are reported. */
  onError?: (what: string, e: unknown) => void;
}

/** The store could not be opened: the database refused us, or stayed unreachable; names the URL. */
export class StoreOpenError extends Error {
  constructor(message: string, cause: unknown) {
    super(message, { cause });
    this.name = "StoreOpenError";
  }
}

/** What opening the store did. */
export interface PgOpenReport {
  /** Migration versions applied by this start (empty when the schema was up to date). */
  migrated: number[];
  maintenance: MaintenanceReport;
}

export { connect } from "./client.ts";

/** The PostgreSQL store. */
export class PgStore implements Store {
  readonly kind = "postgres";
  hooks: StoreHooks = {};
  readonly writer: GroupWriter;
  readonly live: LiveFeed;
  /** Learned baselines, shared by the replicas. */
  readonly baselines: PgBaselines = new PgBaselines((what, fn) => this.#read(what, fn));
  /** Counters for metrics. */
  readonly counters = { queryErrors: 0, maintenanceErrors: 0, shed: 0 };
  #timer: ReturnType<typeof setInterval> | undefined;
  #closed = false;

  private constructor(readonly client: PgClient, readonly options: PgStoreOptions) {
    this.writer = new GroupWriter(client, () => this.hooks, options);
    this.live = new LiveFeed(client, options.pollMs ?? 1000, (e) => options.onError?.("live stream", e));
    this.writer.onStored = (tx, rows) => this.live.committed(tx, rows);
  }

  /** Connect, migrate (retrying an unreachable database until the start timeout), create partitions. */
  static async open(options: PgStoreOptions): Promise<{ store: PgStore; report: PgOpenReport }> {
    const client = new PgClient(options.url, options.poolSize ?? 10);
    const deadline = Date.now() + (options.startTimeoutMs ?? 30_000);
    try {
      let migrated: number[];
      let attempts = 0;
      for (;;) {
        try {
          migrated = await migrate(client.sql);
          break;
        } catch (e) {
          const where = redactUrl(options.url);
          if (!isUnavailable(e)) {
            throw new StoreOpenError(`cannot open the PostgreSQL store ${where}: ${(e as Error).message}`, e);
          }
          client.failed(client.sql);
          if (Date.now() > deadline) {
            throw new StoreOpenError(
              `PostgreSQL at ${where} is not reachable after ${
                Math.round((options.startTimeoutMs ?? 30_000) / 1000)
              } s: ${(e as Error).message}`,
              e,
            );
          }
          if (attempts++ % 20 === 0) options.onError?.("start", e); // the first, then every 10 s
          await new Promise((r) => setTimeout(r, 500));
        }
      }
      const store = new PgStore(client, options);
      const maintenance = await store.maintain();
      await store.live.start();
      store.#timer = setInterval(() => {
        store.maintain().catch((e) => {
          store.counters.maintenanceErrors++;
          options.onError?.("partition maintenance", e);
        });
      }, options.maintenanceMs ?? 3_600_000);
      return { store, report: { migrated, maintenance } };
    } catch (e) {
      await client.end();
      throw e;
    }
  }

  /** Create partitions ahead and apply the retention now (`now` for tests). */
  maintain(now = Date.now()): Promise<MaintenanceReport> {
    return maintainPartitions(this.client.sql, { now, retentionDays: this.options.retentionDays });
  }

  /** Store records; resolves once they are committed. */
  ingest(records: Record_[], prepared?: Prepared): Promise<IngestResult> {
    if (this.#closed) return Promise.reject(new Error("the store is closed"));
    if (this.writer.queued > this.writer.maxQueued) {
      return Promise.reject(
        toStoreError({ code: "53000", message: "too many events waiting for PostgreSQL" }, "ingest"),
      );
    }
    const maxWait = this.options.maxWaitMs ?? 1000;
    if (maxWait > 0 && this.writer.queued > 0) {
      const wait = this.writer.wouldWaitMs(records.length);
      if (wait > maxWait) {
        this.counters.shed++;
        return Promise.reject(
          new StoreOverloadedError(
            `overloaded: ${this.writer.queued} events waiting, about ${Math.round(wait)} ms to commit`,
          ),
        );
      }
    }
    return this.writer.write(records, prepared?.lines);
  }

  async #read<T>(what: string, fn: (sql: Sql) => Promise<T>): Promise<T> {
    const sql = this.client.sql;
    try {
      return await fn(sql);
    } catch (e) {
      this.counters.queryErrors++;
      if (isUnavailable(e)) this.client.failed(sql);
      throw toStoreError(e, what);
    }
  }

  /** Records matching `filter`, newest first (desc) or oldest first (asc), at most `limit`. */
  query(filter: EventFilter, limit: number, order: "asc" | "desc"): Promise<Record<string, unknown>[]> {
    return this.#read("query", async (sql) => {
      const rows = await sql`
        SELECT line FROM events WHERE ${eventsWhere(sql, filter)}
        ORDER BY ${order === "asc" ? sql`tx ASC, seq ASC` : sql`tx DESC, seq DESC`} LIMIT ${limit}`;
      return rows.map((r) => JSON.parse(String(r.line)));
    });
  }

  /** Ports open now matching `filter`, sorted like the file store's. */
  openPorts(filter: EventFilter): Promise<OpenPort[]> {
    return this.#read("ports", async (sql) => {
      const rows = await sql`SELECT entry, since FROM port_state WHERE ${portsWhere(sql, filter)}`;
      const out: OpenPort[] = [];
      for (const r of rows) {
        const p = openPortOf(String(r.entry), String(r.since));
        if (filter.since && p.since < filter.since) continue;
        if (filter.until && p.since >= filter.until) continue;
        out.push(p);
      }
      return out.sort(byPlace);
    });
  }

  /**
   * Rows committed from now on by any replica, in stream order (tx, seq); while every subscriber has a filter,
   * other replicas' rows that match none are not read.
   */
  subscribe(fn: (entry: StoredEntry) => void, filter?: EventFilter): () => void {
    return this.live.subscribe(fn, filter);
  }

  /** Number of live subscribers on this replica. */
  get subscribers(): number {
    return this.live.size;
  }

  /** Rows after the one with `lastId` (every retained row when it is unknown), oldest first. */
  async *replayAfter(lastId: string): AsyncGenerator<StoredEntry> {
    let cursor = (await this.#read("replay", (sql) => positionOf(sql, lastId))) ?? START;
    for (;;) {
      const rows = await this.#read("replay", (sql) => rowsAfter(sql, cursor, 1000));
      for (const r of rows) {
        cursor = r.pos;
        yield r;
      }
      if (rows.length < 1000) return;
    }
  }

  /** Commit durations, batch sizes, errors, queue and stream gauges. */
  registerMetrics(registry: Registry): void {
    registerPgMetrics(registry, this);
  }

  /** Let queued writes finish, stop the timers and close the connections. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    await this.writer.drain();
    await this.live.close();
    await this.client.end();
  }
}
