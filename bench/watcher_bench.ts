/**
 * The polling watcher benchmark (`deno task bench watcher`): ours (watcher/, netlink sock_diag or /proc/net plus
 * the FFI pid resolver) against the seed's tool (`ss`, and bench/seed_ss_loop.sh, a bash re-creation of the
 * seed's polling loop), side by side, in network namespaces this benchmark creates:
 *
 * 1. one scan with pids at 50 listeners, 1,000 + 200 UDP, and 1,000 + 20,000 established connections: ours
 *    in-process (bench/watcher_scan_probe.ts inside the namespace) vs `ss` and `lsof` as whole processes;
 * 2. idle CPU and memory of the running watcher (and of the seed loop);
 * 3. detection latency, listen() to the event stored at a real listener (listener/main.ts);
 * 4. capture rate of short-lived ports at the seed's high-fidelity settings.
 *
 * BENCH_QUICK=1 runs smaller counts (~2 minutes instead of ~10). Every process and namespace started here is
 * stopped in `finally`, and on SIGINT/SIGTERM.
 * @module
 */
import { denoTask } from "./deno_task.ts";
import { fileURLToPath } from "node:url";
import { type Holder, type HolderSpec, NetNs, netnsSkipReason, run } from "../testing/netns.ts";
import { type Memory, Proc, readMemory } from "./procs.ts";
import { waitUntil } from "../infra/wait.ts";
import { fmtMb, fmtMs, fmtRatio, markdownTable } from "./table.ts";
import { type ProbeRequest, type ProbeResult, summarize, type Timing } from "./watcher_scan_probe.ts";
import { type Opened, type Opening, runOpener } from "./port_opener.ts";
import { prng, Resources, startIn, startListener } from "./ns_bench.ts";

const PROBE = fileURLToPath(new URL("./watcher_scan_probe.ts", import.meta.url));
const SEED_LOOP = fileURLToPath(new URL("./seed_ss_loop.sh", import.meta.url));
const WATCHER_MAIN = fileURLToPath(new URL("../watcher/main.ts", import.meta.url));
/** The V8 flags of `deno task watch` (deno.json), so the benchmark runs the watcher as users do. */
const WATCH_FLAGS: string[] = (await denoTask("watch")).v8Flags;

/** Sizes and durations; BENCH_QUICK=1 picks the small set. */
export interface WatcherBenchOptions {
  quick: boolean;
  /** Section 1: timed scans per row (at most), and the time budget per row. */
  scanIterations: number;
  scanBudgetMs: number;
  /** Section 1: runs per external command (at most), at least minRuns, and the budget per command. */
  commandRuns: number;
  minRuns: number;
  commandBudgetMs: number;
  /** Section 2: warm-up and measured seconds per configuration. */
  idleWarmupS: number;
  idleSeconds: number;
  /** Section 3: ports per configuration, each held this long. */
  latencyPorts: number;
  latencyHoldS: number;
  /** Section 4: ports per hold time. */
  capturePorts: number;
}

/** Options from BENCH_QUICK. */
export function watcherOptionsFromEnv(env = Deno.env): WatcherBenchOptions {
  const quick = ["1", "true", "yes"].includes(env.get("BENCH_QUICK") ?? "");
  return quick
    ? {
      quick,
      scanIterations: 100,
      scanBudgetMs: 1_000,
      commandRuns: 15,
      minRuns: 3,
      commandBudgetMs: 1_500,
      idleWarmupS: 2,
      idleSeconds: 5,
      latencyPorts: 25,
      latencyHoldS: 2,
      capturePorts: 30,
    }
    : {
      quick,
      scanIterations: 300,
      scanBudgetMs: 4_000,
      commandRuns: 40,
      minRuns: 5,
      commandBudgetMs: 3_000,
      idleWarmupS: 3,
      idleSeconds: 20,
      latencyPorts: 100,
      latencyHoldS: 2,
      capturePorts: 100,
    };
}

/** Where snapshots go: a directory on tmpfs (set by runWatcherBench). */
let SHM_DIR = "/dev/shm";

const HIFI = { SCAN_INTERVAL: "1", BURST_SCANS: "5", BURST_DELAY: "0.02" };

// ---------------------------------------------------------------------------------------------------------------
// Cleanup of everything started, also on SIGINT/SIGTERM.

const progress = (msg: string) => console.error(`watcher: ${msg}`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------------------------------
// Processes inside a namespace.

interface StoredEvent {
  ts: string;
  event: string;
  port: number;
  source?: string;
}

async function readLog(path: string): Promise<StoredEvent[]> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return [];
    throw e;
  }
  const out: StoredEvent[] = [];
  for (const line of text.split("\n")) {
    if (!line.startsWith("{")) continue;
    try {
      out.push(JSON.parse(line));
    } catch { /* a line being written */ }
  }
  return out;
}

type EngineKind = "ours" | "seed";

interface EngineSpec {
  kind: EngineKind;
  label: string;
  env: Record<string, string>;
}

