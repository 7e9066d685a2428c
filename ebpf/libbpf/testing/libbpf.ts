/**
 * Test helpers for the native (libbpf) engine: why its tests cannot run here, the engine for the shared
 * scenarios, the deno process of an engine
 * started by WatcherProc, its process state, and the libbpf source feeding a ledger in this process
 * (ebpf/testing/ledger_harness.ts), to look at the events and the ledger directly.
 * @module
 */
import { netnsSkipReason } from "../../../testing/netns.ts";
import {
  type LibbpfOptions,
  type LibbpfSource,
  libbpfUnavailableReason,
  startLibbpf,
} from "../libbpf_source.ts";
import { feedLedger, type LedgerHarness } from "../../testing/ledger_harness.ts";
import { descendantNamed } from "../../testing/bpftrace.ts";
import type { EngineUnderTest } from "../../testing/engine_steps.ts";

/** Why the libbpf engine's tests cannot run here (root, namespaces, python3, libbpf, BTF, ...), or undefined. */
export function libbpfSkipReason(): string | undefined {
  return netnsSkipReason() ?? libbpfUnavailableReason();
}

/**
 * The libbpf engine, for the scenarios shared with bpftrace (ebpf/testing/engine_steps.ts, holders_steps.ts).
 */
export const LIBBPF: EngineUnderTest = {
  name: "libbpf",
  skipReason: libbpfSkipReason,
  // Not the bpftrace tests' 19091, nor the load test's 19094.
  metricsPort: 19093,
};

/** The comm of a process, or undefined when it is gone. */
function commOf(pid: number): string | undefined {
  try {
    return Deno.readTextFileSync(`/proc/${pid}/comm`).trim();
  } catch {
    return undefined;
  }
}

/**
 * The pid of the deno process of a watcher started with WatcherProc (`ip netns exec NS deno run ...`): the
 * child itself when `ip` exec'd deno, else its deno descendant.
 */
export function denoPidOf(child: Deno.ChildProcess): number {
  if (commOf(child.pid) === "deno") return child.pid;
  const pid = descendantNamed(child.pid, "deno");
  if (pid === undefined) throw new Error(`no deno process under pid ${child.pid} (${commOf(child.pid)})`);
  return pid;
}

/** A process's state letter (/proc/PID/stat: R, S, T for stopped, ...), or undefined when it is gone. */
export function processState(pid: number): string | undefined {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[0];
  } catch {
    return undefined;
  }
}

/**
 * Load the programs (kernel-side filters from `options`) and apply their events to a fresh ledger (see
 * feedLedger). The ring is read in order, so no reorder window (the hold is 0 ms: it applies every event at
 * once).
 */
export async function startLibbpfLedgerHarness(
  options: LibbpfOptions = {},
): Promise<LedgerHarness<LibbpfSource>> {
  return feedLedger(await startLibbpf(options));
}
