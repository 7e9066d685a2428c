/**
 * The eBPF benchmark's memory phase: an eBPF engine started as users start it, `deno task ebpf` (so the task
 * runner, a second deno process, is in the tree, and the task's flags and environment apply as written in
 * deno.json), in a fresh namespace with a listener it delivers to, under the 1,000 binds/s load. Every second of
 * the measured window, each process of the tree is read: RSS (/proc/<pid>/status VmRSS), PSS and Anonymous
 * (/proc/<pid>/smaps_rollup), RssFile (status); the sample with the largest RSS sum is reported. Three totals:
 * the sum of RSS (shared pages, such as the deno executable's, counted once per process), the sum of PSS (shared
 * pages split between the processes sharing them, here and elsewhere on the host) and "shared pages counted
 * once": the sum of Anonymous plus the largest RssFile (the processes' file pages being mostly the same deno
 * executable).
 * @module
 */
import { NetNs } from "../testing/netns.ts";
import type { Proc } from "./procs.ts";
import { type Resources, startIn, startListener } from "./ns_bench.ts";
import { processTree, readText } from "./proc_cpu.ts";
import { fmtMb, markdownTable } from "./table.ts";
import { ALIGN_R, type LoadSpec, LogTail, progress, runLoad, sleep } from "./ebpf_shared.ts";

/** One process of the tree, in KiB. */
export interface MemProc {
  role: string;
  pid: number;
  rssKb: number;
  pssKb: number;
  anonKb: number;
  rssFileKb: number;
}

/** The tree at its largest sample. */
export interface MemResult {
  key: string;
  procs: MemProc[];
  rssSumKb: number;
  pssSumKb: number;
  /** Sum of Anonymous + the largest RssFile. */
  onceKb: number;
  samples: number;
  /** The load's binds per second, over the run. */
  rate: number;
}

function kb(text: string | undefined, field: string): number {
  return Number(text?.match(new RegExp(`^${field}:\\s+(\\d+) kB`, "m"))?.[1] ?? NaN);
}

/** Read every process of the tree rooted at `runner` (the task runner). */
function sampleTree(runner: number): MemProc[] {
  const out: MemProc[] = [];
  for (const p of processTree(runner)) {
    const status = readText(`/proc/${p.pid}/status`);
    const rollup = readText(`/proc/${p.pid}/smaps_rollup`);
    if (!status || !rollup) continue;
    out.push({
      role: p.pid === runner ? "runner (deno task)" : p.comm === "deno" ? "engine (deno run)" : p.comm,
      pid: p.pid,
      rssKb: kb(status, "VmRSS"),
      pssKb: kb(rollup, "Pss"),
      anonKb: kb(rollup, "Anonymous"),
      rssFileKb: kb(status, "RssFile"),
    });
  }
  return out;
}

function totals(procs: MemProc[]) {
  return {
    rssSumKb: procs.reduce((n, p) => n + p.rssKb, 0),
    pssSumKb: procs.reduce((n, p) => n + p.pssKb, 0),
    onceKb: procs.reduce((n, p) => n + p.anonKb, 0) + Math.max(0, ...procs.map((p) => p.rssFileKb)),
  };
}

/** `deno task ebpf` in a namespace; stop() ends the runner (which passes SIGTERM on) and then any leftover. */
class TaskEngine {
  /** Every member of the tree seen, with its comm, to end what the runner leaves behind. */
  readonly seen = new Map<number, string>();

  constructor(readonly proc: Proc) {}

  remember(): void {
    for (const p of processTree(this.proc.pid)) this.seen.set(p.pid, p.comm);
  }

  async stop(): Promise<void> {
    this.remember();
    await this.proc.stop(15_000);
    const alive = (pid: number, comm: string) => readText(`/proc/${pid}/comm`)?.trim() === comm;
    for (const [pid, comm] of this.seen) {
      if (pid === this.proc.pid || !alive(pid, comm)) continue;
      try {
        Deno.kill(pid, "SIGTERM");
      } catch { /* gone */ }
      for (let i = 0; i < 50 && alive(pid, comm); i++) await sleep(100);
      if (alive(pid, comm)) {
        try {
          Deno.kill(pid, "SIGKILL");
        } catch { /* gone */ }
      }
    }
  }
}

