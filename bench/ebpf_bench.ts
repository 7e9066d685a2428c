/**
 * The eBPF engine benchmark (`deno task bench ebpf`): the native libbpf engine and the bpftrace engine
 * (ebpf/main.ts, EBPF_ENGINE=libbpf / bpftrace) against our polling engine (watcher/main.ts) at the seed's
 * high-fidelity settings, with BURST_SPREAD=1 (the default) and 0 (the seed's clustered burst), and the seed's ss
 * loop (bench/seed_ss_loop.sh), side by side. Each engine runs in a fresh network namespace this benchmark
 * creates, with a real listener (listener/main.ts --fsync 0) in that namespace that the engine delivers to
 * (LISTENER_URL):
 *
 * 0. start-up (spawn to the start line, and to the listener's own port stored) and idle CPU (ebpf_idle.ts);
 * 1. capture: a first burst of 1,000 ports (cold: its own row, not in the bpftrace targets), then ports held 1,
 *    5, 20 and 120 ms (TCP and UDP alternating, at random moments), then bursts of 100 and 1,000 ports opened as fast
 *    as possible, each held 50 ms; for every port, how many open and close events the listener stored (exactly
 *    one each way is right);
 * 2. detection latency: listen()/bind() returned (the opener's clock) to the event stored (the listener's `ts`);
 * 3. CPU of the engine's process tree while a load generator in the namespace does 1,000 bind+close per second
 *    (UDP bind and TCP listen alternately), and the load generator's own CPU (where BPF programs run);
 * 4. the eBPF engines only: capture at 10,000 binds/s (ebpf_flood.ts), and the memory of the whole tree as
 *    users start it, `deno task ebpf`, under the 1,000 binds/s load (ebpf_memory.ts).
 *
 * BENCH_QUICK=1 runs smaller counts (~3 minutes instead of ~7). Every process and namespace started here is
 * stopped in `finally`, and on SIGINT/SIGTERM; kernel.bpf_stats_enabled, switched on to read the BPF programs'
 * run time, is put back.
 * @module
 */
import { fileURLToPath } from "node:url";
import { NetNs, netnsSkipReason, run } from "../testing/netns.ts";
import type { Proc } from "./procs.ts";
import { waitUntil } from "../infra/wait.ts";
import { fmtInt, fmtMs, fmtRatio, markdownTable } from "./table.ts";
import { type Opened, type Opening, runOpener } from "./port_opener.ts";
import { prng, Resources, startIn, startListener } from "./ns_bench.ts";
import { denoTask } from "./deno_task.ts";
import { clockTicks, processTree, readText, type TreeCpu, treeCpu, TreeRunTime } from "./proc_cpu.ts";
import {
  ALIGN_R,
  bpfProgStats,
  bpfWindow,
  enableBpfStats,
  loadCapture,
  type LoadResult,
  type LoadSpec,
  LogTail,
  pct,
  progress,
  restoreBpfStats,
  runLoad,
  settle,
  sleep,
  type Stored,
} from "./ebpf_shared.ts";
import { idleTable, measureIdle } from "./ebpf_idle.ts";
import { FLOOD_BASE, FLOOD_SPAN, floodPhase, type FloodResult, floodTable } from "./ebpf_flood.ts";
import { memoryTable, type MemResult, runMemory } from "./ebpf_memory.ts";
import { startupTable, targetLines } from "./ebpf_targets.ts";
import {
  type CpuResult,
  cpuTotal,
  type EngineRun,
  type EngineSpec,
  type Group,
  type GroupStats,
  HOLDS_MS,
  isEbpf,
} from "./ebpf_model.ts";

const SEED_LOOP = fileURLToPath(new URL("./seed_ss_loop.sh", import.meta.url));
const WATCHER_MAIN = fileURLToPath(new URL("../watcher/main.ts", import.meta.url));
const EBPF_MAIN = fileURLToPath(new URL("../ebpf/main.ts", import.meta.url));

/** Sizes and durations; BENCH_QUICK=1 picks the small set. */
export interface EbpfBenchOptions {
  quick: boolean;
  /** Ports per hold time (half TCP, half UDP). */
  portsPerHold: number;
  /** Seconds over which the hold-time ports are spread, per port. */
  spreadPerPortS: number;
  /** Burst sizes, each port held {@link burstHoldMs}. */
  bursts: number[];
  burstHoldMs: number;
  /** Load: bind+close per second, warm-up and measured seconds. */
  loadRate: number;
  loadWarmupS: number;
  loadSeconds: number;
  /** Idle: warm-up after ready, then measured seconds. */
  idleWarmupS: number;
  idleSeconds: number;
  /** The eBPF engines' flood: bind+close per second, seconds. */
  floodRate: number;
  floodSeconds: number;
  /** Memory (`deno task ebpf` under the load): seconds sampled, once a second, after {@link loadWarmupS}. */
  memSeconds: number;
  /**
   * Only these engines (keys: libbpf, bpftrace, poll, poll0, seed); all when undefined
   * (BENCH_ENGINES=libbpf,bpftrace).
   */
  engines?: string[];
  /** Extra `deno run` flags for the Deno engines, e.g. --cpu-prof (BENCH_DENO_FLAGS, space-separated). */
  denoFlags: string[];
}

