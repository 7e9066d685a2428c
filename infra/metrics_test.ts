import assert from "node:assert/strict";
import { CONTENT_TYPE, Registry, serveMetrics } from "./metrics.ts";

Deno.test("metrics: a small registry is written exactly in the text format 0.0.4", () => {
  const r = new Registry();
  const requests = r.counter({
    name: "demo_requests_total",
    help: "Requests handled.\nSecond line with a \\ backslash.",
    labelNames: ["route", "code"],
  });
  const temp = r.gauge({ name: "demo_temperature_celsius", help: "Current temperature." });
  const latency = r.histogram({
    name: "demo_request_duration_seconds",
    help: "Request latency.",
    labelNames: ["route"],
    buckets: [0.1, 0.5, 1],
  });
  r.counter({
    name: "demo_collected_total",
    help: "Read at scrape time.",
    labelNames: ["kind"],
    collect: () => [{ labels: { kind: "a" }, value: 3 }, { labels: { kind: "b" }, value: 0.5 }],
  });
  r.gauge({ name: "demo_unlabelled_bytes", help: "A collected number.", collect: () => 1024 });
  r.counter({
    name: "demo_untouched_total",
    help: "Labelled, no series yet: not written.",
    labelNames: ["x"],
  });

  requests.inc({ route: "/ingest", code: 200 });
  requests.inc({ route: "/ingest", code: 200 }, 2);
  requests.inc({ route: 'a "quoted"\\path\nnext', code: "404" });
  temp.set(undefined, -3.5);
  latency.observe({ route: "/ingest" }, 0.05);
  latency.observe({ route: "/ingest" }, 0.1); // on a bound: counted in that bucket (le is <=)
  latency.observe({ route: "/ingest" }, 0.7);
  latency.observe({ route: "/ingest" }, 3);

  assert.equal(
    r.expose(),
    [
      "# HELP demo_requests_total Requests handled.\\nSecond line with a \\\\ backslash.",
      "# TYPE demo_requests_total counter",
      'demo_requests_total{route="/ingest",code="200"} 3',
      'demo_requests_total{route="a \\"quoted\\"\\\\path\\nnext",code="404"} 1',
      "# HELP demo_temperature_celsius Current temperature.",
      "# TYPE demo_temperature_celsius gauge",
      "demo_temperature_celsius -3.5",
      "# HELP demo_request_duration_seconds Request latency.",
      "# TYPE demo_request_duration_seconds histogram",
      'demo_request_duration_seconds_bucket{route="/ingest",le="0.1"} 2',
      'demo_request_duration_seconds_bucket{route="/ingest",le="0.5"} 2',
      'demo_request_duration_seconds_bucket{route="/ingest",le="1"} 3',
      'demo_request_duration_seconds_bucket{route="/ingest",le="+Inf"} 4',
      'demo_request_duration_seconds_sum{route="/ingest"} 3.85',
      'demo_request_duration_seconds_count{route="/ingest"} 4',
      "# HELP demo_collected_total Read at scrape time.",
      "# TYPE demo_collected_total counter",
      'demo_collected_total{kind="a"} 3',
      'demo_collected_total{kind="b"} 0.5',
      "# HELP demo_unlabelled_bytes A collected number.",
      "# TYPE demo_unlabelled_bytes gauge",
      "demo_unlabelled_bytes 1024",
      "",
    ].join("\n"),
  );
});

Deno.test("metrics: unlabelled metrics exist at zero; special values; conventions are enforced", () => {
  const r = new Registry();
  r.counter({ name: "a_total", help: "A." });
  r.histogram({ name: "b_seconds", help: "B.", buckets: [1] });
  const g = r.gauge({ name: "c", help: "C.", labelNames: ["k"] });
  g.set({ k: "inf" }, Infinity);
  g.set({ k: "nan" }, NaN);
  g.set({ k: "neg" }, -Infinity);
  assert.equal(
    r.expose(),
    [
      "# HELP a_total A.",
      "# TYPE a_total counter",
      "a_total 0",
      "# HELP b_seconds B.",
      "# TYPE b_seconds histogram",
      'b_seconds_bucket{le="1"} 0',
      'b_seconds_bucket{le="+Inf"} 0',
      "b_seconds_sum 0",
      "b_seconds_count 0",
      "# HELP c C.",
      "# TYPE c gauge",
      'c{k="inf"} +Inf',
      'c{k="nan"} NaN',
      'c{k="neg"} -Inf',
      "",
    ].join("\n"),
  );
  assert.throws(() => r.counter({ name: "no_suffix", help: "" }), /must end in _total/);
  assert.throws(() => r.gauge({ name: "bad-name", help: "" }), /invalid metric name/);
  assert.throws(() => r.gauge({ name: "d", help: "", labelNames: ["__x"] }), /invalid label name/);
  assert.throws(() => r.histogram({ name: "e", help: "", labelNames: ["le"] }), /invalid label name/);
  assert.throws(() => r.histogram({ name: "f", help: "", buckets: [2, 1] }), /ascending/);
  assert.throws(() => r.counter({ name: "a_total", help: "" }), /already registered/);
  assert.throws(() => r.gauge({ name: "b_seconds_count", help: "" }), /already registered/);
  assert.throws(() => g.set({ k: "x", other: "y" }, 1), /labels \{k,other\} given, \{k\} declared/);
  assert.throws(() => g.set(undefined, 1), /labels \{\} given/);
  const c = r.counter({ name: "g_total", help: "" });
  assert.throws(() => c.inc(undefined, -1), /cannot decrease/);
});

Deno.test("metrics: serveMetrics answers GET /metrics on loopback, 404 elsewhere", async () => {
  const r = new Registry();
  r.counter({ name: "served_total", help: "S." }).inc(undefined, 7);
  const m = serveMetrics(0, "127.0.0.1", r);
  try {
    assert.match(m.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    const res = await fetch(`${m.url}/metrics`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("content-type"), CONTENT_TYPE);
    assert.equal(await res.text(), "# HELP served_total S.\n# TYPE served_total counter\nserved_total 7\n");
    const root = await fetch(`${m.url}/`);
    assert.equal(root.status, 404);
    await root.body?.cancel();
    const post = await fetch(`${m.url}/metrics`, { method: "POST" });
    assert.equal(post.status, 405);
    await post.body?.cancel();
  } finally {
    await m.shutdown();
  }
  // The port is taken: the bind error surfaces to the caller.
  const busy = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    assert.throws(
      () => serveMetrics((busy.addr as Deno.NetAddr).port, "127.0.0.1", r),
      Deno.errors.AddrInUse,
    );
  } finally {
    busy.close();
  }
});