/**
 * Run `deno task ebpf` with EBPF_ENGINE=`engine` in a fresh namespace under `load` (its `seconds` must cover
 * `warmupS` + `windowS`), sampling the tree every second of the window.
 */
export async function runMemory(
  res: Resources,
  engine: "libbpf" | "bpftrace",
  opts: { load: LoadSpec; warmupS: number; windowS: number; shmDir: string },
): Promise<MemResult> {
  const ns = res.track(await NetNs.create());
  const dir = await Deno.makeTempDir({ prefix: "portwatch_bench_ebpf_mem_" });
  try {
    const listener = await startListener(res, ns, dir, ["--max-bytes", "0"]);
    const tail = new LogTail(listener.logPath);
    const task = res.track(
      new TaskEngine(startIn(ns, [Deno.execPath(), "task", "ebpf"], {
        EBPF_ENGINE: engine,
        EBPF_ONLY: "1",
        LISTENER_URL: listener.url,
        SNAPSHOT_PATH: `${opts.shmDir}/snapshot-mem-${crypto.randomUUID().slice(0, 8)}.json`,
        SPOOL_PATH: `${dir}/spool`,
      })),
    );
    try {
      await task.proc.waitForStderr(new RegExp(`watching .* with ${engine} events`), 90_000);
      task.remember();
      for (let i = 0; i < 600; i++) {
        await tail.poll();
        if (tail.events.some((e) => e.event === "open" && e.port === listener.port)) break;
        await sleep(100);
      }
      let best: MemProc[] = [];
      let samples = 0;
      const load = await runLoad(res, ns, opts.load, {
        afterMs: opts.warmupS * 1000,
        run: async () => {
          task.remember();
          for (let i = 0; i < opts.windowS; i++) {
            const procs = sampleTree(task.proc.pid);
            samples++;
            if (totals(procs).rssSumKb > totals(best).rssSumKb) best = procs;
            await sleep(1000);
          }
        },
      });
      const t = totals(best);
      progress(
        `memory, ${engine} via deno task ebpf: RSS sum ${(t.rssSumKb / 1024).toFixed(1)} MB, PSS sum ${
          (t.pssSumKb / 1024).toFixed(1)
        } MB, shared counted once ${(t.onceKb / 1024).toFixed(1)} MB (${best.map((p) => p.role).join(", ")})`,
      );
      return { key: engine, procs: best, ...t, samples, rate: load.count / load.seconds };
    } finally {
      await res.release(task);
      await res.release(listener.proc);
    }
  } finally {
    await res.release(ns);
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/** One row per process and one for the tree, per engine, in MB (MiB). */
export function memoryTable(results: MemResult[]): string {
  const header = ["engine", "process", "RSS", "PSS", "Anonymous", "RssFile"];
  const mb = (k: number) => fmtMb(k / 1024);
  const rows: string[][] = [];
  for (const r of results) {
    for (const [i, p] of r.procs.entries()) {
      rows.push([
        i === 0 ? `**${r.key}**` : "",
        `${p.role} (pid ${p.pid})`,
        mb(p.rssKb),
        mb(p.pssKb),
        mb(p.anonKb),
        mb(p.rssFileKb),
      ]);
    }
    rows.push([
      "",
      `**whole tree** (largest of ${r.samples} samples at ${Math.round(r.rate)} binds/s)`,
      `**${mb(r.rssSumKb)}** (sum)`,
      `**${mb(r.pssSumKb)}** (sum)`,
      "",
      `**${mb(r.onceKb)}** shared counted once (Σ Anonymous + largest RssFile)`,
    ]);
  }
  return markdownTable(header, rows, ALIGN_R(header.length, 2));
}
