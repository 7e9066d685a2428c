/**
 * The simulated fleet: N watchers, each a {@link HostSim} (the truth of its ports) delivering through its own
 * real {@link HttpSink} (batching, spool, retries with the same ids), all behind one {@link Balancer} that
 * spreads them over the listener replicas.
 *
 * Every watcher reports once per `tickMs` (a watcher's scan cycle), at a phase of its own so the fleet's
 * requests are spread evenly; the fleet's total event rate is shared among the hosts and can be changed
 * while running (the benchmark steps it up).
 * @module
 */
import { HttpSink } from "../delivery/http_sink.ts";
import { type BalanceMode, Balancer } from "./balancer.ts";
import { HostSim } from "./traffic.ts";
import type { LagProbe } from "./lag.ts";

/** How the fleet is made. */
export interface FleetOptions {
  /** Number of simulated hosts (watchers). */
  hosts: number;
  /** Events per second over the whole fleet. */
  rate: number;
  /** Each watcher's report interval, ms (default 1000, like SCAN_INTERVAL=1). */
  tickMs?: number;
  /** Listener base URLs (the replicas). */
  replicas: string[];
  /** How the balancer spreads watchers (default per host). */
  balance?: BalanceMode;
  /** Host names are `<prefix>-h<n>`. */
  prefix: string;
  /** Seed of every host's randomness. */
  seed: number;
  /** Where the watchers' spools live (one folder per host below it). */
  spoolDir: string;
  /** Remember every event id sent, for the exactly-once check (default true). */
  keepIds?: boolean;
  /** Hosts whose events are timed until visible in GET /events. */
  probe?: LagProbe;
}

/** Delivery totals over every watcher. */
export interface FleetDelivery {
  /** Events handed to the watchers' sinks. */
  generated: number;
  /** Events acknowledged by a listener (2xx), not counting acknowledged duplicates. */
  delivered: number;
  /** Acknowledged events the listener already had (a retry after a lost answer). */
  duplicates: number;
  /** Failed POST attempts (retried later). */
  retries: number;
  /** Events that went through a spool. */
  spooled: number;
  /** Events waiting in spools now. */
  spoolDepth: number;
  /** Events refused and dead-lettered (should be 0). */
  deadLettered: number;
  /** send() calls that rejected (spool full): these events are lost, and say so. */
  sendErrors: number;
}

/** The running fleet. */
export class Fleet {
  readonly sims: HostSim[];
  readonly balancer: Balancer;
  /** Every event id handed to a sink, in order (when `keepIds`). */
  readonly ids: string[] = [];
  #sinks: HttpSink[];
  #rate: number;
  #tickMs: number;
  #next: number[];
  #last: number[];
  #acc: number[];
  #ptr = 0;
  #timer?: ReturnType<typeof setTimeout>;
  #running = false;
  #generated = 0;
  #sendErrors = 0;
  #inflight = new Set<Promise<void>>();
  #probeIndex: Map<number, string>;

  private constructor(readonly options: FleetOptions, sinks: HttpSink[], balancer: Balancer) {
    this.#sinks = sinks;
    this.balancer = balancer;
    this.#rate = options.rate;
    this.#tickMs = options.tickMs ?? 1000;
    this.sims = [];
    for (let i = 0; i < options.hosts; i++) {
      this.sims.push(new HostSim({ host: hostName(options.prefix, i), seed: options.seed * 1_000_003 + i }));
    }
    this.#next = this.sims.map(() => 0);
    this.#last = this.sims.map(() => 0);
    this.#acc = this.sims.map(() => 0);
    this.#probeIndex = new Map((options.probe?.hosts ?? []).map((h) => [hostIndex(options.prefix, h), h]));
  }

  /** Open every watcher's sink (spool folders under `spoolDir`) and install the balancer. */
  static async open(options: FleetOptions): Promise<Fleet> {
    const balancer = new Balancer(options.replicas, options.balance ?? "host");
    balancer.install();
    const sinks: HttpSink[] = [];
    try {
      for (let i = 0; i < options.hosts; i++) {
        // fetch: the balancer routes the virtual origin's fetches (the lean http client would dial it)
        sinks.push(
          await HttpSink.open({
            url: balancer.urlFor(i),
            spoolDir: `${options.spoolDir}/h${i}`,
            transport: "fetch",
          }),
        );
      }
    } catch (e) {
      await Promise.all(sinks.map((s) => s.close()));
      balancer.uninstall();
      throw e;
    }
    return new Fleet(options, sinks, balancer);
  }

