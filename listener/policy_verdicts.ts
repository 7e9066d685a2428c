/**
 * The policy's verdict on ingest: every open and change gets one (`policy`: verdict, rule, severity), stored with
 * the event. Records whose log line validation built from the client's text get the field spliced in before the
 * line's closing brace (no second serialisation). Pure.
 * @module
 */
import type { PortEvent } from "../events/schema.ts";
import type { Policy } from "../policy/match.ts";
import type { Validated } from "./validate.ts";

/** Set the verdict of each open and change in `validated` (records and their prepared lines). */
export function applyVerdicts(policy: Policy, validated: Validated): void {
  const { records, prepared } = validated;
  for (let i = 0; i < records.length; i++) {
    const r = records[i];
    if (r.event !== "open" && r.event !== "change") continue;
    const line = prepared.lines[i];
    // A client's own `policy` field is replaced: the line is then serialised again by the store.
    if (line !== undefined && "policy" in r) prepared.lines[i] = undefined;
    const verdict = policy.verdictOf(r as unknown as PortEvent);
    r.policy = verdict;
    const kept = prepared.lines[i];
    if (kept !== undefined) prepared.lines[i] = `${kept.slice(0, -1)},"policy":${JSON.stringify(verdict)}}`;
  }
}
