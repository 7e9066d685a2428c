/**
 * The eBPF benchmark's idle phase: an engine's CPU (its process tree) over a window in which nothing in its
 * namespace opens or closes a port, after it is ready and before the first burst; and the run time of its BPF
 * programs over the same window (they still run for every close() and exit on the host, filtered in the kernel).
 * @module
 */
import { type TreeCpu, treeCpu, TreeRunTime } from "./proc_cpu.ts";
import { fmtRatio, markdownTable } from "./table.ts";
import {
  ALIGN_R,
  bpfProgStats,
  type BpfWindow,
  bpfWindow,
  enableBpfStats,
  restoreBpfStats,
} from "./ebpf_shared.ts";

/** What the idle window measured for one engine. */
export interface IdleResult {
  seconds: number;
  /** % of one core, engine process tree (clock ticks, /proc/<pid>/stat, with what its members reaped). */
  userPct: number;
  sysPct: number;
  /** % of one core, the tree's live threads (schedstat, ns: the precise figure; children that came and went
   * between two samples are missing, which matters for the seed loop only). */
  runPct: number;
  /** % of one core by comm. */
  byComm: [string, number][];
  /** The BPF programs whose fds `bpfPid` holds, over the same window. */
  bpf?: BpfWindow;
}

/** Measure the process tree of `pid` for `seconds`; `bpfPid` holds the engine's BPF programs (if any). */
export async function measureIdle(
  pid: number,
  bpfPid: number | undefined,
  seconds: number,
  tck: number,
): Promise<IdleResult> {
  const stats = bpfPid !== undefined && enableBpfStats();
  try {
    const a: TreeCpu = treeCpu(pid);
    const bpfA = stats ? bpfProgStats(bpfPid!) : undefined;
    const meter = new TreeRunTime(pid);
    const t0 = performance.now();
    await meter.sampleFor(seconds * 1000);
    const b = treeCpu(pid);
    const bpfB = stats ? bpfProgStats(bpfPid!) : undefined;
    const s = (performance.now() - t0) / 1000;
    const pctOf = (ticks: number) => (ticks / tck / s) * 100;
    return {
      seconds: s,
      userPct: pctOf(b.user - a.user),
      sysPct: pctOf(b.sys - a.sys),
      runPct: (meter.ns / 1e9 / s) * 100,
      byComm: [...b.byComm].map(([c, t]) => [c, pctOf(t - (a.byComm.get(c) ?? 0))] as [string, number]),
      bpf: bpfWindow(bpfA, bpfB, s),
    };
  } finally {
    restoreBpfStats();
  }
}

/** The figure the idle target is judged on: schedstat's (exact, where ticks are 0.1% of a core over 10 s). */
export const idleTotal = (r: IdleResult) => r.runPct;

/** One row per engine; `÷ bpftrace` against the bpftrace engine's row when there is one. */
export function idleTable(rows: { key: string; idle: IdleResult }[]): string {
  const bp = rows.find((r) => r.key === "bpftrace");
  const header = [
    "engine",
    "process tree (CPU % of one core each)",
    "CPU % user",
    "CPU % sys",
    "CPU % total (ticks)",
    "CPU % total (schedstat)",
    "÷ bpftrace",
    "BPF programs, % of one core",
    "window",
  ];
  return markdownTable(
    header,
    rows.map(({ key, idle }) => [
      key,
      idle.byComm.filter(([, p]) => p >= 0.005).sort((a, b) => b[1] - a[1]).map(([c, p]) =>
        `${c} ${p.toFixed(3)}`
      ).join(", ") || "0",
      idle.userPct.toFixed(3),
      idle.sysPct.toFixed(3),
      (idle.userPct + idle.sysPct).toFixed(3),
      idleTotal(idle).toFixed(3),
      bp ? fmtRatio(idleTotal(idle), idleTotal(bp.idle)) : "n/a",
      idle.bpf ? `${idle.bpf.pct.toFixed(3)} (${Math.round(idle.bpf.runsPerS)} runs/s)` : "",
      `${idle.seconds.toFixed(1)} s`,
    ]),
    ALIGN_R(header.length, 2),
  );
}
