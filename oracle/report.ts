/**
 * Oracle: what a run says: the failure message of a step on which the listener and `ss` did not agree in
 * time (seed, step, diff, both tables, the steps before it, how to rerun), a summary of the failures by what
 * differed after which kind of action, and the agreement latencies.
 * @module
 */
import { formatMismatches, formatTable, type Mismatch, type PortTable } from "./port_table.ts";
import type { Action } from "./workload.ts";

/** One step of a run. */
export interface StepRecord {
  /** "round.step", e.g. "2.5"; "0.0" for the empty start, "end" for the final exits. */
  label: string;
  /** The actions' texts. */
  actions: string[];
  /** The actions' kinds (see {@link actionTag}). */
  tags: string[];
}

/** A step on which the listener did not agree with ss within the deadline. */
export interface StepFailure {
  step: StepRecord;
  mismatches: Mismatch[];
  /** (proto, port) rows the listener has twice. */
  dupes: string[];
  want: PortTable;
  got: PortTable;
  deadlineMs: number;
  /** Set when ss itself changed while the test waited (the step had not settled: a test bug). */
  truthChanged?: string;
  /** The mismatches that were not already there after the step before (those are carried over). */
  fresh?: Mismatch[];
  /** After the deadline: agreement came this many ms after the step (late), or null: not within `lateLimitMs`. */
  lateMs?: number | null;
  lateLimitMs?: number;
}

/** A mismatch as one comparable string (same port, same kind, same values). */
export function mismatchSignature(m: Mismatch): string {
  const row = (
    r?: { pids: number[]; addrs: string[] },
  ) => (r ? `${r.pids.join(",")}|${r.addrs.join(",")}` : "-");
  return `${m.key} ${m.kind} ${row(m.want)} ${row(m.got)}`;
}

/**
 * The kind of an action for summaries: spawn, open, twin-open (a reuseport twin), beside-open (another address
 * on an open port), connect, fork, close, parent-close, close-half, exit, kill.
 */
export function actionTag(a: Action): string {
  switch (a.kind) {
    case "open":
      return a.twinOf !== undefined ? "twin-open" : a.besideOf !== undefined ? "beside-open" : "open";
    case "close":
      return a.why === "close" ? "close" : a.why === "half" ? "close-half" : "parent-close";
    case "exit":
      return a.how === "kill" ? "kill" : "exit";
    default:
      return a.kind;
  }
}

/** The message of one failed step. */
export function failureMessage(
  engine: string,
  seed: number,
  f: StepFailure,
  before: readonly StepRecord[],
  rerun: string,
): string {
  const lines = [
    `oracle [${engine}] seed=${seed}: after step ${f.step.label}, the listener's /ports did not agree with ` +
    `\`ss -Hlntup\` within ${f.deadlineMs} ms.`,
    `step ${f.step.label}:`,
    ...f.step.actions.map((a) => `  ${a}`),
    `differences (expected = ss, got = listener):`,
    ...formatMismatches(f.mismatches).split("\n").filter((l) => l !== "").map((l) => `  ${l}`),
    ...f.dupes.map((d) => `  ${d} listed twice by the listener`),
    ...(f.fresh && f.fresh.length < f.mismatches.length
      ? [`  (${f.mismatches.length - f.fresh.length} of them carried over from the step before)`]
      : []),
    ...(f.lateMs === undefined ? [] : [
      f.lateMs === null
        ? `still disagreeing ${f.lateLimitMs} ms after the step: not late, wrong`
        : `agreed late, ${Math.round(f.lateMs)} ms after the step`,
    ]),
    ...(f.truthChanged ? [`ss changed while waiting (the step had not settled):\n${f.truthChanged}`] : []),
    `expected (ss):`,
    formatTable(f.want),
    `got (listener /ports):`,
    formatTable(f.got),
  ];
  if (before.length > 0) {
    lines.push(`steps before (last ${before.length}):`);
    for (const s of before) lines.push(`  ${s.label}: ${s.actions.join("; ")}`);
  }
  lines.push(`seed=${seed}; rerun: ${rerun}`);
  return lines.join("\n");
}

/**
 * Failures counted by what newly differed after which kind of action ("pids after parent-close: 3 steps (1.4,
 * 2.2, 3.1)"); mismatches carried over from the step before are counted as "carried over".
 */
export function summarize(failures: readonly StepFailure[]): string[] {
  const by = new Map<string, string[]>();
  for (const f of failures) {
    const fresh = f.fresh ?? f.mismatches;
    const kinds = new Set([...fresh.map((m) => m.kind), ...(f.dupes.length ? ["dupes"] : [])]);
    if (kinds.size === 0) kinds.add("carried over");
    const tags = [...new Set(f.step.tags)].join("+");
    for (const k of kinds) {
      const key = k === "carried over" ? k : `${k} after ${tags}`;
      by.set(key, [...(by.get(key) ?? []), f.step.label]);
    }
  }
  return [...by].sort(([a], [b]) => a.localeCompare(b)).map(([k, steps]) =>
    `${k}: ${steps.length} step${steps.length === 1 ? "" : "s"} (${steps.join(", ")})`
  );
}

/** "37 steps agreed: median 120 ms, p90 240 ms, max 260 ms" (empty list: "no step agreed"). */
export function latencyText(ms: readonly number[]): string {
  if (ms.length === 0) return "no step agreed";
  const s = [...ms].sort((a, b) => a - b);
  const at = (q: number) => Math.round(s[Math.min(s.length - 1, Math.floor(q * s.length))]);
  return `${s.length} steps agreed: median ${at(0.5)} ms, p90 ${at(0.9)} ms, max ${
    Math.round(s[s.length - 1])
  } ms`;
}
