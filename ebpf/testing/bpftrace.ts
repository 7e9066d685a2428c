/**
 * Test helpers for the bpftrace engine: why its tests cannot run here, and the bpftrace source feeding a ledger
 * in this process (the engine's event path without its pipeline: reorder hold, ledger, /proc reads of the pids
 * the ledger asks about), to look at the events and the ledger directly.
 * @module
 */
import { netnsSkipReason } from "../../testing/netns.ts";
import { startBpftrace } from "../bpftrace_source.ts";
import { SocketLedger } from "../ledger.ts";
import { EndHold } from "../reorder.ts";
import type { SocketEvent } from "../socket_event.ts";
import { PidResolver } from "../../pipeline/pid_resolver.ts";
import { netnsInode } from "../../pipeline/scope/identity.ts";
import type { PortObservation } from "../../pipeline/observe.ts";

/** Why the bpftrace engine's tests cannot run here (root, namespaces, python3, bpftrace), or undefined. */
export function bpftraceSkipReason(): string | undefined {
  const r = netnsSkipReason();
  if (r) return r;
  try {
    return new Deno.Command("bpftrace", { args: ["--version"], stdout: "null", stderr: "null" }).outputSync()
        .success
      ? undefined
      : "bpftrace does not run";
  } catch {
    return "bpftrace is not installed (Debian: apt-get install bpftrace)";
  }
}

/** Why the cross-CPU test cannot run here, if it cannot. */
export function twoCpusSkipReason(): string | undefined {
  return bpftraceSkipReason() ??
    (navigator.hardwareConcurrency < 2 ? `${navigator.hardwareConcurrency} CPU (needs 2)` : undefined);
}

/** The pid of the process named `comm` among the descendants of `pid` (by /proc), or undefined. */
export function descendantNamed(pid: number, comm: string): number | undefined {
  const parentOf = new Map<number, number>();
  const names = new Map<number, string>();
  for (const e of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    try {
      const stat = Deno.readTextFileSync(`/proc/${e.name}/stat`);
      const close = stat.lastIndexOf(")");
      names.set(Number(e.name), stat.slice(stat.indexOf("(") + 1, close));
      parentOf.set(Number(e.name), Number(stat.slice(close + 2).split(" ")[1]));
    } catch { /* gone */ }
  }
  for (const [p, name] of names) {
    if (name !== comm) continue;
    for (let up = parentOf.get(p); up !== undefined && up > 1; up = parentOf.get(up)) {
      if (up === pid) return p;
    }
  }
  return undefined;
}

/** bpftrace's events applied to a ledger, as the engine applies them. */
export interface LedgerHarness {
  ledger: SocketLedger;
  /** Every event read, in the order read. */
  events: SocketEvent[];
  /** The observation of a port of namespace `netns`, as the ledger has it now. */
  observation(netns: number, proto: "tcp" | "udp", port: number): PortObservation | undefined;
  /** The events of these pids (a fork: of its parent or its child). */
  eventsOf(...pids: number[]): SocketEvent[];
  /** Stop bpftrace (held events are applied). */
  stop(): Promise<void>;
}

/**
 * Start bpftrace and apply its events to a fresh ledger: ends held for the reorder window, and after each event
 * the pids the ledger asks about (recheck) read from /proc and handed to holdings(), as the engine does.
 */
export async function startLedgerHarness(): Promise<LedgerHarness> {
  const source = await startBpftrace();
  const ledger = new SocketLedger();
  const resolver = new PidResolver();
  const own = netnsInode();
  const events: SocketEvent[] = [];
  const hold = new EndHold(source.reorderMs, (e) => {
    ledger.apply(e, own);
    for (const pid of ledger.recheck) ledger.holdings(pid, resolver.socketsOf(pid));
  });
  const running = source.run((e) => {
    events.push(e);
    hold.push(e);
  }, () => hold.holdLonger());
  return {
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
