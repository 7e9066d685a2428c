/**
 * The eBPF engine benchmark (`deno task bench ebpf`): the bpftrace engine (ebpf/main.ts, EBPF_ENGINE=bpftrace)
 * against our polling engine (watcher/main.ts) at the seed's high-fidelity settings, with BURST_SPREAD=1 (the
 * default) and 0 (the seed's clustered burst), and the seed's ss loop (bench/seed_ss_loop.sh), side by side.
 * Each engine runs in a fresh network namespace this benchmark creates, with a real listener
 * (listener/main.ts --fsync 0) in that namespace that the engine delivers to (LISTENER_URL):
 *
 * 1. capture: a first burst of 1,000 ports (warm-up: its own row, not in the targets), then ports held 1, 5, 20
 *    and 120 ms (TCP and UDP alternating, at random moments), then bursts of 100 and 1,000 ports opened as fast
 *    as possible, each held 50 ms; for every port, how many open and close events the listener stored (exactly
 *    one each way is right);
 * 2. detection latency: listen()/bind() returned (the opener's clock) to the event stored (the listener's `ts`);
 * 3. CPU of the engine's process tree while a load generator in the namespace does 1,000 bind+close per second
 *    (UDP bind and TCP listen alternately), and the load generator's own CPU (where BPF programs run).
 *
 * BENCH_QUICK=1 runs smaller counts (~2 minutes instead of ~5). Every process and namespace started here is
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
import { clockTicks, processTree, readText, type TreeCpu, treeCpu } from "./proc_cpu.ts";
import { LOADGEN_PY } from "./bind_load.ts";

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
  /** Only these engines (keys: bpftrace, poll, poll0, seed); all when undefined (BENCH_ENGINES=bpftrace,seed). */
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
    engines: env.get("BENCH_ENGINES")?.split(",").map((s) => s.trim()).filter(Boolean),
    denoFlags: (env.get("BENCH_DENO_FLAGS") ?? "").split(/\s+/).filter(Boolean),
  };
}

const HOLDS_MS = [1, 5, 20, 120];
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
// Cleanup of everything started, also on SIGINT/SIGTERM.

const progress = (msg: string) => console.error(`ebpf: ${msg}`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Nearest-rank percentile of `xs`. */
function pct(xs: number[], p: number): number | undefined {
  if (xs.length === 0) return undefined;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(p * s.length) - 1))];
}

function verdict(ok: boolean | undefined): string {
  return ok === undefined ? "N/A " : ok ? "PASS" : "FAIL";
}

/** Run time (ns) and run count of every BPF program whose fd `pid` holds (/proc/<pid>/fdinfo, bpf_stats). */
function bpfProgStats(pid: number): { ns: number; runs: number; progs: number } {
  let ns = 0, runs = 0, progs = 0;
  try {
    for (const fd of Deno.readDirSync(`/proc/${pid}/fd`)) {
      let link: string;
      try {
        link = Deno.readLinkSync(`/proc/${pid}/fd/${fd.name}`);
      } catch {
        continue;
      }
      if (!link.includes("bpf-prog")) continue;
      const info = readText(`/proc/${pid}/fdinfo/${fd.name}`) ?? "";
      progs++;
      ns += Number(info.match(/run_time_ns:\s+(\d+)/)?.[1] ?? 0);
      runs += Number(info.match(/run_cnt:\s+(\d+)/)?.[1] ?? 0);
    }
  } catch { /* gone */ }
  return { ns, runs, progs };
}

const BPF_STATS = "/proc/sys/kernel/bpf_stats_enabled";
/** The value of kernel.bpf_stats_enabled before this benchmark changed it (undefined: untouched). */
let bpfStatsBefore: string | undefined;

function enableBpfStats(): boolean {
  try {
    const now = Deno.readTextFileSync(BPF_STATS).trim();
    if (now !== "1") {
      bpfStatsBefore ??= now;
      Deno.writeTextFileSync(BPF_STATS, "1\n");
    }
    return true;
  } catch {
    return false;
  }
}

