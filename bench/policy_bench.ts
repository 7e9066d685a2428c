/**
 * The policy benchmark: what a 1,000-rule port policy (POLICY_PATH) costs the listener's ingest. Two real
 * listeners, one without a policy and one with the generated policy (policy/bench_policy.ts), take the same load
 * from wrk on loopback: single events (one per POST) and NDJSON batches, open/close pairs of a shop fleet, most
 * opens matched by no rule (every rule tried, then the default). Trials interleave (none, policy, none, ...) so
 * the machine's noise falls on both alike; the medians are compared against the target (< 10% fewer events/s).
 * @module
 */
import { fileURLToPath } from "node:url";
import { Proc } from "./procs.ts";
import { listenerCommand, LISTENING_LINE } from "../testing/listener.ts";
import { denoTask } from "./deno_task.ts";
import { luaString, runWrk, type WrkResult } from "./wrk.ts";
import { fmtInt, fmtMs, markdownTable } from "./table.ts";
import { machineShare, machineTicks } from "./machine_cpu.ts";
import { statTimes } from "./proc_cpu.ts";
import { benchEvents, benchPolicyYaml, intendedRule } from "../policy/bench_policy.ts";
import { parsePolicy } from "../policy/load.ts";
import type { PortEvent } from "../events/schema.ts";

const ROOT = fileURLToPath(new URL("../", import.meta.url));
/** Rules in the policy under test. */
export const RULES = 1000;
/** Events per NDJSON request. */
export const BATCH = 100;
/** Events in the stream wrk cycles through (500 open/close pairs). */
const STREAM = 1000;
/** Most throughput a 1,000-rule policy may cost, as a share of the no-policy events/s. */
const TARGET = 0.10;
/** Clock ticks per second of /proc/<pid>/stat (USER_HZ). */
const TICKS = 100;

/** Benchmark settings, from the environment. */
export interface PolicyBenchOptions {
  /** Measured seconds per trial (BENCH_SECONDS; default 5, BENCH_QUICK=1: 2). */
  seconds: number;
  /** Trials of each listener per load (BENCH_ROUNDS; default 3, at least 3 unless set lower). */
  rounds: number;
  /** wrk connections (BENCH_CONNS, one count; default 16). */
  connections: number;
}

/** Options from BENCH_SECONDS, BENCH_ROUNDS, BENCH_CONNS and BENCH_QUICK. */
export function optionsFromEnv(env = Deno.env): PolicyBenchOptions {
  const quick = env.get("BENCH_QUICK") === "1";
  const whole = (name: string, fallback: number) => {
    const v = env.get(name) ?? String(fallback);
    if (!/^\d+$/.test(v) || Number(v) < 1) throw new Error(`${name}=${v}: want a whole number >= 1`);
    return Number(v);
  };
  return {
    seconds: whole("BENCH_SECONDS", quick ? 2 : 5),
    rounds: whole("BENCH_ROUNDS", 3),
    connections: whole("BENCH_CONNS", 16),
  };
}

type Kind = "single" | "ndjson";
type Mode = "none" | "policy";

/**
 * A wrk script that sends `bodies` in turn (one request each), all with `contentType`: the requests are
 * formatted once, in `init`, so each costs wrk a table look-up.
 */
export function rotatingScript(bodies: string[], contentType: string): string {
  return [
    `local bodies = {\n${bodies.map((b) => `  ${luaString(b)},`).join("\n")}\n}`,
    "local reqs = {}",
    "local n = 0",
    "function init(args)",
    "  for i, b in ipairs(bodies) do",
    `    reqs[i] = wrk.format("POST", nil, { ["Content-Type"] = ${luaString(contentType)} }, b)`,
    "  end",
    "end",
    "function request()",
    "  n = n % #reqs + 1",
    "  return reqs[n]",
    "end",
    "",
  ].join("\n");
}

/** One measured trial. */
interface Trial {
  kind: Kind;
  mode: Mode;
  wrk: WrkResult;
  eventsPerSec: number;
  /** The listener's CPU (user + system) per stored event, in microseconds. */
  cpuUsPerEvent: number;
  stealPct: number;
  /** What GET /events said of the verdicts: undefined when it was as expected, else the problem. */
  problem?: string;
}

/** Whether the stored opens carry the verdicts `mode` implies (and closes none), from GET /events. */
async function checkVerdicts(url: string, mode: Mode): Promise<string | undefined> {
  const res = await fetch(`${url}/events?limit=200`);
  const body = await res.json() as { events: (PortEvent & { policy?: { rule: string | null } })[] };
  const opens = body.events.filter((e) => e.event === "open");
  const closes = body.events.filter((e) => e.event === "close");
  if (opens.length === 0) return "no opens stored";
  if (closes.some((e) => e.policy !== undefined)) return "a close carries a verdict";
  if (mode === "none") {
    return opens.some((e) => e.policy !== undefined) ? "verdicts without a policy" : undefined;
  }
  const wrong = opens.find((e) => e.policy?.rule !== intendedRule(e));
  return wrong ? `open on port ${wrong.port}: policy ${JSON.stringify(wrong.policy)}` : undefined;
}

