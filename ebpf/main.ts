/**
 * `deno task ebpf`: the event-driven watcher (libbpf, then Tracee, then bpftrace, then the polling fallback; see
 * start_engine.ts). Same delivery, spool, ids, snapshot and scope flags as `deno task watch`.
 * @module
 */
import { getLogger } from "@logtape/logtape";
import { ConfigError, type EnvSource } from "../infra/env.ts";
import { setupLogging } from "../infra/logging.ts";
import { sinkFromEnv } from "../delivery/delivery_config.ts";
import { loadWatcherConfig, WATCHER_USAGE } from "../watcher/config.ts";
import { loadEbpfConfig } from "./config.ts";
import { NoEngineError, startEngine } from "./start_engine.ts";
import { runUntilSignal } from "../watcher/run_until_signal.ts";
import { startMetricsServer, WatcherMetrics } from "../watcher/metrics.ts";
import type { MetricsServer } from "../infra/metrics.ts";

/** `--help` text. */
export const EBPF_USAGE = WATCHER_USAGE.replace("portwatch watcher", "portwatch ebpf watcher") + `
eBPF settings:
  EBPF_ENGINE       auto (libbpf, then Tracee, then bpftrace; default), libbpf, tracee, or bpftrace
  EBPF_FALLBACK     1 (default): fall back to polling (source "fallback") when no eBPF engine can run
  EBPF_ONLY         1: exit with an error when no eBPF engine can run
  EBPF_RECONCILE    seconds between reconciliation scans (default 30)
  EBPF_RING_KB      libbpf: the ring buffer's size in KiB, a power of two (default 1024)
  TRACE_EBPF_EVENTS Tracee events to trace; TRACEE_ARGS extra Tracee arguments
`;

/** Run until a signal; resolves with the exit code. */
export async function runEbpf(args: string[], env: EnvSource = Deno.env): Promise<number> {
  const metrics = new WatcherMetrics();
  let metricsServer: MetricsServer | undefined;
  try {
    const config = loadWatcherConfig(args, env);
    if (config === "help") {
      console.log(EBPF_USAGE);
      return 0;
    }
    const ebpf = loadEbpfConfig(env);
    await setupLogging(config.logLevel);
    metricsServer = startMetricsServer(config, metrics);
    const sink = metrics.countSink(await sinkFromEnv(env));
    const engine = await startEngine(config, ebpf, sink, env);
    metrics.watchStarted(engine);
    getLogger(["portwatch", "ebpf"]).info("watching {scope} with {describe}; events to {to}", {
      scope: config.allNetns ? "every network namespace on this host" : "this network namespace",
      describe: engine.describe,
      to: env.get("LISTENER_URL") || "stdout",
    });
    return await runUntilSignal(engine, async () => {
      await sink.close();
      await metricsServer?.shutdown();
    });
  } catch (e) {
    await metricsServer?.shutdown();
    if (e instanceof ConfigError || e instanceof NoEngineError) {
      console.error(`portwatch ebpf: ${e.message}`);
      return e instanceof ConfigError ? 2 : 1;
    }
    throw e;
  }
}

if (import.meta.main) Deno.exit(await runEbpf(Deno.args));