/** Options from BENCH_QUICK. */
export function ebpfOptionsFromEnv(env = Deno.env): EbpfBenchOptions {
  const quick = ["1", "true", "yes"].includes(env.get("BENCH_QUICK") ?? "");
  return {
    quick,
    portsPerHold: quick ? 30 : 100,
    spreadPerPortS: 0.04,
    bursts: [100, 1000],
    burstHoldMs: 50,
    loadRate: 1000,
    loadWarmupS: 2,
    loadSeconds: quick ? 8 : 20,
    idleWarmupS: 2,
    idleSeconds: quick ? 10 : 30,
    floodRate: 10_000,
    floodSeconds: quick ? 5 : 10,
    memSeconds: quick ? 5 : 10,
    engines: env.get("BENCH_ENGINES")?.split(",").map((s) => s.trim()).filter(Boolean),
    denoFlags: (env.get("BENCH_DENO_FLAGS") ?? "").split(/\s+/).filter(Boolean),
  };
}

const HIFI = { SCAN_INTERVAL: "1", BURST_SCANS: "5", BURST_DELAY: "0.02" };
/** Port ranges (below the ephemeral range 32768-60999, so nothing else in the namespace takes them). */
const HOLD_BASE = 10000;
const BURST_BASES = [12000, 14000];
/**
 * Ports of the first burst, before every measured phase: it warms the engine and the listener (their first big
 * batches run cold code), as the listener benchmark's warm-up does. Reported as its own row, not in the targets.
 */
const FIRST_BURST_BASE = 16000;
const LOAD_BASE = 20000;
const LOAD_SPAN = 2000;
/** How long to wait, after the load ended, for the engine to deliver what it saw of it. */
const LOAD_WAIT_MS = 60_000;

// ---------------------------------------------------------------------------------------------------------------
// Engines.

const ENGINES: EngineSpec[] = [
  {
    kind: "libbpf",
    key: "libbpf",
    label: "libbpf engine (ebpf/main.ts, EBPF_ENGINE=libbpf)",
    env: { EBPF_ENGINE: "libbpf", EBPF_ONLY: "1" },
  },
  {
    kind: "bpftrace",
    key: "bpftrace",
    label: "bpftrace engine (ebpf/main.ts, EBPF_ENGINE=bpftrace)",
    env: { EBPF_ENGINE: "bpftrace", EBPF_ONLY: "1" },
  },
  {
    kind: "polling",
    key: "poll",
    label: "polling, HIFI, BURST_SPREAD=1 (default)",
    env: HIFI,
  },
  {
    kind: "polling",
    key: "poll0",
    label: "polling, HIFI, BURST_SPREAD=0",
    env: { ...HIFI, BURST_SPREAD: "0" },
  },
  { kind: "seed", key: "seed", label: "seed ss loop, HIFI", env: HIFI },
];

/** A running engine; stop() also ends a bpftrace child left behind if the engine could not stop it. */
class Engine {
  /** The bpftrace child of the bpftrace engine. */
  bpftracePid?: number;
  /** When it was spawned: performance.now() and wall-clock ms (for the listener's `ts`). */
  readonly spawnedAt = performance.now();
  readonly spawnedWall = Date.now();

  constructor(readonly spec: EngineSpec, readonly proc: Proc) {}

  /** The process that holds the BPF programs' fds: bpftrace for the bpftrace engine, the engine's deno itself for
   * libbpf; undefined for the others. */
  get bpfPid(): number | undefined {
    return this.spec.kind === "libbpf" ? this.proc.pid : this.bpftracePid;
  }

  async stop(): Promise<void> {
    await this.proc.stop();
    const pid = this.bpftracePid;
    if (pid === undefined || readText(`/proc/${pid}/comm`)?.trim() !== "bpftrace") return;
    try {
      Deno.kill(pid, "SIGINT");
    } catch { /* gone */ }
    for (let i = 0; i < 50 && readText(`/proc/${pid}/comm`)?.trim() === "bpftrace"; i++) await sleep(100);
    if (readText(`/proc/${pid}/comm`)?.trim() === "bpftrace") {
      try {
        Deno.kill(pid, "SIGKILL");
      } catch { /* gone */ }
    }
  }
}

/** Where snapshots go: a directory on tmpfs (set by runEbpfBench). */
let SHM_DIR = "/dev/shm";

async function startEngine(
  res: Resources,
  ns: NetNs,
  spec: EngineSpec,
  dir: string,
  listenerUrl: string,
  denoFlags: string[],
): Promise<Engine> {
  const task = isEbpf(spec.kind) ? await denoTask("ebpf") : { env: {}, v8Flags: [] };
  const env: Record<string, string> = { ...task.env, ...spec.env, LISTENER_URL: listenerUrl };
  if (spec.kind === "seed") return res.track(new Engine(spec, startIn(ns, ["bash", SEED_LOOP], env)));
  env.SNAPSHOT_PATH = `${SHM_DIR}/snapshot-${crypto.randomUUID().slice(0, 8)}.json`;
  env.SPOOL_PATH = `${dir}/spool-${crypto.randomUUID().slice(0, 8)}`;
  const main = isEbpf(spec.kind) ? EBPF_MAIN : WATCHER_MAIN;
  return res.track(
    new Engine(spec, startIn(ns, [Deno.execPath(), "run", "-A", ...task.v8Flags, ...denoFlags, main], env)),
  );
}

// ---------------------------------------------------------------------------------------------------------------
// The schedules.

interface Case {
  key: string;
  label: string;
  items: Opening[];
}

function holdCase(opts: EbpfBenchOptions): Case {
  // The same schedule for every engine: hold times mixed, TCP and UDP alternating, at uniformly random moments.
  const rnd = prng(7);
  const n = opts.portsPerHold * HOLDS_MS.length;
  const span = n * opts.spreadPerPortS;
  const items: Opening[] = [];
  let i = 0;
  for (const hold of HOLDS_MS) {
    for (let k = 0; k < opts.portsPerHold; k++) {
      items.push({
        port: HOLD_BASE + i++,
        at: rnd() * span,
        hold: hold / 1000,
        proto: k % 2 ? "udp" : "tcp",
      });
    }
  }
  return { key: "holds", label: "hold times", items };
}