async function runTrial(
  kind: Kind,
  mode: Mode,
  dir: string,
  opts: PolicyBenchOptions,
): Promise<Trial> {
  // The last trial's log, deleted, may still be in writeback: flushed now, not during this trial.
  await new Deno.Command("sync").output();
  const logDir = await Deno.makeTempDir({ dir, prefix: `${mode}_${kind}_` });
  const task = await denoTask("listen");
  const [cmd, ...args] = listenerCommand(`${logDir}/x.log`, { denoFlags: task.v8Flags });
  const env: Record<string, string> = { ...task.env, NO_COLOR: "1", LOG_LEVEL: "warning" };
  if (mode === "policy") env.POLICY_PATH = `${dir}/policy.yaml`;
  let proc: Proc | undefined;
  try {
    proc = Proc.start({ cmd, args, cwd: ROOT, env });
    const url = (await proc.waitForLine(LISTENING_LINE))[1];
    const perRequest = kind === "ndjson" ? BATCH : 1;
    const run = (seconds: number) =>
      runWrk({
        url: `${url}/ingest`,
        connections: opts.connections,
        seconds,
        script: `${dir}/${kind}.lua`,
        timeout: "10s",
      });
    await run(1); // warm-up: the JIT, the log's first pages
    const cpu0 = statTimes(proc.pid)!, m0 = machineTicks();
    const wrk = await run(opts.seconds);
    const cpu1 = statTimes(proc.pid)!, m1 = machineTicks();
    const events = (wrk.requests - wrk.non2xx) * perRequest;
    const cpuSec = (cpu1.user + cpu1.sys - cpu0.user - cpu0.sys) / TICKS;
    let problem = await checkVerdicts(url, mode);
    if (wrk.non2xx + wrk.errors > 0) {
      problem = [problem, `${wrk.non2xx} non-2xx, ${wrk.errors} socket errors`].filter(Boolean).join("; ");
    }
    return {
      kind,
      mode,
      wrk,
      eventsPerSec: wrk.rps * perRequest,
      cpuUsPerEvent: events > 0 ? (cpuSec * 1e6) / events : NaN,
      stealPct: machineShare(m0, m1).stealPct,
      problem,
    };
  } finally {
    await proc?.stop();
    await Deno.remove(logDir, { recursive: true });
  }
}

/** The median of `xs` (the mean of the middle two for an even count). */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length === 0 ? NaN : s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

/** `Policy.verdictOf` in this process: ns per open of the bench stream, and per open matched by no rule. */
export function verdictMicro(rules = RULES, ms = 1000): { perOpenNs: number; perDefaultNs: number } {
  const policy = parsePolicy(benchPolicyYaml(rules), "bench.yaml");
  const opens = benchEvents(STREAM).map((e, i) => ({ id: `e${i}`, ...e }) as PortEvent)
    .filter((e) => e.event === "open");
  const defaults = opens.filter((e) => intendedRule(e) === null);
  const time = (events: PortEvent[]) => {
    let n = 0, sink = 0;
    for (const e of events) sink += policy.verdictOf(e).rule === null ? 1 : 0; // warm
    const t0 = performance.now();
    while (performance.now() - t0 < ms) {
      for (const e of events) sink += policy.verdictOf(e).rule === null ? 1 : 0;
      n += events.length;
    }
    if (sink < 0) console.error(sink);
    return ((performance.now() - t0) * 1e6) / n;
  };
  return { perOpenNs: time(opens), perDefaultNs: time(defaults) };
}

const fmtPct = (x: number) => `${x >= 0 ? "" : "−"}${Math.abs(x * 100).toFixed(1)}%`;

