/**
 * Delivery to the listener: {@link HttpSink} POSTs events as NDJSON to `/ingest` and falls back to the
 * durable {@link Spool} when the listener cannot take them, draining it in order in the background.
 *
 * Guarantees: `send()` resolves once events are delivered (2xx) or fsynced to the spool; delivery is at
 * least once (a retried batch carries the same ids, which the listener stores once) and in order for each
 * port: a send whose events share no port with the sends still on the wire goes out at once, beside them (up
 * to MAX_IN_FLIGHT), so that a burst's batches do not queue behind each other's round trips; one that
 * shares a port waits for them, and while anything is spooled or failing, sends go one after another. Refused
 * content (400, 422, 413 of a single event, other 4xx) is moved to the spool's dead-letter file, never
 * retried forever; 401/403/404/405 and redirects are configuration problems: events stay spooled and are
 * retried slowly while the logs say what is wrong.
 * @module
 */
import { getLogger } from "@logtape/logtape";
import type { EventSink } from "./sink.ts";
import type { PortEvent } from "../events/schema.ts";
import { type BackoffOptions, DEFAULT_BACKOFF, retryDelay } from "./backoff.ts";
import { DEFAULT_SPOOL_MAX_BYTES, Spool } from "./spool.ts";
import { SendOrder } from "./send_order.ts";
import { toBatches } from "./post_batches.ts";
import type { Failure } from "./ingest_answer.ts";
import { IngestPoster } from "./ingest_post.ts";
import { Signal } from "../infra/signal.ts";

/** How an {@link HttpSink} delivers. */
export interface HttpSinkOptions {
  /** The listener: a base URL (`http://host:8080`) or the full ingest URL (`http://host:8080/ingest`). */
  url: string | URL;
  /** Bearer token (LISTENER_TOKEN), if the listener requires one. */
  token?: string;
  /** The spool directory (SPOOL_PATH). */
  spoolDir: string;
  /** Largest spool file (SPOOL_MAX_BYTES; default 256 MiB). */
  spoolMaxBytes?: number;
  /** Time allowed for one POST, answer included (DELIVERY_TIMEOUT; default 2000 ms). */
  timeoutMs?: number;
  /** Most events per POST (default 500). */
  batchMaxEvents?: number;
  /** Most body bytes per POST (default 512 KiB; a single larger event is sent alone). */
  batchMaxBytes?: number;
  /** Retry timing; defaults {@link DEFAULT_BACKOFF}. */
  backoff?: Partial<BackoffOptions>;
  /** Wait between retries while the listener rejects the token or the URL (default 30 s). */
  configRetryMs?: number;
  /** fsync the spool (default true). */
  fsync?: boolean;
  /**
   * How POSTs go: "http1", the lean client (plain http only; its default), or "fetch" (https's default; also for
   * a caller that routes fetch itself, as the fleet simulator's balancer does).
   */
  transport?: "http1" | "fetch";
}

/** Delivery counters, for logs and metrics. */
export interface DeliveryStats {
  /** Events the listener acknowledged (2xx), duplicates included. */
  sent: number;
  /** Of those, events the listener already had (a retry after a lost answer). */
  duplicates: number;
  /** Failed attempts that will be retried. */
  retries: number;
  /** Events written to the spool. */
  spooled: number;
  /** Events moved to the dead-letter file. */
  deadLettered: number;
  /** Events waiting in the spool. */
  spoolDepth: number;
  /** Bytes waiting in the spool. */
  spoolBytes: number;
  /** The last delivery error, cleared by a success. */
  lastError?: string;
}

