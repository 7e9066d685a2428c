import assert from "node:assert/strict";
import { Registry } from "./metrics.ts";
import { registerProcessMetrics } from "./process_metrics.ts";

Deno.test("process metrics: RSS, CPU seconds and the V8 heap, read at scrape time", () => {
  const r = new Registry();
  registerProcessMetrics(r);
  const value = (name: string) => {
    const line = r.expose().split("\n").find((l) => l.startsWith(`${name} `));
    assert.ok(line, `${name} is exposed`);
    return Number(line.slice(name.length + 1));
  };
  const rss = value("process_resident_memory_bytes");
  assert.ok(rss > 10 * 1024 * 1024 && rss < 4 * 1024 ** 3, `RSS ${rss}`);
  const cpu0 = value("process_cpu_seconds_total");
  const until = performance.now() + 30;
  while (performance.now() < until) { /* burn CPU */ }
  const cpu1 = value("process_cpu_seconds_total");
  assert.ok(cpu1 > cpu0 && cpu1 - cpu0 < 5, `CPU ${cpu0} -> ${cpu1}`);
  const used = value('portwatch_v8_heap_bytes{kind="used"}');
  const total = value('portwatch_v8_heap_bytes{kind="total"}');
  assert.ok(used > 0 && used <= total, `heap used ${used} of ${total}`);
  assert.match(r.expose(), /# TYPE process_cpu_seconds_total counter/);
});
