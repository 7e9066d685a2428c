/**
 * Which earlier sends a new send must wait for, so that each port's events reach the listener in order while
 * sends about other ports go out beside them. Pure bookkeeping (no I/O), used by the HTTP sink.
 * @module
 */
import type { PortEvent } from "../events/schema.ts";

/** Most sends on the wire at once (each about ports no other one has); more wait for the oldest. */
export const MAX_IN_FLIGHT = 4;

/** What orders two events: a port of a host, namespace and container, by protocol. */
export function portKey(e: PortEvent): string {
  return `${e.host}\u0000${e.netns}\u0000${e.container_id}\u0000${e.proto}\u0000${e.port}`;
}

/** A send not finished yet: the ports its events are about, and when it is done (never rejects). */
interface Unfinished {
  keys: Set<string>;
  done: Promise<void>;
}

function sharesKey(a: Set<string>, b: Set<string>): boolean {
  const [small, big] = a.size <= b.size ? [a, b] : [b, a];
  for (const k of small) if (big.has(k)) return true;
  return false;
}

/** The unfinished sends, oldest first, and what a new one waits for. */
export class SendOrder {
  #unfinished: Unfinished[] = [];

  constructor(readonly maxInFlight = MAX_IN_FLIGHT) {}

  /** Sends not finished. */
  get size(): number {
    return this.#unfinished.length;
  }

  /**
   * Enter a send of `events` that runs `start` once the earlier sends it depends on are done: those with a port
   * in common, the oldest ones beyond `maxInFlight - 1`, or, with `inOrder` (something is spooled or failing),
   * all of them. Returns what `start` returns; the send counts as unfinished until that settles.
   */
  enter<T>(events: PortEvent[], inOrder: boolean, start: () => Promise<T>): Promise<T> {
    const keys = new Set<string>();
    for (const e of events) keys.add(portKey(e));
    const earlier = this.#unfinished;
    const full = earlier.length - this.maxInFlight + 1;
    const waits: Promise<void>[] = [];
    for (let i = 0; i < earlier.length; i++) {
      const u = earlier[i];
      if (inOrder || i < full || sharesKey(u.keys, keys)) waits.push(u.done);
    }
    const run = waits.length === 0 ? start() : Promise.all(waits).then(start);
    const entry: Unfinished = { keys, done: run.then(() => {}, () => {}) };
    entry.done.then(() => (this.#unfinished = this.#unfinished.filter((u) => u !== entry)));
    this.#unfinished = [...earlier, entry];
    return run;
  }

  /** Resolves when every send entered so far (and any entered meanwhile) is done. */
  async settled(): Promise<void> {
    while (this.#unfinished.length > 0) await Promise.all(this.#unfinished.map((u) => u.done));
  }
}
