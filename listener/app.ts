/**
 * The listener's HTTP API (Hono): POST /ingest, GET /events, GET /ports, GET /events/stream (SSE), GET /schema,
 * GET /healthz, GET /metrics (Prometheus; see metrics.ts). Handlers only translate HTTP to store calls; tests
 * drive them with `app.request()`.
 * @module
 */
import { type Context, Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { zValidator } from "@hono/zod-validator";
import { z } from "zod";
import { getLogger } from "@logtape/logtape";
import { BodyError, parseBody } from "./parse_body.ts";
import { validateRecords, ValidationError } from "./validate.ts";
import type { Verdicts } from "./verdicts.ts";
import { baselineRoutes } from "./baseline_routes.ts";
import { type Store, StoreUnavailableError } from "./store_api.ts";
import { EventsQuerySchema, filterParams, toFilter } from "./filter.ts";
import { streamEvents } from "./stream.ts";
import { eventJsonSchema, ingestJsonSchema } from "../events/json_schema.ts";
import { createListenerMetrics, type ListenerMetrics } from "./metrics.ts";
import { uiRoutes } from "./ui.ts";
import { listenerAuth } from "./auth/mod.ts";
import { ByteGate } from "./byte_gate.ts";
import type { FiringAlert } from "./alerts/state.ts";

/** What the app needs besides the store. */
export interface AppOptions {
  /**
   * The port policy and learned baselines (POLICY_PATH): opens and changes get their verdict on ingest, open
   * ports their verdict now.
   */
  verdicts?: Verdicts;
  /** Largest accepted body in bytes. */
  bodyLimit: number;
  /** Bearer token required on every route but /healthz and /schema; undefined leaves the listener open. */
  token?: string;
  /** Interval between SSE keep-alive comments, in ms. */
  heartbeatMs?: number;
  /** Aborted when the listener shuts down: open streams end so the server can drain. */
  shutdown?: AbortSignal;
  /** The metrics served at /metrics; default: a new set over the store. */
  metrics?: ListenerMetrics;
  /** Serve /metrics without the token even when one is set (METRICS_PUBLIC=1). */
  metricsPublic?: boolean;
  /**
   * Request body bytes ingested at once (read, parsed, waiting for the disk); more wait unread in their sockets.
   * Default {@link INGEST_BYTES}.
   */
  ingestBytes?: number;
  /** Longest wait for that budget before a 503 (ms). Default {@link INGEST_WAIT_MS}. */
  ingestWaitMs?: number;
  /** The alerts firing now (listener/alerts/), for GET /alerts; undefined when no policy is configured. */
  alerts?: { firing(): FiringAlert[]; note?(): string | undefined };
}

/**
 * Default of {@link AppOptions.ingestBytes}: two NDJSON batches of 100 events, or some two hundred single events
 * (more than share one fsync at 64 connections); a larger body goes alone. Bounds the memory a burst of large
 * batches takes (64 connections of NDJSON batches: peak RSS about 30 MB lower, same events/s).
 */
export const INGEST_BYTES = 64 * 1024;

/**
 * {@link AppOptions.ingestBytes} with the PostgreSQL store: a group commit there is bounded by what waits for
 * it, and 64 KiB capped a replica at about 64 KiB per commit round trip (requests then timed out at the watchers
 * under CPU pressure and came back as retries).
 */
export const PG_INGEST_BYTES = 1024 * 1024;

/**
 * Longest a request waits for its turn to be ingested before it is answered 503 with `Retry-After` (ms). An
 * overloaded listener says so well within the watchers' 2 s timeout, instead of storing the request after the
 * watcher gave up on it: its retry, once the id has left the dedupe window, would be stored a second time.
 */
export const INGEST_WAIT_MS = 1000;

const log = getLogger(["portwatch", "listener"]);

/** 400 with every zod issue named by its parameter. */
// deno-lint-ignore no-explicit-any
function queryHook(result: { success: boolean; error?: { issues: readonly z.core.$ZodIssue[] } }, c: any) {
  if (!result.success && result.error) {
    const issues = result.error.issues.map((i) => ({ param: i.path.join("."), message: i.message }));
    return c.json(
      { ok: false, error: issues.map((i) => `${i.param}: ${i.message}`).join("; "), issues },
      400,
    );
  }
}

/** Build the Hono app over `store`. */
export function createApp(store: Store, options: AppOptions): Hono {
  const app = new Hono();
  const metrics = options.metrics ?? createListenerMetrics(store);
  app.use("*", metrics.middleware);

  app.get("/healthz", (c) => c.json({ status: "ok" }));
  if (options.metricsPublic) app.get("/metrics", metrics.handler);
  app.get("/schema", (c) => c.json(eventJsonSchema()));
  app.get("/schema/ingest", (c) => c.json(ingestJsonSchema()));
  // The live page (no data of its own: what it shows comes from the routes below, token and all).
  app.route("/", uiRoutes());

  // The token (LISTENER_TOKEN): the bearer header, or the page's session cookie for reads (listener/auth/).
  // POST /signin, POST /signout and GET /session come before the check.
  const auth = listenerAuth(options.token);
  app.route("/", auth.routes);
  if (auth.middleware) app.use("*", auth.middleware);

  if (!options.metricsPublic) app.get("/metrics", metrics.handler); // behind the token, when there is one

  const tooLarge = (c: Context) =>
    c.json({
      ok: false,
      error: `body larger than ${options.bodyLimit} bytes (LISTENER_BODY_LIMIT); send smaller batches`,
    }, 413);
  const limitStream = bodyLimit({ maxSize: options.bodyLimit, onError: tooLarge });
  const gate = new ByteGate(options.ingestBytes ?? INGEST_BYTES);
  let lastStoreError = 0;
  let failedSince = 0;
  app.post(
    "/ingest",
    // A Content-Length is enforced by the HTTP server's framing, so checking it is enough and spares every
    // request a counting stream; chunked bodies, which have none, go through hono/body-limit.
    (c, next) => {
      const length = c.req.header("content-length");
      if (length === undefined) return limitStream(c, next);
      return Number(length) > options.bodyLimit ? tooLarge(c) : next();
    },
    async (c) => {
      // A body without a Content-Length (chunked) counts as the largest allowed.
      const length = c.req.header("content-length");
      const cost = length === undefined ? options.bodyLimit : Number(length);
      const turn = gate.acquireWithin(cost, options.ingestWaitMs ?? INGEST_WAIT_MS);
      if (turn !== true && !(await turn)) {
        c.header("Retry-After", "1");
        return c.json({
          ok: false,
          error:
            `overloaded: not stored (waited ${
              options.ingestWaitMs ?? INGEST_WAIT_MS
            } ms for earlier requests); ` +
            "retry after 1 s",
        }, 503);
      }
      try {
        return await ingest(c);
      } finally {
        gate.release(cost);
      }
    },
  );

  async function ingest(c: Context): Promise<Response> {
    let validated;
    try {
      // The raw request's text, not c.req.text(), which Hono keeps for the life of the request (until the
      // fsync) although nothing reads it again.
      const { items, texts } = parseBody(await c.req.raw.text(), c.req.header("content-type"));
      validated = validateRecords(items, new Date().toISOString(), texts);
    } catch (e) {
      if (e instanceof BodyError) return c.json({ ok: false, error: e.message, ...e.detail }, e.status);
      if (e instanceof ValidationError) {
        return c.json({ ok: false, error: e.message, issues: e.issues }, 422);
      }
      throw e;
    }
    try {
      await options.verdicts?.apply(validated);
      const result = await store.ingest(validated.records, validated.prepared);
      return c.json({ ok: true, ...result });
    } catch (e) {
      // One line per second at most: under overload or a database outage every request fails alike.
      const now = Date.now();
      if (now - lastStoreError >= 1000) {
        log.error(
          "could not store the events ({failed} requests answered 503 since the last line): {error}",
          {
            failed: failedSince + 1,
            error: String(e),
          },
        );
        lastStoreError = now;
        failedSince = 0;
      } else failedSince++;
      c.header("Retry-After", "1");
      return c.json({ ok: false, error: `could not store the events: ${(e as Error).message}` }, 503);
    }
  }

  app.get("/events", zValidator("query", EventsQuerySchema, queryHook), async (c) => {
    const q = c.req.valid("query");
    const events = await store.query(toFilter(q), q.limit, q.order);
    return c.json({ count: events.length, events });
  });

  const PortsQuerySchema = z.object({
    port: filterParams.port,
    proto: filterParams.proto,
    container: filterParams.container,
    host: filterParams.host,
    unexpected: z.enum(["0", "1", "true", "false"], { message: "unexpected: 1 or 0" }).optional(),
  });
  app.get("/ports", zValidator("query", PortsQuerySchema, queryHook), async (c) => {
    const { unexpected, ...q } = c.req.valid("query");
    // Each port with its verdict under the policy in force now (as stored, when there is none).
    let ports = await store.openPorts(toFilter(q));
    if (options.verdicts) ports = options.verdicts.judged(ports);
    if (unexpected === "1" || unexpected === "true") {
      ports = ports.filter((p) => p.policy?.verdict === "alert");
    }
    return c.json({ count: ports.length, ports });
  });
  // The unexpected ports open now: each alert (labels, annotations, startsAt) with its port, sorted like /ports.
  app.get("/alerts", (c) => {
    if (!options.alerts) {
      return c.json({
        count: 0,
        alerts: [],
        note: "no policy is in force (POLICY_PATH is not set): no port is judged unexpected",
      });
    }
    const alerts = options.alerts.firing();
    const note = options.alerts.note?.();
    return c.json({ count: alerts.length, alerts, ...(note ? { note } : {}) });
  });
  app.route("/", baselineRoutes(options.verdicts));

  const StreamQuerySchema = z.object({ ...filterParams, last_event_id: z.string().min(1).optional() });
  app.get("/events/stream", zValidator("query", StreamQuerySchema, queryHook), (c) => {
    const q = c.req.valid("query");
    const lastId = c.req.header("Last-Event-ID") ?? q.last_event_id;
    return streamEvents(c, store, toFilter(q), lastId, options.heartbeatMs ?? 15_000, options.shutdown);
  });

  app.notFound((c) =>
    c.json({
      ok: false,
      error: `no route ${c.req.method} ${c.req.path}; routes: POST /ingest, GET /events, GET /ports, ` +
        `GET /alerts, GET /baselines, GET /baselines/export, DELETE /baselines, ` +
        `GET /events/stream, GET /schema, GET /healthz, GET /metrics, GET / (the live page)`,
    }, 404)
  );
  app.onError((e, c) => {
    if ("getResponse" in e && typeof e.getResponse === "function") return e.getResponse();
    if (e instanceof StoreUnavailableError) {
      c.header("Retry-After", "1");
      return c.json({ ok: false, error: `the store is unavailable: ${e.message}` }, 503);
    }
    log.error("unhandled error on {method} {path}: {error}", {
      method: c.req.method,
      path: c.req.path,
      error: String(e),
    });
    return c.json({ ok: false, error: "internal error" }, 500);
  });
  return app;
}
