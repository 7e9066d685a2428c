/**
 * The listener's store: the durable log plus what is derived from it (recent records, the id window that
 * makes retries harmless, the open-port table, live subscribers). Records reach the derived state only once
 * they are durable, in log order.
 * @module
 */
import { LogWriter, type LogWriterOptions } from "./log_writer.ts";
import { recoverLog, type RecoveryReport } from "./log_recovery.ts";
import { readRecords } from "./log_reader.ts";
import { IdWindow } from "../id_window.ts";
import { type Entry, RecentLog } from "../recent.ts";
import { PortsState } from "../ports_state.ts";
import { type EventFilter, matches } from "../filter.ts";
import type { Prepared, Record_ } from "../validate.ts";
import type { OpenPort } from "../ports_state.ts";
import type { Registry } from "../../infra/metrics.ts";
import type { IngestResult, Store, StoreHooks } from "../store_api.ts";
import { FileBaselines } from "./baselines.ts";
import { dirname, join } from "node:path";

export type { IngestResult, StoreHooks } from "../store_api.ts";

/** How the store keeps its log and state. */
export interface StoreOptions extends LogWriterOptions {
  /** How many recent ids are remembered for deduplication. */
  dedupeWindow: number;
  /** How many recent records are kept in memory for queries and stream resume. */
  recentSize: number;
}

/** What opening the store found. */
export interface OpenReport {
  recovery: RecoveryReport;
  /** Records read back from the log at start. */
  indexed: number;
}

const DURABLE = Promise.resolve();
const decoder = new TextDecoder();

/** fsync buckets (seconds): tmpfs takes microseconds, an SSD about a millisecond, a busy disk much more. */
const FSYNC_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1];

/**
 * A stored record as subscribers get it: its line is decoded from the bytes written when a subscriber reads it
 * (the stream does; the alerts read the record only).
 */
class StoredLine implements Entry {
  #line: string | undefined;
  readonly id: string;
  constructor(
    readonly seq: number,
    readonly record: Record_,
    readonly bytes: Uint8Array,
    readonly start: number,
    readonly end: number,
  ) {
    this.id = record.id;
  }
  get line(): string {
    return this.#line ??= decoder.decode(this.bytes.subarray(this.start, this.end));
  }
}

/** The durable event store over one JSON-lines log. */
export class EventStore implements Store {
  readonly kind = "file";
  readonly recent: RecentLog;
  readonly ports = new PortsState();
  #window: IdWindow;
  #subscribers = new Set<(entry: Entry) => void>();
  /** Counters for logs and metrics. */
  readonly counters = { stored: 0, duplicates: 0 };
  /** Observers (metrics); see {@link StoreHooks}. */
  hooks: StoreHooks = {};
  /** Learned baselines: `baselines.json` beside the log. */
  readonly baselines: FileBaselines;

  private constructor(readonly options: StoreOptions, readonly writer: LogWriter) {
    this.baselines = new FileBaselines(join(dirname(options.path), "baselines.json"), options.fsync);
    this.recent = new RecentLog(options.recentSize);
    this.#window = new IdWindow(options.dedupeWindow);
  }

  /** Repair the log's tail if torn, read it back to rebuild state, and open it for appending. */
  static async open(options: StoreOptions): Promise<{ store: EventStore; report: OpenReport }> {
    const recovery = await recoverLog(options.path);
    const writer = await LogWriter.open(options);
    const store = new EventStore(options, writer);
    let indexed = 0;
    for await (const { line, record } of readRecords(options.path)) {
      const id = typeof record.id === "string" ? record.id : `line-${indexed}`;
      store.#window.add(id, DURABLE);
      store.recent.push(line);
      store.ports.apply(record);
      indexed++;
    }
    return { store, report: { recovery, indexed } };
  }

  /**
   * Store records (already validated). Resolves once every record is durable: written by this call, or
   * already stored, or being stored by a concurrent call (then it waits for that one).
   */
  async ingest(records: Record_[], prepared?: Prepared): Promise<IngestResult> {
    const fresh: Record_[] = [];
    const waits: Promise<void>[] = [];
    let duplicates = 0;
    // The write is started below, after the loop; ids are entered now so that a repeat within this batch or
    // in a concurrent request finds them and waits for this write instead of writing again.
    let release!: () => void;
    let fail!: (e: unknown) => void;
    const written = new Promise<void>((resolve, reject) => {
      release = resolve;
      fail = reject;
    });
    written.catch(() => {}); // observed through `waits` or by the requests that found these ids
    const prep = prepared;
    const lines: string[] = [];
    for (let i = 0; i < records.length; i++) {
      const r = records[i];
      // An id made by validation just now cannot be known: only the ids clients chose are looked up.
      const known = prep?.freshIds[i] ? undefined : this.#window.get(r.id);
      if (known) {
        duplicates++;
        this.hooks.duplicate?.(r);
        if (known.done !== written) waits.push(known.done);
        continue;
      }
      this.#window.add(r.id, written);
      fresh.push(r);
      // The line validation built from the client's own text when it could, else the record serialised.
      lines.push(prep?.lines[i] ?? JSON.stringify(r));
    }
    if (fresh.length > 0) {
      // Once joined, the lines (which hold on to the request's body) are let go: the recent log copies the
      // bytes written, and a subscriber's line is decoded from them.
      if (prep) prep.lines = [];
      const text = lines.join("\n") + "\n";
      const units = text.length; // (the callback keeps this, not the text)
      // Lines of one-byte characters (the usual case) are as long in bytes as in UTF-16 units: their ends need
      // not be searched for in the bytes.
      let lengths: Int32Array | undefined = new Int32Array(lines.length);
      for (let i = 0; i < lines.length; i++) lengths[i] = lines[i].length;
      const write = this.writer.append(text, (bytes) => {
        if (bytes.length !== units) lengths = undefined; // some character took more than a byte
        const first = this.recent.pushBytes(bytes, fresh.length, lengths);
        const subscribers = this.#subscribers.size > 0 ? [...this.#subscribers] : undefined;
        let at = 0;
        for (let i = 0; i < fresh.length; i++) {
          const r = fresh[i];
          this.ports.apply(r);
          if (!subscribers) continue;
          // A line's end: from its length where every character took one byte, else found in the bytes.
          const start = at, end = lengths ? at + lengths[i] : bytes.indexOf(10, at);
          at = end + 1;
          const entry = new StoredLine(first + i, r, bytes, start, end);
          for (let k = 0; k < subscribers.length; k++) subscribers[k](entry);
        }
        this.counters.stored += fresh.length;
        this.hooks.stored?.(fresh);
      });
      write.then(release, (e) => {
        for (const r of fresh) this.#window.delete(r.id);
        fail(e);
      });
      waits.push(write);
    } else release();
    this.counters.duplicates += duplicates;
    await Promise.all(waits);
    return { stored: fresh.length, duplicates, ids: records.map((r) => r.id) };
  }

