/** Settings of `deno task ebpf` beyond the watcher's: engine choice and fallback, with the seed's names. */
import { ConfigError, type EnvSource, firstSet, parseBool, parseSecondsMs } from "../infra/env.ts";

/** Which event engine to try. */
export type EngineChoice = "auto" | "libbpf" | "tracee" | "bpftrace";

/** eBPF command settings. */
export interface EbpfConfig {
  engine: EngineChoice;
  /** EBPF_ONLY=1: exit with an error when no eBPF engine can run. */
  only: boolean;
  /** EBPF_FALLBACK=1 (default): fall back to the polling engine (source "fallback"). */
  fallback: boolean;
  /** Reconciliation scan interval, ms (EBPF_RECONCILE seconds, default 30). */
  reconcileMs: number;
  /** libbpf: the ring buffer's size in bytes (EBPF_RING_KB, a power of two; default 1024 KiB). */
  ringBytes?: number;
}

/** EBPF_RING_KB: a power of two from 4 (one page) to 1,048,576 (1 GiB). */
function parseRingKb(name: string, value: string): number {
  const kb = Number(value);
  if (!/^\d+$/.test(value.trim()) || kb < 4 || kb > 1 << 20 || (kb & (kb - 1)) !== 0) {
    throw new ConfigError(name, value, "a power of two of KiB from 4 to 1048576, e.g. 1024 (1 MiB)");
  }
  return kb * 1024;
}

/** Parse the eBPF settings. */
export function loadEbpfConfig(env: EnvSource): EbpfConfig {
  const engine = firstSet(env, "EBPF_ENGINE");
  if (engine && !["auto", "libbpf", "tracee", "bpftrace"].includes(engine.value)) {
    throw new ConfigError(
      engine.name,
      engine.value,
      "auto (libbpf, then Tracee, then bpftrace), libbpf, tracee or bpftrace",
    );
  }
  const only = firstSet(env, "EBPF_ONLY");
  const fallback = firstSet(env, "EBPF_FALLBACK");
  const reconcile = firstSet(env, "EBPF_RECONCILE");
  const ring = firstSet(env, "EBPF_RING_KB");
  return {
    engine: (engine?.value as EngineChoice) ?? "auto",
    only: only ? parseBool(only.name, only.value) : false,
    fallback: fallback ? parseBool(fallback.name, fallback.value) : true,
    reconcileMs: reconcile ? parseSecondsMs(reconcile.name, reconcile.value) : 30_000,
    ringBytes: ring ? parseRingKb(ring.name, ring.value) : undefined,
  };
}
