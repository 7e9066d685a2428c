/**
 * Putting a source's events back in order, where it reads them out of order: bpftrace reads its per-CPU buffers
 * in turn, so a socket's close (or its holder's exit) recorded on one CPU can be read before its bind or listen
 * recorded on another, when the process migrated in between. Applied as read, the close finds nothing to close
 * and the open then stays: a phantom open port.
 *
 * The events that end something (unlisten, close, exit), execs and forks are held for the source's reorder
 * window, then applied in kernel-time order (`kts`); the others (listen, bind, dup) are applied at once, so an open
 * costs no latency. An older open arriving after a newer close of its socket therefore still comes first, and a
 * fork never comes before an older end it follows (its child would inherit a socket that was gone). What the opens
 * that arrive out of order with the held events need (a fork older than the open of its parent's socket, applied
 * first when the open was read beyond the window; a socket opened at the address of one whose held close comes
 * later) the ledger handles with the same timestamps.
 *
 * The window assumes the source reads each CPU's records soon after they are made. When it falls behind (its
 * process was kept off the CPU, or stopped, and now drains a backlog one CPU's buffer after the other), a close
 * can come well over the window before its open: the source then says so ({@link EndHold.holdLonger}) and the
 * held ends wait until it has caught up, each at most {@link EndHold.maxHoldMs}.
 * @module
 */
import type { SocketEvent } from "./socket_event.ts";

/**
 * An event held for the reorder window: one that ends a socket, a holder's fd or a process, an exec, or a fork.
 * A close that was not the last reference and an exec end no socket, but each makes the ledger doubt what its
 * process holds (see SocketLedger.recheck): applied before an open of that process read after it, the open's
 * socket would keep a holder that no longer holds it. A fork applied before an older end read after it would
 * hand the child what had already gone.
 */
export function heldForOrder(e: SocketEvent): boolean {
  const k = e.kind;
  return k === "unlisten" || k === "close" || k === "exit" || k === "exec" || k === "fork";
}

interface Held {
  e: SocketEvent;
  kts: number;
  /** When it may be applied (ms, the `now` clock). */
  due: number;
  /** When it is applied even while the source is behind. */
  cap: number;
}

/** Holds the events {@link heldForOrder} names for `holdMs`, then hands them on in kernel-time order. */
export class EndHold {
  /** Held events, by kts (a new one is nearly always the newest: insertion from the end). */
  #held: Held[] = [];
  /** The earliest `due` among the held events (Infinity when none): most pushes need not look further. */
  #minDue = Infinity;
  #timer?: ReturnType<typeof setTimeout>;
  /** Until then nothing is applied before its cap: the source is behind (see holdLonger). */
  #floor = 0;

  /**
   * `apply` gets every event, in the order that is safe to apply; `holdMs` 0 holds nothing. `now` is a clock in
   * ms (tests may drive it). Due events are applied when the next event comes (so under a stream of events they
   * join its batch: one report, not two); a timer `slackMs` after they are due applies them when none comes.
   */
  constructor(
    readonly holdMs: number,
    readonly apply: (e: SocketEvent) => void,
    readonly now: () => number = Date.now,
    readonly slackMs = holdMs / 2,
    readonly maxHoldMs = Math.max(1000, 10 * holdMs),
  ) {}

  /** The longest an event may be held: its window and the timer's slack. */
  get maxDelayMs(): number {
    return this.holdMs > 0 ? this.holdMs + this.slackMs : 0;
  }

  /** Until when held ends wait for the source to catch up (0, or a time past: it is not behind). */
  get behindUntil(): number {
    return this.#floor;
  }

  /** Events held now. */
  get size(): number {
    return this.#held.length;
  }

  /** Take one event as read: apply it now, or hold it (see heldForOrder; events with a kernel time). */
  push(e: SocketEvent): void {
    if (this.#minDue !== Infinity) this.release();
    if (this.holdMs <= 0 || e.kts === undefined || !heldForOrder(e)) {
      this.apply(e);
      return;
    }
    const now = this.now();
    const h: Held = { e, kts: e.kts, due: now + this.holdMs, cap: now + this.maxHoldMs };
    let i = this.#held.length;
    while (i > 0 && this.#held[i - 1].kts > h.kts) i--;
    this.#held.splice(i, 0, h);
    if (h.due < this.#minDue) this.#minDue = h.due;
    this.#arm();
  }

  /**
   * Apply the held events that are due, with every older one (an older event, however late it arrived, is
   * due when a newer one is: whatever preceded the newer one has arrived, so whatever preceded it too).
   */
  release(): void {
    const now = this.now();
    if (now < this.#minDue) return;
    let last = -1;
    const behind = now < this.#floor;
    for (let i = 0; i < this.#held.length; i++) {
      const h = this.#held[i];
      if (h.due <= now && (!behind || h.cap <= now)) last = i;
    }
    if (last < 0) return;
    const out = this.#held.splice(0, last + 1);
    this.#minDue = Infinity;
    for (const h of this.#held) if (h.due < this.#minDue) this.#minDue = h.due;
    for (const h of out) this.apply(h.e);
  }

  /**
   * The source is behind: what it reads now is older than the window assumes, so the opens of held ends may
   * still be on their way. Nothing held is applied before `until` (default: `holdMs` from now), unless held
   * `maxHoldMs` already.
   */
  holdLonger(until = this.now() + this.holdMs): void {
    if (this.holdMs <= 0) return;
    this.#floor = Math.max(this.#floor, until);
    if (this.#held.length > 0) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
      this.#arm();
    }
  }

  /** Apply everything held, in order (the source has ended: nothing older can come). */
  flush(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const out = this.#held;
    this.#held = [];
    this.#minDue = Infinity;
    for (const h of out) this.apply(h.e);
  }

  /** Stop the timer (held events are dropped: for a shutdown that will close everything anyway). */
  stop(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /**
   * A timer for the earliest due event (plus the slack), when events are held and none is set; while the source
   * is behind, for when it is due again (the floor) or the earliest cap, whichever comes first.
   */
  #arm(): void {
    if (this.#timer !== undefined || this.#held.length === 0) return;
    let at = this.#minDue;
    if (this.#floor > at) {
      let cap = Infinity;
      for (const h of this.#held) if (h.cap < cap) cap = h.cap;
      at = Math.max(at, Math.min(this.#floor, cap));
    }
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.release();
      this.#arm();
    }, Math.max(0, at + this.slackMs - this.now()));
  }
}
