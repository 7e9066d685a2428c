import assert from "node:assert/strict";
import { envOf } from "../infra/env.ts";
import { HttpSink } from "../delivery/http_sink.ts";
import { StdoutSink } from "../delivery/sink.ts";
import { freePort } from "../testing/port.ts";
import { waitUntil } from "../infra/wait.ts";
import type { PortEvent } from "../events/schema.ts";
import { loadWatcherConfig } from "./config.ts";
import { WatcherMetrics } from "./metrics.ts";
import { PollingEngine } from "./polling_engine.ts";
import { WatcherProc } from "./testing/watcher_proc.ts";

/** `name{labels}` → value, from the text format. */
function parse(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const m = /^(\S+?(?:\{.*\})?) (\S+)$/.exec(line);
    assert.ok(m, `not a sample line: ${line}`);
    out.set(m[1], Number(m[2]));
  }
  return out;
}

async function withTemp(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "portwatch-metrics-test-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test({
  name: "watcher metrics: a real watcher process serves /metrics on METRICS_PORT; scans and events move",
  async fn() {
    await withTemp(async (dir) => {
      const port = freePort();
      const w = WatcherProc.start({
        METRICS_PORT: String(port),
        SCAN_INTERVAL: "0.1",
        SNAPSHOT_PATH: `${dir}/snapshot`,
        SPOOL_PATH: `${dir}/spool`,
        LOG_LEVEL: "info",
      });
      const held = Deno.listen({ hostname: "127.0.0.1", port: 0 });
      const heldPort = (held.addr as Deno.NetAddr).port;
      try {
        await w.waitLog(/Prometheus metrics at http:\/\/127\.0\.0\.1:\d+\/metrics/);
        const scrape = async () => {
          const res = await fetch(`http://127.0.0.1:${port}/metrics`);
          assert.equal(res.status, 200);
          assert.equal(res.headers.get("content-type"), "text/plain; version=0.0.4; charset=utf-8");
          return parse(await res.text());
        };
        let first = new Map<string, number>();
        await waitUntil(
          "two scans",
          async () => ((first = await scrape()).get("portwatch_watcher_scans_total") ?? 0) >= 2,
        );
        await w.waitFor(
          "the open of the test's port",
          (e: PortEvent) => e.event === "open" && e.port === heldPort,
        );
        let later = new Map<string, number>();
        await waitUntil(
          "more scans",
          async () =>
            ((later = await scrape()).get("portwatch_watcher_scans_total") ?? 0) >
              first.get("portwatch_watcher_scans_total")! + 2,
        );
        const scans = later.get("portwatch_watcher_scans_total")!;
        const count = later.get("portwatch_watcher_scan_duration_seconds_count")!;
        assert.ok(Math.abs(count - scans) <= 1, `histogram count ${count} vs scans ${scans}`);
        assert.ok(later.get('portwatch_watcher_scan_duration_seconds_bucket{le="+Inf"}')! >= count - 1);
        assert.ok(later.get("portwatch_watcher_scan_duration_seconds_sum")! > 0);
        assert.equal(later.get("portwatch_watcher_scan_errors_total"), 0);
        const info = [...later].filter(([k]) => k.startsWith("portwatch_engine_info{"));
        assert.equal(info.length, 1, JSON.stringify(info));
        assert.match(info[0][0], /^portwatch_engine_info\{engine="(netlink|proc)"\}$/);
        assert.equal(info[0][1], 1);
        assert.ok(later.get('portwatch_watcher_events_total{event="open",source="polling"}')! >= 1);
        // Events go to stdout: no delivery metrics; a polling watcher: no eBPF metrics.
        assert.deepEqual([...later.keys()].filter((k) => /^portwatch_(delivery|ebpf)_/.test(k)), []);
        const status = await w.stop();
        assert.equal(status.code, 0, w.stderr.join("\n"));
      } finally {
        held.close();
        await w.stop().catch(() => {});
      }
    });
  },
});