/** Run the policy benchmark and return its report as Markdown. */
export async function runPolicyBench(opts: PolicyBenchOptions = optionsFromEnv()): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "portwatch_bench_policy_" });
  const trials: Trial[] = [];
  try {
    await Deno.writeTextFile(`${dir}/policy.yaml`, benchPolicyYaml(RULES));
    const events = benchEvents(STREAM).map((e) => JSON.stringify(e));
    await Deno.writeTextFile(`${dir}/single.lua`, rotatingScript(events, "application/json"));
    const batches: string[] = [];
    for (let i = 0; i < events.length; i += BATCH) {
      batches.push(events.slice(i, i + BATCH).map((l) => l + "\n").join(""));
    }
    await Deno.writeTextFile(`${dir}/ndjson.lua`, rotatingScript(batches, "application/x-ndjson"));
    for (const kind of ["single", "ndjson"] as const) {
      for (let round = 0; round < opts.rounds; round++) {
        // Alternate which goes first, so neither always follows the other's writeback.
        const order: Mode[] = round % 2 === 0 ? ["none", "policy"] : ["policy", "none"];
        for (const mode of order) {
          const t = await runTrial(kind, mode, dir, opts);
          trials.push(t);
          console.error(
            `policy: ${kind.padEnd(6)} ${mode.padEnd(6)} round ${round + 1}: ${
              fmtInt(t.eventsPerSec).padStart(9)
            } events/s, ${t.cpuUsPerEvent.toFixed(2)} µs CPU/event, p99 ${fmtMs(t.wrk.p99Ms)}, steal ${
              t.stealPct.toFixed(1)
            }%${t.problem ? `, ${t.problem}` : ""}`,
          );
        }
      }
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  const micro = verdictMicro();
  return report(trials, opts, micro);
}

function report(trials: Trial[], opts: PolicyBenchOptions, micro: ReturnType<typeof verdictMicro>): string {
  const rows: string[][] = [];
  const targets: string[] = [];
  for (const kind of ["single", "ndjson"] as const) {
    const of = (mode: Mode) => trials.filter((t) => t.kind === kind && t.mode === mode);
    const none = of("none"), pol = of("policy");
    const n = median(none.map((t) => t.eventsPerSec)), p = median(pol.map((t) => t.eventsPerSec));
    const cn = median(none.map((t) => t.cpuUsPerEvent)), cp = median(pol.map((t) => t.cpuUsPerEvent));
    const cost = 1 - p / n;
    const label = kind === "single" ? "1 event/POST" : `NDJSON ${BATCH}/POST`;
    rows.push([
      label,
      String(opts.connections),
      none.map((t) => fmtInt(t.eventsPerSec)).join(" / "),
      pol.map((t) => fmtInt(t.eventsPerSec)).join(" / "),
      fmtInt(n),
      fmtInt(p),
      `${(p / n).toFixed(3)}x`,
      fmtPct(cost),
      `${cn.toFixed(2)} → ${cp.toFixed(2)}`,
      fmtPct(cp / cn - 1),
      `${fmtMs(median(none.map((t) => t.wrk.p99Ms)))} → ${fmtMs(median(pol.map((t) => t.wrk.p99Ms)))}`,
    ]);
    targets.push(
      `- ${cost < TARGET ? "PASS" : "FAIL"} ${label}: a ${fmtInt(RULES)}-rule policy costs < ${
        TARGET * 100
      }% of events/s — ${fmtPct(cost)} (median ${fmtInt(p)} vs ${fmtInt(n)} events/s)`,
    );
  }
  const problems = trials.filter((t) => t.problem).map((t) => `${t.kind} ${t.mode}: ${t.problem}`);
  const task = "the `listen` task's environment and V8 flags";
  return [
    `# Policy benchmark: ingest with a ${fmtInt(RULES)}-rule policy (POLICY_PATH) vs none`,
    "",
    `${
      new Date().toISOString()
    } — deno ${Deno.version.deno}, ${navigator.hardwareConcurrency} CPUs; loopback; ` +
    `a fresh listener (${task}, file store, fsync on: the default) and temp dir per trial; wrk -t1 ` +
    `-c${opts.connections} -d${opts.seconds}s after a 1 s warm-up; ${opts.rounds} trials of each, interleaved. ` +
    `The load cycles through ${fmtInt(STREAM)} events, open/close pairs (a verdict for each open, none for ` +
    `closes); 80% of opens are matched by no rule (all ${
      fmtInt(RULES)
    } tried, then the default), 20% by the ` +
    `last two rules (policy/bench_policy.ts).`,
    "",
    markdownTable(
      [
        "load",
        "conns",
        "none events/s (trials)",
        "policy events/s (trials)",
        "none median",
        "policy median",
        "policy/none",
        "cost",
        "CPU µs/event none → policy",
        "CPU cost",
        "p99 none → policy",
      ],
      rows,
      ["left", "right", "right", "right", "right", "right", "right", "right", "right", "right", "right"],
    ),
    "",
    `Verdict only (Policy.verdictOf in-process, ${fmtInt(RULES)} rules): ${
      fmtInt(micro.perOpenNs)
    } ns per open ` +
    `of the stream; ${fmtInt(micro.perDefaultNs)} ns per open matched by no rule.`,
    "",
    "CPU µs/event: the listener process's user + system time over the measured run per stored event (medians); " +
    "less sensitive than events/s to other work on the machine, so its cost (policy/none − 1) is the steadier " +
    "figure when the events/s trials spread widely.",
    "",
    "## Targets",
    "",
    ...targets,
    `- ${
      problems.length === 0 ? "PASS" : "FAIL"
    } every trial stored its events as expected (GET /events: opens ` +
    `carry the intended verdict with the policy, none without; closes none; no errors)` +
    (problems.length ? `: ${problems.join("; ")}` : ""),
    "",
  ].join("\n");
}
