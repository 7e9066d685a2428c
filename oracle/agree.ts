/**
 * Oracle: after a step, `ss -Hlntup` inside the namespace is the truth; wait (polling `GET /ports` every 20 ms)
 * until the listener's table equals it, up to the engine's deadline counted from the end of the step.
 * @module
 */
import { waitUntil } from "../infra/wait.ts";
import type { Lab } from "./lab.ts";
import { compareTables, type Mismatch, type PortTable, tableFromPorts, tableFromSs } from "./port_table.ts";
import { mismatchSignature, type StepFailure, type StepRecord } from "./report.ts";
import { parseSs } from "./ss_parse.ts";

/** How long after a missed deadline the test keeps looking, to tell "late" from "wrong". */
export const LATE_LIMIT_MS = 3_000;

/** The outcome of one step. */
export type Outcome =
  | { ok: true; latencyMs: number }
  | { ok: false; failure: StepFailure };

/** The truth now: ss's table; throws when the namespace holds a socket of a process not in `workloadPids`. */
export async function truth(
  lab: Lab,
  workloadPids: ReadonlySet<number>,
): Promise<{ text: string; table: PortTable }> {
  const text = await lab.ss();
  const sockets = parseSs(text);
  for (const s of sockets) {
    const foreign = s.users.filter((u) => !workloadPids.has(u.pid));
    if (s.users.length === 0 || foreign.length > 0) {
      throw new Error(
        `the namespace holds a socket that is not the workload's (the oracle assumes it holds no other): ${s.line}`,
      );
    }
  }
  return { text, table: tableFromSs(sockets) };
}

/**
 * Wait until the listener agrees with ss about `step`, which ended at `t0` (performance.now()), within
 * `deadlineMs` of it. `previous`: the mismatch signatures left after the step before (carried over).
 */
export async function awaitAgreement(
  lab: Lab,
  workloadPids: ReadonlySet<number>,
  step: StepRecord,
  t0: number,
  deadlineMs: number,
  previous: ReadonlySet<string>,
): Promise<Outcome> {
  const want = await truth(lab, workloadPids);
  let last: { mismatches: Mismatch[]; dupes: string[]; got: PortTable } | undefined;
  const agrees = async () => {
    const { table, dupes } = tableFromPorts(await lab.ports());
    last = { mismatches: compareTables(want.table, table), dupes, got: table };
    return last.mismatches.length === 0 && dupes.length === 0;
  };
  const remaining = () => Math.max(0, t0 + deadlineMs - performance.now());
  const agreedAt = await waitUntil("agreement", agrees, remaining(), 20).then(
    () => performance.now(),
    () => null,
  );
  const after = await truth(lab, workloadPids);
  const truthChanged = after.text === want.text ? undefined : `before:\n${want.text}after:\n${after.text}`;
  if (agreedAt !== null && !truthChanged) return { ok: true, latencyMs: agreedAt - t0 };
  const failure: StepFailure = {
    step,
    ...last!,
    want: want.table,
    deadlineMs,
    truthChanged,
    fresh: last!.mismatches.filter((m) => !previous.has(mismatchSignature(m))),
    lateLimitMs: LATE_LIMIT_MS,
  };
  if (agreedAt !== null) return { ok: false, failure };
  // Late or wrong? Keep looking a while (the failure keeps the diff seen at the deadline).
  const lateAt = await waitUntil(
    "late agreement",
    async () => {
      const { table, dupes } = tableFromPorts(await lab.ports());
      return compareTables(want.table, table).length === 0 && dupes.length === 0;
    },
    Math.max(0, t0 + LATE_LIMIT_MS - performance.now()),
    50,
  ).then(() => performance.now(), () => null);
  failure.lateMs = lateAt === null ? null : lateAt - t0;
  return { ok: false, failure };
}

/** The signatures of what still differs now (after a failed step), for the next step's "carried over". */
export async function remainingSignatures(lab: Lab, want: PortTable): Promise<Set<string>> {
  const { table } = tableFromPorts(await lab.ports());
  return new Set(compareTables(want, table).map(mismatchSignature));
}
