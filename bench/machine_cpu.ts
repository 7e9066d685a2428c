/**
 * The whole machine's CPU split from /proc/stat: how busy the cores were over a benchmark run and how much
 * time the hypervisor took from them (steal). On a shared VM, steal explains runs of the same code that differ
 * by a fifth or more, so the benches print it beside their figures.
 * @module
 */

/** Cumulative CPU ticks of every core together, as /proc/stat's first line counts them. */
export interface MachineTicks {
  /** user + nice + system + irq + softirq. */
  busy: number;
  /** idle + iowait. */
  idle: number;
  /** Time the hypervisor ran something else while this guest wanted the CPU. */
  steal: number;
}

/** The aggregate `cpu` line of a /proc/stat text; throws when there is none. */
export function parseProcStat(text: string): MachineTicks {
  const line = text.split("\n").find((l) => l.startsWith("cpu "));
  if (!line) throw new Error("/proc/stat has no aggregate 'cpu ' line");
  const [user, nice, system, idle, iowait, irq, softirq, steal = 0] = line.trim().split(/\s+/).slice(1).map(
    Number,
  );
  return { busy: user + nice + system + irq + softirq, idle: idle + iowait, steal };
}

/** This machine's ticks now. */
export function machineTicks(): MachineTicks {
  return parseProcStat(Deno.readTextFileSync("/proc/stat"));
}

/** Shares of the time between two readings, in % of all cores' time. */
export interface MachineShare {
  busyPct: number;
  stealPct: number;
}

/** What the machine did between `before` and `after`. */
export function machineShare(before: MachineTicks, after: MachineTicks): MachineShare {
  const busy = after.busy - before.busy;
  const steal = after.steal - before.steal;
  const total = busy + steal + (after.idle - before.idle);
  if (total <= 0) return { busyPct: 0, stealPct: 0 };
  return { busyPct: (100 * busy) / total, stealPct: (100 * steal) / total };
}
