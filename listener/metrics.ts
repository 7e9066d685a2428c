/**
 * The listener's Prometheus metrics, served at `GET /metrics` by the listener itself (see app.ts). When
 * LISTENER_TOKEN is set, /metrics asks for it like every other route, unless METRICS_PUBLIC=1 (then it is open,
 * like /healthz: give Prometheus the token as `authorization: {credentials: ...}` or set METRICS_PUBLIC=1).
 *
 * | metric                                            | type      | labels               |
 * | ------------------------------------------------- | --------- | -------------------- |
 * | `portwatch_listener_events_accepted_total`        | counter   | source               |
 * | `portwatch_listener_events_duplicates_total`      | counter   | source               |
 * | `portwatch_listener_events_rejected_total`        | counter   | reason               |
 * | `portwatch_listener_ingest_duration_seconds`      | histogram |                      |
 * | `portwatch_listener_fsync_duration_seconds`       | histogram |                      |
 * | `portwatch_listener_log_written_bytes_total`      | counter   |                      |
 * | `portwatch_listener_log_size_bytes`               | gauge     |                      |
 * | `portwatch_listener_log_rotations_total`          | counter   |                      |
 * | `portwatch_listener_stream_subscribers`           | gauge     |                      |
 * | `portwatch_listener_open_ports`                   | gauge     |                      |
 * | `portwatch_listener_http_requests_total`          | counter   | method, route, code  |
 * | `portwatch_listener_policy_verdicts_total`        | counter   | verdict, severity    |
 * | `portwatch_listener_unexpected_open_ports`        | gauge     | severity             |
 * | `portwatch_listener_alerts_sent_total`            | counter   | target, status       |
 * | `portwatch_listener_alert_send_failures_total`    | counter   | target               |
 * | `portwatch_listener_alert_queue_depth`            | gauge     | target               |
 *
 * `source` is the event's engine (`polling`, `ebpf`, ...; `none` for plain-text messages). `rejected` counts
 * refused POST /ingest requests (nothing of a refused request is stored; how many events a malformed or too
 * large body held is unknown), by `reason`: `malformed` (400), `unauthorized` (401), `too_large` (413),
 * `unsupported_media_type` (415), `invalid` (422). `route` is the matched route pattern (`unmatched` for a 404),
 * so its values are bounded.
 * @module
 */
import type { Context, MiddlewareHandler } from "hono";
import { matchedRoutes } from "hono/route";
import { Registry } from "../infra/metrics.ts";
import { SOURCES } from "../events/schema.ts";
import type { Store } from "./store_api.ts";
import type { Record_ } from "./validate.ts";
import { registerProcessMetrics } from "../infra/process_metrics.ts";

/** The listener's metrics and the pieces app.ts mounts. */
export interface ListenerMetrics {
  readonly registry: Registry;
  /** Times and counts every request (registered first, so it also sees 401s and 404s). */
  readonly middleware: MiddlewareHandler;
  /** `GET /metrics`. */
  readonly handler: (c: Context) => Response;
}

/** Statuses of a refused POST /ingest, by `reason` label. */
export const REJECT_REASONS: Readonly<Record<number, string>> = {
  400: "malformed",
  401: "unauthorized",
  413: "too_large",
  415: "unsupported_media_type",
  422: "invalid",
};

/** Ingest latency buckets (seconds): an answer waits for the fsync, typically 0.5-20 ms. */
const INGEST_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

const KNOWN_SOURCES = new Set<string>(SOURCES);
const METHODS = new Set(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]);

/** The `source` label of a record: its engine, or `none` (a message, or a value we do not know). */
function sourceOf(r: Record_): string {
  return typeof r.source === "string" && KNOWN_SOURCES.has(r.source) ? r.source : "none";
}

/**
 * Create the listener's metrics over `store` and start observing it (its ingest hooks and its log writer's
 * fsyncs). One set per store: a second call replaces the first one's hooks.
 */
export function createListenerMetrics(store: Store, registry = new Registry()): ListenerMetrics {
  const accepted = registry.counter({
    name: "portwatch_listener_events_accepted_total",
    help: "Events stored (durable in the log), by the engine that saw them.",
    labelNames: ["source"],
  });
  const duplicates = registry.counter({
    name: "portwatch_listener_events_duplicates_total",
    help: "Events acknowledged but not stored again: their id was already stored (a retry).",
    labelNames: ["source"],
  });
  const rejected = registry.counter({
    name: "portwatch_listener_events_rejected_total",
    help: "POST /ingest requests refused (nothing of them stored), by reason.",
    labelNames: ["reason"],
  });
  for (const reason of Object.values(REJECT_REASONS)) rejected.init({ reason });
  const ingest = registry.histogram({
    name: "portwatch_listener_ingest_duration_seconds",
    help: "Time to answer POST /ingest, fsync included.",
    buckets: INGEST_BUCKETS,
  });
  registry.gauge({
    name: "portwatch_listener_stream_subscribers",
    help: "Live subscribers of stored events (open GET /events/stream connections).",
    collect: () => store.subscribers,
  });
  const requests = registry.counter({
    name: "portwatch_listener_http_requests_total",
    help: "HTTP requests answered, by method, route pattern and status code.",
    labelNames: ["method", "route", "code"],
  });

  store.hooks = {
    stored(records) {
      // Counted per source first: one labelled increment per source and batch, not one per event.
      let source = "";
      let run = 0;
      for (const r of records) {
        const s = sourceOf(r);
        if (s !== source) {
          if (run > 0) accepted.inc({ source }, run);
          source = s;
          run = 0;
        }
        run++;
      }
      if (run > 0) accepted.inc({ source }, run);
    },
    duplicate(r) {
      duplicates.inc({ source: sourceOf(r) });
    },
  };
  store.registerMetrics(registry);
  registerProcessMetrics(registry);

  const middleware: MiddlewareHandler = async (c, next) => {
    const t0 = performance.now();
    await next(); // errors are turned into answers by app.onError before they reach here
    const method = METHODS.has(c.req.method) ? c.req.method : "other";
    const route = matchedRoutes(c).filter((r) => r.method !== "ALL").at(-1)?.path ?? "unmatched";
    const code = c.res.status;
    requests.inc({ method, route, code });
    if (route === "/ingest" && method === "POST") {
      ingest.observe(undefined, (performance.now() - t0) / 1000);
      const reason = REJECT_REASONS[code];
      if (reason) rejected.inc({ reason });
    }
  };
  return { registry, middleware, handler: (c) => registry.response(c.req.method) };
}
