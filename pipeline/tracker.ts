/**
 * The diff at the heart of every engine: which ports opened and closed since the last look, and which stayed open
 * with other holders or addresses (a change), per network namespace, with a close grace (a port back within
 * CLOSE_GRACE_MS emits no close and no open; a change, if its holders are others). Pure state machine: time comes
 * in as an argument, changes come out; engines do the I/O.
 * @module
 */
import type { PortObservation } from "./observe.ts";

/** A port tracked as open. */
export interface TrackedPort extends PortObservation {
  /** Network namespace inode. */
  netns: number;
  /** When it was first seen open (ms since the epoch). */
  since: number;
  /** When it was last seen open. */
  seen: number;
  /** Set while it is missing but within the grace: when its close becomes final. */
  closeAt?: number;
  /** The pids that held it when it was last seen with holders. */
  lastPids: number[];
}

/** One change to report. */
export type PortChange =
  | { kind: "open" | "close"; port: TrackedPort }
  | {
    kind: "change";
    /** The port as it is now (a copy: later refreshes do not alter what this change reports). */
    port: TrackedPort;
    /** Its holders and addresses before the change. */
    before: { pids: number[]; addrs: string[] };
  };

/** Key of a port within the tracker (per container too, when the engine knows containers per socket). */
export function trackKey(netns: number, proto: string, port: number, containerId?: string | null): string {
  return `${netns}/${containerId ?? ""}/${proto}/${port}`;
}

/** Snapshot form: what was open, to diff against after a restart. */
export interface TrackerState {
  version: 1;
  ports: TrackedPort[];
}

function sameList<T>(a: readonly T[], b: readonly T[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * A port seen again: it is open (any pending close is off), with what holds it now. A change when its holders
 * (sorted pids; none found means unknown, not none: they are kept) or its addresses are others than before.
 */
function refresh(prev: TrackedPort, o: PortObservation, now: number): PortChange | undefined {
  prev.closeAt = undefined;
  prev.seen = now;
  prev.family = o.family;
  prev.inodes = o.inodes;
  const before = { pids: prev.pids, addrs: prev.addrs };
  const pidsChanged = o.pids.length > 0 && !sameList(prev.pids, o.pids);
  const addrsChanged = !sameList(prev.addrs, o.addrs);
  if (!sameList(prev.addrs, o.addrs)) prev.addrs = o.addrs;
  if (o.pids.length > 0) {
    if (pidsChanged) prev.pids = o.pids;
    prev.lastPids = prev.pids;
  }
  if (!pidsChanged && !addrsChanged) return undefined;
  return { kind: "change", port: { ...prev }, before };
}

/** Tracks open ports across namespaces. */
export class PortTracker {
  #ports = new Map<string, TrackedPort>();

  constructor(readonly graceMs = 0) {}

  /**
   * A complete look at namespace `netns`: every port open there now. Ports not in it start their grace (or
   * close at once without one); new ones open; ones back within their grace are kept without an event.
   */
  observe(netns: number, observations: readonly PortObservation[], now: number): PortChange[] {
    const changes: PortChange[] = [];
    const present = new Set<string>();
    for (const o of observations) {
      const key = trackKey(netns, o.proto, o.port, o.container?.id);
      present.add(key);
      const prev = this.#ports.get(key);
      if (prev) {
        const change = refresh(prev, o, now);
        if (change) changes.push(change);
        continue;
      }
      const port: TrackedPort = { ...o, netns, since: now, seen: now, lastPids: o.pids };
      this.#ports.set(key, port);
      changes.push({ kind: "open", port: { ...port } });
    }
    for (const [key, port] of this.#ports) {
      if (port.netns !== netns || present.has(key) || port.closeAt !== undefined) continue;
      port.closeAt = now + this.graceMs;
    }
    changes.push(...this.tick(now));
    return changes;
  }

  /**
   * An update to one port (event-driven engines): `o` is what holds it now, or undefined when nothing does.
   * O(1): opens at once; a close waits for the grace (see {@link PortTracker.tick}), or happens at once without.
   */
  observePort(
    netns: number,
    ref: { proto: string; port: number; containerId?: string | null },
    o: PortObservation | undefined,
    now: number,
  ): PortChange[] {
    const key = trackKey(netns, ref.proto, ref.port, ref.containerId);
    const prev = this.#ports.get(key);
    if (o) {
      if (prev) {
        const change = refresh(prev, o, now);
        return change ? [change] : [];
      }
      const port: TrackedPort = { ...o, netns, since: now, seen: now, lastPids: o.pids };
      this.#ports.set(key, port);
      // A copy: a change before this open is reported (a fork, a close: event engines decide several in one
      // batch) updates the tracked port, and must not rewrite what the open said.
      return [{ kind: "open", port: { ...port } }];
    }
    if (!prev || prev.closeAt !== undefined) return [];
    if (this.graceMs > 0) {
      prev.closeAt = now + this.graceMs;
      return [];
    }
    this.#ports.delete(key);
    return [{ kind: "close", port: { ...prev, pids: [] } }];
  }

  /** True when the port is tracked open with no close pending: an update to it can only be a change. */
  isSteady(netns: number, ref: { proto: string; port: number; containerId?: string | null }): boolean {
    const p = this.#ports.get(trackKey(netns, ref.proto, ref.port, ref.containerId));
    return p !== undefined && p.closeAt === undefined;
  }

  /** Closes whose grace has run out by `now`. */
  tick(now: number): PortChange[] {
    const changes: PortChange[] = [];
    for (const [key, port] of this.#ports) {
      if (port.closeAt !== undefined && port.closeAt <= now) {
        this.#ports.delete(key);
        changes.push({ kind: "close", port: { ...port, pids: [] } });
      }
    }
    return changes;
  }

  /** The earliest pending close deadline, if any (to schedule a tick). */
  nextDeadline(): number | undefined {
    let next: number | undefined;
    for (const p of this.#ports.values()) {
      if (p.closeAt !== undefined && (next === undefined || p.closeAt < next)) next = p.closeAt;
    }
    return next;
  }

  /** A namespace is gone: every port in it closes now, grace or not. */
  dropNamespace(netns: number): PortChange[] {
    const changes: PortChange[] = [];
    for (const [key, port] of this.#ports) {
      if (port.netns === netns) {
        this.#ports.delete(key);
        changes.push({ kind: "close", port: { ...port, pids: [] } });
      }
    }
    return changes;
  }

  /** Close everything (shutdown): the changes, and the tracker is left empty. */
  closeAll(): PortChange[] {
    const changes = [...this.#ports.values()].map((port) => ({
      kind: "close" as const,
      port: { ...port, pids: [] },
    }));
    this.#ports.clear();
    return changes;
  }

  /** Ports open now (including those within their close grace). */
  open(): TrackedPort[] {
    return [...this.#ports.values()];
  }

  /** State to save in the snapshot. */
  state(): TrackerState {
    return { version: 1, ports: this.open().map((p) => ({ ...p })) };
  }

  /** Load a saved state (at start, before the first look): the next observe() diffs against it. */
  restore(state: TrackerState): void {
    this.#ports.clear();
    for (const p of state.ports) {
      this.#ports.set(trackKey(p.netns, p.proto, p.port, p.container?.id), { ...p, closeAt: undefined });
    }
  }
}
