/**
 * End-to-end lag: the time from a watcher handing events to its sink to the events being visible in
 * `GET /events`. A few probe hosts (ordinary members of the fleet) have every event timed: the probe polls
 * `GET /events?host=<probe>&since=<oldest pending send>&order=asc` on the replicas in turn and records, for
 * each id it sees first, now minus the send time. The resolution is one polling round (printed with the
 * results).
 * @module
 */
import type { PortEvent } from "../events/schema.ts";

/** Percentile `p` (0-100) of sorted `values`, nearest rank; undefined when empty. */
export function percentile(sorted: number[], p: number): number | undefined {
  if (sorted.length === 0) return undefined;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}

/** Lag statistics of a window. */
export interface LagStats {
  samples: number;
  p50?: number;
  p99?: number;
  max?: number;
  /** Events not yet seen (still pending at the end of the window). */
  pending: number;
  /** Mean time of one polling round, ms (the resolution). */
  roundMs?: number;
}

/** Times the probe hosts' events until visible. */
export class LagProbe {
  #pending = new Map<string, Map<string, number>>();
  #samples: number[] = [];
  #running = false;
  #loop?: Promise<void>;
  #rounds = 0;
  #roundTime = 0;
  #rr = 0;
  /** Query failures (a replica down, ...), retried next round. */
  errors = 0;

  constructor(readonly urls: string[], readonly hosts: string[], readonly intervalMs = 20) {
    for (const h of hosts) this.#pending.set(h, new Map());
  }

  /** Record that `events` of probe host `host` were handed to its sink at `at`. */
  sent(host: string, events: PortEvent[], at: number): void {
    const m = this.#pending.get(host);
    if (!m) return;
    for (const e of events) m.set(e.id, at);
  }

  /** Start polling. */
  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#loop = this.#run();
  }

  /** Stop polling and wait for the loop to end. */
  async stop(): Promise<void> {
    this.#running = false;
    await this.#loop;
  }

  /** Statistics of the samples since the last {@link reset} (and start a new window when `reset`). */
  stats(reset = false): LagStats {
    const sorted = [...this.#samples].sort((a, b) => a - b);
    let pending = 0;
    for (const m of this.#pending.values()) pending += m.size;
    const out: LagStats = {
      samples: sorted.length,
      p50: percentile(sorted, 50),
      p99: percentile(sorted, 99),
      max: sorted.at(-1),
      pending,
      roundMs: this.#rounds > 0 ? this.#roundTime / this.#rounds : undefined,
    };
    if (reset) {
      this.#samples = [];
      this.#rounds = 0;
      this.#roundTime = 0;
    }
    return out;
  }

  async #run(): Promise<void> {
    while (this.#running) {
      const t0 = Date.now();
      let polled = false;
      for (const [host, m] of this.#pending) {
        if (m.size === 0 || !this.#running) continue;
        polled = true;
        let oldest = Infinity;
        for (const at of m.values()) if (at < oldest) oldest = at;
        const url = this.urls[this.#rr++ % this.urls.length];
        const q = new URLSearchParams({
          host,
          since: new Date(oldest - 5).toISOString(),
          order: "asc",
          limit: "10000",
        });
        try {
          const res = await fetch(`${url}/events?${q}`, { signal: AbortSignal.timeout(5_000) });
          if (!res.ok) {
            await res.body?.cancel();
            this.errors++;
            continue;
          }
          const body = await res.json() as { events: { id: string }[] };
          const now = Date.now();
          for (const e of body.events) {
            const at = m.get(e.id);
            if (at === undefined) continue;
            this.#samples.push(now - at);
            m.delete(e.id);
          }
        } catch {
          this.errors++;
        }
      }
      if (polled) {
        this.#rounds++;
        this.#roundTime += Date.now() - t0 + this.intervalMs;
      }
      await new Promise((r) => setTimeout(r, this.intervalMs));
    }
  }
}
