/**
 * The eBPF benchmark's shapes: engines, groups of ports, what each phase measured; shared by ebpf_bench.ts (which
 * runs the phases and prints the tables) and ebpf_targets.ts (which judges the targets).
 * @module
 */
import type { Opened } from "./port_opener.ts";
import type { BpfWindow, LoadCapture, LoadResult, Stored } from "./ebpf_shared.ts";
import type { IdleResult } from "./ebpf_idle.ts";
import type { FloodResult } from "./ebpf_flood.ts";

/** Hold times of the hold-time phase, ms. */
export const HOLDS_MS = [1, 5, 20, 120];

export type EngineKind = "libbpf" | "bpftrace" | "polling" | "seed";

/** The eBPF engines: every port must be stored exactly once each way. */
export const isEbpf = (kind: EngineKind) => kind === "libbpf" || kind === "bpftrace";

export interface EngineSpec {
  kind: EngineKind;
  key: string;
  label: string;
  env: Record<string, string>;
}

/**
 * A group of ports reported together (one row): a hold time and protocol (key `hold<ms><proto>`), the first
 * burst after start (`first<n>`), or a burst (`burst<n>`).
 */
export interface Group {
  key: string;
  label: string;
  /** Index into the phases, and the items of that phase in this group. */
  phase: number;
  indexes: number[];
}

export interface GroupStats {
  ports: number;
  /** Ports with exactly one open / close event, none, more than one. */
  openOnce: number;
  openMissing: number;
  openDup: number;
  closeOnce: number;
  closeMissing: number;
  closeDup: number;
  /** Ports whose first close was stored before their first open, or with a close and no open. */
  misordered: number;
  /** Ports with an event of the wrong protocol. */
  wrongProto: number;
  /** Open-to-stored and close-to-stored latencies (first event), ms. */
  openLat: number[];
  closeLat: number[];
  /** Ports with something other than one open then one close. */
  anomalies: {
    port: number;
    proto: string;
    holdMs: number;
    events: Stored[];
    openMs: number;
    closeMs: number;
  }[];
}

/** Every port of the group stored exactly once each way, the open first. */
export const exact = (s: GroupStats) =>
  s.openOnce === s.ports && s.closeOnce === s.ports && s.misordered === 0;

/** What the CPU phase measured for one engine. */
export interface CpuResult {
  load: LoadResult;
  /** Measured window, s. */
  seconds: number;
  /** % of one core, engine process tree (clock ticks). */
  userPct: number;
  sysPct: number;
  /** % of one core, the tree's live threads (schedstat, ns). */
  runPct: number;
  /** % of one core, the listener the engine delivers to (not the engine's; for where the CPU goes). */
  listenerPct: number;
  /** % of one core by comm. */
  byComm: [string, number][];
  /** BPF programs' run time (eBPF engines, bpf_stats on). */
  bpf?: BpfWindow;
  /** The load's events stored. */
  capture: LoadCapture;
  /** Events were still arriving when the wait after the load ended. */
  stillArriving: boolean;
}

export const cpuTotal = (c: CpuResult) => c.userPct + c.sysPct;

/** One engine, every phase. */
export interface EngineRun {
  spec: EngineSpec;
  /** What the opener did, per phase (same order as the cases). */
  opened: Opened[][];
  /** Stored events (not shutdown closes) per port. */
  byPort: Map<number, Stored[]>;
  cpu: CpuResult;
  /** Spawn to the start line ("watching ... with <engine> events"), s; eBPF engines only. */
  startS?: number;
  /** Spawn to the listener's own port stored (its `ts`), s. */
  readyS: number;
  idle: IdleResult;
  /** The 10,000 binds/s phase (eBPF engines), or why it was not run. */
  flood?: FloodResult;
  floodWhy?: string;
}
