/** The polling watcher program: `deno task watch`. */
import { getLogger } from "@logtape/logtape";
import { ConfigError } from "../infra/env.ts";
import { setupLogging } from "../infra/logging.ts";
import { sinkFromEnv } from "../delivery/delivery_config.ts";
import type { EventSink } from "../delivery/sink.ts";
import { loadWatcherConfig, WATCHER_USAGE } from "./config.ts";
import { PollingEngine } from "./polling_engine.ts";
import { runUntilSignal } from "./run_until_signal.ts";
import { startMetricsServer, WatcherMetrics } from "./metrics.ts";
import type { MetricsServer } from "../infra/metrics.ts";

/** Run the watcher until a signal; resolves with the exit code. */
export async function runWatcher(args: string[], env = Deno.env): Promise<number> {
  let config;
  let sink: EventSink;
  const metrics = new WatcherMetrics();
  let metricsServer: MetricsServer | undefined;
  try {
    config = loadWatcherConfig(args, env);
    if (config === "help") {
      console.log(WATCHER_USAGE);
      return 0;
    }
    await setupLogging(config.logLevel);
    metricsServer = startMetricsServer(config, metrics);
    sink = metrics.countSink(await sinkFromEnv(env));
  } catch (e) {
    await metricsServer?.shutdown();
    if (e instanceof ConfigError) {
      console.error(`portwatch watcher: ${e.message}`);
      return 2;
    }
    throw e;
  }
  const log = getLogger(["portwatch", "watcher"]);
  const engine = new PollingEngine({ config, sink, env });
  metrics.watchPipeline(engine.pipeline);
  await engine.start();
  const who = engine.pipeline.identity;
  log.info(
    "watching {scope} with {backend}; host {host}, container {container}; every {interval} s, {burst} scan(s) " +
      "{delay} s apart{ports}; events to {to}",
    {
      scope: config.allNetns ? "every network namespace on this host" : "this network namespace",
      backend: engine.backend,
      host: who.host,
      container: who.container_name ?? who.container_id ?? "none",
      interval: config.intervalMs / 1000,
      burst: config.burstScans,
      delay: config.burstDelayMs / 1000,
      ports: config.ports ? `, ports ${config.ports}` : "",
      to: env.get("LISTENER_URL") || "stdout",
    },
  );
  return await runUntilSignal(engine, async () => {
    await sink.close();
    await metricsServer?.shutdown();
  });
}

if (import.meta.main) Deno.exit(await runWatcher(Deno.args));
