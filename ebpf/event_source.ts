/** The interface every event-driven engine's source implements (libbpf, bpftrace, Tracee). */
import type { SocketEvent } from "./socket_event.ts";

/** A running source of socket events. */
export interface SocketEventSource {
  /** "libbpf", "bpftrace" or "tracee", for logs. */
  readonly name: string;
  /** Resolves once the probes are attached (events from now on are seen); rejects if the source failed. */
  readonly ready: Promise<void>;
  /**
   * Calls `onEvent` for each event, in order, until stopped; resolves with why it ended. A source whose events
   * can come out of order (reorderMs) calls `onBehind` when what it just handed over is older than that window
   * assumes (it is draining a backlog): the engine then holds the ending events until it has caught up. A
   * source that finds events lost (its buffer was full) calls `onLost` with its new total: the engine then
   * reconciles at once instead of at its next interval.
   */
  run(
    onEvent: (e: SocketEvent) => void,
    onBehind?: () => void,
    onLost?: (lost: number) => void,
  ): Promise<string>;
  /**
   * How long the engine gathers changes before reporting them together (ms; default 20): short for a source that
   * already hands its events over in batches; 0 reports what one read brought as soon as it is applied (no
   * timer: each timer wake-up costs more CPU than the report's own work on a small VM).
   */
  readonly gatherMs?: number;
  /**
   * The longest an event may take from the kernel to `onEvent` (ms; default 50): a reconciliation compares its
   * scan with the events only after this long, so that events in flight during the scan are not taken for drift.
   */
  readonly settleMs?: number;
  /**
   * Events carry `kts` and may arrive out of order by up to this long (ms): the engine holds the events that end
   * a socket or a process this long, so that an older open (or fork) still comes first. 0 or absent: in order.
   */
  readonly reorderMs?: number;
  /**
   * The engine found, by scanning, that these processes hold sockets (they opened them before the source
   * started, or the events missed it): a source that follows only the holders it saw open should follow these
   * too (their forks, closes, execs and exits). Absent: the source follows every process anyway.
   */
  adopt?(pids: Iterable<number>): void;
  /** Events the kernel or the tool reported lost (a reason to reconcile). */
  readonly lost: number;
  /** Stop the source and wait for it. */
  stop(): Promise<void>;
}

/** No engine of this kind can run here; `reason` says why (shown to the user at start). */
export class EngineUnavailableError extends Error {
  constructor(readonly engine: string, readonly reason: string) {
    super(`${engine} cannot run: ${reason}`);
    this.name = "EngineUnavailableError";
  }
}
