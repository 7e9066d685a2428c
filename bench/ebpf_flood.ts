/**
 * The eBPF benchmark's flood phase: the load generator at 10,000 bind+close per second (UDP bind() and TCP
 * bind()+listen() alternately, each socket closed at once) in the engine's namespace, on a port range of its own;
 * then, for every port, whether the listener stored as many opens and as many closes as binds were done on it.
 * For the eBPF engines only (the polling engines cannot see a socket that lives microseconds, by design).
 * @module
 */
import type { NetNs } from "../testing/netns.ts";
import type { Resources } from "./ns_bench.ts";
import type { Proc } from "./procs.ts";
import { fmtInt, markdownTable } from "./table.ts";
import {
  ALIGN_R,
  type LoadCapture,
  loadCapture,
  type LoadResult,
  type LoadSpec,
  type LogTail,
  runLoad,
  settle,
} from "./ebpf_shared.ts";

/** Ports of the flood: 10,000 of them, below the ephemeral range; each reused once a second at 10,000/s. */
export const FLOOD_BASE = 22000;
export const FLOOD_SPAN = 10000;

/** What the flood phase measured for one engine. */
export interface FloodResult {
  load: LoadResult;
  capture: LoadCapture;
  /** Events were still arriving when the wait after the flood ended. */
  stillArriving: boolean;
  waitMs: number;
  /** The engine's log lines about lost records, drift or delivery trouble during the flood (the last few). */
  notes: string[];
}

/** Flood the engine in `ns` for `seconds` at `rate`, then wait up to `waitMs` for what it delivers. */
export async function floodPhase(
  res: Resources,
  ns: NetNs,
  engine: Proc,
  tail: LogTail,
  opts: { rate: number; seconds: number; waitMs: number },
): Promise<FloodResult> {
  const spec: LoadSpec = { rate: opts.rate, seconds: opts.seconds, base: FLOOD_BASE, span: FLOOD_SPAN };
  const logBefore = engine.stderr.length;
  const load = await runLoad(res, ns, spec);
  const inFlood = (port: number) => port >= FLOOD_BASE && port < FLOOD_BASE + FLOOD_SPAN;
  const how = await settle(tail, {
    minMs: 500,
    quietMs: 3_000,
    maxMs: opts.waitMs,
    done: () => tail.events.filter((e) => e.event === "close" && inFlood(e.port)).length >= load.count,
  });
  // stderr keeps its last 16 KiB: what was written since the flood began, or the tail of it
  const log = engine.stderr.length > logBefore ? engine.stderr.slice(logBefore) : engine.stderr.slice(-4096);
  const notes = log.split("\n").filter((l) => /lost|drift|missed|spool|fail|error|WRN|ERR/i.test(l)).slice(
    -3,
  );
  return {
    load,
    capture: loadCapture(tail, spec, load),
    stillArriving: how === "timeout",
    waitMs: opts.waitMs,
    notes,
  };
}

/** One row per engine flooded; engines not flooded are listed with why. */
export function floodTable(rows: { key: string; flood?: FloodResult; why?: string }[]): string {
  const header = [
    "engine",
    "binds/s done",
    "binds",
    "opens stored",
    "closes stored",
    "ports exact (opens = closes = binds on it)",
    "last one stored, after the flood ended",
  ];
  return markdownTable(
    header,
    rows.map(({ key, flood, why }) => {
      if (!flood) return [key, `N/A: ${why ?? "not run"}`, "", "", "", "", ""];
      const { load, capture: c } = flood;
      return [
        key,
        fmtInt(load.count / load.seconds),
        fmtInt(load.count),
        fmtInt(c.opens),
        fmtInt(c.closes),
        `${fmtInt(c.portsExact)} of ${fmtInt(c.ports)}`,
        c.lagMs === undefined
          ? "n/a"
          : c.lagMs < 0
          ? "during the flood"
          : `${(c.lagMs / 1000).toFixed(2)} s${
            flood.stillArriving ? ` (still arriving when the ${flood.waitMs / 1000} s wait ended)` : ""
          }`,
      ];
    }),
    ALIGN_R(header.length),
  );
}

/** Every bind of the flood stored once each way. */
export function floodComplete(f: FloodResult): boolean {
  return f.capture.opens === f.load.count && f.capture.closes === f.load.count &&
    f.capture.portsExact === f.capture.ports;
}
