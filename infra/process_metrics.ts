/**
 * The process's own resources as Prometheus metrics (the client-library names: `process_*`, plus the V8 heap),
 * read at scrape time, for sizing a listener or a watcher: resident memory grows with busy connections.
 * @module
 */
import process from "node:process";
import type { Registry } from "./metrics.ts";

/** Register `process_resident_memory_bytes`, `process_cpu_seconds_total` and the V8 heap gauges. */
export function registerProcessMetrics(registry: Registry): void {
  registry.gauge({
    name: "process_resident_memory_bytes",
    help: "Resident memory (RSS) of this process.",
    collect: () => Deno.memoryUsage().rss,
  });
  registry.counter({
    name: "process_cpu_seconds_total",
    help: "CPU time of this process, user and system.",
    collect: () => {
      const { user, system } = process.cpuUsage();
      return (user + system) / 1e6;
    },
  });
  registry.gauge({
    name: "portwatch_v8_heap_bytes",
    help:
      "V8 heap of this process: `used` by objects not yet collected, `total` reserved, `external` held outside it (ArrayBuffers).",
    labelNames: ["kind"],
    collect: () => {
      const m = Deno.memoryUsage();
      return [
        { labels: { kind: "used" }, value: m.heapUsed },
        { labels: { kind: "total" }, value: m.heapTotal },
        { labels: { kind: "external" }, value: m.external },
      ];
    },
  });
}