/** Start the watcher (ours) or the seed loop inside `ns`, with `env` plus a private snapshot and spool. */
function startEngine(res: Resources, ns: NetNs, spec: EngineSpec, dir: string, listenerUrl?: string): Proc {
  const env: Record<string, string> = { ...spec.env };
  if (listenerUrl) env.LISTENER_URL = listenerUrl;
  if (spec.kind === "ours") {
    // on tmpfs, like the default /dev/shm/portwatcher.snapshot (it is fsynced before every delivery)
    env.SNAPSHOT_PATH = `${SHM_DIR}/snapshot-${crypto.randomUUID().slice(0, 8)}.json`;
    env.SPOOL_PATH = `${dir}/spool-${crypto.randomUUID().slice(0, 8)}`;
    return res.track(startIn(ns, [Deno.execPath(), "run", "-A", ...WATCH_FLAGS, WATCHER_MAIN], env));
  }
  return res.track(startIn(ns, ["bash", SEED_LOOP], env));
}

// ---------------------------------------------------------------------------------------------------------------
// Section 1: one scan.

interface Scenario {
  key: string;
  label: string;
  /** One holder process per spec (each under a 20,000-fd RLIMIT_NOFILE when it cannot be raised). */
  specs: HolderSpec[];
}

const SCENARIOS: Scenario[] = [
  {
    key: "a",
    label: "50 TCP listeners",
    specs: [{ sockets: [{ proto: "tcp", host: "0.0.0.0", count: 50 }] }],
  },
  {
    key: "b",
    label: "1,000 TCP listeners + 200 UDP",
    specs: [{
      sockets: [{ proto: "tcp", host: "0.0.0.0", count: 1000 }, {
        proto: "udp",
        host: "0.0.0.0",
        count: 200,
      }],
    }],
  },
  {
    key: "c",
    label: "1,000 TCP listeners + 20,000 established loopback connections (40,000 sockets)",
    // 3 holder processes (each under a 20,000-fd limit): 988 + 6 + 6 listeners, 8,000 + 6,000 + 6,000
    // connections, both ends held
    specs: [
      {
        sockets: [
          { proto: "tcp", host: "127.0.0.1", count: 980 },
          { proto: "tcp", host: "127.0.0.1", count: 8, connect: 1000 },
        ],
      },
      { sockets: [{ proto: "tcp", host: "127.0.0.1", count: 6, connect: 1000 }] },
      { sockets: [{ proto: "tcp", host: "127.0.0.1", count: 6, connect: 1000 }] },
    ],
  },
];

interface ExternalCommand {
  key: string;
  label: string;
  argv: string[];
}

const COMMANDS: ExternalCommand[] = [
  { key: "true", label: "`true` (spawn cost alone)", argv: ["true"] },
  { key: "ssl", label: "`ss -Htn state listening`", argv: ["ss", "-Htn", "state", "listening"] },
  { key: "ssu", label: "`ss -Hlun`", argv: ["ss", "-Hlun"] },
  { key: "ssp", label: "`ss -Htlnup` (the seed's scan, with pids)", argv: ["ss", "-Htlnup"] },
  {
    key: "lsof",
    label: "`lsof -nP -iTCP -sTCP:LISTEN -iUDP`",
    argv: ["lsof", "-nP", "-iTCP", "-sTCP:LISTEN", "-iUDP"],
  },
];

/** Time `argv` as whole processes, from here (the host side), stdout read. */
async function timeExternal(argv: string[], opts: WatcherBenchOptions): Promise<Timing> {
  const times: number[] = [];
  const start = performance.now();
  for (let i = 0; i < opts.commandRuns; i++) {
    if (i >= opts.minRuns && performance.now() - start > opts.commandBudgetMs) break;
    const t0 = performance.now();
    const out = await new Deno.Command(argv[0], { args: argv.slice(1), stdout: "piped", stderr: "piped" })
      .output();
    times.push(performance.now() - t0);
    // lsof exits 1 when one of its selections matched nothing (no UDP socket in scenario a, c)
    if (!out.success && !(argv.includes("lsof") && out.code === 1 && out.stdout.length > 0)) {
      throw new Error(`${argv.join(" ")} exited ${out.code}: ${new TextDecoder().decode(out.stderr).trim()}`);
    }
  }
  return summarize(times);
}

interface ScanSection {
  scenario: Scenario;
  probe: ProbeResult;
  /** Via `ip netns exec NS`, from the host side, by command key. */
  viaIp: Record<string, Timing>;
  holderFds: number;
}