  /** Call `fn` with every record made durable from now on, in log order; returns the unsubscribe function. */
  subscribe(fn: (entry: Entry) => void): () => void {
    this.#subscribers.add(fn);
    return () => this.#subscribers.delete(fn);
  }

  /** Number of live subscribers. */
  get subscribers(): number {
    return this.#subscribers.size;
  }

  /** True when the in-memory records hold every record that can match `filter`. */
  #recentCovers(filter: EventFilter): boolean {
    if (this.recent.total === this.recent.size) return true; // nothing has left memory yet
    const oldest = this.recent.entries().next().value;
    return filter.since !== undefined && oldest !== undefined && String(oldest.record.ts) < filter.since;
  }

  /** Records matching `filter`: the newest `limit` (desc, newest first) or the oldest `limit` (asc). */
  async query(filter: EventFilter, limit: number, order: "asc" | "desc"): Promise<Record<string, unknown>[]> {
    const out: Record<string, unknown>[] = [];
    if (order === "desc") {
      for (const e of this.recent.newestFirst()) {
        if (matches(e.record, filter) && out.push(e.record) >= limit) return out;
      }
      if (this.#recentCovers(filter)) return out;
      const ring: Record<string, unknown>[] = [];
      for await (const { record } of readRecords(this.options.path)) {
        if (!matches(record, filter)) continue;
        ring.push(record);
        if (ring.length > limit * 2) ring.splice(0, ring.length - limit);
      }
      return ring.slice(-limit).reverse();
    }
    if (this.#recentCovers(filter)) {
      for (const e of this.recent.entries()) {
        if (matches(e.record, filter) && out.push(e.record) >= limit) break;
      }
      return out;
    }
    for await (const { record } of readRecords(this.options.path)) {
      if (matches(record, filter) && out.push(record) >= limit) break;
    }
    return out;
  }

  /**
   * The stored lines after the record with `lastId`, oldest first, for a stream client that resumes. When
   * `lastId` is no longer in the log (or never was), every retained line is replayed.
   */
  async *replayAfter(
    lastId: string,
  ): AsyncGenerator<{ id: string; record: Record<string, unknown>; line: string }> {
    const inMemory = this.recent.after(lastId);
    if (inMemory) {
      yield* inMemory;
      return;
    }
    let found = false;
    for await (const { line, record } of readRecords(this.options.path)) {
      if (found) yield { id: String(record.id), record, line };
      else if (record.id === lastId) found = true;
    }
    if (found) return;
    for await (const { line, record } of readRecords(this.options.path)) {
      yield { id: String(record.id), record, line };
    }
  }

  /** Ports open now that match `filter`. */
  openPorts(filter: EventFilter): Promise<OpenPort[]> {
    return Promise.resolve(this.ports.list(filter));
  }

  /** The log's metrics: bytes written, size, rotations, fsync durations, open ports. */
  registerMetrics(registry: Registry): void {
    registry.counter({
      name: "portwatch_listener_log_written_bytes_total",
      help: "Bytes appended to the log since start.",
      collect: () => this.writer.stats.bytes,
    });
    registry.gauge({
      name: "portwatch_listener_log_size_bytes",
      help: "Size of the current log file.",
      collect: () => this.writer.size,
    });
    registry.counter({
      name: "portwatch_listener_log_rotations_total",
      help: "Log rotations since start.",
      collect: () => this.writer.stats.rotations,
    });
    registry.gauge({
      name: "portwatch_listener_open_ports",
      help: "Ports open now, over every host, container and network namespace.",
      collect: () => this.ports.size,
    });
    const fsync = registry.histogram({
      name: "portwatch_listener_fsync_duration_seconds",
      help: "Time each fsync (fdatasync) of the log took; concurrent requests share one (group commit).",
      buckets: FSYNC_BUCKETS,
    });
    this.writer.onSync = (seconds) => fsync.observe(undefined, seconds);
  }

  /** Finish pending writes and close the log. */
  async close(): Promise<void> {
    await this.writer.close();
  }
}
