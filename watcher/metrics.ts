/**
 * The watchers' Prometheus metrics (`deno task watch`, `deno task ebpf`, `deno task start`), served at
 * `http://METRICS_HOST:METRICS_PORT/metrics` when METRICS_PORT is set. Most values are read at scrape time
 * from the engine's and the sink's own counters; scan durations and emitted events are observed as they
 * happen (a timed wrapper around the engine's scan, a counting wrapper around the sink).
 *
 * | metric                                          | type      | labels        | when                        |
 * | ----------------------------------------------- | --------- | ------------- | --------------------------- |
 * | `portwatch_engine_info`                         | gauge (1) | engine        | always                      |
 * | `portwatch_watcher_scans_total`                 | counter   |               | always                      |
 * | `portwatch_watcher_scan_duration_seconds`       | histogram |               | always                      |
 * | `portwatch_watcher_scan_errors_total`           | counter   |               | always                      |
 * | `portwatch_watcher_events_total`                | counter   | event, source | once an event is emitted    |
 * | `portwatch_delivery_events_sent_total`          | counter   |               | LISTENER_URL set            |
 * | `portwatch_delivery_duplicates_total`           | counter   |               | LISTENER_URL set            |
 * | `portwatch_delivery_retries_total`              | counter   |               | LISTENER_URL set            |
 * | `portwatch_delivery_events_spooled_total`       | counter   |               | LISTENER_URL set            |
 * | `portwatch_delivery_events_dead_lettered_total` | counter   |               | LISTENER_URL set            |
 * | `portwatch_delivery_spool_events`               | gauge     |               | LISTENER_URL set            |
 * | `portwatch_delivery_spool_bytes`                | gauge     |               | LISTENER_URL set            |
 * | `portwatch_ebpf_events_total`                   | counter   |               | a bpftrace/Tracee engine    |
 * | `portwatch_ebpf_reconciliations_total`          | counter   |               | a bpftrace/Tracee engine    |
 * | `portwatch_ebpf_drift_sockets_total`            | counter   |               | a bpftrace/Tracee engine    |
 * | `portwatch_ebpf_lost_events_total`              | counter   |               | a bpftrace/Tracee engine    |
 * | `portwatch_ebpf_late_opens_total`               | counter   |               | a bpftrace/Tracee engine    |
 *
 * `engine` is `netlink`, `proc` or `ss` for the polling watcher, `bpftrace` or `tracee` for the eBPF one, and
 * `fallback` when the eBPF command fell back to polling. A scan is one read of the socket tables of every
 * watched namespace with their owners (each polling cycle's scans; the eBPF engines' seed, reconciliation and
 * exit-check scans); its duration leaves out diffing and delivery.
 * @module
 */
import { getLogger } from "@logtape/logtape";
import { ConfigError } from "../infra/env.ts";
import { type DeliveryStats, HttpSink } from "../delivery/http_sink.ts";
import { type MetricsServer, Registry, serveMetrics } from "../infra/metrics.ts";
import type { EventSink } from "../delivery/sink.ts";
import type { PortEvent } from "../events/schema.ts";
import { DEFAULT_METRICS_HOST, type WatcherConfig } from "./config.ts";
import type { Pipeline, PipelineStats } from "../pipeline/pipeline.ts";
import { registerProcessMetrics } from "../infra/process_metrics.ts";

/** Scan durations (seconds): a netlink dump takes about a millisecond, ss tens, a host-wide scan more. */
const SCAN_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

/** The eBPF engine's counters that are exposed (EventEngineStats) and its source's lost count. */
export interface EbpfCounters {
  readonly stats: { readonly events: number; readonly reconciles: number; readonly drift: number };
  readonly lost: () => number;
  /** Opens read after their socket's end had been applied (later than the reorder window); 0 if unknown. */
  readonly lateOpens?: () => number;
}

/** A source of delivery counters: an HttpSink. */
export interface DeliveryCounters {
  readonly stats: DeliveryStats;
}

