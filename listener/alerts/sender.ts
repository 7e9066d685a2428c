/**
 * Drains one target's durable queue: claims the oldest items (a batch for Alertmanager, one for the webhook),
 * POSTs them, and on the answer removes them (2xx), sets them aside (a 4xx other than 408/429: logged once
 * with the answer, never retried) or retries them after 1 s doubling to 60 s, forever (5xx, no answer). One
 * POST at a time per target, in queue order.
 *
 * For Alertmanager the same loop also sends the refresh: every `everyMs` (60 s), while the queue is empty,
 * every firing alert again with `endsAt` 5 minutes ahead (Alertmanager resolves an alert whose end has
 * passed, as for Prometheus). The refresh never overtakes queued transitions, and never runs alongside a
 * queued POST, so a stale "firing" cannot land after its "resolved".
 *
 * @example
 * ```ts
 * const sender = new Sender({ queue, target: new WebhookTarget(url), log });
 * await queue.enqueue(items);
 * sender.wake();
 * await sender.close();
 * ```
 * @module
 */
import type { Logger } from "@logtape/logtape";
import type { Alert } from "./alert.ts";
import type { AlertmanagerTarget } from "./alertmanager.ts";
import { type AlertQueue, retryDelayMs } from "./queue.ts";
import { displayUrl, type Target } from "./target.ts";

/** Observers of what the sender does (metrics). */
export interface SenderHooks {
  /** `n` queued transitions of `status` were delivered. */
  sent?(status: "firing" | "resolved", n: number): void;
  /** A POST failed (to be retried, or refused). */
  failed?(): void;
  /** A refresh delivered these alerts. */
  refreshed?(alerts: Alert[]): void;
}

/** What a sender drains, and where to. */
export interface SenderOptions {
  queue: AlertQueue;
  target: Target;
  log: Logger;
  hooks?: SenderHooks;
  /** Alertmanager only: the alerts firing now, sent again every `everyMs`. */
  refresh?: { everyMs: number; alerts: () => Alert[] };
}

/** The longest a failing target goes unmentioned in the log (ms). */
const LOG_EVERY_MS = 60_000;

/** One target's delivery loop. */
export class Sender {
  readonly #o: SenderOptions;
  readonly #abort = new AbortController();
  #closed = false;
  #woken = false;
  #wakeUp: (() => void) | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #loop: Promise<void>;
  #direct: { alert: Alert; endsAt?: string }[] = [];
  #directTries = 0;
  #failingSince = 0;
  #lastLog = 0;
  #refreshFailures = 0;
  #nextRefresh: number;

  constructor(options: SenderOptions) {
    this.#o = options;
    this.#nextRefresh = Date.now() + (options.refresh?.everyMs ?? 0);
    this.#loop = this.#run();
  }

  /** Look at the queue now (items were enqueued). */
  wake(): void {
    this.#woken = true;
    this.#wakeUp?.();
  }

  /**
   * Alertmanager: send these resolves directly, ahead of the next claim (they correct a refresh that may have
   * landed after the queued resolve; Alertmanager takes a resolve twice without harm). Best effort: 5 tries.
   */
  resolveDirect(items: { alert: Alert; endsAt?: string }[]): void {
    this.#direct.push(...items);
    this.wake();
  }

  /** Items waiting in the queue. */
  get depth(): number {
    return this.#o.queue.depth();
  }

  async #sleep(ms: number): Promise<void> {
    if (this.#woken || this.#closed) return;
    await new Promise<void>((resolve) => {
      this.#wakeUp = resolve;
      this.#timer = setTimeout(resolve, Math.max(0, ms));
    });
    clearTimeout(this.#timer);
    this.#wakeUp = undefined;
  }

  async #run(): Promise<void> {
    while (!this.#closed) {
      this.#woken = false;
      let waitMs = this.#o.queue.pollMs ?? 60_000;
      try {
        const next = await this.#turn();
        if (next === 0) continue;
        waitMs = Math.min(waitMs, next);
      } catch (e) {
        // the queue itself failed (PostgreSQL unreachable, a disk error): try again soon
        this.#failure(`the ${this.#o.target.name} alert queue failed: ${(e as Error).message}`);
        waitMs = 1000;
      }
      await this.#sleep(waitMs);
    }
  }

