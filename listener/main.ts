/** The listener program: `deno task listen`. */
import { getLogger } from "@logtape/logtape";
import { ConfigError, firstSet, parseBool } from "../infra/env.ts";
import { setupLogging } from "../infra/logging.ts";
import { ListenError, listenError, type ListenSettings } from "../infra/listen_error.ts";
import { loadConfig, USAGE } from "./config.ts";
import { EventStore } from "./file/store.ts";
import type { PgStore } from "./pg/store.ts";
import { redactUrl } from "./pg/url.ts";
import { createApp, INGEST_BYTES, PG_INGEST_BYTES } from "./app.ts";
import { createListenerMetrics } from "./metrics.ts";
import { startPolicyStage } from "./policy_stage.ts";
import type { Verdicts } from "./verdicts.ts";
import type { ListenerConfig } from "./config.ts";

/** A running listener. */
export interface RunningListener {
  url: string;
  /** The file store (default) or the PostgreSQL store (STORE_URL). */
  store: EventStore | PgStore;
  server: Deno.HttpServer<Deno.NetAddr>;
  /** The policy's verdicts (POLICY_PATH), for in-process ingest (`deno task start`'s StoreSink). */
  verdicts?: Verdicts;
  /** Stop taking requests, finish pending writes, close the log. */
  shutdown(): Promise<void>;
}

/**
 * Start a listener from flags and environment. Throws ConfigError on a bad setting and ListenError (the store
 * closed again) when it cannot bind its address, e.g. LISTENER_PORT in use.
 */
export async function startListener(args: string[], env = Deno.env): Promise<RunningListener | undefined> {
  const config = loadConfig(args, env);
  if (config === "help") {
    console.log(USAGE);
    return undefined;
  }
  await setupLogging(config.logLevel);
  const log = getLogger(["portwatch", "listener"]);
  const { store, describe } = await openStore(config);
  const closing = new AbortController();
  const metrics = createListenerMetrics(store);
  const judging = config.policyPath
    ? await startPolicyStage({ ...config, policyPath: config.policyPath }, store, metrics.registry).catch(
      async (e) => {
        await store.close();
        throw e;
      },
    )
    : undefined;
  const metricsPublic = firstSet(env, "METRICS_PUBLIC");
  const app = createApp(store, {
    bodyLimit: config.bodyLimit,
    token: config.token,
    shutdown: closing.signal,
    // METRICS_PUBLIC=1: GET /metrics without LISTENER_TOKEN, like /healthz (Prometheus practice).
    metricsPublic: metricsPublic ? parseBool(metricsPublic.name, metricsPublic.value) : false,
    // PostgreSQL commits take milliseconds over a socket and hold nothing of the records once sent: a group
    // commit should carry many requests, not the file store's memory-bounded few.
    ingestBytes: config.storeUrl ? PG_INGEST_BYTES : INGEST_BYTES,
    verdicts: judging?.verdicts,
    metrics,
    alerts: judging?.alerts,
  });
  let server: Deno.HttpServer<Deno.NetAddr>;
  try {
    server = Deno.serve({
      hostname: config.host,
      port: config.port,
      onListen: () => {},
    }, app.fetch);
  } catch (e) {
    // the port is taken (or not ours to take): close the store and say so in one line, no stack trace
    closing.abort();
    await judging?.close();
    await store.close();
    throw listenError(e, config.host, config.port, listenSettings(args)) ?? e;
  }
  const url = `http://${
    server.addr.hostname.includes(":") ? `[${server.addr.hostname}]` : server.addr.hostname
  }:${server.addr.port}`;
  log.info("listening on {url}; {store}, body limit {limit} bytes", {
    url,
    store: describe,
    limit: config.bodyLimit,
  });
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
    verdicts: judging?.verdicts,
    async shutdown() {
      closing.abort();
      await server.shutdown();
      await judging?.close(); // before the store: the PostgreSQL alert queue uses its connections
      await store.close();
    },
  };
}

/** Where the listener's host and port came from: the flag when given, else the variable. */
function listenSettings(args: string[]): ListenSettings {
  const given = (flag: string) => args.some((a) => a === flag || a.startsWith(`${flag}=`));
  return {
    host: given("--host") ? "--host" : "LISTENER_HOST",
    port: given("--port") ? "--port" : "LISTENER_PORT",
  };
}

/** Open the store the config asks for; logs what the file store's recovery found. */
async function openStore(config: ListenerConfig): Promise<{ store: EventStore | PgStore; describe: string }> {
  const log = getLogger(["portwatch", "listener"]);
  if (config.storeUrl) {
    const where = redactUrl(config.storeUrl);
    // Loaded only when asked for: a file-store listener never pays for the PostgreSQL client in memory.
    const { PgStore } = await import("./pg/store.ts");
    const { store, report } = await PgStore.open({
      url: config.storeUrl,
      retentionDays: config.retentionDays,
      path: where,
      onError: (what, e) =>
        log.warn("PostgreSQL store: {what} failed, retrying: {error}", { what, error: String(e) }),
    });
    if (report.migrated.length > 0) {
      log.info("PostgreSQL store: applied schema migrations {versions}", {
        versions: report.migrated.join(", "),
      });
    }
    const retention = config.retentionDays > 0 ? `retention ${config.retentionDays} days` : "kept forever";
    return { store, describe: `PostgreSQL store ${where} (events ${retention}, group commit)` };
  }
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
  return {
    store,
    describe: `file store: log ${config.logPath} (${report.indexed} events read back), fsync ${
      config.fsync ? "on (group commit)" : "off"
    }`,
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
    if (e instanceof ListenError) {
      console.error(`portwatch listener: ${e.message}`);
      Deno.exit(1);
    }
    if (e instanceof Error && e.name === "StoreOpenError") { // pg/store.ts, loaded only with STORE_URL
      console.error(`portwatch listener: ${e.message}`);
      Deno.exit(1);
    }
    throw e;
  }
}
