/**
 * CPU time of processes from /proc: one process, a process with all its descendants (PostgreSQL's backends),
 * and this process. Used to show who spends the 2 cores during a fleet run.
 * @module
 */

/** Clock ticks per second of /proc/<pid>/stat times (USER_HZ; 100 on every Linux Deno runs on). */
const HZ = 100;

/** utime + stime of `pid`, in seconds. */
export async function cpuSeconds(pid: number): Promise<number> {
  return parseStatTimes(await Deno.readTextFile(`/proc/${pid}/stat`)).cpu;
}

/** The parent pid and user+system seconds from the text of /proc/<pid>/stat. */
export function parseStatTimes(text: string): { ppid: number; cpu: number } {
  // The command name (field 2) may hold spaces and parentheses: fields are counted after its last ")".
  const f = text.slice(text.lastIndexOf(")") + 2).split(" ");
  return { ppid: Number(f[1]), cpu: (Number(f[11]) + Number(f[12])) / HZ };
}

/**
 * CPU seconds of `root` and every process below it, plus what its ended children were charged (cutime,
 * cstime of the processes alive), so exited backends still count.
 */
export async function treeCpuSeconds(root: number): Promise<number> {
  const procs = new Map<number, { ppid: number; cpu: number }>();
  for await (const e of Deno.readDir("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    try {
      const text = await Deno.readTextFile(`/proc/${e.name}/stat`);
      const t = parseStatTimes(text);
      const f = text.slice(text.lastIndexOf(")") + 2).split(" ");
      procs.set(Number(e.name), { ppid: t.ppid, cpu: t.cpu + (Number(f[13]) + Number(f[14])) / HZ });
    } catch { /* gone */ }
  }
  let total = 0;
  const inTree = (pid: number): boolean => {
    for (let p = pid, depth = 0; p > 1 && depth < 64; depth++) {
      if (p === root) return true;
      const next = procs.get(p)?.ppid;
      if (next === undefined) return false;
      p = next;
    }
    return false;
  };
  for (const [pid, p] of procs) if (inTree(pid)) total += p.cpu;
  return total;
}

/** CPU seconds of this process (every thread), from /proc/self/stat. */
export function selfCpuSeconds(): number {
  return parseStatTimes(Deno.readTextFileSync("/proc/self/stat")).cpu;
}

/** Busy CPU seconds of the whole machine (every core, every process), from /proc/stat. */
export function machineBusySeconds(): number {
  const line = Deno.readTextFileSync("/proc/stat").split("\n")[0];
  const f = line.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal: busy = all but idle and iowait.
  return (f[0] + f[1] + f[2] + f[5] + f[6] + f[7]) / HZ;
}
