/**
 * What the HTTP API needs of a store. Two implement it: the JSON-lines file store (store.ts, the embedded
 * default) and the PostgreSQL store (pg/, `STORE_URL=postgres://...`, shared by listener replicas). Handlers,
 * the stream and the metrics speak only this interface.
 * @module
 */
import type { Registry } from "../infra/metrics.ts";
import type { BaselineData, BaselineScope } from "../policy/baseline.ts";
import type { EventFilter } from "./filter.ts";
import type { OpenPort } from "./ports_state.ts";
import type { Prepared, Record_ } from "./validate.ts";

/** Outcome of one ingest. */
export interface IngestResult {
  /** Records written by this call. */
  stored: number;
  /** Records whose id was already stored (or being stored): acknowledged, not written again. */
  duplicates: number;
  /** The id of every record, in the order given. */
  ids: string[];
}

/** Observers of what ingest does (metrics); called synchronously, must not throw. */
export interface StoreHooks {
  /** Records just made durable, in store order. */
  stored?(records: readonly Record_[]): void;
  /** A record acknowledged without being written again: its id was already stored or being stored. */
  duplicate?(record: Record_): void;
}

/** A stored record as the stream sends it: its id, the record, and its compact JSON line. */
export interface StoredEntry {
  id: string;
  record: Record<string, unknown>;
  line: string;
}

/**
 * The store is down or unreachable (e.g. PostgreSQL restarting): nothing of the request was committed. The API
 * answers 503 with `Retry-After`, and watchers spool and retry.
 */
export class StoreUnavailableError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "StoreUnavailableError";
  }
}

/** Where learned baselines (policy/baseline.ts) are kept: beside the log, or in PostgreSQL. */
export interface BaselineStore {
  /** True when other listeners write to it too (PostgreSQL replicas): read it again before alerting. */
  readonly shared: boolean;
  /** Every stored scope and port. */
  load(): Promise<BaselineData>;
  /**
   * Keep new scopes and ports (known ones stay as they are: the first window of a scope wins); resolves once
   * they are durable, with the stored windows of `data`'s scopes.
   */
  add(data: BaselineData): Promise<BaselineScope[]>;
  /** Forget the scopes with these keys (every scope when undefined) and their ports; the keys forgotten. */
  reset(keys?: readonly string[]): Promise<string[]>;
}

/** A durable event store behind the listener's API. */
export interface Store {
  /** `file` or `postgres`, for logs and /healthz. */
  readonly kind: string;
  /** Observers (metrics); see {@link StoreHooks}. */
  hooks: StoreHooks;
  /**
   * Store validated records; resolves once every one is durable (written by this call, already stored, or
   * being stored by a concurrent call). Rejects with {@link StoreUnavailableError} when nothing could be
   * committed.
   */
  ingest(records: Record_[], prepared?: Prepared): Promise<IngestResult>;
  /** Records matching `filter`: the newest `limit` (desc, newest first) or the oldest `limit` (asc). */
  query(filter: EventFilter, limit: number, order: "asc" | "desc"): Promise<Record<string, unknown>[]>;
  /** Ports open now that match `filter`, sorted by host, container, proto, port. */
  openPorts(filter: EventFilter): Promise<OpenPort[]>;
  /**
   * Call `fn` with every record stored from now on (by this process or, for a shared store, by any replica),
   * in store order; returns the unsubscribe function. `filter` is a hint: a store may leave out records that do
   * not match it (the PostgreSQL store then does not read them), but the subscriber must still filter.
   */
  subscribe(fn: (entry: StoredEntry) => void, filter?: EventFilter): () => void;
  /** Number of live subscribers. */
  readonly subscribers: number;
  /**
   * The stored records after the one with `lastId`, oldest first, for a stream client that resumes; every
   * retained record when `lastId` is unknown.
   */
  replayAfter(lastId: string): AsyncIterable<StoredEntry>;
  /** The learned baselines kept with this store. */
  readonly baselines: BaselineStore;
  /** Register the store's own metrics (log bytes, fsyncs, pool, ...) in `registry`. */
  registerMetrics(registry: Registry): void;
  /** Finish pending writes and release files and connections. */
  close(): Promise<void>;
}
