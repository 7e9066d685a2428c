import assert from "node:assert/strict";
import type { Hono } from "hono";
import { CONTENT_TYPE } from "../infra/metrics.ts";
import { waitUntil } from "../infra/wait.ts";
import { createApp } from "./app.ts";
import { EventStore, type StoreOptions } from "./file/store.ts";
import { sampleEvent, storeOptions, withTempDir } from "./testing.ts";

/** `name{labels}` → value, from the text format (HELP/TYPE lines checked to precede their samples). */
function parse(text: string): Map<string, number> {
  const out = new Map<string, number>();
  const typed = new Set<string>();
  for (const line of text.split("\n")) {
    if (line === "") continue;
    const t = /^# TYPE (\S+) (counter|gauge|histogram)$/.exec(line);
    if (t) {
      typed.add(t[1]);
      continue;
    }
    if (line.startsWith("# HELP ")) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? (\S+)$/.exec(line);
    assert.ok(m, `not a sample line: ${line}`);
    const family = m[1].replace(/_(bucket|sum|count)$/, "");
    assert.ok(typed.has(m[1]) || typed.has(family), `sample before its TYPE line: ${line}`);
    out.set(m[1] + (m[2] ?? ""), Number(m[3]));
  }
  return out;
}

async function scrape(app: Hono, headers: Record<string, string> = {}): Promise<Map<string, number>> {
  const res = await app.request("/metrics", { headers });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("content-type"), CONTENT_TYPE);
  return parse(await res.text());
}

const post = (body: string, type = "application/json", headers: Record<string, string> = {}) => ({
  method: "POST",
  headers: { "content-type": type, ...headers },
  body,
});

async function withStore(
  over: Partial<StoreOptions>,
  fn: (store: EventStore, dir: string) => Promise<void>,
): Promise<void> {
  await withTempDir(async (dir) => {
    const { store } = await EventStore.open(storeOptions(dir, over));
    try {
      await fn(store, dir);
    } finally {
      await store.close();
    }
  });
}

Deno.test("listener /metrics: good, bad and duplicate events move the right counters", async () => {
  await withStore({ fsync: true }, async (store) => {
    const app = createApp(store, { bodyLimit: 4096, heartbeatMs: 200 });
    const before = await scrape(app);
    for (const reason of ["malformed", "unauthorized", "too_large", "unsupported_media_type", "invalid"]) {
      assert.equal(before.get(`portwatch_listener_events_rejected_total{reason="${reason}"}`), 0, reason);
    }
    assert.equal(before.get("portwatch_listener_ingest_duration_seconds_count"), 0);
    assert.equal(before.get("portwatch_listener_open_ports"), 0);

    const a = sampleEvent({ port: 5001 });
    const b = sampleEvent({ port: 5002, source: "ebpf" });
    const c = sampleEvent({ port: 5003, source: "ebpf" });
    const status = async (init: RequestInit) => (await app.request("/ingest", init)).status;
    assert.equal(await status(post(JSON.stringify(a))), 200);
    assert.equal(await status(post(JSON.stringify([b, c]))), 200);
    assert.equal(await status(post(JSON.stringify([a, sampleEvent({ port: 5004 })]))), 200); // a repeats
    const mixed = [5005, 5006, 5007].map((port) =>
      sampleEvent({ port, source: port === 5006 ? "ebpf" : "polling" })
    );
    assert.equal(await status(post(JSON.stringify(mixed))), 200); // sources interleaved in one batch
    assert.equal(await status(post("port 5000 is up", "text/plain")), 200); // a message: no engine
    assert.equal(await status(post('{"event": "open",')), 400);
    assert.equal(await status(post(JSON.stringify(sampleEvent({ port: 70000 })))), 422);
    assert.equal(await status(post(JSON.stringify(sampleEvent({ pad: "x".repeat(5000) })))), 413);
    assert.equal((await app.request("/nowhere")).status, 404);

    const m = await scrape(app);
    assert.equal(m.get('portwatch_listener_events_accepted_total{source="polling"}'), 4);
    assert.equal(m.get('portwatch_listener_events_accepted_total{source="ebpf"}'), 3);
    assert.equal(m.get('portwatch_listener_events_accepted_total{source="none"}'), 1);
    assert.equal(m.get('portwatch_listener_events_duplicates_total{source="polling"}'), 1);
    assert.equal(m.get('portwatch_listener_events_duplicates_total{source="ebpf"}'), undefined);
    assert.equal(m.get('portwatch_listener_events_rejected_total{reason="malformed"}'), 1);
    assert.equal(m.get('portwatch_listener_events_rejected_total{reason="invalid"}'), 1);
    assert.equal(m.get('portwatch_listener_events_rejected_total{reason="too_large"}'), 1);
    assert.equal(m.get('portwatch_listener_events_rejected_total{reason="unauthorized"}'), 0);
    assert.equal(m.get("portwatch_listener_ingest_duration_seconds_count"), 8);
    assert.equal(m.get('portwatch_listener_ingest_duration_seconds_bucket{le="+Inf"}'), 8);
    assert.ok(m.get("portwatch_listener_ingest_duration_seconds_sum")! > 0);
    const fsyncs = m.get("portwatch_listener_fsync_duration_seconds_count")!;
    assert.ok(fsyncs >= 1 && fsyncs <= 5, `${fsyncs} fsyncs for 5 stored batches`);
    const size = (await Deno.stat(store.options.path)).size;
    assert.equal(m.get("portwatch_listener_log_written_bytes_total"), size);
    assert.equal(m.get("portwatch_listener_log_size_bytes"), size);
    assert.equal(m.get("portwatch_listener_log_rotations_total"), 0);
    assert.equal(m.get("portwatch_listener_open_ports"), 7);
    assert.equal(m.get("portwatch_listener_stream_subscribers"), 0);
    assert.ok(m.get("process_resident_memory_bytes")! > 0, "the process's own memory is exported");
    assert.equal(
      m.get('portwatch_listener_http_requests_total{method="POST",route="/ingest",code="200"}'),
      5,
    );
    assert.equal(
      m.get('portwatch_listener_http_requests_total{method="POST",route="/ingest",code="422"}'),
      1,
    );
    assert.equal(
      m.get('portwatch_listener_http_requests_total{method="GET",route="unmatched",code="404"}'),
      1,
    );
    assert.equal(
      m.get('portwatch_listener_http_requests_total{method="GET",route="/metrics",code="200"}'),
      1,
    );
  });
});

