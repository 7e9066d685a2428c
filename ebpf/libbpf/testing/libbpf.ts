/**
 * Test helpers for the native (libbpf) engine: why its tests cannot run here, the deno process of an engine
 * started by WatcherProc, its Prometheus counters, and the libbpf source feeding a ledger in this process (the
 * engine's event path without its pipeline: ledger, /proc reads of the pids the ledger asks about), to look at
 * the events and the ledger directly, as ebpf/testing/bpftrace.ts does for bpftrace.
 * @module
 */
import { type NetNs, netnsSkipReason, run } from "../../../testing/netns.ts";
import {
  type LibbpfOptions,
  type LibbpfSource,
  libbpfUnavailableReason,
  startLibbpf,
} from "../libbpf_source.ts";
import { SocketLedger } from "../../ledger.ts";
import { EndHold } from "../../reorder.ts";
import type { SocketEvent } from "../../socket_event.ts";
import { PidResolver } from "../../../pipeline/pid_resolver.ts";
import { netnsInode } from "../../../pipeline/scope/identity.ts";
import type { PortObservation } from "../../../pipeline/observe.ts";
import { descendantNamed } from "../../testing/bpftrace.ts";

/** Why the libbpf engine's tests cannot run here (root, namespaces, python3, libbpf, BTF, ...), or undefined. */
export function libbpfSkipReason(): string | undefined {
  return netnsSkipReason() ?? libbpfUnavailableReason();
}

/** The comm of a process, or undefined when it is gone. */
function commOf(pid: number): string | undefined {
  try {
    return Deno.readTextFileSync(`/proc/${pid}/comm`).trim();
  } catch {
    return undefined;
  }
}

/**
 * The pid of the deno process of a watcher started with WatcherProc (`ip netns exec NS deno run ...`): the
 * child itself when `ip` exec'd deno, else its deno descendant.
 */
export function denoPidOf(child: Deno.ChildProcess): number {
  if (commOf(child.pid) === "deno") return child.pid;
  const pid = descendantNamed(child.pid, "deno");
  if (pid === undefined) throw new Error(`no deno process under pid ${child.pid} (${commOf(child.pid)})`);
  return pid;
}

/** A process's state letter (/proc/PID/stat: R, S, T for stopped, ...), or undefined when it is gone. */
export function processState(pid: number): string | undefined {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[0];
  } catch {
    return undefined;
  }
}

/** The eBPF engine's counters, as its metrics endpoint exposes them. */
export interface EbpfMetrics {
  events: number;
  reconciliations: number;
  drift: number;
  lost: number;
}

/** Scrape the engine's metrics at 127.0.0.1:`port` inside `ns` (curl, run there). */
export async function ebpfMetrics(ns: NetNs, port: number): Promise<EbpfMetrics> {
  const text = (await run(ns.wrap(["curl", "-sf", `http://127.0.0.1:${port}/metrics`]))).stdout;
  const value = (name: string) => Number(new RegExp(`^${name} (\\d+)$`, "m").exec(text)?.[1] ?? NaN);
  return {
    events: value("portwatch_ebpf_events_total"),
    reconciliations: value("portwatch_ebpf_reconciliations_total"),
    drift: value("portwatch_ebpf_drift_sockets_total"),
    lost: value("portwatch_ebpf_lost_events_total"),
  };
}

/** The libbpf source's events applied to a ledger, as the engine applies them. */
export interface LibbpfLedgerHarness {
  source: LibbpfSource;
  ledger: SocketLedger;
  /** Every event read, in the order read. */
  events: SocketEvent[];
  /** The observation of a port of namespace `netns`, as the ledger has it now. */
  observation(netns: number, proto: "tcp" | "udp", port: number): PortObservation | undefined;
  /** The events of these pids (a fork: of its parent or its child). */
  eventsOf(...pids: number[]): SocketEvent[];
  /** Stop the source (what the ring holds is read first) and free its programs. */
  stop(): Promise<void>;
}

/**
 * Load the programs (kernel-side filters from `options`) and apply their events to a fresh ledger: after each
 * event the pids the ledger asks about (recheck) read from /proc and handed to holdings(), as the engine does.
 * The ring is read in order, so no reorder window (the hold is 0 ms: it applies every event at once).
 */
export async function startLibbpfLedgerHarness(options: LibbpfOptions = {}): Promise<LibbpfLedgerHarness> {
  const source = await startLibbpf(options);
  const ledger = new SocketLedger();
  const resolver = new PidResolver();
  const own = netnsInode();
  const events: SocketEvent[] = [];
  const hold = new EndHold(0, (e) => {
    ledger.apply(e, own);
    for (const pid of ledger.recheck) ledger.holdings(pid, resolver.socketsOf(pid));
  });
  const running = source.run((e) => {
    events.push(e);
    hold.push(e);
  });
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
