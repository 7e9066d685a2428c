/**
 * Test helpers for the bpftrace engine: why its tests cannot run here, the engine for the shared scenarios, a
 * process among another's descendants, and the bpftrace source feeding a ledger in this process
 * (testing/ledger_harness.ts), to look at the events and the ledger directly.
 * @module
 */
import { netnsSkipReason } from "../../testing/netns.ts";
import { type BpftraceSource, startBpftrace } from "../bpftrace_source.ts";
import { feedLedger, type LedgerHarness } from "./ledger_harness.ts";
import type { EngineUnderTest } from "./engine_steps.ts";

/** Why the bpftrace engine's tests cannot run here (root, namespaces, python3, bpftrace), or undefined. */
export function bpftraceSkipReason(): string | undefined {
  const r = netnsSkipReason();
  if (r) return r;
  try {
    return new Deno.Command("bpftrace", { args: ["--version"], stdout: "null", stderr: "null" }).outputSync()
        .success
      ? undefined
      : "bpftrace does not run";
  } catch {
    return "bpftrace is not installed (Debian: apt-get install bpftrace)";
  }
}

/** The bpftrace engine, for the scenarios shared with the libbpf engine (engine_steps.ts, holders_steps.ts). */
export const BPFTRACE: EngineUnderTest = {
  name: "bpftrace",
  skipReason: bpftraceSkipReason,
  // The libbpf engine's tests use 19093 and 19094.
  metricsPort: 19091,
};

/** Why the cross-CPU test cannot run here, if it cannot. */
export function twoCpusSkipReason(): string | undefined {
  return bpftraceSkipReason() ??
    (navigator.hardwareConcurrency < 2 ? `${navigator.hardwareConcurrency} CPU (needs 2)` : undefined);
}

/** The pid of the process named `comm` among the descendants of `pid` (by /proc), or undefined. */
export function descendantNamed(pid: number, comm: string): number | undefined {
  const parentOf = new Map<number, number>();
  const names = new Map<number, string>();
  for (const e of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    try {
      const stat = Deno.readTextFileSync(`/proc/${e.name}/stat`);
      const close = stat.lastIndexOf(")");
      names.set(Number(e.name), stat.slice(stat.indexOf("(") + 1, close));
      parentOf.set(Number(e.name), Number(stat.slice(close + 2).split(" ")[1]));
    } catch { /* gone */ }
  }
  for (const [p, name] of names) {
    if (name !== comm) continue;
    for (let up = parentOf.get(p); up !== undefined && up > 1; up = parentOf.get(up)) {
      if (up === pid) return p;
    }
  }
  return undefined;
}

/**
 * Start bpftrace and apply its events to a fresh ledger (see feedLedger): ends held for bpftrace's reorder
 * window, as the engine does.
 */
export async function startLedgerHarness(): Promise<LedgerHarness<BpftraceSource>> {
  return feedLedger(await startBpftrace());
}
