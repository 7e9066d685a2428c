/**
 * End-to-end lag: the time from a watcher handing events to its sink to the events reaching a client. A few
 * probe hosts (ordinary members of the fleet) have every event timed; for each, the probe follows
 * `GET /events/stream?host=<probe>` (Server-Sent Events, filtered by the listener) on one replica (probe i on
 * replica i mod count, so with a shared store most probes watch events ingested through another replica) and
 * records now minus the send time of each id it receives.
 *
 * A listener publishes a record on the stream once it is durable, the same moment it becomes visible in
 * `GET /events` (file store), or after the commit, woken by LISTEN/NOTIFY (PostgreSQL): the lag measured is
 * the time to visibility, or slightly more. Polling `GET /events` instead costs the file store a scan of its
 * recent records per query, which at fleet rates disturbs what is measured.
 * @module
 */
import type { PortEvent } from "../events/schema.ts";
import { sseEvents } from "../listener/testing.ts";

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
  /** Events sent but not yet seen. */
  pending: number;
}

/** Times the probe hosts' events until they reach a stream client. */
export class LagProbe {
  #pending = new Map<string, Map<string, number>>();
  #samples: number[] = [];
  #abort = new AbortController();
  #bodies = new Set<ReadableStream<Uint8Array>>();
  #loops: Promise<void>[] = [];
  /** Stream connections that failed or ended (a replica down, ...); each is reconnected. */
  errors = 0;

  constructor(readonly urls: string[], readonly hosts: string[]) {
    for (const h of hosts) this.#pending.set(h, new Map());
  }

  /** Record that `events` of probe host `host` were handed to its sink at `at`. */
  sent(host: string, events: PortEvent[], at: number): void {
    const m = this.#pending.get(host);
    if (!m) return;
    for (const e of events) m.set(e.id, at);
  }

  /** Connect the streams; resolves once every one is connected (deadline 10 s). */
  async start(): Promise<void> {
    const ready: Promise<void>[] = [];
    this.hosts.forEach((host, i) => {
      let connected!: () => void;
      ready.push(new Promise<void>((r) => connected = r));
      this.#loops.push(this.#follow(host, i, connected));
    });
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      Promise.all(ready),
      new Promise<void>((r) => timer = setTimeout(r, 10_000)),
    ]);
    clearTimeout(timer);
  }

  /**
   * Close the streams. The abort should end each body read; the bodies are also cancelled, and the wait is
   * bounded, because a read that ignores both would otherwise hold the run forever (seen under load).
   */
  async stop(): Promise<void> {
    this.#abort.abort();
    for (const body of this.#bodies) body.cancel().catch(() => {});
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      Promise.all(this.#loops),
      new Promise<void>((r) => timer = setTimeout(r, 5_000)),
    ]);
    clearTimeout(timer);
  }

  /** Statistics of the samples since the last reset (and start a new window when `reset`). */
  stats(reset = false): LagStats {
    const sorted = [...this.#samples].sort((a, b) => a - b);
    let pending = 0;
    for (const m of this.#pending.values()) pending += m.size;
    if (reset) this.#samples = [];
    return {
      samples: sorted.length,
      p50: percentile(sorted, 50),
      p99: percentile(sorted, 99),
      max: sorted.at(-1),
      pending,
    };
  }

  async #follow(host: string, index: number, connected: () => void): Promise<void> {
    const m = this.#pending.get(host)!;
    const signal = this.#abort.signal;
    let lastId: string | undefined;
    for (let k = index; !signal.aborted; k++) {
      const url = this.urls[k % this.urls.length];
      const q = new URLSearchParams({ host });
      if (lastId) q.set("last_event_id", lastId);
      let body: ReadableStream<Uint8Array> | undefined;
      try {
        const res = await fetch(`${url}/events/stream?${q}`, { signal });
        if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}`);
        connected();
        body = res.body;
        this.#bodies.add(body);
        for await (const ev of sseEvents(body)) {
          const now = Date.now();
          const id = ev.id ?? (JSON.parse(ev.data) as { id: string }).id;
          lastId = id;
          const at = m.get(id);
          if (at === undefined) continue;
          this.#samples.push(now - at);
          m.delete(id);
        }
      } catch { /* replica down or closing */ }
      if (body) this.#bodies.delete(body);
      if (signal.aborted) return;
      this.errors++;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}
