/** The listener program: `deno task listen`. */
import { getLogger } from "@logtape/logtape";
import { ConfigError, firstSet, parseBool } from "../events/env.ts";
import { setupLogging } from "../events/logging.ts";
import { loadConfig, USAGE } from "./config.ts";
import { EventStore } from "./store.ts";
import { createApp } from "./app.ts";

/** A running listener. */
export interface RunningListener {
  url: string;
  store: EventStore;
  server: Deno.HttpServer<Deno.NetAddr>;
  /** Stop taking requests, finish pending writes, close the log. */
  shutdown(): Promise<void>;
}

/** Start a listener from flags and environment. */
export async function startListener(args: string[], env = Deno.env): Promise<RunningListener | undefined> {
  const config = loadConfig(args, env);
  if (config === "help") {
    console.log(USAGE);
    return undefined;
  }
  await setupLogging(config.logLevel);
  const log = getLogger(["portwatch", "listener"]);
  const { store, report } = await EventStore.open({
    path: config.logPath,
    fsync: config.fsync,
    maxBytes: config.maxBytes,
    keep: config.keep,
    dedupeWindow: config.dedupeWindow,
    recentSize: config.recentSize,
  });
  if (report.recovery.movedBytes > 0) {
    log.warn("the log ended in a torn line (a crash mid-write): moved {bytes} bytes to {path}", {
      bytes: report.recovery.movedBytes,
      path: report.recovery.corruptPath,
    });
  }
  const closing = new AbortController();
  const metricsPublic = firstSet(env, "METRICS_PUBLIC");
  const app = createApp(store, {
    bodyLimit: config.bodyLimit,
    token: config.token,
    shutdown: closing.signal,
    // METRICS_PUBLIC=1: GET /metrics without LISTENER_TOKEN, like /healthz (Prometheus practice).
    metricsPublic: metricsPublic ? parseBool(metricsPublic.name, metricsPublic.value) : false,
  });
  const server = Deno.serve({
    hostname: config.host,
    port: config.port,
    onListen: () => {},
  }, app.fetch);
  const url = `http://${
    server.addr.hostname.includes(":") ? `[${server.addr.hostname}]` : server.addr.hostname
  }:${server.addr.port}`;
  log.info(
    "listening on {url}; log {path} ({indexed} events read back), fsync {fsync}, body limit {limit} bytes",
    {
      url,
      path: config.logPath,
      indexed: report.indexed,
      fsync: config.fsync ? "on (group commit)" : "off",
      limit: config.bodyLimit,
    },
  );
  if (!config.token) {
    log.warn(
      "LISTENER_TOKEN is not set: the listener is open, anyone who can reach {url} may post and read events",
      {
        url,
      },
    );
  }
  // A machine-readable line for supervisors and tests that start us with --port 0.
  console.log(JSON.stringify({ listening: url }));
  return {
    url,
    store,
    server,
    async shutdown() {
      closing.abort();
      await server.shutdown();
      await store.close();
    },
  };
}

if (import.meta.main) {
  try {
    const running = await startListener(Deno.args);
    if (running) {
      const stop = async (signal: string) => {
        getLogger(["portwatch", "listener"]).info("{signal}: finishing pending writes and stopping", {
          signal,
        });
        await running.shutdown();
        Deno.exit(0);
      };
      for (const s of ["SIGTERM", "SIGINT"] as const) Deno.addSignalListener(s, () => stop(s));
    }
  } catch (e) {
    if (e instanceof ConfigError) {
      console.error(`portwatch listener: ${e.message}`);
      Deno.exit(2);
    }
    throw e;
  }
}