Deno.test("watcher metrics: a bad or busy METRICS_PORT stops start-up with a clear error", async () => {
  await withTemp(async (dir) => {
    const env = { SNAPSHOT_PATH: `${dir}/snapshot`, SPOOL_PATH: `${dir}/spool` };
    const bad = WatcherProc.start({ ...env, METRICS_PORT: "http" });
    assert.equal((await bad.exited()).code, 2);
    assert.match(
      bad.stderr.join("\n"),
      /portwatch watcher: METRICS_PORT="http" is not valid: expected a whole number from 1 to 65535/,
    );
    const busy = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    try {
      const taken = (busy.addr as Deno.NetAddr).port;
      const w = WatcherProc.start({ ...env, METRICS_PORT: String(taken) });
      assert.equal((await w.exited()).code, 2);
      assert.match(
        w.stderr.join("\n"),
        new RegExp(`METRICS_PORT="${taken}" is not valid: expected a port free on 127\\.0\\.0\\.1`),
      );
    } finally {
      busy.close();
    }
  });
  const cfg = (vars: Record<string, string>) => loadWatcherConfig([], envOf(vars));
  assert.throws(() => cfg({ METRICS_PORT: "70000" }), /METRICS_PORT="70000" is not valid/);
  assert.throws(() => cfg({ METRICS_HOST: "not a host" }), /METRICS_HOST="not a host" is not valid/);
  const ok = cfg({ METRICS_PORT: "9464" });
  assert.ok(ok !== "help" && ok.metricsPort === 9464 && ok.metricsHost === "127.0.0.1");
  const v6 = cfg({ METRICS_PORT: "9464", METRICS_HOST: "::1" });
  assert.ok(v6 !== "help" && v6.metricsHost === "::1");
});

Deno.test("watcher metrics: delivery and eBPF counters are read at scrape time", async () => {
  await withTemp(async (dir) => {
    const metrics = new WatcherMetrics();
    // Nothing listens on port 1: every event is spooled and a retry is scheduled.
    const http = await HttpSink.open({ url: "http://127.0.0.1:1", spoolDir: `${dir}/spool`, fsync: false });
    const sink = metrics.countSink(http);
    const config = loadWatcherConfig([], envOf({ SNAPSHOT_PATH: `${dir}/snapshot` }));
    assert.ok(config !== "help");
    const { pipeline } = new PollingEngine({ config, sink: new StdoutSink(), env: envOf({}) });
    const ebpf = {
      stats: { events: 12, reconciles: 3, drift: 2 },
      options: { source: { name: "bpftrace", lost: 5 } },
      ledger: { lateOpens: 1 },
    };
    metrics.watchStarted({ pipeline, ebpf });
    try {
      const event = (kind: "open" | "close", port: number) =>
        ({ event: kind, port, source: "ebpf", id: crypto.randomUUID() }) as unknown as PortEvent;
      await sink.send([event("open", 7001), event("open", 7002), event("close", 7001)]);
      await pipeline.scan();
      const m = parse(metrics.registry.expose());
      assert.equal(m.get('portwatch_engine_info{engine="bpftrace"}'), 1);
      assert.ok(m.get("process_resident_memory_bytes")! > 0, "the process's own memory is exported");
      assert.equal(m.get('portwatch_watcher_events_total{event="open",source="ebpf"}'), 2);
      assert.equal(m.get('portwatch_watcher_events_total{event="close",source="ebpf"}'), 1);
      assert.equal(m.get("portwatch_watcher_scans_total"), 1);
      assert.equal(m.get("portwatch_watcher_scan_duration_seconds_count"), 1);
      assert.equal(m.get("portwatch_delivery_events_sent_total"), 0);
      assert.equal(m.get("portwatch_delivery_events_spooled_total"), 3);
      assert.equal(m.get("portwatch_delivery_spool_events"), 3);
      assert.ok(m.get("portwatch_delivery_spool_bytes")! > 0);
      assert.ok(m.get("portwatch_delivery_retries_total")! >= 1);
      assert.equal(m.get("portwatch_delivery_events_dead_lettered_total"), 0);
      assert.equal(m.get("portwatch_ebpf_events_total"), 12);
      assert.equal(m.get("portwatch_ebpf_reconciliations_total"), 3);
      assert.equal(m.get("portwatch_ebpf_drift_sockets_total"), 2);
      assert.equal(m.get("portwatch_ebpf_lost_events_total"), 5);
      assert.equal(m.get("portwatch_ebpf_late_opens_total"), 1);
      ebpf.stats.drift = 4; // read again at the next scrape
      ebpf.options.source.lost = 6;
      const again = parse(metrics.registry.expose());
      assert.equal(again.get("portwatch_ebpf_drift_sockets_total"), 4);
      assert.equal(again.get("portwatch_ebpf_lost_events_total"), 6);
    } finally {
      await sink.close();
      await pipeline.shutdown();
    }
  });
});
