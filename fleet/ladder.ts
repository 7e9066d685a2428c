/**
 * Finding the highest sustainable event rate: the fleet's offered rate is stepped up; each step is measured
 * after a settling time: acknowledged events/s, lag p50/p99, backlog growth, and the CPU each process used.
 * A step is sustained when the simulator generated at least 95% of the offered rate, the listeners
 * acknowledged at least 95% of what it generated, the backlog (events sent but not yet acknowledged) grew by
 * no more than 5% of what was offered, and p99 lag stayed under the limit. The ladder stops at the first
 * step not sustained (measured twice when other programs took more than half a core meanwhile).
 * @module
 */
import type { Cluster } from "./cluster.ts";
import type { Fleet } from "./fleet.ts";
import type { LagProbe } from "./lag.ts";
import { machineBusySeconds, selfCpuSeconds } from "./cpu.ts";

/** One measured step. */
export interface Step {
  offered: number;
  /** Events/s the simulator generated (below offered: the generator could not keep up). */
  generated: number;
  /** Events/s acknowledged (duplicates not counted). */
  acked: number;
  p50?: number;
  p99?: number;
  lagSamples: number;
  /** Growth of the unacknowledged backlog over the window, events. */
  backlogGrowth: number;
  /** Retried POSTs in the window. */
  retries: number;
  /** CPU of the window, in % of one core. */
  cpu: { simulator: number; replicas: number; postgres?: number; other: number };
  sustained: boolean;
  /** Why not sustained. */
  why?: string;
}

/** Ladder settings. */
export interface LadderOptions {
  rates: number[];
  /** Seconds at a new rate before measuring. */
  settleS: number;
  /** Measured seconds per step. */
  measureS: number;
  /** p99 lag limit, ms. */
  maxP99Ms: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Step the fleet's rate up until a step is not sustained; `say` gets one line per step. */
export async function climb(
  fleet: Fleet,
  cluster: Cluster,
  probe: LagProbe,
  o: LadderOptions,
  say: (line: string) => void = () => {},
): Promise<Step[]> {
  const steps: Step[] = [];
  for (let k = 0, again = false; k < o.rates.length; k++) {
    const rate = o.rates[k];
    fleet.rate = rate;
    await sleep(o.settleS * 1000);
    // Each reading is taken at both ends in the same order, so every one spans the same window; the
    // cluster's (a walk of /proc) is taken first and last, outside the window of the cheap ones.
    const a0 = Date.now();
    const cl0 = await cluster.cpu();
    const t0 = Date.now();
    const c0 = { sim: selfCpuSeconds(), all: machineBusySeconds(), d: fleet.delivery() };
    probe.stats(true);
    await sleep(o.measureS * 1000);
    const c1 = { sim: selfCpuSeconds(), all: machineBusySeconds(), d: fleet.delivery() };
    const secs = (Date.now() - t0) / 1000;
    const lag = probe.stats(true);
    const a1 = Date.now();
    const cl1 = await cluster.cpu();
    // The walks' midpoints bound the cluster's window.
    const clSecs = ((a1 + Date.now()) / 2 - (a0 + t0) / 2) / 1000;
    const d0 = c0.d, d1 = c1.d;
    const pct = (a: number, b: number) => ((a - b) / secs) * 100;
    const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
    const step: Step = {
      offered: rate,
      generated: (d1.generated - d0.generated) / secs,
      acked: (d1.delivered - d0.delivered) / secs,
      p50: lag.p50,
      p99: lag.p99,
      lagSamples: lag.samples,
      backlogGrowth: (d1.generated - d1.delivered) - (d0.generated - d0.delivered),
      retries: d1.retries - d0.retries,
      cpu: {
        simulator: pct(c1.sim, c0.sim),
        replicas: ((sum(cl1.replicas) - sum(cl0.replicas)) / clSecs) * 100,
        postgres: cl1.postgres !== undefined
          ? ((cl1.postgres - (cl0.postgres ?? 0)) / clSecs) * 100
          : undefined,
        other: 0,
      },
      sustained: true,
    };
    // What else ran on the machine meanwhile (other programs' load makes a step unrepresentative).
    step.cpu.other = Math.max(
      0,
      pct(c1.all, c0.all) - step.cpu.simulator - step.cpu.replicas - (step.cpu.postgres ?? 0),
    );
    const why: string[] = [];
    if (step.generated < 0.95 * rate) {
      why.push(`the simulator generated only ${Math.round(step.generated)}/s`);
    }
    if (step.acked < 0.95 * step.generated) why.push(`acked ${Math.round(step.acked)}/s < 95% of generated`);
    if (step.backlogGrowth > 0.05 * rate * secs) why.push(`backlog grew by ${step.backlogGrowth}`);
    if (step.p99 === undefined || step.p99 >= o.maxP99Ms) why.push(`p99 lag ${step.p99 ?? "n/a"} ms`);
    if (why.length > 0) {
      step.sustained = false;
      step.why = why.join("; ");
    }
    steps.push(step);
    say(
      `${rate}/s offered: ${
        Math.round(step.acked)
      }/s acked, p50 ${step.p50} ms, p99 ${step.p99} ms, cpu sim ` +
        `${step.cpu.simulator.toFixed(0)}% listeners ${step.cpu.replicas.toFixed(0)}%` +
        (step.cpu.postgres !== undefined ? ` pg ${step.cpu.postgres.toFixed(0)}%` : "") +
        ` other ${step.cpu.other.toFixed(0)}%` +
        (step.sustained ? "" : ` — not sustained: ${step.why}`),
    );
    if (!step.sustained) {
      // Other programs took more than half a core meanwhile: measure this rate once more before giving up.
      if (!again && step.cpu.other > 50) {
        again = true;
        k--;
        step.why += " (other programs busy: measured again)";
        continue;
      }
      break;
    }
    again = false;
  }
  return steps;
}
