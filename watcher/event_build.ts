/**
 * From a tracked change to the wire event, the same for every engine: identity, clock, id and process.
 * @module
 */
import { uuidv7 } from "../events/id.ts";
import type { PortEvent, ProcessInfo, Source } from "../events/schema.ts";
import type { Identity } from "./identity.ts";
import type { PortChange } from "./tracker.ts";

/** The last clock turned into text: a report builds all its events with one `now`. */
let lastNow: Date | undefined;
let lastIso = "";

function isoOf(now: Date): string {
  if (now !== lastNow) {
    lastNow = now;
    lastIso = now.toISOString();
  }
  return lastIso;
}

/** Build the event for `change` as seen by an engine whose source is `source`. */
export function toPortEvent(
  change: PortChange,
  identity: Identity,
  source: Source,
  now: Date,
  process?: ProcessInfo,
): PortEvent {
  const p = change.port;
  const event: PortEvent = {
    id: uuidv7(now.getTime()),
    event: change.kind,
    port: p.port,
    proto: p.proto,
    family: p.family,
    addrs: p.addrs,
    pids: change.kind === "open" ? p.pids : [],
    container_id: p.container ? p.container.id : identity.container_id,
    container_name: p.container ? p.container.name : identity.container_name,
    source,
    observed_at: isoOf(now),
    host: identity.host,
    netns: p.netns,
  };
  if (change.kind === "close") event.last_pids = p.lastPids;
  if (process) event.process = process;
  return event;
}

/** The seed's human line for an event: "New port opened: 5000 (pids: 123)" / "Port closed: 5000 (last pids: 123)". */
export function humanLine(e: PortEvent, withWhere = false): string {
  const where = withWhere
    ? ` [${e.container_name ?? e.container_id?.slice(0, 12) ?? e.host} ${e.proto}]`
    : "";
  return e.event === "open"
    ? `New port opened: ${e.port} (pids: ${e.pids.join(",") || "none"})${where}`
    : `Port closed: ${e.port} (last pids: ${(e.last_pids ?? []).join(",") || "none"})${where}`;
}
