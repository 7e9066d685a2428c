/**
 * The durable alert queues, one per target (alertmanager, webhook), so a dead webhook never holds up
 * Alertmanager. The file store keeps each in a spool (delivery/spool.ts) under
 * `<dir of LOG_PATH>/alerts/<target>/` (ALERT_QUEUE_DIR overrides the `alerts` directory); the PostgreSQL
 * store in the `alert_outbox` table (pg/alert_outbox.ts), shared by the replicas. Both are FIFO per target:
 * a batch that failed is retried (1 s doubling to 60 s, forever) before anything behind it is sent.
 * @module
 */
import { Spool } from "../../delivery/spool.ts";
import type { Alert } from "./alert.ts";
import type { OpenPort } from "../ports_state.ts";

/** The targets, by name. */
export type TargetName = "alertmanager" | "webhook";

/** One transition waiting for one target. */
export interface QueuedAlert {
  /** The transition's key (state.ts), unique per target: what replicas deduplicate on. */
  key: string;
  status: "firing" | "resolved";
  alert: Alert;
  port: OpenPort;
  event_id: string;
  /** For a resolved alert: when it ended. */
  ends_at?: string;
}

/** Items taken from a queue for one attempt; exactly one of done, retry, dead must follow. */
export interface Claim {
  items: QueuedAlert[];
  /** Failed attempts of these items so far. */
  attempts: number;
  /** Delivered: remove them. */
  done(): Promise<void>;
  /** Not delivered: try again after {@link retryDelayMs} (returned, ms). */
  retry(error: string): Promise<number>;
  /** Refused for good (a 4xx): set aside with the reason, never sent again. */
  dead(reason: { status?: number; error: string }): Promise<void>;
}

/** A durable FIFO of alerts for one target. */
export interface AlertQueue {
  readonly target: TargetName;
  /**
   * Durably append `items` in order; resolves with the keys that were added (a shared queue leaves out keys
   * it already holds or held recently: another replica enqueued them first).
   */
  enqueue(items: QueuedAlert[]): Promise<Set<string>>;
  /** The oldest items (at most `max`) when due; `{ waitMs }` while the head waits for its retry; undefined when empty. */
  claim(max: number): Promise<Claim | { waitMs: number } | undefined>;
  /** Items waiting (as last known, for the gauge). */
  depth(): number;
  /** How often the sender should look for items enqueued elsewhere (ms); undefined: only when woken. */
  readonly pollMs?: number;
  close(): Promise<void>;
}

/** The wait before the next try after `attempts` failed ones: 1 s doubling, at most 60 s. */
export function retryDelayMs(attempts: number): number {
  return Math.min(60_000, 1000 * 2 ** Math.max(0, Math.min(attempts - 1, 10)));
}

/** A target's queue in a spool directory (the file store). */
export class FileAlertQueue implements AlertQueue {
  #attempts = 0;
  #nextAt = 0;

  private constructor(readonly target: TargetName, readonly spool: Spool<QueuedAlert>) {}

  /**
   * Open (or create) the queue of `target` in `dir` (e.g. `logs/alerts/alertmanager`); what it held before a
   * restart is still there.
   *
   * @example
   * ```ts
   * const q = await FileAlertQueue.open("webhook", "./logs/alerts/webhook");
   * await q.enqueue([item]);
   * ```
   */
  static async open(target: TargetName, dir: string, fsync = true): Promise<FileAlertQueue> {
    // One item per record: a claim takes whole records, so a batch is exactly the items asked for.
    const spool = await Spool.open<QueuedAlert>({
      dir,
      fsync,
      maxBytes: 64 * 1024 * 1024,
      recordMaxEvents: 1,
    });
    return new FileAlertQueue(target, spool);
  }

  async enqueue(items: QueuedAlert[]): Promise<Set<string>> {
    await this.spool.append(items);
    return new Set(items.map((i) => i.key));
  }

  async claim(max: number): Promise<Claim | { waitMs: number } | undefined> {
    const wait = this.#nextAt - Date.now();
    if (this.spool.pendingEvents > 0 && wait > 0) return { waitMs: wait };
    const read = await this.spool.read(max);
    if (!read) return undefined;
    const { events: items, end } = read;
    return {
      items,
      attempts: this.#attempts,
      done: async () => {
        await this.spool.ack(end);
        this.#attempts = 0;
        this.#nextAt = 0;
      },
      retry: () => {
        this.#attempts++;
        const delay = retryDelayMs(this.#attempts);
        this.#nextAt = Date.now() + delay;
        return Promise.resolve(delay);
      },
      dead: async (reason) => {
        await this.spool.deadLetter(items, reason);
        await this.spool.ack(end);
        this.#attempts = 0;
        this.#nextAt = 0;
      },
    };
  }

  depth(): number {
    return this.spool.pendingEvents;
  }

  close(): Promise<void> {
    return this.spool.close();
  }
}
