/**
 * A client-side load balancer for the simulated watchers, so each of them can keep using the real delivery
 * client ({@link HttpSink}, one listener URL) while the fleet spreads over several listener replicas, as a
 * load balancer in front of them would.
 *
 * Each watcher gets a virtual URL `http://fleet-lb.invalid/h/<n>/ingest`; while installed, the balancer
 * routes fetches to that origin to a replica: per host (`host`: watcher n sticks to replica n mod count, as
 * with source-IP hashing) or per request (`round-robin`). A replica that refuses connections is marked down
 * for a moment and the request goes to the next one (failover); when every replica fails, the error reaches
 * HttpSink, which spools and retries the same ids, exactly as it would behind a real balancer.
 * @module
 */

/** The origin the balancer answers for. */
export const BALANCER_ORIGIN = "http://fleet-lb.invalid";

/** How requests are spread. */
export type BalanceMode = "host" | "round-robin";

/** Per-replica counters. */
export interface ReplicaTraffic {
  /** Requests answered (any status). */
  requests: number;
  /** Requests that failed to connect or broke, then tried elsewhere or given up. */
  failures: number;
}

/** Routes the virtual origin's requests to replicas, with failover. */
export class Balancer {
  #replicas: string[];
  #downUntil: number[];
  #rr = 0;
  #realFetch?: typeof fetch;
  /** Counters per replica, in the order of {@link replicas}. */
  readonly traffic: ReplicaTraffic[];
  /** Requests sent to another replica after the first choice failed. */
  failovers = 0;

  constructor(replicas: string[], readonly mode: BalanceMode = "host", readonly downMs = 500) {
    if (replicas.length === 0) throw new Error("the balancer needs at least one replica");
    this.#replicas = replicas.map((u) => u.replace(/\/+$/, ""));
    this.#downUntil = replicas.map(() => 0);
    this.traffic = replicas.map(() => ({ requests: 0, failures: 0 }));
  }

  /** Replica base URLs. */
  get replicas(): readonly string[] {
    return this.#replicas;
  }

  /** The virtual listener URL of watcher `n`. */
  urlFor(n: number): string {
    return `${BALANCER_ORIGIN}/h/${n}/ingest`;
  }

  /** Route fetches to {@link BALANCER_ORIGIN} from now on (one balancer per process at a time). */
  install(): void {
    if (this.#realFetch) return;
    const real = globalThis.fetch;
    this.#realFetch = real;
    globalThis.fetch = ((input: RequestInfo | URL, init?: RequestInit) => {
      const href = typeof input === "string" ? input : input instanceof URL ? input.href : input.url;
      if (!href.startsWith(BALANCER_ORIGIN + "/")) return real(input, init);
      return this.#route(real, href.slice(BALANCER_ORIGIN.length), init ?? {});
    }) as typeof fetch;
  }

  /** Restore the real fetch. */
  uninstall(): void {
    if (!this.#realFetch) return;
    globalThis.fetch = this.#realFetch;
    this.#realFetch = undefined;
  }

  async #route(real: typeof fetch, path: string, init: RequestInit): Promise<Response> {
    const m = /^\/h\/(\d+)(\/.*)$/.exec(path);
    const n = this.#replicas.length;
    const first = this.mode === "host" && m ? Number(m[1]) % n : this.#rr++ % n;
    const rest = m ? m[2] : path;
    const now = Date.now();
    // Live replicas first, starting at the chosen one; replicas marked down last (they may be back).
    const order: number[] = [];
    for (let k = 0; k < n; k++) if (this.#downUntil[(first + k) % n] <= now) order.push((first + k) % n);
    for (let k = 0; k < n; k++) if (this.#downUntil[(first + k) % n] > now) order.push((first + k) % n);
    let lastError: unknown;
    for (let k = 0; k < order.length; k++) {
      const i = order[k];
      if (k > 0) this.failovers++;
      try {
        const res = await real(this.#replicas[i] + rest, init);
        this.traffic[i].requests++;
        return res;
      } catch (e) {
        this.traffic[i].failures++;
        lastError = e;
        if (init.signal?.aborted) throw e; // the caller's timeout or close: not the replica's fault
        this.#downUntil[i] = Date.now() + this.downMs;
      }
    }
    throw lastError;
  }
}
