import assert from "node:assert/strict";
import { loadWatcherConfig, type WatcherConfig } from "./config.ts";
import { scanSchedule } from "./polling_engine.ts";
import { ConfigError, envOf } from "../infra/env.ts";

const load = (env: Record<string, string>, args: string[] = []) =>
  loadWatcherConfig(args, envOf(env)) as WatcherConfig;

Deno.test("watcher config: the seed's names and defaults", () => {
  const c = load({});
  assert.deepEqual([c.intervalMs, c.burstScans, c.burstDelayMs, c.backend, c.graceMs, c.allNetns], [
    1000,
    1,
    20,
    "auto",
    0,
    false,
  ]);
  const hf = load({
    SCAN_INTERVAL: "1",
    BURST_SCANS: "5",
    BURST_DELAY: "0.02",
    USE_PROC: "1",
    CLOSE_GRACE_MS: "250",
  });
  assert.deepEqual([hf.burstScans, hf.burstDelayMs, hf.backend, hf.graceMs], [5, 20, "proc", 250]);
  assert.equal(load({ USE_PROC: "0" }).backend, "ss");
  assert.equal(load({ DESIRED_PORTS: "3000,5000-5002" }).ports?.toString(), "3000,5000-5002");
  assert.equal(load({ WATCH_SCOPE: "host" }).allNetns, true);
  assert.equal(load({}, ["--all-netns"]).allNetns, true);
  assert.equal(load({ SCAN_INTERVAL: "0.05" }).intervalMs, 50);
});

Deno.test("watcher config: every bad value names the variable, the value and what is accepted", () => {
  for (
    const [env, name, re] of [
      [{ SCAN_INTERVAL: "abc" }, "SCAN_INTERVAL", /seconds/],
      [{ WATCH_PORTS: "70000" }, "WATCH_PORTS", /1-65535/],
      [{ WATCH_PORTS: "9-3" }, "WATCH_PORTS", /backwards/],
      [{ BURST_SCANS: "-1" }, "BURST_SCANS", /whole number/],
      [{ USE_PROC: "maybe" }, "USE_PROC", /1, true/],
      [{ CLOSE_GRACE_MS: "1.5" }, "CLOSE_GRACE_MS", /whole number/],
      [{ WATCH_SCOPE: "world" }, "WATCH_SCOPE", /host/],
    ] as const
  ) {
    assert.throws(() => load(env as Record<string, string>), (e: unknown) => {
      assert.ok(e instanceof ConfigError, String(e));
      assert.equal(e.setting, name);
      assert.match(e.message, re);
      return true;
    });
  }
  assert.throws(() => load({}, ["--bogus"]), ConfigError);
});

Deno.test("scanSchedule: the seed's burst (BURST_SPREAD=0) and the default spread of the same scans", () => {
  const hf = { intervalMs: 1000, burstScans: 5, burstDelayMs: 20 };
  assert.deepEqual(scanSchedule({ ...hf, burstSpread: false }), {
    offsets: [0, 20, 40, 60, 80],
    cycleMs: 1080,
  });
  assert.deepEqual(scanSchedule({ ...hf, burstSpread: true }), {
    offsets: [0, 200, 400, 600, 800],
    cycleMs: 1000,
  });
  // BURST_DELAY stays the least gap: 5 scans 300 ms apart do not fit in 1 s, so the cycle grows.
  assert.deepEqual(scanSchedule({ intervalMs: 1000, burstScans: 5, burstDelayMs: 300, burstSpread: true }), {
    offsets: [0, 300, 600, 900, 1200],
    cycleMs: 1500,
  });
  assert.deepEqual(scanSchedule({ intervalMs: 1000, burstScans: 1, burstDelayMs: 20, burstSpread: true }), {
    offsets: [0],
    cycleMs: 1000,
  });
});
