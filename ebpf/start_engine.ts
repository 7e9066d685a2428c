/**
 * Engine choice: portwatch's own programs through libbpf, then, as the seed promised, Tracee, then bpftrace; with
 * EBPF_FALLBACK=1 (default) the polling engine (source "fallback") when none can run, saying why; with
 * EBPF_ONLY=1 a clear error instead. `auto` says why each engine it passes over cannot run. Used by
 * `deno task ebpf` and `deno task start`.
 * @module
 */
import { getLogger } from "@logtape/logtape";
import type { EnvSource } from "../infra/env.ts";
import type { EventSink } from "../delivery/sink.ts";
import type { WatcherConfig } from "../watcher/config.ts";
import { PollingEngine } from "../watcher/polling_engine.ts";
import type { Pipeline } from "../pipeline/pipeline.ts";
import type { EbpfConfig } from "./config.ts";
import { EngineUnavailableError, type SocketEventSource } from "./event_source.ts";
import { startBpftrace } from "./bpftrace_source.ts";
import { startTraceeSource } from "./tracee_source.ts";
import { startLibbpf } from "./libbpf/libbpf_source.ts";
import { netnsInode } from "../pipeline/scope/identity.ts";
import { EventEngine } from "./event_engine.ts";

/** A started engine. */
export interface RunningEngine {
  /** What runs, for the start-up line: "bpftrace events ..." or "polling fallback with netlink". */
  describe: string;
  /** Process events (or scan) until shutdown; resolves when the engine stops. */
  run(): Promise<void>;
  /** Close every tracked port (shutdown source) and stop. */
  shutdown(): Promise<{ closes: number; delivered: boolean }>;
  /** The engine's pipeline (its scans: the whole fallback, or an eBPF engine's seed and reconciliation). */
  pipeline: Pipeline;
  /** The eBPF engine (its drift and lost counters), absent for the polling fallback. */
  ebpf?: EventEngine;
}

/** No engine may run: EBPF_ONLY=1 and every eBPF engine failed, for these reasons. */
export class NoEngineError extends Error {
  constructor(readonly reasons: string[]) {
    super(`no eBPF engine can run (EBPF_ONLY=1):\n  - ${reasons.join("\n  - ")}`);
    this.name = "NoEngineError";
  }
}

/** Start one engine's source. */
function startNamed(name: string, config: WatcherConfig, cfg: EbpfConfig, env: EnvSource) {
  switch (name) {
    case "libbpf":
      return startLibbpf({
        // In the kernel: only this namespace's sockets unless every namespace is watched (whose set changes as
        // containers come and go: the engine filters those), and only the watched ports.
        netns: config.allNetns ? undefined : netnsInode(),
        ports: config.ports,
        ringBytes: cfg.ringBytes,
      });
    case "tracee":
      return startTraceeSource(env);
    default:
      return startBpftrace();
  }
}

async function startSource(
  config: WatcherConfig,
  cfg: EbpfConfig,
  env: EnvSource,
): Promise<SocketEventSource | string[]> {
  const log = getLogger(["portwatch", "ebpf"]);
  const reasons: string[] = [];
  const order = cfg.engine === "auto" ? ["libbpf", "tracee", "bpftrace"] : [cfg.engine];
  for (const [i, name] of order.entries()) {
    try {
      return await startNamed(name, config, cfg, env);
    } catch (e) {
      if (!(e instanceof EngineUnavailableError)) throw e;
      reasons.push(e.message);
      if (i < order.length - 1) {
        log.info("{reason}; trying {next}", { reason: e.message, next: order[i + 1] });
      }
    }
  }
  return reasons;
}

/** Start the best engine that can run here. Throws NoEngineError when none may. */
export async function startEngine(
  config: WatcherConfig,
  ebpf: EbpfConfig,
  sink: EventSink,
  env: EnvSource,
): Promise<RunningEngine> {
  const log = getLogger(["portwatch", "ebpf"]);
  const source = await startSource(config, ebpf, env);
  if (Array.isArray(source)) {
    if (ebpf.only || !ebpf.fallback) throw new NoEngineError(source);
    log.warn('no eBPF engine can run, falling back to polling (source "fallback"): {reasons}', {
      reasons: source.join("; "),
    });
    const engine = new PollingEngine({
      config,
      sink,
      env,
      source: "fallback",
      shutdownSource: "shutdown-fallback",
    });
    await engine.start();
    return {
      describe: `polling fallback with ${engine.backend}`,
      run: () => engine.run(),
      shutdown: () => engine.shutdown(),
      pipeline: engine.pipeline,
    };
  }
  const engine = new EventEngine({ config, sink, env, source, reconcileMs: ebpf.reconcileMs });
  await engine.start();
  let stopping = false;
  return {
    describe: `${source.name} events (reconciling every ${ebpf.reconcileMs / 1000} s)`,
    async run() {
      const why = await engine.run();
      if (!stopping) log.error("{why}; the eBPF engine stopped", { why });
    },
    shutdown() {
      stopping = true;
      return engine.shutdown();
    },
    pipeline: engine.pipeline,
    ebpf: engine,
  };
}