/** `http://host:8080` → `http://host:8080/ingest`; a URL already ending in `/ingest` is kept. */
export function ingestUrl(url: string | URL): URL {
  const u = new URL(url);
  if (!/\/ingest\/?$/.test(u.pathname)) u.pathname = u.pathname.replace(/\/*$/, "") + "/ingest";
  return u;
}

const log = getLogger(["portwatch", "delivery"]);
/** An {@link EventSink} that POSTs to the listener and spools what it cannot deliver yet. */
export class HttpSink implements EventSink {
  /** The ingest URL posted to. */
  readonly url: URL;
  /** The spool behind this sink (its `deadLetterPath` is where refused events go). */
  readonly spool: Spool;
  #maxEvents: number;
  #maxBytes: number;
  #backoff: BackoffOptions;
  #configRetryMs: number;
  #poster: IngestPoster;
  #closed = false;
  /** Which earlier sends a send waits for (those about the same ports). */
  #order = new SendOrder();
  #sending = 0;
  #work = new Signal();
  #hurry = new Signal();
  #progress = new Signal();
  #loop: Promise<void>;
  #attempt = 0;
  #nextAt = 0;
  #serverAsked = false;
  #headSkip = 0;
  #streak = 0;
  #stats = {
    sent: 0,
    duplicates: 0,
    retries: 0,
    spooled: 0,
    deadLettered: 0,
    lastError: undefined as string | undefined,
  };

  private constructor(options: HttpSinkOptions, spool: Spool) {
    this.url = ingestUrl(options.url);
    this.#poster = new IngestPoster(this.url, options.token, options.timeoutMs ?? 2_000, options.transport);
    this.spool = spool;
    this.#maxEvents = options.batchMaxEvents ?? 500;
    this.#maxBytes = options.batchMaxBytes ?? 512 * 1024;
    this.#backoff = { ...DEFAULT_BACKOFF, ...options.backoff };
    this.#configRetryMs = options.configRetryMs ?? 30_000;
    if (spool.pendingEvents > 0) {
      log.info("{events} events left in the spool {dir} by an earlier run: delivering them first", {
        events: spool.pendingEvents,
        dir: spool.dir,
      });
    }
    this.#loop = this.#run();
  }

  /** Open the spool (repairing it if needed) and start the background delivery loop. */
  static async open(options: HttpSinkOptions): Promise<HttpSink> {
    const spool = await Spool.open({
      dir: options.spoolDir,
      maxBytes: options.spoolMaxBytes ?? DEFAULT_SPOOL_MAX_BYTES,
      recordMaxEvents: options.batchMaxEvents ?? 500,
      recordMaxBytes: options.batchMaxBytes ?? 512 * 1024,
      fsync: options.fsync,
    });
    if (spool.recovery.movedBytes > 0) {
      log.warn("the spool ended in a torn record (a crash mid-write): moved {bytes} bytes to {path}", {
        bytes: spool.recovery.movedBytes,
        path: spool.recovery.corruptPath,
      });
    }
    return new HttpSink(options, spool);
  }

  /** Delivery counters and the spool's depth. */
  get stats(): DeliveryStats {
    return { ...this.#stats, spoolDepth: this.spool.pendingEvents, spoolBytes: this.spool.pendingBytes };
  }

  /**
   * Deliver now when nothing is pending, else (or on failure) spool behind what is; see EventSink.send. It
   * waits for the earlier sends that have a port in common with it (all of them while the spool holds events or
   * delivery fails), and for the oldest when MAX_IN_FLIGHT (send_order.ts) are unfinished.
   */
  send(events: PortEvent[], lines?: readonly string[]): Promise<void> {
    if (this.#closed) return Promise.reject(new Error("HttpSink is closed"));
    this.#sending++;
    const inOrder = this.spool.pendingRecords > 0 || this.#streak > 0;
    return this.#order.enter(events, inOrder, () => this.#sendNow(events, lines)).finally(() => {
      this.#sending--;
      this.#progress.fire();
    });
  }

  async #sendNow(events: PortEvent[], lines?: readonly string[]): Promise<void> {
    if (events.length === 0) return;
    if (this.spool.pendingRecords > 0) return await this.#toSpool(events);
    const chunks = toBatches(events, this.#maxEvents, this.#maxBytes, lines);
    for (let i = 0; i < chunks.length; i++) {
      const r = await this.#deliver(chunks[i].events, chunks[i].lines);
      if (r.failure) {
        this.#failed(r.failure); // first: the loop, woken by the append, must see the backoff
        await this.#toSpool([
          ...chunks[i].events.slice(r.handled),
          ...chunks.slice(i + 1).flatMap((c) => c.events),
        ]);
        return;
      }
    }
    this.#succeeded();
  }

  async #toSpool(events: PortEvent[]): Promise<void> {
    try {
      await this.spool.append(events);
    } catch (e) {
      log.error("could not spool {count} events: {error}", { count: events.length, error: String(e) });
      throw e;
    }
    this.#stats.spooled += events.length;
    this.#work.fire();
  }

  /**
   * Deliver `events` in order: 413 and 422 split the batch in halves (isolating what is refused), refused
   * content is dead-lettered. Returns how many from the front are done, and the failure that stopped it.
   */
  async #deliver(
    events: PortEvent[],
    lines = events.map((e) => JSON.stringify(e)),
  ): Promise<{ handled: number; failure?: Failure }> {
    const r = await this.#poster.post(lines);
    if (r.kind === "ok") {
      this.#stats.sent += events.length;
      this.#stats.duplicates += r.duplicates;
      return { handled: events.length };
    }
    if (r.kind === "retry") return { handled: 0, failure: r.failure };
    if ((r.status === 413 || r.status === 422) && events.length > 1) {
      const mid = Math.ceil(events.length / 2);
      log.warn("the listener answered {status} to a batch of {count} events; retrying it in halves", {
        status: r.status,
        count: events.length,
      });
      const a = await this.#deliver(events.slice(0, mid), lines.slice(0, mid));
      if (a.failure) return a;
      const b = await this.#deliver(events.slice(mid), lines.slice(mid));
      return { handled: mid + b.handled, failure: b.failure };
    }
    await this.spool.deadLetter(events, { status: r.status, error: r.error });
    this.#stats.deadLettered += events.length;
    log.error(
      "the listener REFUSED {count} events with HTTP {status}: {error}; they are not retried and were moved " +
        "to {path} (first id {id})",
      {
        count: events.length,
        status: r.status,
        error: r.error,
        path: this.spool.deadLetterPath,
        id: events[0]?.id,
      },
    );
    return { handled: events.length };
  }

  #succeeded(): void {
    if (this.#streak > 0) {
      log.info("delivery to {url} works again after {failures} failed attempts", {
        url: this.url.href,
        failures: this.#streak,
      });
    }
    this.#streak = 0;
    this.#attempt = 0;
    this.#nextAt = 0;
    this.#serverAsked = false;
    this.#stats.lastError = undefined;
  }

  #failed(f: Failure): void {
    this.#stats.retries++;
    this.#stats.lastError = f.error;
    this.#streak++;
    const delay = f.config
      ? Math.max(this.#configRetryMs, retryDelay(this.#attempt, undefined, this.#backoff))
      : retryDelay(this.#attempt, f.retryAfterMs, this.#backoff);
    this.#attempt++;
    this.#nextAt = Date.now() + delay;
    this.#serverAsked = f.retryAfterMs !== undefined;
    const fields = { url: this.url.href, error: f.error, depth: this.spool.pendingEvents, delay };
    if (f.config) {
      log.error(
        "the listener at {url} rejects us: {error}; {depth} events stay spooled, retrying in {delay} ms",
        fields,
      );
    } else if (this.#streak === 1 || this.#streak % 20 === 0) {
      log.warn("delivery to {url} failed ({error}); {depth} events spooled, retrying in {delay} ms", fields);
    } else {
      log.debug("delivery to {url} failed ({error}); retrying in {delay} ms", fields);
    }
  }

  /** The background loop: drains the spool oldest first, waiting out backoff between failures. */
  async #run(): Promise<void> {
    while (!this.#closed) {
      if (this.spool.pendingRecords === 0) {
        await this.#work.wait();
        continue;
      }
      const wait = this.#nextAt - Date.now();
      if (wait > 0) {
        await this.#hurry.wait(wait);
        continue;
      }
      try {
        await this.#drainOnce();
      } catch (e) {
        // a spool read/ack error: keep the events, try again later
        this.#failed({ config: false, error: `spool: ${(e as Error).message}` });
      }
      this.#progress.fire();
    }
  }

  async #drainOnce(): Promise<void> {
    const batch = await this.spool.read(this.#maxEvents, this.#maxBytes);
    if (!batch) return;
    const r = await this.#deliver(batch.events.slice(this.#headSkip));
    if (!r.failure) {
      await this.spool.ack(batch.end);
      this.#headSkip = 0;
      this.#succeeded();
      if (this.spool.pendingRecords === 0) log.info("the spool is drained; live delivery resumes");
      return;
    }
    // Acknowledge the records fully handled before the failure; remember how far into the next one we got.
    let done = this.#headSkip + r.handled;
    let end = 0;
    for (const rec of batch.records) {
      if (done < rec.count) break;
      done -= rec.count;
      end = rec.end;
    }
    if (end > 0) await this.spool.ack(end);
    this.#headSkip = done;
    if (this.#poster.closing) return;
    this.#failed(r.failure);
  }

  /** Try to deliver everything pending within `timeoutMs` (a plain backoff wait is cut short). */
  async flush(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    if (!this.#serverAsked) this.#nextAt = 0;
    this.#hurry.fire();
    const empty = () => this.#sending === 0 && this.spool.pendingRecords === 0;
    while (!empty() && !this.#closed) {
      const left = deadline - Date.now();
      if (left <= 0) break;
      await this.#progress.wait(left);
    }
    return empty();
  }

  /** Finish sends already started, stop the loop (aborting a retry in flight), close the spool. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#order.settled();
    this.#poster.close(); // ends a retry on the wire
    this.#work.fire();
    this.#hurry.fire();
    this.#progress.fire();
    await this.#loop;
    await this.spool.close();
    this.#poster.dispose();
  }
}
