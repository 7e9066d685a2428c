/**
 * The policy's verdict on ingest: every open and change gets one (`policy`: verdict, rule, severity), stored with
 * the event. Records whose log line validation built from the client's text get the field spliced in before the
 * line's closing brace (no second serialisation). Pure.
 * @module
 */
import type { PortEvent } from "../events/schema.ts";
import type { Verdict } from "../policy/match.ts";
import type { Validated } from "./validate.ts";

/** A verdict's JSON, made once per verdict object (a rule's verdict is one object, given to many events). */
const jsonOf = new WeakMap<Verdict, string>();

/** Set the verdict (from `verdictOf`) of each open and change in `validated` (records and their prepared lines). */
export function applyVerdicts(verdictOf: (e: PortEvent) => Verdict, validated: Validated): void {
  const { records, prepared } = validated;
  for (let i = 0; i < records.length; i++) {
    const r = records[i];
    if (r.event !== "open" && r.event !== "change") continue;
    const line = prepared.lines[i];
    // A client's own `policy` field is replaced: the line is then serialised again by the store.
    if (line !== undefined && "policy" in r) prepared.lines[i] = undefined;
    const verdict = verdictOf(r as unknown as PortEvent);
    r.policy = verdict;
    const kept = prepared.lines[i];
    if (kept === undefined) continue;
    let json = jsonOf.get(verdict);
    if (json === undefined) jsonOf.set(verdict, json = JSON.stringify(verdict));
    prepared.lines[i] = `${kept.slice(0, -1)},"policy":${json}}`;
  }
}
