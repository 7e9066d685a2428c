/** Settings of `deno task ebpf` beyond the watcher's: engine choice and fallback, with the seed's names. */
import { ConfigError, type EnvSource, firstSet, parseBool, parseSecondsMs } from "../infra/env.ts";

/** Which event engine to try. */
export type EngineChoice = "auto" | "tracee" | "bpftrace";

/** eBPF command settings. */
export interface EbpfConfig {
  engine: EngineChoice;
  /** EBPF_ONLY=1: exit with an error when no eBPF engine can run. */
  only: boolean;
  /** EBPF_FALLBACK=1 (default): fall back to the polling engine (source "fallback"). */
  fallback: boolean;
  /** Reconciliation scan interval, ms (EBPF_RECONCILE seconds, default 30). */
  reconcileMs: number;
}

/** Parse the eBPF settings. */
export function loadEbpfConfig(env: EnvSource): EbpfConfig {
  const engine = firstSet(env, "EBPF_ENGINE");
  if (engine && !["auto", "tracee", "bpftrace"].includes(engine.value)) {
    throw new ConfigError(engine.name, engine.value, "auto (Tracee, then bpftrace), tracee or bpftrace");
  }
  const only = firstSet(env, "EBPF_ONLY");
  const fallback = firstSet(env, "EBPF_FALLBACK");
  const reconcile = firstSet(env, "EBPF_RECONCILE");
  return {
    engine: (engine?.value as EngineChoice) ?? "auto",
    only: only ? parseBool(only.name, only.value) : false,
    fallback: fallback ? parseBool(fallback.name, fallback.value) : true,
    reconcileMs: reconcile ? parseSecondsMs(reconcile.name, reconcile.value) : 30_000,
  };
}