async function runScanScenario(
  res: Resources,
  scenario: Scenario,
  opts: WatcherBenchOptions,
): Promise<ScanSection> {
  const ns = res.track(await NetNs.create());
  try {
    const started = performance.now();
    let holderFds = 0;
    for (const spec of scenario.specs) {
      const holder: Holder = await ns.holder(spec);
      holderFds += [...Deno.readDirSync(`/proc/${holder.pid}/fd`)].length;
    }
    progress(
      `scan ${scenario.key}: ${scenario.specs.length} holder(s) ready (${holderFds} fds) in ${
        ((performance.now() - started) / 1000).toFixed(1)
      } s`,
    );
    const req: ProbeRequest = {
      iterations: opts.scanIterations,
      scanBudgetMs: opts.scanBudgetMs,
      warmup: 5,
      backends: ["netlink", "proc"],
      commands: COMMANDS.map((c) => ({ label: c.key, argv: c.argv })),
      commandRuns: opts.commandRuns,
      minRuns: opts.minRuns,
      commandBudgetMs: opts.commandBudgetMs,
    };
    const out = await ns.exec([Deno.execPath(), "run", "-A", PROBE, JSON.stringify(req)], {
      timeoutMs: 600_000,
    });
    const probe = JSON.parse(out.stdout.trim().split("\n").at(-1)!) as ProbeResult;
    const viaIp: Record<string, Timing> = {};
    for (const c of COMMANDS) viaIp[c.key] = await timeExternal(ns.wrap(c.argv), opts);
    const s = probe.scans.find((x) => x.backend === "netlink" && x.cache === "warm")!;
    progress(
      `scan ${scenario.key}: ${s.sockets} sockets, netlink warm ${fmtMs(s.total.medianMs)}, ss listening ${
        fmtMs(probe.commands.find((c) => c.label === "ssl")?.timing.medianMs)
      }`,
    );
    return { scenario, probe, viaIp, holderFds };
  } finally {
    await res.release(ns);
  }
}

const ALIGN_R = (n: number) => ["left", ...Array(n - 1).fill("right")] as ("left" | "right")[];

function scanTable(s: ScanSection): string {
  const ssl = s.probe.commands.find((c) => c.label === "ssl")!.timing;
  const ssu = s.probe.commands.find((c) => c.label === "ssu")!.timing;
  const ipTrue = s.viaIp["true"];
  const header = [
    "row",
    "median",
    "p95",
    "÷ `ss -Htn state listening`",
    "via `ip netns exec` median",
    "p95",
    "via ip netns exec − `ip netns exec NS true`",
  ];
  const rows: string[][] = [];
  const label = { warm: "steady (sockets + resolver cache warm)", cold: "must resolve pids (cache cold)" };
  for (const sc of s.probe.scans) {
    rows.push([
      `ours ${sc.backend === "netlink" ? "netlink" : "/proc/net"} scan, ${label[sc.cache]}`,
      fmtMs(sc.total.medianMs),
      fmtMs(sc.total.p95Ms),
      fmtRatio(sc.total.medianMs, ssl.medianMs),
      "in-process",
      "",
      "",
    ]);
  }
  for (const c of COMMANDS) {
    const inNs = s.probe.commands.find((x) => x.label === c.key)!.timing;
    const ip = s.viaIp[c.key];
    rows.push([
      c.key === "true"
        ? "`true` (process spawn alone; via ip: the `ip netns exec NS true` overhead)"
        : c.label,
      fmtMs(inNs.medianMs),
      fmtMs(inNs.p95Ms),
      fmtRatio(inNs.medianMs, ssl.medianMs),
      fmtMs(ip.medianMs),
      fmtMs(ip.p95Ms),
      c.key === "true" ? "" : fmtMs(ip.medianMs - ipTrue.medianMs),
    ]);
    if (c.key === "ssu") {
      const both = ssl.medianMs + ssu.medianMs;
      const bothIp = s.viaIp.ssl.medianMs + s.viaIp.ssu.medianMs;
      rows.push([
        "`ss -Htn state listening` + `ss -Hlun` (sum of medians)",
        fmtMs(both),
        "",
        fmtRatio(both, ssl.medianMs),
        fmtMs(bothIp),
        "",
        fmtMs(bothIp - 2 * ipTrue.medianMs),
      ]);
    }
  }
  return markdownTable(header, rows, ALIGN_R(header.length));
}

function phaseTable(sections: ScanSection[]): string {
  const header = [
    "scenario",
    "backend",
    "cache",
    "sockets",
    "ports",
    "scan()",
    "resolve()",
    "observe+track",
    "total median",
    "/proc walks",
    "timed scans",
  ];
  const rows = sections.flatMap((s) =>
    s.probe.scans.map((sc) => [
      s.scenario.key,
      sc.backend,
      sc.cache,
      String(sc.sockets),
      String(sc.ports),
      fmtMs(sc.scanMs),
      fmtMs(sc.resolveMs),
      fmtMs(sc.observeMs),
      fmtMs(sc.total.medianMs),
      String(sc.walks),
      String(sc.total.n),
    ])
  );
  return markdownTable(header, rows, ["left", "left", "left", ...Array(8).fill("right")]);
}