function burstCase(size: number, base: number, opts: EbpfBenchOptions, first = false): Case {
  const items: Opening[] = [];
  for (let i = 0; i < size; i++) {
    items.push({ port: base + i, at: 0, hold: opts.burstHoldMs / 1000, proto: i % 2 ? "udp" : "tcp" });
  }
  return first
    ? { key: `first${size}`, label: `first burst of ${fmtInt(size)} after start (cold)`, items }
    : { key: `burst${size}`, label: `burst of ${fmtInt(size)}`, items };
}

function groupsOf(cases: Case[]): Group[] {
  const groups: Group[] = [];
  cases.forEach((c, phase) => {
    if (c.key === "holds") {
      for (const h of HOLDS_MS) {
        for (const proto of ["tcp", "udp"] as const) {
          groups.push({
            key: `hold${h}${proto}`,
            label: `held ${h} ms, ${proto.toUpperCase()}`,
            phase,
            indexes: c.items.flatMap((it, i) =>
              Math.round(it.hold * 1000) === h && it.proto === proto ? [i] : []
            ),
          });
        }
      }
    } else {
      groups.push({
        key: c.key,
        label: `${c.label} (TCP+UDP), held 50 ms`,
        phase,
        indexes: c.items.map((_, i) => i),
      });
    }
  });
  return groups;
}

// ---------------------------------------------------------------------------------------------------------------
// CPU at 1,000 binds/s: the load generator in the engine's namespace.

/** The 1,000 binds/s load: its ports, reused every 2 s. */
const loadSpec = (opts: EbpfBenchOptions): LoadSpec => ({
  rate: opts.loadRate,
  seconds: opts.loadWarmupS + opts.loadSeconds + 1,
  base: LOAD_BASE,
  span: LOAD_SPAN,
});

async function cpuPhase(
  res: Resources,
  ns: NetNs,
  engine: Engine,
  listenerPid: number,
  tail: LogTail,
  opts: EbpfBenchOptions,
  tck: number,
): Promise<CpuResult> {
  let a: TreeCpu | undefined, b: TreeCpu | undefined;
  let la: TreeCpu | undefined, lb: TreeCpu | undefined;
  let bpfA: ReturnType<typeof bpfProgStats> | undefined, bpfB: typeof bpfA;
  let seconds = 0;
  const meter = new TreeRunTime(engine.proc.pid);
  const bpfPid = engine.bpfPid;
  const stats = bpfPid !== undefined && enableBpfStats();
  const spec = loadSpec(opts);
  try {
    const load = await runLoad(res, ns, spec, {
      afterMs: opts.loadWarmupS * 1000,
      run: async () => {
        a = treeCpu(engine.proc.pid);
        meter.sample(true);
        la = treeCpu(listenerPid);
        if (stats) bpfA = bpfProgStats(bpfPid!);
        const t0 = performance.now();
        await meter.sampleFor(opts.loadSeconds * 1000);
        b = treeCpu(engine.proc.pid);
        lb = treeCpu(listenerPid);
        if (stats) bpfB = bpfProgStats(bpfPid!);
        seconds = (performance.now() - t0) / 1000;
      },
    });
    const inLoad = (e: Stored) => e.port >= LOAD_BASE && e.port < LOAD_BASE + LOAD_SPAN;
    const how = await settle(tail, {
      minMs: isEbpf(engine.spec.kind) ? 500 : 1_500,
      quietMs: 1_500,
      maxMs: LOAD_WAIT_MS,
      done: isEbpf(engine.spec.kind)
        ? () => tail.events.filter((e) => inLoad(e) && e.event === "close").length >= load.count
        : undefined,
    });
    const pctOf = (ticks: number) => (ticks / tck / seconds) * 100;
    const byComm = [...b!.byComm].map(([c, t]) =>
      [c, pctOf(t - (a!.byComm.get(c) ?? 0))] as [string, number]
    );
    return {
      load,
      seconds,
      userPct: pctOf(b!.user - a!.user),
      sysPct: pctOf(b!.sys - a!.sys),
      runPct: (meter.ns / 1e9 / seconds) * 100,
      byComm,
      listenerPct: pctOf(lb!.user + lb!.sys - la!.user - la!.sys),
      bpf: bpfWindow(bpfA, bpfB, seconds),
      capture: loadCapture(tail, spec, load),
      stillArriving: how === "timeout",
    };
  } finally {
    restoreBpfStats();
  }
}

// ---------------------------------------------------------------------------------------------------------------
// One engine, every phase.