Deno.test("listener /metrics: stream subscribers and rotations are read at scrape time", async () => {
  await withStore({ maxBytes: 600 }, async (store) => {
    const closing = new AbortController();
    const app = createApp(store, { bodyLimit: 1 << 20, heartbeatMs: 200, shutdown: closing.signal });
    const res = await app.request("/events/stream");
    const reader = res.body!.getReader();
    try {
      await reader.read(); // "retry: 1000": the stream is subscribed
      assert.equal((await scrape(app)).get("portwatch_listener_stream_subscribers"), 1);
      for (let i = 0; i < 4; i++) {
        assert.equal(
          (await app.request("/ingest", post(JSON.stringify(sampleEvent({ port: 6000 + i }))))).status,
          200,
        );
      }
      const m = await scrape(app);
      assert.ok(m.get("portwatch_listener_log_rotations_total")! >= 1);
      assert.ok(
        m.get("portwatch_listener_log_written_bytes_total")! > m.get("portwatch_listener_log_size_bytes")!,
      );
    } finally {
      closing.abort();
      await reader.cancel();
    }
    await waitUntil("the stream's subscriber to be gone", () => store.subscribers === 0, 5_000, 10);
    assert.equal((await scrape(app)).get("portwatch_listener_stream_subscribers"), 0);
  });
});

Deno.test("listener /metrics: behind LISTENER_TOKEN unless METRICS_PUBLIC; 401s on /ingest are counted", async () => {
  await withStore({}, async (store) => {
    const app = createApp(store, { bodyLimit: 1 << 20, token: "s3cret" });
    const denied = await app.request("/metrics");
    assert.equal(denied.status, 401);
    await denied.body?.cancel();
    assert.equal((await app.request("/ingest", post(JSON.stringify(sampleEvent())))).status, 401);
    const m = await scrape(app, { authorization: "Bearer s3cret" });
    assert.equal(m.get('portwatch_listener_events_rejected_total{reason="unauthorized"}'), 1);
    assert.equal(
      m.get('portwatch_listener_http_requests_total{method="GET",route="/metrics",code="401"}'),
      1,
    );

    const open = createApp(store, { bodyLimit: 1 << 20, token: "s3cret", metricsPublic: true });
    await scrape(open);
    const events = await open.request("/events");
    assert.equal(events.status, 401, "only /metrics is opened by METRICS_PUBLIC");
    await events.body?.cancel();
  });
});
