/**
 * Benchmarks: `deno task bench [name]`. Each named benchmark prints its report (Markdown) to stdout and writes
 * it to .bench/<name>.md; progress goes to stderr. Without a name every benchmark runs.
 * @module
 */
import { runListenerBench } from "./listener_bench.ts";
import { runWatcherBench } from "./watcher_bench.ts";
import { runEbpfBench } from "./ebpf_bench.ts";
import { runEbpfFloorBench } from "./ebpf_floor_bench.ts";
import { runFleetBench } from "./fleet_bench.ts";
import { runPolicyBench } from "./policy_bench.ts";

/** A named benchmark. */
export interface Benchmark {
  /** One line for `--help`. */
  description: string;
  /** Run it and return its report as Markdown. */
  run(): Promise<string>;
}

/** Every benchmark, by name, in the order `deno task bench` runs them. */
export const BENCHMARKS: Record<string, Benchmark> = {
  listener: {
    description: "POST /ingest throughput, latency and memory vs the FastAPI peer, fsync off and on (wrk)",
    run: () => runListenerBench(),
  },
  watcher: {
    description:
      "polling watcher vs the seed's ss/lsof: scan time, idle CPU, detection latency, capture rate",
    run: () => runWatcherBench(),
  },
  ebpf: {
    description:
      "libbpf and bpftrace engines vs polling vs the seed's ss loop: capture, latency, CPU, idle, start, memory",
    run: () => runEbpfBench(),
  },
  "ebpf-floor": {
    description:
      "CPU at 1,000 binds/s of bpftrace alone, of bpftrace + a Deno process that only reads it, and of the engine",
    run: () => runEbpfFloorBench(),
  },
  fleet: {
    description:
      "1,000 simulated watchers: file store vs PostgreSQL 1 and 2 replicas (max events/s, lag), /ports at 10 M",
    run: () => runFleetBench(),
  },
  policy: {
    description:
      "ingest events/s with a 1,000-rule port policy vs none, single events and NDJSON batches (interleaved trials)",
    run: () => runPolicyBench(),
  },
};

const OUT_DIR = new URL("../.bench/", import.meta.url);

/** Usage text listing the benchmarks. */
export function usage(): string {
  const names = Object.entries(BENCHMARKS).map(([n, b]) => `  ${n.padEnd(12)} ${b.description}`);
  return [
    "Usage: deno task bench [name ...]   (default: all)",
    "",
    "Benchmarks:",
    ...names,
    "",
    "Environment: BENCH_SECONDS (measured seconds per cell, default 5), BENCH_CONNS (default 1,16,64);",
    "BENCH_QUICK=1 (watcher: smaller counts, ~2 minutes instead of ~10; ebpf: ~3 instead of ~7;",
    "policy: 2 s trials instead of 5); BENCH_ROUNDS (policy: trials of each listener per load, default 3);",
    "BENCH_ENGINES=libbpf,bpftrace (ebpf: only these of libbpf, bpftrace, poll, poll0, seed).",
  ].join("\n");
}

/** Run the benchmarks named in `args` (all when empty); returns the process exit code. */
export async function main(args: string[]): Promise<number> {
  if (args.includes("-h") || args.includes("--help")) {
    console.log(usage());
    return 0;
  }
  const unknown = args.filter((a) => !(a in BENCHMARKS));
  if (unknown.length > 0) {
    console.error(`unknown benchmark ${unknown.join(", ")}\n\n${usage()}`);
    return 2;
  }
  const names = args.length > 0 ? args : Object.keys(BENCHMARKS);
  await Deno.mkdir(OUT_DIR, { recursive: true });
  for (const name of names) {
    const report = await BENCHMARKS[name].run();
    const path = new URL(`${name}.md`, OUT_DIR);
    await Deno.writeTextFile(path, report);
    console.log(report);
    console.error(`bench: wrote ${path.pathname}`);
  }
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