function scanTargets(sections: ScanSection[]): string[] {
  const out: string[] = [];
  for (const s of sections) {
    const find = (b: string, c: string) => s.probe.scans.find((x) => x.backend === b && x.cache === c)!;
    const cmd = (k: string) => s.probe.commands.find((c) => c.label === k)!.timing;
    const warm = find("netlink", "warm").total.medianMs;
    const cold = find("netlink", "cold").total.medianMs;
    const ssl = cmd("ssl").medianMs;
    const ssp = cmd("ssp").medianMs;
    out.push(
      `- ${verdict(warm < ssl)} (${s.scenario.key}) steady netlink scan ${fmtMs(warm)} < \`ss -Htn state ` +
        `listening\` ${fmtMs(ssl)} spawned inside the namespace (${
          fmtMs(s.viaIp.ssl.medianMs)
        } via ip netns ` +
        `exec) — ${fmtRatio(ssl, warm)} faster`,
    );
    out.push(
      `- ${verdict(cold < ssp)} (${s.scenario.key}) netlink scan resolving every pid ${fmtMs(cold)} < ` +
        `\`ss -Htlnup\` ${fmtMs(ssp)} spawned inside the namespace (${fmtMs(s.viaIp.ssp.medianMs)} via ip ` +
        `netns exec) — ${fmtRatio(ssp, cold)} faster`,
    );
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Section 2: idle CPU and memory.

interface CpuSample {
  /** utime + stime, in clock ticks. */
  self: number;
  /** cutime + cstime (children waited for). */
  children: number;
}

function readCpu(pid: number): CpuSample {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // fields after ")" start at field 3 (state): utime is field 14 -> index 11
  return { self: Number(f[11]) + Number(f[12]), children: Number(f[13]) + Number(f[14]) };
}

/** On-CPU time of every thread of `pid` so far, in ns (/proc/<pid>/task/<tid>/schedstat, first field). */
function readSchedNs(pid: number): number {
  let total = 0;
  for (const t of Deno.readDirSync(`/proc/${pid}/task`)) {
    try {
      total += Number(Deno.readTextFileSync(`/proc/${pid}/task/${t.name}/schedstat`).split(" ")[0]);
    } catch { /* the thread ended */ }
  }
  return total;
}

async function clockTicks(): Promise<number> {
  try {
    const r = await run(["getconf", "CLK_TCK"]);
    const n = Number(r.stdout.trim());
    if (n > 0) return n;
  } catch { /* assume the usual */ }
  return 100;
}

interface IdleRow {
  spec: EngineSpec;
  comm: string;
  selfPct: number;
  /** From schedstat (ns resolution; threads that ended meanwhile are missing). */
  schedPct: number;
  childPct: number;
  mem: Memory;
  seconds: number;
}

/** VmRSS/VmHWM of an idle `deno eval` (a timer, nothing imported): the runtime's own floor. */
async function denoFloor(res: Resources): Promise<Memory> {
  const proc = res.track(Proc.start({
    cmd: Deno.execPath(),
    args: ["eval", "console.log('up'); setInterval(() => {}, 1000)"],
    env: { NO_COLOR: "1" },
  }));
  try {
    await proc.waitForLine(/^up$/);
    await sleep(2_000);
    return await proc.memory();
  } finally {
    await res.release(proc);
  }
}

async function runIdle(
  res: Resources,
  opts: WatcherBenchOptions,
): Promise<{ rows: IdleRow[]; floor: Memory }> {
  const specs: EngineSpec[] = [
    { kind: "ours", label: "ours, SCAN_INTERVAL=1", env: { SCAN_INTERVAL: "1" } },
    { kind: "ours", label: "ours, SCAN_INTERVAL=0.05", env: { SCAN_INTERVAL: "0.05" } },
    { kind: "ours", label: "ours, SCAN_INTERVAL=1 BURST_SCANS=5 BURST_DELAY=0.02", env: HIFI },
    { kind: "seed", label: "seed ss loop, SCAN_INTERVAL=1 BURST_SCANS=5 BURST_DELAY=0.02", env: HIFI },
  ];
  const tck = await clockTicks();
  const ns = res.track(await NetNs.create());
  const dir = await Deno.makeTempDir({ prefix: "portwatch_bench_idle_" });
  try {
    await ns.holder(SCENARIOS[0].specs[0]);
    const listener = await startListener(res, ns, dir);
    const rows: IdleRow[] = [];
    for (const spec of specs) {
      const before = (await readLog(listener.logPath)).length;
      const proc = startEngine(res, ns, spec, dir, spec.kind === "seed" ? listener.url : undefined);
      try {
        // ready once the 50 listeners (and the listener's own port) were reported
        await waitUntil(
          `${spec.label} to report the open ports`,
          async () =>
            spec.kind === "ours"
              ? (proc.stdout.match(/"event":"open"/g)?.length ?? 0) >= 51
              : (await readLog(listener.logPath)).length - before >= 51,
          30_000,
          50,
        );
        await sleep(opts.idleWarmupS * 1000);
        const comm = Deno.readTextFileSync(`/proc/${proc.pid}/comm`).trim();
        const a = readCpu(proc.pid);
        const sa = readSchedNs(proc.pid);
        const t0 = performance.now();
        await sleep(opts.idleSeconds * 1000);
        const b = readCpu(proc.pid);
        const sb = readSchedNs(proc.pid);
        const secs = (performance.now() - t0) / 1000;
        const mem = await readMemory(proc.pid);
        const pct = (ticks: number) => (ticks / tck / secs) * 100;
        const row = {
          spec,
          comm,
          selfPct: pct(b.self - a.self),
          schedPct: ((sb - sa) / 1e9 / secs) * 100,
          childPct: pct(b.children - a.children),
          mem,
          seconds: secs,
        };
        progress(
          `idle ${spec.label}: ${row.selfPct.toFixed(2)}% + children ${row.childPct.toFixed(2)}%, RSS ${
            fmtMb(mem.rssMb)
          } MB`,
        );
        rows.push(row);
      } finally {
        await res.release(proc);
      }
    }
    return { rows, floor: await denoFloor(res) };
  } finally {
    await res.release(ns);
    await Deno.remove(dir, { recursive: true });
  }
}

function idleTable(rows: IdleRow[]): string {
  const header = [
    "engine",
    "process",
    "CPU % of one core (own, stat)",
    "own, schedstat",
    "+ children reaped (stat)",
    "total",
    "÷ ours at same settings",
    "VmRSS MB",
    "VmHWM MB",
  ];
  const oursHifi = rows.find((r) => r.spec.kind === "ours" && r.spec.env.BURST_SCANS === "5");
  return markdownTable(
    header,
    rows.map((r) => {
      const total = r.selfPct + r.childPct;
      const same = r.spec.kind === "seed" ? oursHifi : undefined;
      return [
        r.spec.label,
        r.comm,
        r.selfPct.toFixed(2),
        r.schedPct.toFixed(3),
        r.childPct.toFixed(2),
        total.toFixed(2),
        same ? fmtRatio(total, same.selfPct + same.childPct) : "",
        fmtMb(r.mem.rssMb),
        fmtMb(r.mem.hwmMb),
      ];
    }),
    ["left", "left", ...Array(7).fill("right")],
  );
}

function idleTargets(rows: IdleRow[]): string[] {
  const at = (iv: string) => rows.find((r) => r.spec.kind === "ours" && r.spec.env.SCAN_INTERVAL === iv)!;
  const one = at("1"), fast = at("0.05");
  const ours = rows.filter((r) => r.spec.kind === "ours");
  const worst = Math.max(...ours.map((r) => r.mem.hwmMb));
  const worstRss = Math.max(...ours.map((r) => r.mem.rssMb));
  return [
    `- ${verdict(one.selfPct < 0.5)} idle CPU at SCAN_INTERVAL=1 < 0.5% — ${one.selfPct.toFixed(2)}%`,
    `- ${verdict(fast.selfPct < 5)} idle CPU at SCAN_INTERVAL=0.05 < 5% — ${fast.selfPct.toFixed(2)}%`,
    `- ${verdict(worstRss < 60)} RSS < 60 MB — highest VmRSS ${fmtMb(worstRss)} MB (VmHWM, the peak since ` +
    `start, ${fmtMb(worst)} MB${worst < 60 ? "" : ": above 60"})`,
  ];
}

// ---------------------------------------------------------------------------------------------------------------
// Sections 3 and 4: detection latency and capture rate at a real listener.

interface ListenRun {
  spec: EngineSpec;
  opened: Opened[];
  /** First stored open event per port (listener ts, ms). */
  firstOpen: Map<number, number>;
}

/** One engine in a fresh namespace with a fresh listener; the opener runs `items`; returns what was stored. */
async function listenRun(
  res: Resources,
  spec: EngineSpec,
  items: Opening[],
): Promise<ListenRun> {
  const ns = res.track(await NetNs.create());
  const dir = await Deno.makeTempDir({ prefix: "portwatch_bench_latency_" });
  try {
    const listener = await startListener(res, ns, dir);
    const engine = startEngine(res, ns, spec, dir, listener.url);
    try {
      await waitUntil(
        `${spec.label} to report the listener's own port`,
        async () =>
          (await readLog(listener.logPath)).some((e) => e.event === "open" && e.port === listener.port),
        30_000,
        50,
      );
      await sleep(500);
      const opened = await runOpener(items, ns.wrap.bind(ns));
      // delivery of the last ones: a cycle (~1.1 s for the seed loop with ss -p) and a POST
      await sleep(3_000);
      const want = new Set(items.map((i) => i.port));
      const firstOpen = new Map<number, number>();
      for (const e of await readLog(listener.logPath)) {
        if (e.event !== "open" || !want.has(e.port) || firstOpen.has(e.port)) continue;
        firstOpen.set(e.port, Date.parse(e.ts));
      }
      return { spec, opened, firstOpen };
    } finally {
      await res.release(engine);
      await res.release(listener.proc);
    }
  } finally {
    await res.release(ns);
    await Deno.remove(dir, { recursive: true });
  }
}

/** Distribution of `xs` (ms) with nearest-rank percentiles. */
function pct(xs: number[], p: number): number | undefined {
  if (xs.length === 0) return undefined;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(p * s.length) - 1))];
}

