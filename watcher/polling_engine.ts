/**
 * The polling engine: scan every watched namespace in cycles (see {@link scanSchedule}) and feed each complete
 * look to the pipeline, which diffs, reports and delivers. Used by `deno task watch` (source "polling") and by
 * the eBPF command as its fallback (source "fallback"). One engine beside the event-driven ones (ebpf/).
 * @module
 */
import type { EventSink } from "../delivery/sink.ts";
import type { PortEvent, Source } from "../events/schema.ts";
import type { EnvSource } from "../infra/env.ts";
import { Pipeline } from "../pipeline/pipeline.ts";
import type { WatcherConfig } from "./config.ts";

/**
 * When the scans of one cycle happen: BURST_SCANS scans per SCAN_INTERVAL. By default they are spread evenly
 * over the cycle (at least BURST_DELAY apart): the same number of scans as the seed's burst, placed so that a
 * port held for a short while is more likely to be seen. BURST_SPREAD=0 clusters them BURST_DELAY apart and
 * then waits SCAN_INTERVAL, exactly as the seed's loop did.
 */
export function scanSchedule(
  c: Pick<WatcherConfig, "intervalMs" | "burstScans" | "burstDelayMs" | "burstSpread">,
): { offsets: number[]; cycleMs: number } {
  const n = Math.max(1, c.burstScans);
  if (!c.burstSpread) {
    return {
      offsets: Array.from({ length: n }, (_, i) => i * c.burstDelayMs),
      cycleMs: (n - 1) * c.burstDelayMs + c.intervalMs,
    };
  }
  const cycleMs = Math.max(c.intervalMs, n * c.burstDelayMs);
  const gap = Math.max(c.burstDelayMs, cycleMs / n);
  return { offsets: Array.from({ length: n }, (_, i) => Math.round(i * gap)), cycleMs };
}

/** What the engine needs from its caller. */
export interface PollingEngineOptions {
  config: WatcherConfig;
  sink: EventSink;
  env: EnvSource;
  /** "polling", or "fallback" when the eBPF command fell back to polling. */
  source?: Source;
  /** Source value used for the closes sent at shutdown. */
  shutdownSource?: Source;
}

/** The polling engine. */
export class PollingEngine {
  readonly pipeline: Pipeline;
  #stopped = false;
  #wake?: () => void;

  constructor(readonly options: PollingEngineOptions) {
    this.pipeline = new Pipeline({
      config: options.config,
      sink: options.sink,
      env: options.env,
      source: options.source ?? "polling",
      shutdownSource: options.shutdownSource ?? "shutdown",
    });
  }

  /** Which backend scans, for the start-up log. */
  get backend(): string {
    return this.pipeline.backend;
  }

  /** Set up scopes and read the snapshot; call once before scanning. */
  start(): Promise<void> {
    return this.pipeline.start();
  }

  /** One scan of every namespace; returns the events it produced (already handed to the sink). */
  async scanOnce(refreshNamespaces = true): Promise<PortEvent[]> {
    const p = this.pipeline;
    const out: PortEvent[] = [];
    for (const scan of await p.scan(refreshNamespaces)) {
      out.push(...await p.observe(scan.netns, p.portsOf(scan)));
    }
    out.push(...await p.tick());
    return out;
  }

  /** Scan in cycles (see {@link scanSchedule}) until stop() is called. */
  async run(): Promise<void> {
    const { offsets, cycleMs } = scanSchedule(this.options.config);
    while (!this.#stopped) {
      const cycleStart = Date.now();
      for (let i = 0; i < offsets.length && !this.#stopped; i++) {
        await this.#sleepUntil(cycleStart + offsets[i]);
        if (!this.#stopped) await this.scanOnce(i === 0);
      }
      await this.#sleepUntil(cycleStart + cycleMs);
    }
  }

  /** Sleep until `at`, waking on the way to report closes whose grace runs out before then. */
  async #sleepUntil(at: number): Promise<void> {
    for (;;) {
      const now = Date.now();
      if (this.#stopped || now >= at) return;
      const deadline = this.pipeline.tracker.nextDeadline();
      if (deadline !== undefined && deadline <= now) {
        await this.pipeline.tick();
        continue;
      }
      await this.#sleep(Math.min(at, deadline ?? at) - now);
    }
  }

  #sleep(ms: number): Promise<void> {
    if (this.#stopped) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#wake = undefined;
        resolve();
      }, ms);
      this.#wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  /** Stop scanning; the run() loop returns after its current scan. */
  stop(): void {
    this.#stopped = true;
    this.#wake?.();
  }

  /** Stop, then the pipeline's shutdown: a close for every tracked port, delivered or spooled. */
  shutdown(): Promise<{ closes: number; delivered: boolean }> {
    this.stop();
    return this.pipeline.shutdown();
  }
}
