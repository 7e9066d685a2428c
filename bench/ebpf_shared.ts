/**
 * What the eBPF benchmark's parts share (ebpf_bench.ts and the phases in ebpf_idle.ts, ebpf_flood.ts and
 * ebpf_memory.ts): progress lines, percentiles and verdicts, the BPF programs' run time (kernel.bpf_stats_enabled,
 * put back after), the listener's log read as it grows, waiting for an engine to deliver, and the load generator.
 * @module
 */
import type { NetNs } from "../testing/netns.ts";
import { type Resources, startIn } from "./ns_bench.ts";
import { readText } from "./proc_cpu.ts";
import { LOADGEN_PY } from "./bind_load.ts";

export const progress = (msg: string) => console.error(`ebpf: ${msg}`);
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Nearest-rank percentile of `xs`. */
export function pct(xs: number[], p: number): number | undefined {
  if (xs.length === 0) return undefined;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(p * s.length) - 1))];
}

/** PASS, FAIL, or N/A (undefined: not measured). */
export function verdict(ok: boolean | undefined): string {
  return ok === undefined ? "N/A " : ok ? "PASS" : "FAIL";
}

/** Column alignment: the first `left` columns left, the rest right. */
export const ALIGN_R = (n: number, left = 1) =>
  [...Array(left).fill("left"), ...Array(n - left).fill("right")] as ("left" | "right")[];

// ---------------------------------------------------------------------------------------------------------------
// The BPF programs' run time.

/** Run time (ns) and run count of every BPF program whose fd `pid` holds (/proc/<pid>/fdinfo, bpf_stats). */
export function bpfProgStats(pid: number): { ns: number; runs: number; progs: number } {
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

/** Switch kernel.bpf_stats_enabled on (remembering what it was); false when it cannot be. */
export function enableBpfStats(): boolean {
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

/** Put kernel.bpf_stats_enabled back as it was before {@link enableBpfStats}. */
export function restoreBpfStats(): void {
  if (bpfStatsBefore === undefined) return;
  try {
    Deno.writeTextFileSync(BPF_STATS, `${bpfStatsBefore}\n`);
    bpfStatsBefore = undefined;
  } catch (e) {
    console.error(`ebpf bench: could not restore ${BPF_STATS}: ${(e as Error).message}`);
  }
}

/** BPF programs' run time over a window, from two {@link bpfProgStats} readings. */
export interface BpfWindow {
  /** % of one core. */
  pct: number;
  runsPerS: number;
  progs: number;
}

export function bpfWindow(
  a: ReturnType<typeof bpfProgStats> | undefined,
  b: ReturnType<typeof bpfProgStats> | undefined,
  seconds: number,
): BpfWindow | undefined {
  if (!a || !b || seconds <= 0) return undefined;
  return {
    pct: ((b.ns - a.ns) / 1e9 / seconds) * 100,
    runsPerS: (b.runs - a.runs) / seconds,
    progs: b.progs,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// The listener and its log.

/** One stored event, the fields this benchmark reads. */
export interface Stored {
  /** Listener `ts`, ms since the epoch. */
  ts: number;
  event: "open" | "close";
  port: number;
  proto?: string;
  source?: string;
  pids?: unknown;
}

/** Reads the listener's log as it grows (never rotated: --max-bytes 0). */
export class LogTail {
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
export async function settle(
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
// The load generator: `rate` bind+close per second, UDP bind and TCP listen alternately.

/** A load: `rate` bind+close per second for `seconds`, on ports `base`..`base + span - 1` in turn. */
export interface LoadSpec {
  rate: number;
  seconds: number;
  base: number;
  span: number;
}

export interface LoadResult {
  count: number;
  seconds: number;
  /** CPU seconds of the load generator itself (user, system) over the whole run. */
  user: number;
  sys: number;
  late: number;
  /** When its result line arrived here (ms since the epoch): the end of the load. */
  endMs: number;
}

/**
 * Run the load generator in `ns`; `during`, when given, runs `afterMs` after the load started and before its
 * end is awaited (a measured window).
 */
export async function runLoad(
  res: Resources,
  ns: NetNs,
  load: LoadSpec,
  during?: { afterMs: number; run: () => Promise<void> },
): Promise<LoadResult> {
  const proc = res.track(startIn(ns, [
    "python3",
    "-c",
    LOADGEN_PY,
    String(load.rate),
    String(load.seconds),
    String(load.base),
    String(load.span),
  ]));
  try {
    await proc.waitForLine(/^ready$/);
    if (during) {
      await sleep(during.afterMs);
      await during.run();
    }
    const m = await proc.waitForLine(/^(\{.*\})$/, (load.seconds + 30) * 1000);
    return { ...JSON.parse(m[1]), endMs: Date.now() } as LoadResult;
  } finally {
    await res.release(proc);
  }
}

/** The load's events stored: opens and closes (not shutdown closes), and per port exactly as many as binds. */
export interface LoadCapture {
  opens: number;
  closes: number;
  /** Ports whose opens and closes both equal the binds done on them, of the ports used. */
  portsExact: number;
  ports: number;
  /** The last load event stored, ms after the load ended (how far behind the engine was). */
  lagMs?: number;
}

/** Count what `tail` stored of load `load` (its ports), given how many binds it did (`count`). */
export function loadCapture(tail: LogTail, load: LoadSpec, result: LoadResult): LoadCapture {
  const inLoad = (e: Stored) => e.port >= load.base && e.port < load.base + load.span;
  const ev = tail.events.filter((e) => inLoad(e) && !e.source?.startsWith("shutdown"));
  const opens = new Map<number, number>(), closes = new Map<number, number>();
  for (const e of ev) {
    const m = e.event === "open" ? opens : closes;
    m.set(e.port, (m.get(e.port) ?? 0) + 1);
  }
  const ports = Math.min(load.span, result.count);
  let portsExact = 0;
  for (let i = 0; i < ports; i++) {
    // bind i is on port base + i % span: port k gets ceil((count - k) / span) of them
    const expected = Math.ceil((result.count - i) / load.span);
    const p = load.base + i;
    if (opens.get(p) === expected && closes.get(p) === expected) portsExact++;
  }
  return {
    opens: ev.filter((e) => e.event === "open").length,
    closes: ev.filter((e) => e.event === "close").length,
    portsExact,
    ports,
    lagMs: ev.length ? ev.reduce((m, e) => Math.max(m, e.ts), 0) - result.endMs : undefined,
  };
}