interface LatencyRow {
  run: ListenRun;
  latencies: number[];
}

const LATENCY_SPECS: EngineSpec[] = [
  { kind: "ours", label: "ours, SCAN_INTERVAL=1 BURST_SCANS=5 BURST_DELAY=0.02", env: HIFI },
  { kind: "ours", label: "ours, SCAN_INTERVAL=0.05", env: { SCAN_INTERVAL: "0.05" } },
  { kind: "seed", label: "seed ss loop, SCAN_INTERVAL=1 BURST_SCANS=5 BURST_DELAY=0.02", env: HIFI },
];

async function runLatency(res: Resources, opts: WatcherBenchOptions): Promise<LatencyRow[]> {
  const rows: LatencyRow[] = [];
  for (const spec of LATENCY_SPECS) {
    const rnd = prng(1000); // the same schedule for every engine
    const items: Opening[] = [];
    let at = 0;
    for (let i = 0; i < opts.latencyPorts; i++) {
      at += 0.1 + rnd() * 0.3; // random moments, a few ports overlapping
      items.push({ port: 21000 + i, at, hold: opts.latencyHoldS });
    }
    const r = await listenRun(res, spec, items);
    const latencies = r.opened.filter((o) => r.firstOpen.has(o.port)).map((o) =>
      r.firstOpen.get(o.port)! - o.openMs
    );
    progress(
      `latency ${spec.label}: ${latencies.length}/${items.length} seen, p50 ${
        fmtMs(pct(latencies, 0.5))
      } p99 ${fmtMs(pct(latencies, 0.99))}`,
    );
    rows.push({ run: r, latencies });
  }
  return rows;
}

