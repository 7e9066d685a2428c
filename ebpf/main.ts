/**
 * `deno task ebpf`: the event-driven watcher. Tries Tracee, then bpftrace; with EBPF_FALLBACK=1 (default) falls
 * back to the polling engine (source "fallback") and says why; with EBPF_ONLY=1 exits with an error instead.
 * @module
 */
import { getLogger } from "@logtape/logtape";
import { ConfigError } from "../events/env.ts";
import { setupLogging } from "../events/logging.ts";
import { sinkFromEnv } from "../events/delivery_config.ts";
import type { EventSink } from "../events/sink.ts";
import { loadWatcherConfig, WATCHER_USAGE, type WatcherConfig } from "../watcher/config.ts";
import { PollingEngine } from "../watcher/engine.ts";
import { type EbpfConfig, loadEbpfConfig } from "./config.ts";
import { EngineUnavailableError, type SocketEventSource } from "./event_source.ts";
import { startBpftrace } from "./bpftrace_source.ts";
import { startTraceeSource } from "./tracee_source.ts";
import { EventEngine } from "./event_engine.ts";

const USAGE = WATCHER_USAGE.replace("portwatch watcher", "portwatch ebpf watcher") + `
eBPF settings:
  EBPF_ENGINE       auto (Tracee, then bpftrace; default), tracee, or bpftrace
  EBPF_FALLBACK     1 (default): fall back to polling (source "fallback") when no eBPF engine can run
  EBPF_ONLY         1: exit with an error when no eBPF engine can run
  EBPF_RECONCILE    seconds between reconciliation scans (default 30)
  TRACE_EBPF_EVENTS Tracee events to trace; TRACEE_ARGS extra Tracee arguments
`;

/** Try the engines in order; the first that starts wins. Returns the source, or the reasons none could. */
async function startSource(cfg: EbpfConfig, env: Deno.Env): Promise<SocketEventSource | string[]> {
  const reasons: string[] = [];
  const order = cfg.engine === "auto" ? ["tracee", "bpftrace"] : [cfg.engine];
  for (const name of order) {
    try {
      return name === "tracee" ? await startTraceeSource(env) : await startBpftrace();
    } catch (e) {
      if (!(e instanceof EngineUnavailableError)) throw e;
      reasons.push(e.message);
    }
  }
  return reasons;
}

/** Run until a signal; resolves with the exit code. */
export async function runEbpf(args: string[], env = Deno.env): Promise<number> {
  let config: WatcherConfig;
  let ebpf: EbpfConfig;
  try {
    const c = loadWatcherConfig(args, env);
    if (c === "help") {
      console.log(USAGE);
      return 0;
    }
    config = c;
    ebpf = loadEbpfConfig(env);
    await setupLogging(config.logLevel);
  } catch (e) {
    if (e instanceof ConfigError) {
      console.error(`portwatch ebpf: ${e.message}`);
      return 2;
    }
    throw e;
  }
  const log = getLogger(["portwatch", "ebpf"]);
  const source = await startSource(ebpf, env);
  if (Array.isArray(source)) {
    if (ebpf.only || !ebpf.fallback) {
      console.error(`portwatch ebpf: no eBPF engine can run (EBPF_ONLY=1):\n  - ${source.join("\n  - ")}`);
      return 1;
    }
    log.warn('no eBPF engine can run, falling back to polling (source "fallback"): {reasons}', {
      reasons: source.join("; "),
    });
  }
  const sink: EventSink = await sinkFromEnv(env);
  let shutdown: () => Promise<{ closes: number; delivered: boolean }>;
  let run: () => Promise<unknown>;
  let describe: string;
  if (Array.isArray(source)) {
    const engine = new PollingEngine({
      config,
      sink,
      env,
      source: "fallback",
      shutdownSource: "shutdown-fallback",
    });
    await engine.start();
    shutdown = () => engine.shutdown();
    run = () => engine.run();
    describe = `polling fallback with ${engine.backend}`;
  } else {
    const engine = new EventEngine({ config, sink, env, source, reconcileMs: ebpf.reconcileMs });
    await engine.start();
    shutdown = () => engine.shutdown();
    run = async () => {
      const why = await engine.run();
      if (!stopping) log.error("{why}; the eBPF engine stopped", { why });
    };
    describe = `${source.name} events (reconciling every ${ebpf.reconcileMs / 1000} s)`;
  }
  log.info("watching {scope} with {describe}; events to {to}", {
    scope: config.allNetns ? "every network namespace on this host" : "this network namespace",
    describe,
    to: env.get("LISTENER_URL") || "stdout",
  });
  let stopping: Promise<number> | undefined;
  const stop = (signal: string) => {
    stopping ??= (async () => {
      log.info("{signal}: sending a close for each tracked port, then exiting", { signal });
      const { closes, delivered } = await shutdown();
      await sink.close();
      log.info("{closes} shutdown close(s) {state}", {
        closes,
        state: delivered ? "delivered" : "left in the spool for the next start",
      });
      return 0;
    })();
    return stopping;
  };
  const done = new Promise<number>((resolve) => {
    for (const s of ["SIGTERM", "SIGINT", "SIGQUIT"] as const) {
      Deno.addSignalListener(s, () => stop(s).then(resolve));
    }
  });
  await run();
  if (!stopping) return await stop("engine ended");
  return await done;
}

if (import.meta.main) Deno.exit(await runEbpf(Deno.args));