/** The watcher's metric set; engine, sink and eBPF counters are attached as they are created. */
export class WatcherMetrics {
  readonly registry = new Registry();
  #engine?: () => string;
  #poll?: { readonly stats: PipelineStats };
  #delivery?: DeliveryCounters;
  #ebpf?: EbpfCounters;
  readonly #scans;
  readonly #scanSeconds;
  readonly #events;

  constructor() {
    const r = this.registry;
    registerProcessMetrics(r);
    const ifAttached = <T>(get: () => T | undefined, read: (t: T) => number) => () => {
      const t = get();
      return t === undefined ? [] : [{ labels: {}, value: read(t) }];
    };
    r.gauge({
      name: "portwatch_engine_info",
      help: "The engine that watches ports (netlink, proc, ss, bpftrace, tracee or fallback); always 1.",
      labelNames: ["engine"],
      collect: () => (this.#engine ? [{ labels: { engine: this.#engine() }, value: 1 }] : []),
    });
    this.#scans = r.counter({
      name: "portwatch_watcher_scans_total",
      help: "Scans of the socket tables of every watched network namespace.",
    });
    this.#scanSeconds = r.histogram({
      name: "portwatch_watcher_scan_duration_seconds",
      help: "Time one scan took: sockets of every watched namespace and their owners (no diff, no delivery).",
      buckets: SCAN_BUCKETS,
    });
    r.counter({
      name: "portwatch_watcher_scan_errors_total",
      help: "Scans of one network namespace that failed (logged; the next scan retries).",
      collect: ifAttached(() => this.#poll, (p) => p.stats.scanErrors),
    });
    this.#events = r.counter({
      name: "portwatch_watcher_events_total",
      help: "Events emitted (handed to delivery), by event (open, close) and source.",
      labelNames: ["event", "source"],
    });
    const delivery = (name: string, help: string, read: (s: DeliveryStats) => number, type = "counter") => {
      const options = { name, help, collect: ifAttached(() => this.#delivery?.stats, read) };
      if (type === "counter") r.counter(options);
      else r.gauge(options);
    };
    delivery(
      "portwatch_delivery_events_sent_total",
      "Events the listener acknowledged (2xx), duplicates included.",
      (s) => s.sent,
    );
    delivery(
      "portwatch_delivery_duplicates_total",
      "Acknowledged events the listener already had (a retry after a lost answer).",
      (s) => s.duplicates,
    );
    delivery(
      "portwatch_delivery_retries_total",
      "Delivery attempts that failed and will be retried.",
      (s) => s.retries,
    );
    delivery(
      "portwatch_delivery_events_spooled_total",
      "Events written to the spool (the listener could not take them at once).",
      (s) => s.spooled,
    );
    delivery(
      "portwatch_delivery_events_dead_lettered_total",
      "Events the listener refused (400/413/422), moved to dead-letter.ndjson.",
      (s) => s.deadLettered,
    );
    delivery("portwatch_delivery_spool_events", "Events waiting in the spool.", (s) => s.spoolDepth, "gauge");
    delivery("portwatch_delivery_spool_bytes", "Bytes waiting in the spool.", (s) => s.spoolBytes, "gauge");
    const ebpf = (name: string, help: string, read: (e: EbpfCounters) => number) =>
      r.counter({ name, help, collect: ifAttached(() => this.#ebpf, read) });
    ebpf(
      "portwatch_ebpf_events_total",
      "Socket events received from the eBPF engine.",
      (e) => e.stats.events,
    );
    ebpf(
      "portwatch_ebpf_reconciliations_total",
      "Reconciliation scans (EBPF_RECONCILE).",
      (e) => e.stats.reconciles,
    );
    ebpf(
      "portwatch_ebpf_drift_sockets_total",
      "Sockets a reconciliation scan found that the eBPF events had missed.",
      (e) => e.stats.drift,
    );
    ebpf(
      "portwatch_ebpf_lost_events_total",
      "Events the kernel or the tool reported lost.",
      (e) => e.lost(),
    );
    ebpf(
      "portwatch_ebpf_late_opens_total",
      "Opens read after the end of their socket had been applied, later than the reorder window (not reported).",
      (e) => e.lateOpens?.() ?? 0,
    );
  }

  /**
   * Watch an engine's pipeline (the polling watcher's, the fallback's, or an eBPF engine's, which scans to seed
   * and reconcile): its scans are timed from now on, its errors read at scrape time. `engine` names it for
   * `portwatch_engine_info`; default: its socket source (netlink, proc, ss).
   */
  watchPipeline(pipeline: Pipeline, engine?: () => string): void {
    this.#poll = pipeline;
    this.#engine = engine ?? (() => pipeline.backend.split(" ")[0] || "unknown");
    pipeline.onScanned = (ms) => {
      this.#scanSeconds.observe(undefined, ms / 1000);
      this.#scans.inc();
    };
  }

  /**
   * Watch what ebpf/start_engine.ts started: its pipeline, and the eBPF engine's counters when it is one
   * (`engine` is then its source's name, else `fallback`).
   */
  watchStarted(running: {
    pipeline: Pipeline;
    ebpf?: {
      stats: EbpfCounters["stats"];
      options: { source: { name: string; lost: number } };
      ledger?: { lateOpens: number };
    };
  }): void {
    const ebpf = running.ebpf;
    this.watchPipeline(running.pipeline, () => ebpf?.options.source.name ?? "fallback");
    if (ebpf) {
      this.watchEbpf({
        stats: ebpf.stats,
        lost: () => ebpf.options.source.lost,
        lateOpens: () => ebpf.ledger?.lateOpens ?? 0,
      });
    }
  }

  /** Expose an eBPF engine's counters (drift, lost, ...). */
  watchEbpf(counters: EbpfCounters): void {
    this.#ebpf = counters;
  }

  /** `sink`, counting the events handed to it; an HttpSink's delivery counters are exposed too. */
  countSink(sink: EventSink): EventSink {
    if (sink instanceof HttpSink) this.#delivery = sink;
    const events = this.#events;
    return {
      send(batch: PortEvent[], lines?: readonly string[]): Promise<void> {
        for (const e of batch) events.inc({ event: e.event, source: e.source });
        return sink.send(batch, lines);
      },
      flush: (timeoutMs) => sink.flush(timeoutMs),
      close: () => sink.close(),
    };
  }

  /** Scans so far (tests, logs). */
  get scans(): number {
    return this.#scans.get();
  }
}

/**
 * Serve `metrics` when `config.metricsPort` is set; undefined otherwise. A port that cannot be bound is a
 * {@link ConfigError} naming METRICS_PORT (or METRICS_HOST when the address is the problem).
 */
export function startMetricsServer(
  config: WatcherConfig,
  metrics: WatcherMetrics,
): MetricsServer | undefined {
  if (config.metricsPort === undefined) return undefined;
  const host = config.metricsHost ?? DEFAULT_METRICS_HOST;
  let server: MetricsServer;
  try {
    server = serveMetrics(config.metricsPort, host, metrics.registry);
  } catch (e) {
    const why = (e as Error).message;
    const port = String(config.metricsPort);
    if (e instanceof Deno.errors.AddrInUse) {
      throw new ConfigError("METRICS_PORT", port, `a port free on ${host} (${why})`);
    }
    if (e instanceof Deno.errors.PermissionDenied) {
      throw new ConfigError("METRICS_PORT", port, `a port this user may bind (${why})`);
    }
    throw new ConfigError("METRICS_HOST", host, `an address of this machine to serve metrics on (${why})`);
  }
  getLogger(["portwatch", "watcher"]).info("Prometheus metrics at {url}/metrics", { url: server.url });
  return server;
}
