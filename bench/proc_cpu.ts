/**
 * CPU time of process trees from /proc, for the benchmarks that measure an engine's CPU (ebpf, ebpf-floor).
 * @module
 */
import { run } from "../testing/netns.ts";

/** The text of `path`, or undefined when it cannot be read (a process gone). */
export function readText(path: string): string | undefined {
  try {
    return Deno.readTextFileSync(path);
  } catch {
    return undefined;
  }
}

/** utime, stime, cutime, cstime of `pid` in clock ticks, or undefined when it is gone. */
export function statTimes(
  pid: number,
): { user: number; sys: number; cuser: number; csys: number } | undefined {
  const stat = readText(`/proc/${pid}/stat`);
  if (!stat) return undefined;
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // fields after ")" start at field 3 (state): utime is field 14 -> index 11
  return { user: Number(f[11]), sys: Number(f[12]), cuser: Number(f[13]), csys: Number(f[14]) };
}

/** Direct children of `pid` (every thread's /proc/<pid>/task/<tid>/children). */
function childrenOf(pid: number): number[] {
  const out = new Set<number>();
  try {
    for (const t of Deno.readDirSync(`/proc/${pid}/task`)) {
      for (const c of (readText(`/proc/${pid}/task/${t.name}/children`) ?? "").trim().split(/\s+/)) {
        if (c) out.add(Number(c));
      }
    }
  } catch { /* gone */ }
  return [...out];
}

/** `pid` and its descendants, with their comm. */
export function processTree(pid: number): { pid: number; comm: string }[] {
  const out: { pid: number; comm: string }[] = [];
  const todo = [pid];
  while (todo.length) {
    const p = todo.shift()!;
    const comm = readText(`/proc/${p}/comm`)?.trim();
    if (comm === undefined) continue;
    out.push({ pid: p, comm });
    todo.push(...childrenOf(p));
  }
  return out;
}

/** CPU of a process tree: own utime/stime of every live member plus what each reaped (cutime/cstime). */
export interface TreeCpu {
  user: number;
  sys: number;
  /** Ticks by comm (own + reaped children), for the breakdown. */
  byComm: Map<string, number>;
}

export function treeCpu(pid: number): TreeCpu {
  const cpu: TreeCpu = { user: 0, sys: 0, byComm: new Map() };
  for (const p of processTree(pid)) {
    const t = statTimes(p.pid);
    if (!t) continue;
    cpu.user += t.user + t.cuser;
    cpu.sys += t.sys + t.csys;
    cpu.byComm.set(p.comm, (cpu.byComm.get(p.comm) ?? 0) + t.user + t.sys + t.cuser + t.csys);
  }
  return cpu;
}

/** Clock ticks per second (CLK_TCK), the unit of /proc/<pid>/stat times. */
export async function clockTicks(): Promise<number> {
  try {
    const n = Number((await run(["getconf", "CLK_TCK"])).stdout.trim());
    if (n > 0) return n;
  } catch { /* assume the usual */ }
  return 100;
}

/**
 * CPU time of a process tree in ns, from every thread's /proc/<pid>/task/<tid>/schedstat (exact, where
 * /proc/<pid>/stat rounds to clock ticks): {@link sample} it through a window; a thread that ends between two
 * samples loses at most the run time since the last one, and a member that appears counts from its start.
 */
export class TreeRunTime {
  #last = new Map<string, number>();
  /** Run time since the first sample, ns. */
  ns = 0;

  constructor(readonly pid: number) {
    this.sample(true);
  }

  sample(first = false): void {
    for (const p of processTree(this.pid)) {
      let tasks: Deno.DirEntry[];
      try {
        tasks = [...Deno.readDirSync(`/proc/${p.pid}/task`)];
      } catch {
        continue;
      }
      for (const t of tasks) {
        const v = Number(readText(`/proc/${p.pid}/task/${t.name}/schedstat`)?.split(" ")[0]);
        if (!Number.isFinite(v)) continue;
        const key = `${p.pid}/${t.name}`;
        if (!first) this.ns += v - (this.#last.get(key) ?? 0);
        this.#last.set(key, v);
      }
    }
  }

  /** Sample every `everyMs` for `ms`, then once more. */
  async sampleFor(ms: number, everyMs = 250): Promise<void> {
    const end = performance.now() + ms;
    for (let left = ms; left > 0; left = end - performance.now()) {
      await new Promise((r) => setTimeout(r, Math.min(everyMs, left)));
      this.sample();
    }
  }
}