function latencyTable(rows: LatencyRow[]): string {
  const seed = rows.find((r) => r.run.spec.kind === "seed");
  const seedP50 = pct(seed?.latencies ?? [], 0.5);
  const header = ["engine", "ports seen", "min", "p50", "p90", "p99", "max", "mean", "p50 ÷ seed p50"];
  return markdownTable(
    header,
    rows.map((r) => {
      const l = r.latencies;
      return [
        r.run.spec.label,
        `${l.length}/${r.run.opened.length}`,
        fmtMs(pct(l, 0)),
        fmtMs(pct(l, 0.5)),
        fmtMs(pct(l, 0.9)),
        fmtMs(pct(l, 0.99)),
        fmtMs(pct(l, 1)),
        fmtMs(l.length ? l.reduce((a, b) => a + b, 0) / l.length : undefined),
        fmtRatio(pct(l, 0.5), seedP50),
      ];
    }),
    ALIGN_R(header.length),
  );
}

const HOLDS_MS = [20, 50, 120, 500];

interface CaptureRow {
  run: ListenRun;
  /** hold ms -> [captured, total, worst hold error ms]. */
  byHold: Map<number, { seen: number; total: number; maxErrMs: number }>;
  /** Ports whose measured hold was more than {@link HOLD_TOLERANCE_MS} off (a loaded machine delays the opener). */
  offHolds: number;
}

const HOLD_TOLERANCE_MS = 5;

const CAPTURE_SPECS: EngineSpec[] = [
  { kind: "ours", label: "ours, SCAN_INTERVAL=1 BURST_SCANS=5 BURST_DELAY=0.02", env: HIFI },
  { kind: "seed", label: "seed ss loop, SCAN_INTERVAL=1 BURST_SCANS=5 BURST_DELAY=0.02", env: HIFI },
  { kind: "ours", label: "ours, SCAN_INTERVAL=0.05 (for reference)", env: { SCAN_INTERVAL: "0.05" } },
];

async function runCapture(res: Resources, opts: WatcherBenchOptions): Promise<CaptureRow[]> {
  // The same schedule for every engine: ports at uniformly random moments over the span, mixed hold times.
  const rnd = prng(42);
  const n = opts.capturePorts * HOLDS_MS.length;
  const span = n * 0.1;
  const items: Opening[] = [];
  let i = 0;
  for (const hold of HOLDS_MS) {
    for (let k = 0; k < opts.capturePorts; k++) {
      items.push({ port: 30000 + i++, at: rnd() * span, hold: hold / 1000 });
    }
  }
  const rows: CaptureRow[] = [];
  for (const spec of CAPTURE_SPECS) {
    const r = await listenRun(res, spec, items);
    const byHold = new Map<number, { seen: number; total: number; maxErrMs: number }>();
    for (const [idx, o] of r.opened.entries()) {
      const hold = Math.round(items[idx].hold * 1000);
      const b = byHold.get(hold) ?? { seen: 0, total: 0, maxErrMs: 0 };
      b.total++;
      if (r.firstOpen.has(o.port)) b.seen++;
      b.maxErrMs = Math.max(b.maxErrMs, Math.abs(o.heldMs - hold));
      byHold.set(hold, b);
    }
    progress(
      `capture ${spec.label}: ${
        HOLDS_MS.map((h) => `${h} ms ${byHold.get(h)?.seen}/${byHold.get(h)?.total}`).join(", ")
      }`,
    );
    const offHolds = r.opened.filter((o, idx) =>
      Math.abs(o.heldMs - items[idx].hold * 1000) > HOLD_TOLERANCE_MS
    )
      .length;
    rows.push({ run: r, byHold, offHolds });
  }
  return rows;
}