  /** One step; resolves with how long to wait before the next (0: at once). */
  async #turn(): Promise<number> {
    const { queue, target, hooks, refresh } = this.#o;
    const signal = this.#abort.signal;
    if (this.#direct.length > 0) {
      const items = this.#direct;
      const out = await (target as AlertmanagerTarget).resolve(items, signal);
      if (out.kind === "retry" && ++this.#directTries < 5) return retryDelayMs(this.#directTries);
      this.#direct = this.#direct.slice(items.length);
      this.#directTries = 0;
    }
    const claim = await queue.claim(target.batch);
    if (claim && "waitMs" in claim) return claim.waitMs;
    if (claim) {
      if (this.#closed) return 0; // claimed while closing: left for the next start (a lease expires)
      const out = await target.send(claim.items, signal);
      if (out.kind === "ok") {
        await claim.done();
        const firing = claim.items.filter((i) => i.status === "firing").length;
        if (firing > 0) hooks?.sent?.("firing", firing);
        if (claim.items.length > firing) hooks?.sent?.("resolved", claim.items.length - firing);
        this.#recovered();
        return 0;
      }
      hooks?.failed?.();
      if (out.kind === "dead") {
        await claim.dead({ status: out.status, error: out.error });
        this.#o.log.error(
          "{target} refused {n} alert(s) for good, set aside (not retried): {error}; first: {first}",
          {
            target: `${target.name} ${displayUrl(target.url)}`,
            n: claim.items.length,
            error: out.error,
            first: JSON.stringify(claim.items[0]),
          },
        );
        return 0;
      }
      const delay = await claim.retry(out.error);
      this.#failure(
        `${target.name} ${
          displayUrl(target.url)
        }: ${out.error}; ${claim.items.length} alert(s) kept, retried`,
      );
      return delay;
    }
    if (!refresh) return Infinity;
    const wait = this.#nextRefresh - Date.now();
    if (wait > 0) return wait;
    const alerts = refresh.alerts();
    if (alerts.length === 0) {
      this.#nextRefresh = Date.now() + refresh.everyMs;
      return refresh.everyMs;
    }
    const out = await (target as AlertmanagerTarget).refresh(alerts, signal);
    if (out.kind === "ok") {
      this.#refreshFailures = 0;
      this.#nextRefresh = Date.now() + refresh.everyMs;
      hooks?.refreshed?.(alerts);
      this.#recovered();
    } else {
      hooks?.failed?.();
      this.#nextRefresh = Date.now() + Math.min(refresh.everyMs, retryDelayMs(++this.#refreshFailures));
      this.#failure(
        `${target.name} ${displayUrl(target.url)}: refreshing ${alerts.length} firing alert(s): ${out.error}`,
      );
    }
    return Math.max(0, this.#nextRefresh - Date.now());
  }

  /** Log a failure: the first of a run, then at most once a minute. */
  #failure(message: string): void {
    const now = Date.now();
    if (this.#failingSince === 0) this.#failingSince = now;
    if (now - this.#lastLog < LOG_EVERY_MS) return;
    this.#lastLog = now;
    this.#o.log.warn("alerts: {message}", { message });
  }

  #recovered(): void {
    if (this.#failingSince === 0) return;
    this.#o.log.info("alerts: {target} answers again after {seconds} s", {
      target: `${this.#o.target.name} ${displayUrl(this.#o.target.url)}`,
      seconds: Math.round((Date.now() - this.#failingSince) / 1000),
    });
    this.#failingSince = 0;
    this.#lastLog = 0;
  }

  /** Stop: an in-flight POST is aborted (its items stay queued), the loop ends. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#abort.abort();
    this.wake();
    await this.#loop;
  }
}
