/**
 * `deno task start`: the main job, one command on a fresh machine, no Docker. The listener (127.0.0.1:8080,
 * log ./logs/portwatcher.log) and a watcher of this host: the eBPF engine where it can run (root; libbpf, else bpftrace),
 * else polling, saying which. Events go from the engine into the listener's store in-process. Ctrl-C shuts down
 * gracefully: the shutdown closes are stored before exit.
 *
 * Flags are the listener's (--port, --host, --log-path, ...); watcher settings are the environment variables
 * of `deno task watch` / `deno task ebpf`.
 * @module
 */
import { getLogger } from "@logtape/logtape";
import { ConfigError } from "./infra/env.ts";
import { ListenError } from "./infra/listen_error.ts";
import { type RunningListener, startListener } from "./listener/main.ts";
import { StoreSink } from "./listener/store_sink.ts";
import { loadWatcherConfig } from "./watcher/config.ts";
import { runUntilSignal } from "./watcher/run_until_signal.ts";
import { loadEbpfConfig } from "./ebpf/config.ts";
import { NoEngineError, startEngine } from "./ebpf/start_engine.ts";
import { startMetricsServer, WatcherMetrics } from "./watcher/metrics.ts";
import type { MetricsServer } from "./infra/metrics.ts";

/** Run the embedded stack until a signal; resolves with the exit code. */
export async function runStart(args: string[], env = Deno.env): Promise<number> {
  const allNetns = args.includes("--all-netns");
  const listenerArgs = args.filter((a) => a !== "--all-netns");
  // The listener serves its own metrics at /metrics; the watcher's are on METRICS_PORT when it is set.
  const metrics = new WatcherMetrics();
  let metricsServer: MetricsServer | undefined;
  let listener: RunningListener | undefined;
  try {
    const config = loadWatcherConfig(allNetns ? ["--all-netns"] : [], env);
    if (config === "help") return 0;
    const ebpf = loadEbpfConfig(env);
    // first, before any watcher: LISTENER_PORT in use (a ListenError) stops us with nothing started
    listener = await startListener(listenerArgs, env);
    if (!listener) return 0; // --help
    const running = listener;
    metricsServer = startMetricsServer(config, metrics);
    const engine = await startEngine(
      config,
      ebpf,
      metrics.countSink(new StoreSink(running.store, running.verdicts)),
      env,
    );
    metrics.watchStarted(engine);
    getLogger(["portwatch", "start"]).info(
      "portwatch is running: listener {url}, log {log}; watching {scope} with {describe}. Ctrl-C stops it.",
      {
        url: running.url,
        log: running.store.options.path,
        scope: config.allNetns ? "every network namespace on this host" : "this host's network namespace",
        describe: engine.describe,
      },
    );
    return await runUntilSignal(engine, async () => {
      listener = undefined; // shut down here, not again below
      await running.shutdown();
      await metricsServer?.shutdown();
    });
  } catch (e) {
    // a start that fails half-way (METRICS_PORT in use, no engine) stops what it started
    await metricsServer?.shutdown();
    await listener?.shutdown().catch(() => {}); // the first error is the one to report
    if (e instanceof ConfigError || e instanceof NoEngineError || e instanceof ListenError) {
      console.error(`portwatch: ${e.message}`);
      return e instanceof ConfigError ? 2 : 1;
    }
    throw e;
  }
}

if (import.meta.main) Deno.exit(await runStart(Deno.args));
