/**
 * Test helper for the eBPF engines: a started source feeding a ledger in this process (the engine's event path
 * without its pipeline: reorder hold, ledger, /proc reads of the pids the ledger asks about), to look at the
 * events and the ledger directly. testing/bpftrace.ts and libbpf/testing/libbpf.ts start their source with it.
 * @module
 */
import type { SocketEventSource } from "../event_source.ts";
import { SocketLedger } from "../ledger.ts";
import { EndHold } from "../reorder.ts";
import type { SocketEvent } from "../socket_event.ts";
import { PidResolver } from "../../pipeline/pid_resolver.ts";
import { netnsInode } from "../../pipeline/scope/identity.ts";
import type { PortObservation } from "../../pipeline/observe.ts";

/** A source's events applied to a ledger, as the engine applies them. */
export interface LedgerHarness<S extends SocketEventSource = SocketEventSource> {
  source: S;
  ledger: SocketLedger;
  /** Every event read, in the order read. */
  events: SocketEvent[];
  /** The observation of a port of namespace `netns`, as the ledger has it now. */
  observation(netns: number, proto: "tcp" | "udp", port: number): PortObservation | undefined;
  /** The events of these pids (a fork: of its parent or its child). */
  eventsOf(...pids: number[]): SocketEvent[];
  /** Stop the source (what it still holds is read first) and apply the events held back. */
  stop(): Promise<void>;
}

/**
 * Apply the events of `source` (started) to a fresh ledger: ends held for the source's reorder window (none for
 * a source that is read in order: the hold is 0 ms and applies every event at once), and after each event the
 * pids the ledger asks about (recheck) read from /proc and handed to holdings(), as the engine does.
 */
export function feedLedger<S extends SocketEventSource>(source: S): LedgerHarness<S> {
  const ledger = new SocketLedger();
  const resolver = new PidResolver();
  const own = netnsInode();
  const events: SocketEvent[] = [];
  const hold = new EndHold(source.reorderMs ?? 0, (e) => {
    ledger.apply(e, own);
    for (const pid of ledger.recheck) ledger.holdings(pid, resolver.socketsOf(pid));
  });
  const running = source.run((e) => {
    events.push(e);
    hold.push(e);
  }, () => hold.holdLonger());
  return {
    source,
    ledger,
    events,
    observation: (netns, proto, port) => ledger.observationOf({ netns, proto, port }),
    eventsOf: (...pids) =>
      events.filter((e) => pids.includes(e.pid) || (e.childPid !== undefined && pids.includes(e.childPid))),
    async stop() {
      await source.stop();
      await running;
      hold.flush();
    },
  };
}