function captureTable(rows: CaptureRow[]): string {
  const seed = rows.find((r) => r.run.spec.kind === "seed");
  const header = [
    "engine",
    ...HOLDS_MS.map((h) => `held ${h} ms`),
    ...HOLDS_MS.map((h) => `${h} ms ÷ seed`),
    `holds > ${HOLD_TOLERANCE_MS} ms off`,
    "worst hold error",
  ];
  const rate = (r: CaptureRow | undefined, h: number) => {
    const b = r?.byHold.get(h);
    return b && b.total ? b.seen / b.total : undefined;
  };
  return markdownTable(
    header,
    rows.map((r) => [
      r.run.spec.label,
      ...HOLDS_MS.map((h) => {
        const b = r.byHold.get(h);
        return b ? `${b.seen}/${b.total} (${((b.seen / b.total) * 100).toFixed(0)}%)` : "n/a";
      }),
      ...HOLDS_MS.map((h) => (r === seed ? "" : fmtRatio(rate(r, h), rate(seed, h)))),
      `${r.offHolds}/${r.run.opened.length}`,
      fmtMs(Math.max(...[...r.byHold.values()].map((b) => b.maxErrMs))),
    ]),
    ALIGN_R(header.length),
  );
}

function captureTargets(rows: CaptureRow[]): string[] {
  const ours = rows.find((r) => r.run.spec.kind === "ours" && r.run.spec.env.BURST_SCANS === "5")!;
  const seed = rows.find((r) => r.run.spec.kind === "seed")!;
  return HOLDS_MS.map((h) => {
    const o = ours.byHold.get(h)!, s = seed.byHold.get(h)!;
    return `- ${
      verdict(o.seen > s.seen)
    } held ${h} ms: ours captures more than the seed at the same settings — ` +
      `ours ${o.seen}/${o.total}, seed ${s.seen}/${s.total}`;
  });
}

function holdAccuracy(rows: CaptureRow[]): string {
  const worst = Math.max(...rows.flatMap((r) => [...r.byHold.values()].map((b) => b.maxErrMs)));
  const off = rows.reduce((n, r) => n + r.offHolds, 0);
  return `Hold times as measured by the opener (monotonic clock, listen() returned to close() returned) were ` +
    `within ${worst.toFixed(2)} ms of the nominal value for every port; ${off} of ` +
    `${rows.reduce((n, r) => n + r.run.opened.length, 0)} were more than ${HOLD_TOLERANCE_MS} ms off` +
    (off > 0
      ? " (the opener was descheduled: other load on the machine; those runs overstate short holds)."
      : ".");
}

function verdict(ok: boolean | undefined): string {
  return ok === undefined ? "N/A " : ok ? "PASS" : "FAIL";
}

// ---------------------------------------------------------------------------------------------------------------

/** Raise RLIMIT_NOFILE (children inherit it) as far as allowed; returns a note on the outcome. */
async function raiseFdLimit(): Promise<string> {
  const r = await run(["prlimit", "--pid", String(Deno.pid), "--nofile=1048576:1048576"], { check: false });
  const now =
    (await run(["prlimit", "--pid", String(Deno.pid), "--nofile", "-o", "SOFT,HARD", "--noheadings"]))
      .stdout.trim().replace(/\s+/, "/");
  if (r.code === 0) return `RLIMIT_NOFILE raised to ${now}`;
  // Without CAP_SYS_RESOURCE the hard limit stays: try soft = hard.
  const hard = now.split("/")[1];
  await run(["prlimit", "--pid", String(Deno.pid), `--nofile=${hard}:${hard}`], { check: false });
  return `RLIMIT_NOFILE could not be raised to 1048576 (${r.stderr.trim().replace(/^prlimit: /, "")}); ` +
    `it is ${hard} here, so the sockets of (c) are spread over 3 holder processes`;
}

async function versions(): Promise<string> {
  const first = async (argv: string[]) => {
    try {
      const r = await run(argv, { check: false });
      return (r.stdout || r.stderr).trim().split("\n")[0];
    } catch {
      return "n/a";
    }
  };
  const kernel = (await first(["uname", "-r"])) || "n/a";
  const ss = await first(["ss", "-V"]);
  const lsof = (await run(["lsof", "-v"], { check: false })).stderr.match(/revision: (\S+)/)?.[1] ?? "n/a";
  const py = await first(["python3", "-V"]);
  return `deno ${Deno.version.deno}, Linux ${kernel}, ${ss}, lsof ${lsof}, ${py}, ${navigator.hardwareConcurrency} CPUs`;
}