function restoreBpfStats(): void {
  if (bpfStatsBefore === undefined) return;
  try {
    Deno.writeTextFileSync(BPF_STATS, `${bpfStatsBefore}\n`);
    bpfStatsBefore = undefined;
  } catch (e) {
    console.error(`ebpf bench: could not restore ${BPF_STATS}: ${(e as Error).message}`);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// The listener and its log.

/** One stored event, the fields this benchmark reads. */
interface Stored {
  /** Listener `ts`, ms since the epoch. */
  ts: number;
  event: "open" | "close";
  port: number;
  proto?: string;
  source?: string;
  pids?: unknown;
}

/** Reads the listener's log as it grows (never rotated: --max-bytes 0). */
class LogTail {
  readonly events: Stored[] = [];
  #offset = 0;
  #partial = "";

  constructor(readonly path: string) {}

  /** Read what was appended since the last call; returns how many events are known. */
  async poll(): Promise<number> {
    let file: Deno.FsFile;
    try {
      file = await Deno.open(this.path, { read: true });
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return this.events.length;
      throw e;
    }
    try {
      await file.seek(this.#offset, Deno.SeekMode.Start);
      const chunks: Uint8Array[] = [];
      const buf = new Uint8Array(1 << 20);
      for (;;) {
        const n = await file.read(buf);
        if (n === null || n === 0) break;
        chunks.push(buf.slice(0, n));
        this.#offset += n;
      }
      const text = this.#partial + new TextDecoder().decode(concat(chunks));
      const lines = text.split("\n");
      this.#partial = lines.pop() ?? "";
      for (const line of lines) {
        if (!line.startsWith("{")) continue;
        try {
          const r = JSON.parse(line);
          if ((r.event === "open" || r.event === "close") && typeof r.port === "number") {
            this.events.push({
              ts: Date.parse(r.ts),
              event: r.event,
              port: r.port,
              proto: r.proto,
              source: r.source,
              pids: r.pids ?? r.last_pids,
            });
          }
        } catch { /* not an event line */ }
      }
    } finally {
      file.close();
    }
    return this.events.length;
  }
}

function concat(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.length;
  }
  return out;
}

/**
 * Wait until the engine has delivered what it will: at least `minMs`, then until every port in `done` is
 * complete or nothing new was stored for `quietMs` (at most `maxMs` in all).
 */
async function settle(
  tail: LogTail,
  opts: { minMs: number; quietMs: number; maxMs: number; done?: () => boolean },
): Promise<"done" | "quiet" | "timeout"> {
  const start = Date.now();
  await sleep(opts.minMs);
  let count = await tail.poll();
  let changed = Date.now();
  while (Date.now() - start < opts.maxMs) {
    if (opts.done?.()) {
      // a short grace to catch duplicates that follow at once
      await sleep(300);
      await tail.poll();
      return "done";
    }
    if (Date.now() - changed >= opts.quietMs) return "quiet";
    await sleep(200);
    const n = await tail.poll();
    if (n !== count) {
      count = n;
      changed = Date.now();
    }
  }
  return "timeout";
}

// ---------------------------------------------------------------------------------------------------------------
// Engines.

type EngineKind = "bpftrace" | "polling" | "seed";

interface EngineSpec {
  kind: EngineKind;
  key: string;
  label: string;
  env: Record<string, string>;
}

const ENGINES: EngineSpec[] = [
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

  constructor(readonly spec: EngineSpec, readonly proc: Proc) {}

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
  const task = spec.kind === "bpftrace" ? await denoTask("ebpf") : { env: {}, v8Flags: [] };
  const env: Record<string, string> = { ...task.env, ...spec.env, LISTENER_URL: listenerUrl };
  if (spec.kind === "seed") return res.track(new Engine(spec, startIn(ns, ["bash", SEED_LOOP], env)));
  env.SNAPSHOT_PATH = `${SHM_DIR}/snapshot-${crypto.randomUUID().slice(0, 8)}.json`;
  env.SPOOL_PATH = `${dir}/spool-${crypto.randomUUID().slice(0, 8)}`;
  const main = spec.kind === "bpftrace" ? EBPF_MAIN : WATCHER_MAIN;
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
    ? { key: `first${size}`, label: `first burst of ${fmtInt(size)} after start (warm-up, no target)`, items }
    : { key: `burst${size}`, label: `burst of ${fmtInt(size)}`, items };
}

/** A group of ports reported together (one row): a hold time, or a burst. */
interface Group {
  key: string;
  label: string;
  /** Index into the phases, and the items of that phase in this group. */
  phase: number;
  indexes: number[];
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
// The load generator: `rate` bind+close per second, UDP bind and TCP listen alternately.

interface LoadResult {
  count: number;
  seconds: number;
  /** CPU seconds of the load generator itself (user, system) over the whole run. */
  user: number;
  sys: number;
  late: number;
  /** When its result line arrived here (ms since the epoch): the end of the load. */
  endMs: number;
}

/** What the CPU phase measured for one engine. */
interface CpuResult {
  load: LoadResult;
  /** Measured window, s. */
  seconds: number;
  /** % of one core, engine process tree. */
  userPct: number;
  sysPct: number;
  /** % of one core, the listener the engine delivers to (not the engine's; for where the CPU goes). */
  listenerPct: number;
  /** % of one core by comm. */
  byComm: [string, number][];
  /** BPF programs' run time as % of one core, and runs per second (bpftrace engine, bpf_stats on). */
  bpfPct?: number;
  bpfRunsPerS?: number;
  bpfProgs?: number;
  /** Load ports stored as opened / closed, each way. */
  opens: number;
  closes: number;
  /** The last load event stored, ms after the load ended (how far behind the engine was). */
  lagMs?: number;
  /** Events were still arriving when the wait after the load ended ({@link LOAD_WAIT_MS}). */
  stillArriving: boolean;
}

async function runLoad(
  res: Resources,
  ns: NetNs,
  opts: EbpfBenchOptions,
  during?: (windowMs: number) => Promise<void>,
): Promise<LoadResult> {
  const total = opts.loadWarmupS + opts.loadSeconds + 1;
  const proc = res.track(startIn(ns, [
    "python3",
    "-c",
    LOADGEN_PY,
    String(opts.loadRate),
    String(total),
    String(LOAD_BASE),
    String(LOAD_SPAN),
  ]));
  try {
    await proc.waitForLine(/^ready$/);
    if (during) {
      await sleep(opts.loadWarmupS * 1000);
      await during(opts.loadSeconds * 1000);
    }
    const m = await proc.waitForLine(/^(\{.*\})$/, (total + 30) * 1000);
    return { ...JSON.parse(m[1]), endMs: Date.now() } as LoadResult;
  } finally {
    await res.release(proc);
  }
}

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
  const bpftrace = engine.bpftracePid;
  const stats = bpftrace !== undefined && enableBpfStats();
  try {
    const load = await runLoad(res, ns, opts, async (windowMs) => {
      a = treeCpu(engine.proc.pid);
      la = treeCpu(listenerPid);
      if (stats) bpfA = bpfProgStats(bpftrace!);
      const t0 = performance.now();
      await sleep(windowMs);
      b = treeCpu(engine.proc.pid);
      lb = treeCpu(listenerPid);
      if (stats) bpfB = bpfProgStats(bpftrace!);
      seconds = (performance.now() - t0) / 1000;
    });
    const inLoad = (e: Stored) => e.port >= LOAD_BASE && e.port < LOAD_BASE + LOAD_SPAN;
    const how = await settle(tail, {
      minMs: engine.spec.kind === "bpftrace" ? 500 : 1_500,
      quietMs: 1_500,
      maxMs: LOAD_WAIT_MS,
      done: engine.spec.kind === "bpftrace"
        ? () => tail.events.filter((e) => inLoad(e) && e.event === "close").length >= load.count
        : undefined,
    });
    const ev = tail.events.filter((e) => inLoad(e) && !e.source?.startsWith("shutdown"));
    const pctOf = (ticks: number) => (ticks / tck / seconds) * 100;
    const byComm = [...b!.byComm].map(([c, t]) =>
      [c, pctOf(t - (a!.byComm.get(c) ?? 0))] as [string, number]
    );
    return {
      load,
      seconds,
      userPct: pctOf(b!.user - a!.user),
      sysPct: pctOf(b!.sys - a!.sys),
      byComm,
      listenerPct: pctOf(lb!.user + lb!.sys - la!.user - la!.sys),
      bpfPct: bpfA && bpfB ? ((bpfB.ns - bpfA.ns) / 1e9 / seconds) * 100 : undefined,
      bpfRunsPerS: bpfA && bpfB ? (bpfB.runs - bpfA.runs) / seconds : undefined,
      bpfProgs: bpfB?.progs,
      opens: ev.filter((e) => e.event === "open").length,
      closes: ev.filter((e) => e.event === "close").length,
      lagMs: ev.length ? ev.reduce((m, e) => Math.max(m, e.ts), 0) - load.endMs : undefined,
      stillArriving: how === "timeout",
    };
  } finally {
    restoreBpfStats();
  }
}

// ---------------------------------------------------------------------------------------------------------------
// One engine, every phase.

interface EngineRun {
  spec: EngineSpec;
  /** What the opener did, per phase (same order as the cases). */
  opened: Opened[][];
  /** Stored events (not shutdown closes) per port. */
  byPort: Map<number, Stored[]>;
  cpu: CpuResult;
  readyS: number;
}

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
    const t0 = performance.now();
    const engine = await startEngine(res, ns, spec, dir, listener.url, opts.denoFlags);
    try {
      if (spec.kind === "bpftrace") {
        await waitUntil(
          "the bpftrace engine's 'watching ... with bpftrace events' line",
          () => {
            if (/watching .* with bpftrace events/.test(engine.proc.stderr)) return true;
            if (/no eBPF engine can run|exited/.test(engine.proc.stderr)) {
              throw new Error(`the bpftrace engine did not start: ${engine.proc.describe()}`);
            }
            return false;
          },
          90_000,
          50,
        );
        engine.bpftracePid = processTree(engine.proc.pid).find((p) => p.comm === "bpftrace")?.pid;
        if (engine.bpftracePid === undefined) throw new Error("no bpftrace child of the bpftrace engine");
      }
      await waitUntil(
        `${spec.label} to report the listener's own port`,
        async () => {
          await tail.poll();
          return tail.events.some((e) => e.event === "open" && e.port === listener.port);
        },
        60_000,
        50,
      );
      const readyS = (performance.now() - t0) / 1000;
      await sleep(500);
      progress(`${spec.key}: ready in ${readyS.toFixed(1)} s`);

      const opened: Opened[][] = [];
      for (const c of cases) {
        const ports = new Set(c.items.map((i) => i.port));
        opened.push(await runOpener(c.items, ns.wrap.bind(ns)));
        const how = await settle(tail, {
          minMs: spec.kind === "bpftrace" ? 200 : 1_500,
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
          (cpu.userPct + cpu.sysPct).toFixed(2)
        }% of one core; load ports stored ${cpu.opens} opens, ${cpu.closes} closes`,
      );
      await tail.poll();
      const byPort = new Map<number, Stored[]>();
      for (const e of tail.events) {
        if (e.source?.startsWith("shutdown")) continue;
        const list = byPort.get(e.port) ?? [];
        list.push(e);
        byPort.set(e.port, list);
      }
      return { spec, opened, byPort, cpu, readyS };
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
    return await runLoad(res, ns, opts);
  } finally {
    await res.release(ns);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Analysis.

interface GroupStats {
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
      (r.spec.kind === "bpftrace"
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

const ALIGN_R = (n: number, left = 1) =>
  [...Array(left).fill("left"), ...Array(n - left).fill("right")] as ("left" | "right")[];

function captureTable(runs: EngineRun[], stats: Map<string, GroupStats[]>, groups: Group[]): string {
  const key = (k: string) => runs.find((r) => r.spec.key === k);
  const rate = (k: string, gi: number) => {
    const s = stats.get(k)?.[gi];
    return s && s.ports ? (s.ports - s.openMissing) / s.ports : undefined;
  };
  const header = [
    "ports",
    ...runs.map((r) => r.spec.key),
    "bpftrace ÷ poll",
    "bpftrace ÷ poll0",
    "bpftrace ÷ seed",
  ];
  const rows = groups.map((g, gi) => [
    `${g.label} (${g.indexes.length})`,
    ...runs.map((r) => {
      const s = stats.get(r.spec.key)![gi];
      const seen = s.ports - s.openMissing;
      return `${seen}/${s.ports} (${((seen / s.ports) * 100).toFixed(0)}%)`;
    }),
    ...["poll", "poll0", "seed"].map((k) => key(k) ? fmtRatio(rate("bpftrace", gi), rate(k, gi)) : "n/a"),
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
  const header = [
    "ports",
    ...runs.flatMap((r) => [`${r.spec.key} p50`, `${r.spec.key} p99`]),
    "seed p50 ÷ bpftrace p50",
  ];
  const row = (label: string, get: (k: string) => number[]) => [
    label,
    ...runs.flatMap((r) => {
      const l = get(r.spec.key);
      return [fmtMs(pct(l, 0.5)), fmtMs(pct(l, 0.99))];
    }),
    fmtRatio(pct(get("seed"), 0.5), pct(get("bpftrace"), 0.5)),
  ];
  const rows = groups.map((g, gi) => row(`open, ${g.label}`, (k) => stats.get(k)?.[gi].openLat ?? []));
  const holdIdx = groups.flatMap((g, gi) => (g.key.startsWith("hold") ? [gi] : []));
  const holds = (k: string, which: "openLat" | "closeLat") =>
    stats.has(k) ? holdIdx.flatMap((gi) => stats.get(k)![gi][which]) : [];
  rows.push(row("**open, every hold-time port seen (1-120 ms)**", (k) => holds(k, "openLat")));
  rows.push(row("**close, every hold-time port seen (1-120 ms)**", (k) => holds(k, "closeLat")));
  for (const [gi, g] of groups.entries()) {
    if (g.key.startsWith("burst")) {
      rows.push(row(`close, ${g.label}`, (k) => stats.get(k)?.[gi].closeLat ?? []));
    }
  }
  return markdownTable(header, rows, ALIGN_R(header.length));
}

function cpuTable(runs: EngineRun[], baseline: LoadResult): string {
  const perBindUs = (l: LoadResult) => ((l.user + l.sys) / l.count) * 1e6;
  const bp = runs.find((r) => r.spec.kind === "bpftrace");
  const total = (r: EngineRun) => r.cpu.userPct + r.cpu.sysPct;
  const header = [
    "engine",
    "process tree (CPU % of one core each)",
    "CPU % user",
    "CPU % sys",
    "CPU % total",
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
    return [
      r.spec.key,
      r.cpu.byComm.filter(([, p]) => p >= 0.005).sort((a, b) => b[1] - a[1]).map(([c, p]) =>
        `${c} ${p.toFixed(2)}`
      )
        .join(", ") || "n/a",
      r.cpu.userPct.toFixed(2),
      r.cpu.sysPct.toFixed(2),
      total(r).toFixed(2),
      bp ? fmtRatio(total(r), total(bp)) : "n/a",
      fmtInt(r.cpu.load.count / r.cpu.load.seconds),
      `${fmtInt(r.cpu.opens)} / ${fmtInt(r.cpu.closes)} of ${fmtInt(expected)}`,
      r.cpu.lagMs === undefined
        ? "n/a"
        : r.cpu.lagMs < 0
        ? "during the load"
        : `${(r.cpu.lagMs / 1000).toFixed(2)} s${
          r.cpu.stillArriving ? ` (still arriving when the ${LOAD_WAIT_MS / 1000} s wait ended)` : ""
        }`,
      perBindUs(r.cpu.load).toFixed(1),
      fmtRatio(perBindUs(r.cpu.load), perBindUs(baseline)),
      r.cpu.bpfPct === undefined
        ? ""
        : `${r.cpu.bpfPct.toFixed(2)} (${fmtInt(r.cpu.bpfRunsPerS)} runs/s, ${r.cpu.bpfProgs} programs)`,
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
        r.spec.kind === "bpftrace"
          ? "without exactly one open then one close"
          : "seen but not exactly once each way"
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
  return `deno ${Deno.version.deno}, Linux ${await first(["uname", "-r"])}, ${await first([
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
    const stats = new Map(runs.map((r) => [r.spec.key, groups.map((g) => groupStats(r, cases, g))]));
    const minutes = (performance.now() - t0) / 60_000;

    const bp = stats.get("bpftrace")!;
    const bpRun = runs.find((r) => r.spec.kind === "bpftrace")!;
    const bpTotalCpu = bpRun.cpu.userPct + bpRun.cpu.sysPct;
    const holdGroups = HOLDS_MS.map((h) => ({
      h,
      idx: groups.flatMap((g, gi) => (g.key.startsWith(`hold${h}`) ? [gi] : [])),
    }));
    const targets: string[] = [];
    for (const { h, idx } of holdGroups) {
      const ss = idx.map((i) => bp[i]);
      const ports = ss.reduce((n, s) => n + s.ports, 0);
      const exact = ss.reduce((n, s) => n + Math.min(s.openOnce, s.closeOnce), 0);
      const ok = ss.every((s) => s.openOnce === s.ports && s.closeOnce === s.ports && s.misordered === 0);
      targets.push(
        `- ${verdict(ok)} held ${h} ms: bpftrace captures 100%, each port once each way — opens ×1 ${
          ss.reduce((n, s) => n + s.openOnce, 0)
        }/${ports}, closes ×1 ${ss.reduce((n, s) => n + s.closeOnce, 0)}/${ports}` +
          (ok ? "" : ` (${ports - exact} port(s) not exact)`),
      );
    }
    for (const [gi, g] of groups.entries()) {
      if (!g.key.startsWith("burst")) continue;
      const s = bp[gi];
      const ok = s.openOnce === s.ports && s.closeOnce === s.ports && s.misordered === 0;
      targets.push(
        `- ${
          verdict(ok)
        } ${g.label}: bpftrace captures 100%, each port once each way — opens ×1 ${s.openOnce}/${s.ports} ` +
          `(missing ${s.openMissing}, dup ${s.openDup}), closes ×1 ${s.closeOnce}/${s.ports} (missing ${s.closeMissing}, ` +
          `dup ${s.closeDup})`,
      );
    }
    const p99Line = (what: string, l: number[]) =>
      `- ${
        verdict((pct(l, 0.99) ?? Infinity) < 50)
      } bpftrace p99 open-to-event (stored) < 50 ms, ${what} — ` +
      `${fmtMs(pct(l, 0.99))} (p50 ${fmtMs(pct(l, 0.5))}, max ${fmtMs(pct(l, 1))}, ${l.length} ports)`;
    targets.push(
      p99Line("ports held 1-120 ms", holdGroups.flatMap(({ idx }) => idx.flatMap((i) => bp[i].openLat))),
    );
    for (const [gi, g] of groups.entries()) {
      if (g.key.startsWith("burst")) targets.push(p99Line(g.label, bp[gi].openLat));
    }
    targets.push(
      `- ${verdict(bpTotalCpu < 5)} bpftrace engine < 5% of one core at ${
        fmtInt(opts.loadRate)
      } binds/s (deno + ` +
        `bpftrace) — ${bpTotalCpu.toFixed(2)}%` +
        (bpRun.cpu.bpfPct === undefined
          ? ""
          : `; plus ${bpRun.cpu.bpfPct.toFixed(2)}% in the BPF programs, kernel-side, not in that figure`),
      `- ${verdict(bpRun.cpu.opens === bpRun.cpu.load.count && bpRun.cpu.closes === bpRun.cpu.load.count)} ` +
        `(extra) bpftrace stores every load bind once each way at ${fmtInt(opts.loadRate)} binds/s, within ` +
        `${LOAD_WAIT_MS / 1000} s of the load's end — opens ${fmtInt(bpRun.cpu.opens)}, closes ${
          fmtInt(bpRun.cpu.closes)
        } of ${fmtInt(bpRun.cpu.load.count)}`,
    );

    const holdPorts = cases.find((c) => c.key === "holds")!.items.length;
    const parts = [
      "# eBPF engine benchmark: bpftrace engine vs polling vs the seed's ss loop",
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
          r.spec.kind === "bpftrace"
            ? "`deno run -A ebpf/main.ts` with the `ebpf` task's environment and V8 flags, EBPF_ENGINE=bpftrace " +
              "EBPF_ONLY=1, events of its own namespace"
            : r.spec.kind === "polling"
            ? `\`deno run -A watcher/main.ts\`, ${
              Object.entries(r.spec.env).map(([k, v]) => `${k}=${v}`).join(" ")
            }`
            : `bench/seed_ss_loop.sh, ${Object.entries(r.spec.env).map(([k, v]) => `${k}=${v}`).join(" ")}`
        }; ready (listener's own port stored) ${r.readyS.toFixed(1)} s after start`
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
      } ports that warms ` +
      `the engine and the listener (their first big batches run cold code; its own row, not in the targets); then ` +
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
      "one core: for the bpftrace engine deno and its bpftrace child, for polling the deno process, for the " +
      "seed loop bash and its ss/awk/sort/comm/curl/sleep children. The engine delivers what it sees to the " +
      "listener (not counted in the engine's figure; its own CPU over the same window is the `listener CPU %` " +
      "column, and the load generator's over its whole run `load gen CPU %`, for where the machine's CPU goes). " +
      "`load ports stored` counts the open and close events stored for the load's " +
      "ports (each port is reused every 2 s, so every bind is one open and one close); the next column is when " +
      `the last of them was stored, after the load ended (the engine's backlog; the wait stops after ` +
      `${LOAD_WAIT_MS / 1000} s).`,
      "",
      cpuTable(runs, baseline),
      "",
      "Kernel-side cost is not in the engines' process CPU: the bpftrace engine's BPF programs run in the " +
      "context of the process making the syscall (here the load generator; `sys_enter_close` fires for every " +
      "close() on the host, filtered by a map lookup), so it shows up as the load generator's system time " +
      "(the `load gen CPU µs per bind+close` column, against the same load with no engine) and, measured " +
      "directly, in the last column: the run time of the engine's BPF programs from /proc/<bpftrace>/fdinfo " +
      "(`run_time_ns`, with kernel.bpf_stats_enabled=1 switched on for that window only and put back; the " +
      "statistics themselves add a little). The polling engines' netlink dumps run in their own syscalls, so " +
      "their kernel time is in their `sys` column; the seed loop's ss likewise.",
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
