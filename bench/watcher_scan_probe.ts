/**
 * In-namespace probe for the watcher benchmark: run inside a namespace (`ip netns exec NS deno run -A
 * bench/watcher_scan_probe.ts '<json>'`), it builds the engine's per-scan path exactly as
 * {@link PollingEngine.scanOnce} does for its own namespace (openSource's NetlinkSource / ProcNetSource with no
 * namespace path, one PidResolver, the runtime-socket filter, observePorts, PortTracker.observe) and times N scans, steady (resolver warm)
 * and cold (resolver cleared before each scan, so every inode is walked for). It can also time external
 * commands spawned from inside the namespace (no `ip netns exec` in the measurement). Prints one JSON line.
 * @module
 */
import { NetlinkSource } from "../sources/netlink.ts";
import { ProcNetSource } from "../sources/proc_net.ts";
import { PidResolver } from "../pipeline/pid_resolver.ts";
import { observePorts } from "../pipeline/observe.ts";
import { RuntimeSocketFilter } from "../pipeline/scope/runtime_sockets.ts";
import { PortTracker } from "../pipeline/tracker.ts";
import { netnsInode } from "../pipeline/scope/identity.ts";
import type { SocketSource } from "../sources/socket.ts";

/** What the probe is asked to do. */
export interface ProbeRequest {
  /** Timed scans per (backend, warm/cold): at most this many, at least `minRuns`, until `scanBudgetMs`. */
  iterations: number;
  scanBudgetMs: number;
  /** Untimed scans before the steady ones. */
  warmup: number;
  backends: ("netlink" | "proc")[];
  /** Commands to spawn from inside the namespace, each timed as a whole process. */
  commands: { label: string; argv: string[] }[];
  /** Runs per command (at least `minRuns`, until `commandBudgetMs` is spent). */
  commandRuns: number;
  minRuns: number;
  commandBudgetMs: number;
}

/** Summary of a set of timings, in ms. */
export interface Timing {
  n: number;
  medianMs: number;
  p95Ms: number;
  minMs: number;
}

/** One backend at one cache state. */
export interface ScanResult {
  backend: "netlink" | "proc";
  cache: "warm" | "cold";
  /** Whole scan: source scan + resolve + observePorts + tracker. */
  total: Timing;
  /** Medians of the phases. */
  scanMs: number;
  resolveMs: number;
  observeMs: number;
  sockets: number;
  ports: number;
  /** How many /proc walks the resolver did during the timed iterations. */
  walks: number;
}

/** The probe's JSON output. */
export interface ProbeResult {
  netns: number;
  scans: ScanResult[];
  commands: { label: string; timing: Timing; bytes: number }[];
}

/** Median, p95 (nearest rank) and min of `xs`. */
export function summarize(xs: number[]): Timing {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.max(0, Math.ceil(p * s.length) - 1))];
  return { n: s.length, medianMs: q(0.5), p95Ms: q(0.95), minMs: s[0] };
}

const median = (xs: number[]) => summarize(xs).medianMs;

async function timeScans(
  backend: "netlink" | "proc",
  cache: "warm" | "cold",
  req: ProbeRequest,
  netns: number,
): Promise<ScanResult> {
  // openSource(backend) for the watcher's own namespace: no path, /proc/net.
  const source: SocketSource = backend === "netlink" ? new NetlinkSource() : new ProcNetSource();
  const resolver = new PidResolver();
  const tracker = new PortTracker(0);
  const filter = new RuntimeSocketFilter();
  try {
    const once = async () => {
      const t0 = performance.now();
      const sockets = await source.scan();
      const t1 = performance.now();
      const owners = resolver.resolve(sockets.map((s) => s.inode));
      const t2 = performance.now();
      const pidsOf = (inode: number) => owners.get(inode);
      // the engine's path: runtime-owned sockets (Docker's embedded DNS) are left out before observing
      const observed = observePorts(filter.keep(netns, sockets, pidsOf), pidsOf);
      tracker.observe(netns, observed, Date.now());
      tracker.tick(Date.now());
      const t3 = performance.now();
      return { total: t3 - t0, scan: t1 - t0, resolve: t2 - t1, observe: t3 - t2, sockets, observed };
    };
    for (let i = 0; i < req.warmup; i++) await once();
    const walksBefore = resolver.stats.walks;
    const total: number[] = [], scan: number[] = [], resolve: number[] = [], observe: number[] = [];
    let sockets = 0, ports = 0;
    const start = performance.now();
    for (let i = 0; i < req.iterations; i++) {
      if (i >= req.minRuns && performance.now() - start > req.scanBudgetMs) break;
      if (cache === "cold") resolver.clear();
      const r = await once();
      total.push(r.total);
      scan.push(r.scan);
      resolve.push(r.resolve);
      observe.push(r.observe);
      sockets = r.sockets.length;
      ports = r.observed.length;
    }
    return {
      backend,
      cache,
      total: summarize(total),
      scanMs: median(scan),
      resolveMs: median(resolve),
      observeMs: median(observe),
      sockets,
      ports,
      walks: resolver.stats.walks - walksBefore,
    };
  } finally {
    source.close();
  }
}

async function timeCommand(
  argv: string[],
  req: ProbeRequest,
): Promise<{ timing: Timing; bytes: number }> {
  const times: number[] = [];
  let bytes = 0;
  const start = performance.now();
  for (let i = 0; i < req.commandRuns; i++) {
    if (i >= req.minRuns && performance.now() - start > req.commandBudgetMs) break;
    const t0 = performance.now();
    const out = await new Deno.Command(argv[0], { args: argv.slice(1), stdout: "piped", stderr: "piped" })
      .output();
    times.push(performance.now() - t0);
    // lsof exits 1 when one of its selections matched nothing (e.g. no UDP socket)
    if (!out.success && !(argv[0] === "lsof" && out.code === 1 && out.stdout.length > 0)) {
      throw new Error(`${argv.join(" ")} exited ${out.code}: ${new TextDecoder().decode(out.stderr).trim()}`);
    }
    bytes = out.stdout.length;
  }
  return { timing: summarize(times), bytes };
}

/** Run the probe as asked. */
export async function probe(req: ProbeRequest): Promise<ProbeResult> {
  const netns = netnsInode();
  const scans: ScanResult[] = [];
  for (const b of req.backends) {
    scans.push(await timeScans(b, "warm", req, netns));
    scans.push(await timeScans(b, "cold", req, netns));
  }
  const commands = [];
  for (const c of req.commands) commands.push({ label: c.label, ...await timeCommand(c.argv, req) });
  return { netns, scans, commands };
}

if (import.meta.main) {
  const req = JSON.parse(Deno.args[0]) as ProbeRequest;
  console.log(JSON.stringify(await probe(req)));
}