/** Run the watcher benchmark and return its report as Markdown. */
export async function runWatcherBench(opts: WatcherBenchOptions = watcherOptionsFromEnv()): Promise<string> {
  const skip = netnsSkipReason();
  if (skip) throw new Error(`the watcher benchmark needs network namespaces: ${skip}`);
  for (const tool of [["ss", "-V"], ["lsof", "-v"], ["curl", "-V"], ["prlimit", "-V"]]) {
    try {
      await run(tool, { check: false });
    } catch {
      throw new Error(
        `the watcher benchmark needs ${tool[0]} (apt-get install -y lsof iproute2 curl util-linux)`,
      );
    }
  }
  const res = new Resources("watcher");
  let interrupted = false;
  const onSignal = () => {
    if (interrupted) return;
    interrupted = true;
    progress("interrupted: stopping every process and namespace started");
    res.releaseAll()
      .then(() => Deno.remove(SHM_DIR, { recursive: true }))
      .catch(() => {})
      .finally(() => Deno.exit(130));
  };
  const signals = ["SIGINT", "SIGTERM"] as const;
  for (const s of signals) Deno.addSignalListener(s, onSignal);
  const t0 = performance.now();
  SHM_DIR = await Deno.makeTempDir({ dir: "/dev/shm", prefix: "portwatch_bench_" });
  try {
    const nofile = await raiseFdLimit();
    const header = await versions();
    progress(`${nofile}; ${opts.quick ? "quick" : "full"} run`);

    const scans: ScanSection[] = [];
    for (const sc of SCENARIOS) scans.push(await runScanScenario(res, sc, opts));
    const idle = await runIdle(res, opts);
    const latency = await runLatency(res, opts);
    const capture = await runCapture(res, opts);
    const minutes = (performance.now() - t0) / 60_000;

    const parts = [
      "# Polling watcher benchmark: ours (watcher/) vs the seed's tools (ss, lsof, bench/seed_ss_loop.sh)",
      "",
      `${new Date().toISOString()} — ${header}; ${
        opts.quick ? "BENCH_QUICK=1 (small counts)" : "full run"
      }, ${minutes.toFixed(1)} min. Every measurement runs inside a fresh network namespace (ip netns add) ` +
      `holding python3 sockets (testing/netns.ts); ${nofile}.`,
      "",
      "## 1. One scan with pids",
      "",
      "Ours: bench/watcher_scan_probe.ts run inside the namespace (`ip netns exec NS deno run -A ...`) times " +
      "the engine's per-scan path in-process — source scan(), PidResolver.resolve() of every inode, " +
      "observePorts(), PortTracker.observe() — with the netlink socket open and (steady) the resolver cache " +
      "warm, or (cold) the cache cleared before each scan so every socket's pid is walked for in /proc. " +
      "External commands are whole processes, stdout read: the `median`/`p95` columns are spawned from inside " +
      "the namespace by the probe (Deno.Command, no `ip netns exec`); the `via ip netns exec` columns are " +
      "spawned from the host side as `ip netns exec NS <cmd>`, and the last column subtracts the " +
      "`ip netns exec NS true` median (shown in the `true` row). `÷ ss` is the row's median over " +
      "`ss -Htn state listening`'s (in-namespace): below 1 is faster.",
    ];
    for (const s of scans) {
      parts.push(
        "",
        `### (${s.scenario.key}) ${s.scenario.label}`,
        "",
        `${s.probe.scans[0].sockets} listening/bound sockets seen; the holder has ${s.holderFds} fds open.`,
        "",
        scanTable(s),
      );
    }
    parts.push(
      "",
      "### Where the time of our scan goes (medians per phase)",
      "",
      phaseTable(scans),
      "",
      "### Targets",
      "",
      ...scanTargets(scans),
      "",
      "## 2. Idle CPU and memory",
      "",
      `The watcher (\`ip netns exec NS deno run -A watcher/main.ts\`, events to stdout, read and discarded) in a ` +
        `namespace with the 50 listeners of (a) plus a listener/main.ts (51 ports). After it reported the ports ` +
        `and ${opts.idleWarmupS} s more, CPU = utime+stime delta of /proc/<pid>/stat over ${opts.idleSeconds} s, ` +
        `as % of one core; the seed loop's ss, awk, sort, comm and sleep are children it reaps (cutime+cstime). ` +
        `Memory from /proc/<pid>/status at the end (for the seed loop: bash alone).`,
      "",
      idleTable(idle.rows),
      "",
      `For scale: an idle \`deno eval 'setInterval(() => {}, 1000)'\` (Deno ${Deno.version.deno}, nothing ` +
        `imported) has VmRSS ${fmtMb(idle.floor.rssMb)} MB (VmHWM ${fmtMb(idle.floor.hwmMb)} MB) here.`,
      "",
      "### Targets",
      "",
      ...idleTargets(idle.rows),
      "",
      "## 3. Detection latency: listen() to event stored at the listener",
      "",
      `listener/main.ts (--fsync 0) and the engine in the same fresh namespace; a python3 opener opens ` +
        `${opts.latencyPorts} distinct ports at random moments (0.1-0.4 s apart, so a few overlap), each held ` +
        `${opts.latencyHoldS} s; latency = the stored event's \`ts\` (listener clock) − time.time() right after ` +
        `listen() returned (same machine, same clock; \`ts\` has 1 ms resolution).`,
      "",
      latencyTable(latency),
      "",
      "## 4. Capture rate of short-lived ports (seed's high-fidelity settings)",
      "",
      `${opts.capturePorts} ports per hold time, ${
        opts.capturePorts * HOLDS_MS.length
      } in all, opened at uniformly random moments over ${
        (opts.capturePorts * HOLDS_MS.length * 0.1).toFixed(0)
      } s (hold times mixed, distinct port numbers, the same seeded schedule for every engine); a port counts ` +
        `when the listener stored an open event for it.`,
      "",
      captureTable(capture),
      "",
      holdAccuracy(capture),
      "",
      "### Targets",
      "",
      ...captureTargets(capture),
      "",
    );
    return parts.join("\n");
  } finally {
    for (const s of signals) Deno.removeSignalListener(s, onSignal);
    await res.releaseAll();
    await Deno.remove(SHM_DIR, { recursive: true }).catch(() => {});
  }
}