  /** The fleet's event rate (events/s). */
  get rate(): number {
    return this.#rate;
  }
  set rate(r: number) {
    this.#rate = r;
  }

  /** Start generating (each host at its own phase within the tick). */
  start(): void {
    if (this.#running) return;
    this.#running = true;
    const now = Date.now();
    const n = this.sims.length;
    for (let i = 0; i < n; i++) {
      this.#next[i] = now + (this.#tickMs * i) / n;
      this.#last[i] = this.#next[i] - this.#tickMs;
    }
    this.#ptr = 0;
    this.#loop();
  }

  #loop(): void {
    if (!this.#running) return;
    const n = this.sims.length;
    const now = Date.now();
    for (let done = 0; done < n && this.#next[this.#ptr] <= now; done++) {
      const i = this.#ptr;
      this.#tick(i, now);
      // Behind by more than a cycle (an overloaded machine): skip the missed cycles, keep the rate.
      this.#next[i] = Math.max(this.#next[i] + this.#tickMs, now - this.#tickMs / 2);
      this.#ptr = (i + 1) % n;
    }
    const wait = Math.max(1, Math.min(20, this.#next[this.#ptr] - Date.now()));
    this.#timer = setTimeout(() => this.#loop(), wait);
  }

  #tick(i: number, now: number): void {
    const elapsed = now - this.#last[i];
    this.#last[i] = now;
    this.#acc[i] += (this.#rate / this.sims.length) * (elapsed / 1000);
    const k = Math.floor(this.#acc[i]);
    if (k <= 0) return;
    this.#acc[i] -= k;
    const events = this.sims[i].step(k, now, Math.min(elapsed, this.#tickMs));
    if (events.length === 0) return;
    this.#generated += events.length;
    if (this.options.keepIds !== false) { for (const e of events) this.ids.push(e.id); }
    const probeHost = this.#probeIndex.get(i);
    if (probeHost) this.options.probe!.sent(probeHost, events, Date.now());
    const p = this.#sinks[i].send(events).catch(() => {
      this.#sendErrors += events.length;
    });
    this.#inflight.add(p);
    p.finally(() => this.#inflight.delete(p));
  }

  /** Stop generating (sends already started go on). */
  stop(): void {
    this.#running = false;
    clearTimeout(this.#timer);
  }

  /**
   * Wait for every send, then try to deliver every spool, all within `timeoutMs`; true when nothing is left.
   * Sends still unresolved at the deadline are counted in {@link stuckSends}.
   */
  async flush(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<"late">((r) => timer = setTimeout(() => r("late"), timeoutMs));
    const sent = await Promise.race([Promise.all([...this.#inflight]), late]);
    if (sent === "late") {
      clearTimeout(timer);
      this.stuckSends = this.#inflight.size;
      return false;
    }
    const flushed = Promise.all(this.#sinks.map((s) => s.flush(Math.max(0, deadline - Date.now()))));
    const ok = await Promise.race([flushed, late]);
    clearTimeout(timer);
    if (ok === "late") {
      this.stuckSends = this.#inflight.size;
      return false;
    }
    return ok.every((x) => x);
  }

  /** send() calls that had not resolved when the last {@link flush} gave up (a sink that hangs). */
  stuckSends = 0;

  /** Delivery totals now. */
  delivery(): FleetDelivery {
    const d: FleetDelivery = {
      generated: this.#generated,
      delivered: 0,
      duplicates: 0,
      retries: 0,
      spooled: 0,
      spoolDepth: 0,
      deadLettered: 0,
      sendErrors: this.#sendErrors,
    };
    for (const s of this.#sinks) {
      const st = s.stats;
      d.delivered += st.sent - st.duplicates;
      d.duplicates += st.duplicates;
      d.retries += st.retries;
      d.spooled += st.spooled;
      d.spoolDepth += st.spoolDepth;
      d.deadLettered += st.deadLettered;
    }
    return d;
  }

  /** Stop, close every sink (what is undelivered stays in its spool) and uninstall the balancer. */
  async close(): Promise<void> {
    this.stop();
    await Promise.all(this.#sinks.map((s) => s.close()));
    this.balancer.uninstall();
  }
}

/** The host name of watcher `i`. */
export function hostName(prefix: string, i: number): string {
  return `${prefix}-h${String(i).padStart(5, "0")}`;
}

/** The watcher index of a host name made by {@link hostName}. */
export function hostIndex(prefix: string, host: string): number {
  return Number(host.slice(prefix.length + 2));
}
