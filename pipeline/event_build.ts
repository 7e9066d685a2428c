/**
 * From a tracked change to the wire event, the same for every engine: identity, clock, id and process.
 * @module
 */
import { uuidv7 } from "../events/id.ts";
import type { PortEvent, ProcessInfo, Source } from "../events/schema.ts";
import type { Identity } from "./scope/identity.ts";
import type { PortChange } from "./tracker.ts";
import type { ContainerMeta } from "./scope/runtime_state.ts";

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

/**
 * Build the event for `change` as seen by an engine whose source is `source`. The container is the namespace's
 * (`identity`) unless the engine knew it per socket (Tracee's enrichment: `change.port.container`); then its
 * image and compose labels come from `containerMeta` (the runtime's state, by id), and its name too when the
 * engine gave none.
 */
export function toPortEvent(
  change: PortChange,
  identity: Identity,
  source: Source,
  now: Date,
  process?: ProcessInfo,
  containerMeta?: (id: string) => ContainerMeta | null,
): PortEvent {
  const p = change.port;
  let container_id = identity.container_id;
  let container_name = identity.container_name;
  let image = identity.image ?? null;
  let compose_project = identity.compose_project ?? null;
  let compose_service = identity.compose_service ?? null;
  if (p.container) {
    const meta = p.container.id === null ? null : containerMeta?.(p.container.id) ?? null;
    container_id = meta?.id ?? p.container.id;
    container_name = p.container.name ?? meta?.name ?? null;
    image = meta?.image ?? null;
    compose_project = meta?.compose_project ?? null;
    compose_service = meta?.compose_service ?? null;
  }
  const event: PortEvent = {
    id: uuidv7(now.getTime()),
    event: change.kind,
    port: p.port,
    proto: p.proto,
    family: p.family,
    addrs: p.addrs,
    pids: change.kind === "close" ? [] : p.pids,
    container_id,
    container_name,
    image,
    compose_project,
    compose_service,
    source,
    observed_at: isoOf(now),
    host: identity.host,
    netns: p.netns,
  };
  if (change.kind === "close") event.last_pids = p.lastPids;
  else if (change.kind === "change") {
    event.last_pids = change.before.pids;
    event.last_addrs = change.before.addrs;
  }
  if (process) event.process = process;
  return event;
}

/**
 * The seed's human line for an event: "New port opened: 5000 (pids: 123)" / "Port closed: 5000 (last pids: 123)";
 * and for a change, "Port changed: 5000 (pids: 456; last pids: 123)", with the addresses when they changed.
 */
export function humanLine(e: PortEvent, withWhere = false): string {
  const where = withWhere
    ? ` [${e.container_name ?? e.container_id?.slice(0, 12) ?? e.host} ${e.proto}]`
    : "";
  const list = (xs: readonly unknown[] | undefined) => xs?.join(",") || "none";
  if (e.event === "open") return `New port opened: ${e.port} (pids: ${list(e.pids)})${where}`;
  if (e.event === "close") return `Port closed: ${e.port} (last pids: ${list(e.last_pids)})${where}`;
  const addrs = e.last_addrs && list(e.last_addrs) !== list(e.addrs)
    ? `; addrs: ${list(e.addrs)}; last addrs: ${list(e.last_addrs)}`
    : "";
  return `Port changed: ${e.port} (pids: ${list(e.pids)}; last pids: ${list(e.last_pids)}${addrs})${where}`;
}