async function runEngine(
  res: Resources,
  spec: EngineSpec,
  cases: Case[],
  opts: EbpfBenchOptions,
  tck: number,
): Promise<EngineRun> {
  const ns = res.track(await NetNs.create());
  const dir = await Deno.makeTempDir({ prefix: "portwatch_bench_ebpf_" });
  try {
    const listener = await startListener(res, ns, dir, ["--max-bytes", "0"]);
    const tail = new LogTail(listener.logPath);
    const engine = await startEngine(res, ns, spec, dir, listener.url, opts.denoFlags);
    try {
      let startS: number | undefined;
      if (isEbpf(spec.kind)) {
        // checked as each chunk of stderr arrives: the moment it resolves is the moment the line came
        await engine.proc.waitForStderr(new RegExp(`watching .* with ${spec.kind} events`), 90_000)
          .catch((e) => {
            throw new Error(`the ${spec.kind} engine did not start: ${(e as Error).message}`);
          });
        startS = (performance.now() - engine.spawnedAt) / 1000;
        if (spec.kind === "bpftrace") {
          engine.bpftracePid = processTree(engine.proc.pid).find((p) => p.comm === "bpftrace")?.pid;
          if (engine.bpftracePid === undefined) throw new Error("no bpftrace child of the bpftrace engine");
        }
      }
      const own = await waitUntil(
        `${spec.label} to report the listener's own port`,
        async () => {
          await tail.poll();
          return tail.events.find((e) => e.event === "open" && e.port === listener.port);
        },
        60_000,
        10,
      );
      // when the listener stored it (its `ts`, 1 ms resolution), not when this poll found it
      const readyS = (own.ts - engine.spawnedWall) / 1000;
      progress(
        `${spec.key}: ${
          startS === undefined ? "" : `start line ${(startS * 1000).toFixed(0)} ms, `
        }ready (own ` +
          `port stored) ${(readyS * 1000).toFixed(0)} ms after spawn`,
      );
      await sleep(500 + opts.idleWarmupS * 1000);
      const idle = await measureIdle(engine.proc.pid, engine.bpfPid, opts.idleSeconds, tck);
      progress(
        `${spec.key}: idle ${idle.runPct.toFixed(3)}% of one core over ${idle.seconds.toFixed(1)} s${
          idle.bpf ? `, BPF programs ${idle.bpf.pct.toFixed(3)}%` : ""
        }`,
      );

      const opened: Opened[][] = [];
      for (const c of cases) {
        const ports = new Set(c.items.map((i) => i.port));
        opened.push(await runOpener(c.items, ns.wrap.bind(ns)));
        const how = await settle(tail, {
          minMs: isEbpf(spec.kind) ? 200 : 1_500,
          quietMs: 1_500,
          maxMs: 90_000,
          done: () => {
            const closed = new Set(
              tail.events.filter((e) => e.event === "close" && ports.has(e.port)).map((e) => e.port),
            );
            return closed.size === ports.size;
          },
        });
        const seen = new Set(
          tail.events.filter((e) => e.event === "open" && ports.has(e.port)).map((e) => e.port),
        );
        progress(
          `${spec.key}: ${c.label}: ${seen.size}/${ports.size} ports seen open${
            how === "timeout" ? " (events still arriving when the wait ended)" : ""
          }`,
        );
      }

      const cpu = await cpuPhase(res, ns, engine, listener.proc.pid, tail, opts, tck);
      progress(
        `${spec.key}: ${fmtInt(cpu.load.count)} bind+close in ${cpu.load.seconds.toFixed(1)} s: CPU ${
          cpuTotal(cpu).toFixed(2)
        }% of one core; load ports stored ${cpu.capture.opens} opens, ${cpu.capture.closes} closes`,
      );
      let flood: FloodResult | undefined, floodWhy: string | undefined;
      if (isEbpf(spec.kind)) {
        flood = await floodPhase(res, ns, engine.proc, tail, {
          rate: opts.floodRate,
          seconds: opts.floodSeconds,
          waitMs: LOAD_WAIT_MS,
        });
        progress(
          `${spec.key}: flood: ${fmtInt(flood.load.count)} bind+close in ${
            flood.load.seconds.toFixed(1)
          } s; ` +
            `stored ${flood.capture.opens} opens, ${flood.capture.closes} closes; ${flood.capture.portsExact}/` +
            `${flood.capture.ports} ports exact${
              flood.notes.length ? `; engine log: ${flood.notes.join(" | ")}` : ""
            }`,
        );
      } else {
        floodWhy = "a polling engine does not see sockets that live microseconds (by design)";
      }
      await tail.poll();
      const byPort = new Map<number, Stored[]>();
      for (const e of tail.events) {
        if (e.source?.startsWith("shutdown")) continue;
        const list = byPort.get(e.port) ?? [];
        list.push(e);
        byPort.set(e.port, list);
      }
      return { spec, opened, byPort, cpu, startS, readyS, idle, flood, floodWhy };
    } finally {
      await res.release(engine);
      await res.release(listener.proc);
    }
  } finally {
    await res.release(ns);
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/** The load generator alone, in a fresh namespace with nothing watching: its own CPU per bind+close. */
async function runBaseline(res: Resources, opts: EbpfBenchOptions): Promise<LoadResult> {
  const ns = res.track(await NetNs.create());
  try {
    return await runLoad(res, ns, loadSpec(opts));
  } finally {
    await res.release(ns);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Analysis.

function groupStats(r: EngineRun, cases: Case[], g: Group): GroupStats {
  const s: GroupStats = {
    ports: 0,
    openOnce: 0,
    openMissing: 0,
    openDup: 0,
    closeOnce: 0,
    closeMissing: 0,
    closeDup: 0,
    misordered: 0,
    wrongProto: 0,
    openLat: [],
    closeLat: [],
    anomalies: [],
  };
  for (const i of g.indexes) {
    const item = cases[g.phase].items[i];
    const o = r.opened[g.phase][i];
    const proto = item.proto ?? "tcp";
    const ev = r.byPort.get(item.port) ?? [];
    const opens = ev.filter((e) => e.event === "open");
    const closes = ev.filter((e) => e.event === "close");
    s.ports++;
    if (opens.length === 1) s.openOnce++;
    else if (opens.length === 0) s.openMissing++;
    else s.openDup++;
    if (closes.length === 1) s.closeOnce++;
    else if (closes.length === 0) s.closeMissing++;
    else s.closeDup++;
    const misordered = closes.length > 0 &&
      (opens.length === 0 || ev.indexOf(closes[0]) < ev.indexOf(opens[0]));
    if (misordered) s.misordered++;
    const wrong = ev.some((e) => e.proto !== undefined && e.proto !== proto);
    if (wrong) s.wrongProto++;
    if (opens.length) s.openLat.push(opens[0].ts - o.openMs);
    if (closes.length) s.closeLat.push(closes[0].ts - o.closeMs);
    const seenAtAll = opens.length > 0 || closes.length > 0;
    const bad = opens.length > 1 || closes.length > 1 || misordered || wrong ||
      (isEbpf(r.spec.kind)
        ? opens.length !== 1 || closes.length !== 1
        : seenAtAll && (opens.length !== 1 || closes.length !== 1));
    if (bad) {
      s.anomalies.push({
        port: item.port,
        proto,
        holdMs: Math.round(item.hold * 1000),
        events: ev,
        openMs: o.openMs,
        closeMs: o.closeMs,
      });
    }
  }
  return s;
}

/** Engines compared in the ratio columns, [a, b] for "a ÷ b", where both ran. */
function pairs(runs: EngineRun[], of: [string, string][]): [string, string][] {
  const has = (k: string) => runs.some((r) => r.spec.key === k);
  return of.filter(([a, b]) => has(a) && has(b));
}

function captureTable(runs: EngineRun[], stats: Map<string, GroupStats[]>, groups: Group[]): string {
  const rate = (k: string, gi: number) => {
    const s = stats.get(k)?.[gi];
    return s && s.ports ? (s.ports - s.openMissing) / s.ports : undefined;
  };
  const ratios = pairs(runs, [["libbpf", "bpftrace"], ["bpftrace", "poll"], ["bpftrace", "poll0"], [
    "bpftrace",
    "seed",
  ]]);
  const header = ["ports", ...runs.map((r) => r.spec.key), ...ratios.map(([a, b]) => `${a} ÷ ${b}`)];
  const rows = groups.map((g, gi) => [
    `${g.label} (${g.indexes.length})`,
    ...runs.map((r) => {
      const s = stats.get(r.spec.key)![gi];
      const seen = s.ports - s.openMissing;
      return `${seen}/${s.ports} (${((seen / s.ports) * 100).toFixed(0)}%)`;
    }),
    ...ratios.map(([a, b]) => fmtRatio(rate(a, gi), rate(b, gi))),
  ]);
  return markdownTable(header, rows, ALIGN_R(header.length));
}

function exactTable(runs: EngineRun[], stats: Map<string, GroupStats[]>, groups: Group[]): string {
  const header = [
    "engine",
    "ports",
    "opens ×1",
    "open missing",
    "open dup",
    "closes ×1",
    "close missing",
    "close dup",
    "close before open",
    "wrong proto",
  ];
  const rows: string[][] = [];
  for (const r of runs) {
    for (const [gi, g] of groups.entries()) {
      const s = stats.get(r.spec.key)![gi];
      rows.push([
        gi === 0 ? `**${r.spec.key}**` : "",
        `${g.label} (${s.ports})`,
        String(s.openOnce),
        String(s.openMissing),
        String(s.openDup),
        String(s.closeOnce),
        String(s.closeMissing),
        String(s.closeDup),
        String(s.misordered),
        String(s.wrongProto),
      ]);
    }
  }
  return markdownTable(header, rows, ALIGN_R(header.length, 2));
}

function latencyTable(runs: EngineRun[], stats: Map<string, GroupStats[]>, groups: Group[]): string {
  const ratios = [
    ...pairs(runs, [["libbpf", "bpftrace"]]).flatMap(([a, b]) => [[a, b, 0.5], [a, b, 0.99]] as const),
    ...pairs(runs, [["seed", "bpftrace"]]).map(([a, b]) => [a, b, 0.5] as const),
  ];
  const header = [
    "ports",
    ...runs.flatMap((r) => [`${r.spec.key} p50`, `${r.spec.key} p99`]),
    ...ratios.map(([a, b, p]) => `${a} p${p * 100} ÷ ${b} p${p * 100}`),
  ];
  const row = (label: string, get: (k: string) => number[]) => [
    label,
    ...runs.flatMap((r) => {
      const l = get(r.spec.key);
      return [fmtMs(pct(l, 0.5)), fmtMs(pct(l, 0.99))];
    }),
    ...ratios.map(([a, b, p]) => fmtRatio(pct(get(a), p), pct(get(b), p))),
  ];
  const rows = groups.map((g, gi) => row(`open, ${g.label}`, (k) => stats.get(k)?.[gi].openLat ?? []));
  const holdIdx = groups.flatMap((g, gi) => (g.key.startsWith("hold") ? [gi] : []));
  const holds = (k: string, which: "openLat" | "closeLat") =>
    stats.has(k) ? holdIdx.flatMap((gi) => stats.get(k)![gi][which]) : [];
  rows.push(row("**open, every hold-time port seen (1-120 ms)**", (k) => holds(k, "openLat")));
  rows.push(row("**close, every hold-time port seen (1-120 ms)**", (k) => holds(k, "closeLat")));
  for (const [gi, g] of groups.entries()) {
    if (!g.key.startsWith("hold")) {
      rows.push(row(`close, ${g.label}`, (k) => stats.get(k)?.[gi].closeLat ?? []));
    }
  }
  return markdownTable(header, rows, ALIGN_R(header.length));
}

function cpuTable(runs: EngineRun[], baseline: LoadResult): string {
  const perBindUs = (l: LoadResult) => ((l.user + l.sys) / l.count) * 1e6;
  const bp = runs.find((r) => r.spec.kind === "bpftrace");
  const total = (r: EngineRun) => cpuTotal(r.cpu);
  const header = [
    "engine",
    "process tree (CPU % of one core each)",
    "CPU % user",
    "CPU % sys",
    "CPU % total",
    "CPU % total (schedstat)",
    "÷ bpftrace",
    "binds/s done",
    "load ports stored open / close",
    "last one stored, after the load ended",
    "load gen CPU µs per bind+close",
    "÷ no engine",
    "BPF programs, % of one core",
    "listener CPU %",
    "load gen CPU %",
  ];
  const rows = runs.map((r) => {
    const expected = r.cpu.load.count;
    const c = r.cpu.capture;
    return [
      r.spec.key,
      r.cpu.byComm.filter(([, p]) => p >= 0.005).sort((a, b) => b[1] - a[1]).map(([c, p]) =>
        `${c} ${p.toFixed(2)}`
      )
        .join(", ") || "n/a",
      r.cpu.userPct.toFixed(2),
      r.cpu.sysPct.toFixed(2),
      total(r).toFixed(2),
      r.cpu.runPct.toFixed(2),
      bp ? fmtRatio(total(r), total(bp)) : "n/a",
      fmtInt(r.cpu.load.count / r.cpu.load.seconds),
      `${fmtInt(c.opens)} / ${fmtInt(c.closes)} of ${fmtInt(expected)}`,
      c.lagMs === undefined
        ? "n/a"
        : c.lagMs < 0
        ? "during the load"
        : `${(c.lagMs / 1000).toFixed(2)} s${
          r.cpu.stillArriving ? ` (still arriving when the ${LOAD_WAIT_MS / 1000} s wait ended)` : ""
        }`,
      perBindUs(r.cpu.load).toFixed(1),
      fmtRatio(perBindUs(r.cpu.load), perBindUs(baseline)),
      r.cpu.bpf === undefined
        ? ""
        : `${r.cpu.bpf.pct.toFixed(2)} (${fmtInt(r.cpu.bpf.runsPerS)} runs/s, ${r.cpu.bpf.progs} programs)`,
      r.cpu.listenerPct.toFixed(2),
      (((r.cpu.load.user + r.cpu.load.sys) / r.cpu.load.seconds) * 100).toFixed(2),
    ];
  });
  rows.push([
    "no engine (load generator alone)",
    "",
    "",
    "",
    "",
    "",
    "",
    fmtInt(baseline.count / baseline.seconds),
    "",
    "",
    perBindUs(baseline).toFixed(1),
    "1.00x",
    "",
    "",
    (((baseline.user + baseline.sys) / baseline.seconds) * 100).toFixed(2),
  ]);
  return markdownTable(header, rows, ALIGN_R(header.length, 2));
}

function anomalyReport(runs: EngineRun[], stats: Map<string, GroupStats[]>, groups: Group[]): string[] {
  const out: string[] = [];
  for (const r of runs) {
    const list = stats.get(r.spec.key)!.flatMap((s, gi) =>
      s.anomalies.map((a) => ({ ...a, group: groups[gi].label }))
    );
    if (list.length === 0) continue;
    out.push(
      "",
      `**${r.spec.key}**: ${list.length} port(s) ${
        isEbpf(r.spec.kind) ? "without exactly one open then one close" : "seen but not exactly once each way"
      } (first 20; times relative to the opener's listen()/bind()):`,
      "",
    );
    for (const a of list.slice(0, 20)) {
      const evs = a.events.map((e) =>
        `${e.event} ${e.proto ?? "?"} at ${e.ts - a.openMs >= 0 ? "+" : ""}${
          (e.ts - a.openMs).toFixed(0)
        } ms (${e.source ?? "?"}, pids ${JSON.stringify(e.pids ?? null)})`
      );
      out.push(
        `- port ${a.port}/${a.proto} (${a.group}; held ${a.holdMs} ms, closed at +${
          (a.closeMs - a.openMs).toFixed(1)
        } ms): ${evs.length ? evs.join("; ") : "no event"}`,
      );
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------

async function versions(): Promise<string> {
  const first = async (argv: string[]) => {
    try {
      const r = await run(argv, { check: false });
      return (r.stdout || r.stderr).trim().split("\n")[0];
    } catch {
      return "n/a";
    }
  };
  let libbpf = "libbpf n/a";
  try {
    libbpf = Deno.realPathSync("/usr/lib/x86_64-linux-gnu/libbpf.so.1").split("/").pop()!;
  } catch { /* not there */ }
  return `deno ${Deno.version.deno}, Linux ${await first(["uname", "-r"])}, ${libbpf}, ${await first([
    "bpftrace",
    "--version",
  ])}, ${await first(
    ["ss", "-V"],
  )}, ${navigator.hardwareConcurrency} CPUs`;
}

/** Run the eBPF benchmark and return its report as Markdown. */
export async function runEbpfBench(opts: EbpfBenchOptions = ebpfOptionsFromEnv()): Promise<string> {
  const skip = netnsSkipReason();
  if (skip) throw new Error(`the eBPF benchmark needs network namespaces: ${skip}`);
  for (const tool of [["bpftrace", "--version"], ["ss", "-V"], ["curl", "-V"]]) {
    try {
      await run(tool, { check: false });
    } catch {
      throw new Error(`the eBPF benchmark needs ${tool[0]} (apt-get install -y bpftrace iproute2 curl)`);
    }
  }
  const res = new Resources("ebpf");
  let interrupted = false;
  const onSignal = () => {
    if (interrupted) return;
    interrupted = true;
    progress("interrupted: stopping every process and namespace started");
    restoreBpfStats();
    res.releaseAll()
      .then(() => Deno.remove(SHM_DIR, { recursive: true }))
      .catch(() => {})
      .finally(() => Deno.exit(130));
  };
  const signals = ["SIGINT", "SIGTERM"] as const;
  for (const s of signals) Deno.addSignalListener(s, onSignal);
  const t0 = performance.now();
  SHM_DIR = await Deno.makeTempDir({ dir: "/dev/shm", prefix: "portwatch_bench_ebpf_" });
  try {
    const header = await versions();
    const tck = await clockTicks();
    progress(`${opts.quick ? "quick" : "full"} run`);
    const biggest = Math.max(...opts.bursts);
    const cases = [
      burstCase(biggest, FIRST_BURST_BASE, opts, true),
      holdCase(opts),
      ...opts.bursts.map((n, i) => burstCase(n, BURST_BASES[i], opts)),
    ];
    const groups = groupsOf(cases);

    const baseline = await runBaseline(res, opts);
    progress(
      `no engine: ${fmtInt(baseline.count)} bind+close in ${baseline.seconds.toFixed(1)} s, load generator ${
        (((baseline.user + baseline.sys) / baseline.count) * 1e6).toFixed(1)
      } µs CPU each`,
    );
    const runs: EngineRun[] = [];
    for (const spec of ENGINES.filter((e) => !opts.engines || opts.engines.includes(e.key))) {
      runs.push(await runEngine(res, spec, cases, opts, tck));
    }
    const memory: MemResult[] = [];
    for (const engine of ["libbpf", "bpftrace"] as const) {
      if (!runs.some((r) => r.spec.key === engine)) continue;
      memory.push(
        await runMemory(res, engine, {
          load: { ...loadSpec(opts), seconds: opts.loadWarmupS + opts.memSeconds + 1 },
          warmupS: opts.loadWarmupS,
          windowS: opts.memSeconds,
          shmDir: SHM_DIR,
        }),
      );
    }
    const stats = new Map(runs.map((r) => [r.spec.key, groups.map((g) => groupStats(r, cases, g))]));
    const minutes = (performance.now() - t0) / 60_000;
    const targets = targetLines({
      runs,
      stats,
      groups,
      loadRate: opts.loadRate,
      floodRate: opts.floodRate,
      loadWaitMs: LOAD_WAIT_MS,
      memory,
    });

    const holdPorts = cases.find((c) => c.key === "holds")!.items.length;
    const parts = [
      "# eBPF engine benchmark: libbpf and bpftrace engines vs polling vs the seed's ss loop",
      "",
      `${new Date().toISOString()} — ${header}; ${
        opts.quick ? "BENCH_QUICK=1 (small counts)" : "full run"
      }, ${minutes.toFixed(1)} min.`,
      "",
      "Each engine runs in a fresh network namespace (ip netns add) with listener/main.ts (--fsync 0) in it and " +
      "delivers there (LISTENER_URL); everything below is counted from what that listener stored. Engines:",
      "",
      ...runs.map((r) =>
        `- \`${r.spec.key}\`: ${r.spec.label} — ${
          isEbpf(r.spec.kind)
            ? "`deno run -A ebpf/main.ts` with the `ebpf` task's environment and V8 flags, " +
              `EBPF_ENGINE=${r.spec.kind} EBPF_ONLY=1, events of its own namespace`
            : r.spec.kind === "polling"
            ? `\`deno run -A watcher/main.ts\`, ${
              Object.entries(r.spec.env).map(([k, v]) => `${k}=${v}`).join(" ")
            }`
            : `bench/seed_ss_loop.sh, ${Object.entries(r.spec.env).map(([k, v]) => `${k}=${v}`).join(" ")}`
        }; ready (listener's own port stored) ${(r.readyS * 1000).toFixed(0)} ms after spawn`
      ),
      "",
      `Ports: ${holdPorts} ports held ${
        HOLDS_MS.join(", ")
      } ms (${opts.portsPerHold} per hold time, TCP listen() ` +
      `and UDP bind() alternating) at uniformly random moments over ${
        (holdPorts * opts.spreadPerPortS).toFixed(0)
      } s ` +
      `(the same seeded schedule for every engine), after a first burst of ${
        fmtInt(biggest)
      } ports that comes ` +
      `first after start, cold (the engine's and the listener's first big batch runs cold code; a row of its own, ` +
      `not in the bpftrace targets, in the libbpf cold-burst targets); then ` +
      `bursts of ${opts.bursts.map(fmtInt).join(" and ")} ports ` +
      `(TCP/UDP alternating) opened back to back as fast as python3 can, each closed ${opts.burstHoldMs} ms after ` +
      `it opened; each phase ends when every port's close was stored or nothing new came for 1.5 s.`,
      "",
      "## 1. Capture: ports with an open event stored",
      "",
      captureTable(runs, stats, groups),
      "",
      "## 2. Each port once each way",
      "",
      "For every port: how many `open` and `close` events the listener stored (shutdown closes excluded). " +
      "`×1` is right; `missing` is none; `dup` is more than one. `close before open`: the first close was " +
      "stored before the first open, or a close without an open.",
      "",
      exactTable(runs, stats, groups),
      "",
      "## 3. Detection latency: listen()/bind() to event stored",
      "",
      "Latency = the stored event's `ts` (listener clock, 1 ms resolution) − time.time() right after listen() " +
      "(UDP: bind()) returned in the opener (close: after close() returned); same machine, same clock; over " +
      "the ports each engine saw (first event).",
      "",
      latencyTable(runs, stats, groups),
      "",
      `## 4. CPU at ${fmtInt(opts.loadRate)} binds/s`,
      "",
      `A python3 load generator in the engine's namespace does ${
        fmtInt(opts.loadRate)
      } bind+close per second ` +
      `(UDP bind() and TCP bind()+listen() alternately, ports ${LOAD_BASE}-${LOAD_BASE + LOAD_SPAN - 1} in ` +
      `turn, each socket closed at once) for ${
        opts.loadWarmupS + opts.loadSeconds + 1
      } s; CPU is measured over ` +
      `${opts.loadSeconds} s after ${opts.loadWarmupS} s of warm-up: utime+stime deltas from /proc/<pid>/stat ` +
      "of the engine's process tree (every live descendant, plus cutime+cstime of what they reaped), as % of " +
      "one core: for the libbpf engine its deno process alone, for the bpftrace engine deno and its bpftrace " +
      "child, for polling the deno process, for the " +
      "seed loop bash and its ss/awk/sort/comm/curl/sleep children. The engine delivers what it sees to the " +
      "listener (not counted in the engine's figure; its own CPU over the same window is the `listener CPU %` " +
      "column, and the load generator's over its whole run `load gen CPU %`, for where the machine's CPU goes). " +
      "`load ports stored` counts the open and close events stored for the load's " +
      "ports (each port is reused every 2 s, so every bind is one open and one close); the next column is when " +
      `the last of them was stored, after the load ended (the engine's backlog; the wait stops after ` +
      `${LOAD_WAIT_MS / 1000} s). \`CPU % total (schedstat)\`: the same tree's live threads from ` +
      "/proc/<pid>/task/<tid>/schedstat (ns, sampled every 250 ms), for precision below a clock tick.",
      "",
      cpuTable(runs, baseline),
      "",
      "Kernel-side cost is not in the engines' process CPU: the eBPF engines' BPF programs run in the " +
      "context of the process making the syscall (here the load generator; `sys_enter_close` fires for every " +
      "close() on the host, filtered by a map lookup), so it shows up as the load generator's system time " +
      "(the `load gen CPU µs per bind+close` column, against the same load with no engine) and, measured " +
      "directly, in the `BPF programs` column: the run time of the engine's BPF programs from the fdinfo of the " +
      "bpf-prog fds of the process holding them (/proc/<bpftrace>/fdinfo; for libbpf /proc/<deno>/fdinfo) " +
      "(`run_time_ns`, with kernel.bpf_stats_enabled=1 switched on for that window only and put back; the " +
      "statistics themselves add a little). The polling engines' netlink dumps run in their own syscalls, so " +
      "their kernel time is in their `sys` column; the seed loop's ss likewise.",
      "",
      "## 5. Start-up",
      "",
      "From spawn (`deno run`, as the `ebpf` task runs it, inside `ip netns exec`) to the engine's start line on " +
      "stderr (seen as the chunk arrives), and to the `ts` of the listener's own port's open event as the " +
      "listener stored it (delivered over HTTP: the engine's first scan, delivered).",
      "",
      startupTable(runs),
      "",
      "## 6. Idle",
      "",
      `${
        opts.idleWarmupS + 0.5
      } s after the engine was ready, before the first burst, nothing in its namespace ` +
      `opening or closing anything: the engine's process tree over ${opts.idleSeconds} s (clock ticks as in ` +
      "section 4, and schedstat, the precise figure the target reads: one clock tick over 10 s is 0.1% of a " +
      "core). The eBPF engines reconcile every 30 s; a reconciliation falls in the window only in a full run. " +
      "`BPF programs`: their run time over the same window, for every close() and exit on the host, filtered " +
      "in the kernel.",
      "",
      idleTable(runs.map((r) => ({ key: r.spec.key, idle: r.idle }))),
      "",
      `## 7. Capture at ${fmtInt(opts.floodRate)} binds/s`,
      "",
      `After section 4, the eBPF engines only: the same load generator at ${
        fmtInt(opts.floodRate)
      } bind+close ` +
      `per second for ${opts.floodSeconds} s, on ports ${FLOOD_BASE}-${
        FLOOD_BASE + FLOOD_SPAN - 1
      } in turn ` +
      "(each reused once a second); for every port, the opens and the closes stored must both equal the binds " +
      `done on it. The wait for the engine to deliver ends when every close was stored, after 3 s with nothing ` +
      `new, or after ${LOAD_WAIT_MS / 1000} s.`,
      "",
      floodTable(runs.map((r) => ({ key: r.spec.key, flood: r.flood, why: r.floodWhy }))),
      "",
      "## 8. Memory of the whole tree, as users start it",
      "",
      "Each eBPF engine once more, started as `deno task ebpf` (EBPF_ENGINE=<engine> EBPF_ONLY=1) in a fresh " +
      "namespace with its listener, so the task runner (a deno process of its own) is in the tree, under the " +
      `${fmtInt(opts.loadRate)} binds/s load: after ${opts.loadWarmupS} s, the tree read once a second for ` +
      `${opts.memSeconds} s (/proc/<pid>/status VmRSS and RssFile, /proc/<pid>/smaps_rollup Pss and Anonymous), ` +
      "the sample with the largest RSS sum shown, in MB (MiB). The runner and the engine map the same deno " +
      "executable, whose pages the RSS sum counts twice; the PSS sum splits shared pages between the processes " +
      "sharing them; `shared counted once` is Σ Anonymous + the largest RssFile.",
      "",
      memory.length ? memoryTable(memory) : "No eBPF engine in this run.",
      "",
      "## Targets",
      "",
      ...targets,
    ];
    const anomalies = anomalyReport(runs, stats, groups);
    if (anomalies.length) {
      parts.push(
        "",
        "## Anomalies (evidence)",
        "",
        "Ports where an engine stored something other than one open then one close (for the polling engines and " +
          "the seed loop only ports they saw are listed: a short-lived port they missed is expected).",
        ...anomalies,
      );
    }
    parts.push("");
    return parts.join("\n");
  } finally {
    for (const s of signals) Deno.removeSignalListener(s, onSignal);
    restoreBpfStats();
    await res.releaseAll();
    await Deno.remove(SHM_DIR, { recursive: true }).catch(() => {});
  }
}
