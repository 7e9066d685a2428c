/**
 * The listener benchmark: our listener against the reference FastAPI peer, side by side, on loopback, with
 * wrk. Single-event POSTs at 1, 16 and 64 connections with fsync off and on, plus NDJSON batches of 100
 * events to ours; requests/s, p50/p99 latency, resident memory, and a check that our log holds exactly the
 * events we acknowledged.
 * @module
 */
import { fileURLToPath } from "node:url";
import { type Memory, Proc } from "./procs.ts";
import { freePort } from "../testing/port.ts";
import { listenerCommand, LISTENING_LINE } from "../testing/listener.ts";
import { denoTask } from "./deno_task.ts";
import { postScript, runWrk, type WrkResult } from "./wrk.ts";
import { fmtInt, fmtMb, fmtMs, fmtRatio, markdownTable } from "./table.ts";
import { type MachineShare, machineShare, machineTicks } from "./machine_cpu.ts";

const ROOT = fileURLToPath(new URL("../", import.meta.url));
const PEERS_DIR = fileURLToPath(new URL("../../shared/peers/", import.meta.url));
const PYTHON = "/usr/bin/python3";

/** The event every single-event request carries (the peer and ours get the same bytes). */
export const EVENT = {
  event: "open",
  port: 5000,
  pids: [123],
  container_id: "abc123",
  container_name: "web",
  source: "polling",
  proto: "tcp",
  family: 4,
  addrs: ["0.0.0.0"],
  host: "h1",
  netns: 4026531840,
  observed_at: "2026-11-25T07:53:56.285Z",
};

/** Events per NDJSON request. */
export const BATCH = 100;

/** The single-event body. */
export function singleBody(): string {
  return JSON.stringify(EVENT);
}

/** An NDJSON body of `n` events (ports 5000, 5001, ...), one per line. */
export function ndjsonBody(n = BATCH): string {
  let s = "";
  for (let i = 0; i < n; i++) s += JSON.stringify({ ...EVENT, port: EVENT.port + i }) + "\n";
  return s;
}

/** Benchmark settings, from the environment. */
export interface ListenerBenchOptions {
  /** Measured seconds per cell (BENCH_SECONDS, default 5). */
  seconds: number;
  /** Warm-up seconds before each measured run. */
  warmupSeconds: number;
  /** Connection counts (BENCH_CONNS, default 1,16,64). */
  connections: number[];
}

/** Options from BENCH_SECONDS and BENCH_CONNS. */
export function optionsFromEnv(env = Deno.env): ListenerBenchOptions {
  const secs = env.get("BENCH_SECONDS") ?? "5";
  if (!/^\d+$/.test(secs) || Number(secs) < 1) {
    throw new Error(`BENCH_SECONDS=${secs}: want whole seconds >= 1`);
  }
  const conns = (env.get("BENCH_CONNS") ?? "1,16,64").split(",").map((s) => Number(s.trim()));
  if (conns.some((c) => !Number.isInteger(c) || c < 1)) {
    throw new Error(`BENCH_CONNS=${env.get("BENCH_CONNS")}: want a comma-separated list of counts >= 1`);
  }
  return { seconds: Number(secs), warmupSeconds: 1, connections: conns };
}

type Who = "ours" | "peer";

/** A server under test with its own temp dir. */
interface Server {
  who: Who;
  proc: Proc;
  /** Base URL, e.g. http://127.0.0.1:41234. */
  url: string;
  dir: string;
  logPath: string;
}

async function startServer(who: Who, fsync: boolean): Promise<Server> {
  const dir = await Deno.makeTempDir({ prefix: `portwatch_bench_${who}_` });
  const logPath = `${dir}/x.log`;
  let proc: Proc | undefined;
  try {
    if (who === "ours") {
      const task = await denoTask("listen");
      const [cmd, ...args] = listenerCommand(logPath, {
        denoFlags: task.v8Flags,
        args: ["--fsync", fsync ? "1" : "0"],
      });
      proc = Proc.start({
        cmd,
        args,
        cwd: ROOT,
        // Keep every rotated file (the default rotation at 64 MiB stays on), so every stored line can be counted.
        env: { ...task.env, LOG_KEEP: "1000", NO_COLOR: "1" },
      });
      const m = await proc.waitForLine(LISTENING_LINE);
      return { who, proc, url: m[1], dir, logPath };
    }
    const port = freePort();
    proc = Proc.start({
      cmd: PYTHON,
      args: ["-m", "uvicorn", "fastapi_listener:app", "--port", String(port), "--log-level", "warning"],
      cwd: PEERS_DIR,
      env: { LOG_PATH: logPath, FSYNC: fsync ? "1" : "0" },
    });
    const url = `http://127.0.0.1:${port}`;
    await proc.waitForHttp(`${url}/healthz`);
    return { who, proc, url, dir, logPath };
  } catch (e) {
    await proc?.stop();
    await Deno.remove(dir, { recursive: true });
    throw e;
  }
}

async function stopServer(s: Server): Promise<void> {
  try {
    await s.proc.stop();
  } finally {
    await Deno.remove(s.dir, { recursive: true });
  }
}

/** Lines in the log and its rotated files, once the count has stopped changing (in-flight writes done). */
async function settledLineCount(logPath: string): Promise<number> {
  let last = -1;
  for (let i = 0; i < 50; i++) {
    const n = await countLogLines(logPath);
    if (n === last) return n;
    last = n;
    await new Promise((r) => setTimeout(r, 200));
  }
  return last;
}

/** Newline count of `logPath` plus its rotated files `logPath.1`, `logPath.2`, ... */
export async function countLogLines(logPath: string): Promise<number> {
  let total = 0;
  for (let i = 0;; i++) {
    let data: Uint8Array;
    try {
      data = await Deno.readFile(i === 0 ? logPath : `${logPath}.${i}`);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return total;
      throw e;
    }
    for (let j = data.indexOf(10); j !== -1; j = data.indexOf(10, j + 1)) total++;
  }
}

/** Whether our log holds the acknowledged events. */
interface LogCheck {
  ok: boolean;
  lines: number;
  /** Events acknowledged with 2xx over the warm-up and measured runs. */
  accepted: number;
  /** Upper bound on lines beyond `accepted`: requests still in flight when wrk stopped, or timed out. */
  slack: number;
}

/** One wrk cell: a fresh server, warm-up, measured run, memory, and (ours) the log check. */
interface Cell {
  who: Who;
  kind: "single" | "ndjson";
  fsync: boolean;
  connections: number;
  wrk: WrkResult;
  /** Events per second (requests/s times events per request). */
  eventsPerSec: number;
  mem: Memory;
  /** Ours: how the resident memory at the end of the run splits (private vs the executable's file pages). */
  split?: RssSplit;
  /** The whole machine over the measured run: busy, and taken by the hypervisor (steal). */
  machine: MachineShare;
  check?: LogCheck;
}

/** RssAnon and RssFile (+ RssShmem) of a process, in MiB. */
export interface RssSplit {
  anonMb: number;
  fileMb: number;
}

/** RssAnon and RssFile of `pid` from /proc/<pid>/status. */
export async function readRssSplit(pid: number): Promise<RssSplit> {
  const text = await Deno.readTextFile(`/proc/${pid}/status`);
  const kb = (field: string) => Number(text.match(new RegExp(`^${field}:\\s+(\\d+) kB`, "m"))?.[1] ?? 0);
  return { anonMb: kb("RssAnon") / 1024, fileMb: (kb("RssFile") + kb("RssShmem")) / 1024 };
}

async function runCell(
  who: Who,
  kind: "single" | "ndjson",
  fsync: boolean,
  connections: number,
  opts: ListenerBenchOptions,
): Promise<Cell> {
  const perRequest = kind === "ndjson" ? BATCH : 1;
  // The last cell's log, deleted, may still have dirty pages in writeback: flushed now, so that writeback
  // does not take CPU from this cell.
  await new Deno.Command("sync").output();
  const server = await startServer(who, fsync);
  try {
    const script = `${server.dir}/${kind}.lua`;
    await Deno.writeTextFile(
      script,
      kind === "ndjson"
        ? postScript(ndjsonBody(), "application/x-ndjson")
        : postScript(singleBody(), "application/json"),
    );
    const run = (seconds: number) =>
      runWrk({ url: `${server.url}/ingest`, connections, seconds, script, timeout: "10s" });
    const warm = await run(opts.warmupSeconds);
    const before = machineTicks();
    const wrk = await run(opts.seconds);
    const machine = machineShare(before, machineTicks());
    const mem = await server.proc.memory();
    const split = who === "ours" ? await readRssSplit(server.proc.pid) : undefined;
    let check: LogCheck | undefined;
    if (who === "ours") {
      const lines = await settledLineCount(server.logPath);
      const accepted = (warm.requests - warm.non2xx + wrk.requests - wrk.non2xx) * perRequest;
      const slack = (2 * connections + warm.errors + wrk.errors) * perRequest;
      check = { ok: lines >= accepted && lines - accepted <= slack, lines, accepted, slack };
    }
    return {
      who,
      kind,
      fsync,
      connections,
      wrk,
      eventsPerSec: wrk.rps * perRequest,
      mem,
      split,
      machine,
      check,
    };
  } finally {
    await stopServer(server);
  }
}

function progress(c: Cell): void {
  const what = `${c.who} ${c.kind} fsync ${c.fsync ? "on" : "off"} c=${c.connections}`;
  const check = c.check ? ` log ${c.check.ok ? "ok" : "MISMATCH"} (${fmtInt(c.check.lines)} lines)` : "";
  const split = c.split ? ` (anon ${fmtMb(c.split.anonMb)} + file ${fmtMb(c.split.fileMb)})` : "";
  console.error(
    `listener: ${what.padEnd(30)} ${fmtInt(c.wrk.rps).padStart(8)} req/s ${
      fmtInt(c.eventsPerSec).padStart(10)
    } ev/s p50 ${fmtMs(c.wrk.p50Ms)} p99 ${fmtMs(c.wrk.p99Ms)} hwm ${
      fmtMb(c.mem.hwmMb)
    } MB${split}${check} ` +
      `machine busy ${c.machine.busyPct.toFixed(0)}% steal ${c.machine.stealPct.toFixed(1)}%`,
  );
}

/** Every cell of one fsync setting. */
interface Section {
  fsync: boolean;
  cells: Cell[];
}

async function runSection(fsync: boolean, opts: ListenerBenchOptions): Promise<Section> {
  const cells: Cell[] = [];
  const add = (c: Cell) => {
    progress(c);
    cells.push(c);
  };
  for (const n of opts.connections) {
    add(await runCell("ours", "single", fsync, n, opts));
    add(await runCell("peer", "single", fsync, n, opts));
  }
  for (const n of opts.connections) add(await runCell("ours", "ndjson", fsync, n, opts));
  return { fsync, cells };
}

function find(s: Section, who: Who, kind: "single" | "ndjson", conns: number): Cell | undefined {
  return s.cells.find((c) => c.who === who && c.kind === kind && c.connections === conns);
}

const HEADER = [
  "case",
  "conns",
  "ours req/s",
  "peer req/s",
  "ratio ours/peer",
  "ours p50",
  "ours p99",
  "peer p50",
  "peer p99",
  "ours RSS MB (VmHWM)",
  "peer RSS MB",
  "steal % ours/peer",
];
const ALIGN = [
  "left",
  "right",
  "right",
  "right",
  "right",
  "right",
  "right",
  "right",
  "right",
  "right",
  "right",
  "right",
] as const;

const mem = (m: Memory | undefined) => m ? `${fmtMb(m.rssMb)} (${fmtMb(m.hwmMb)})` : "n/a";
const steal = (o: Cell | undefined, p: Cell | undefined) =>
  `${o ? o.machine.stealPct.toFixed(1) : "n/a"} / ${p ? p.machine.stealPct.toFixed(1) : "n/a"}`;

function sectionTable(s: Section, opts: ListenerBenchOptions): string {
  const rows: string[][] = [];
  for (const n of opts.connections) {
    const o = find(s, "ours", "single", n);
    const p = find(s, "peer", "single", n);
    rows.push([
      "1 event/request, req/s",
      String(n),
      fmtInt(o?.wrk.rps),
      fmtInt(p?.wrk.rps),
      fmtRatio(o?.wrk.rps, p?.wrk.rps),
      fmtMs(o?.wrk.p50Ms),
      fmtMs(o?.wrk.p99Ms),
      fmtMs(p?.wrk.p50Ms),
      fmtMs(p?.wrk.p99Ms),
      mem(o?.mem),
      mem(p?.mem),
      steal(o, p),
    ]);
  }
  for (const n of opts.connections) {
    const o = find(s, "ours", "ndjson", n);
    const p = find(s, "peer", "single", n);
    rows.push([
      `NDJSON ${BATCH}/request, events/s *`,
      String(n),
      fmtInt(o?.eventsPerSec),
      fmtInt(p?.eventsPerSec),
      fmtRatio(o?.eventsPerSec, p?.eventsPerSec),
      fmtMs(o?.wrk.p50Ms),
      fmtMs(o?.wrk.p99Ms),
      fmtMs(p?.wrk.p50Ms),
      fmtMs(p?.wrk.p99Ms),
      mem(o?.mem),
      mem(p?.mem),
      steal(o, p),
    ]);
  }
  return markdownTable(HEADER, rows, [...ALIGN]);
}

function checkLines(s: Section): string[] {
  return s.cells.filter((c) => c.check).map((c) => {
    const k = c.check!;
    const extra = k.lines - k.accepted;
    const errs = c.wrk.non2xx + c.wrk.errors;
    return `- ${k.ok ? "PASS" : "FAIL"} log check, ${c.kind} c=${c.connections}: ${fmtInt(k.lines)} lines, ` +
      `${fmtInt(k.accepted)} events acknowledged (2xx), ${fmtInt(extra)} more ` +
      `(allowed 0..${fmtInt(k.slack)}: requests in flight when wrk stopped)` +
      (errs > 0 ? `; wrk saw ${c.wrk.non2xx} non-2xx and ${c.wrk.errors} socket errors` : "");
  });
}

function verdict(ok: boolean | undefined): string {
  return ok === undefined ? "N/A " : ok ? "PASS" : "FAIL";
}

function targets(sections: Section[]): string[] {
  const off = sections.find((s) => !s.fsync)!;
  const on = sections.find((s) => s.fsync)!;
  const out: string[] = [];
  const speedup = (s: Section, label: string) => {
    const o = find(s, "ours", "single", 64)?.wrk.rps;
    const p = find(s, "peer", "single", 64)?.wrk.rps;
    const ok = o !== undefined && p !== undefined ? o >= 5 * p : undefined;
    out.push(
      `- ${verdict(ok)} 64 conns, ${label}: ours >= 5x peer req/s — ours ${fmtInt(o)}, peer ${fmtInt(p)}, ` +
        `ratio ${fmtRatio(o, p)}`,
    );
  };
  speedup(off, "fsync off");
  speedup(on, "fsync on");
  const nd = off.cells.filter((c) => c.who === "ours" && c.kind === "ndjson");
  const best = nd.reduce<Cell | undefined>(
    (b, c) => (!b || c.eventsPerSec > b.eventsPerSec ? c : b),
    undefined,
  );
  out.push(
    `- ${verdict(best ? best.eventsPerSec > 300_000 : undefined)} NDJSON batches > 300,000 events/s — ` +
      (best
        ? `best ${fmtInt(best.eventsPerSec)} events/s (fsync off, ${best.connections} conns)`
        : "not measured"),
  );
  const p99 = find(off, "ours", "single", 16)?.wrk.p99Ms;
  out.push(
    `- ${verdict(p99 === undefined ? undefined : p99 < 5)} ours p99 < 5 ms at 16 conns (fsync off) — ${
      fmtMs(p99)
    }`,
  );
  const ours = sections.flatMap((s) => s.cells.filter((c) => c.who === "ours"));
  const worst = ours.reduce<Cell | undefined>((w, c) => (!w || c.mem.hwmMb > w.mem.hwmMb ? c : w), undefined);
  out.push(
    `- ${verdict(worst ? worst.mem.hwmMb < 100 : undefined)} ours RSS < 100 MB under load — highest VmHWM ` +
      (worst
        ? `${fmtMb(worst.mem.hwmMb)} MB (${worst.kind}, fsync ${
          worst.fsync ? "on" : "off"
        }, ${worst.connections} conns)` +
          (worst.split
            ? `; at the end of that run ${
              fmtMb(worst.split.anonMb)
            } MB was the process's own (RssAnon) and ` +
              `${fmtMb(worst.split.fileMb)} MB pages of the deno executable and libraries (RssFile)`
            : "")
        : "n/a"),
  );
  const checks = ours.filter((c) => c.check);
  const bad = checks.filter((c) => !c.check!.ok).length;
  out.push(
    `- ${verdict(checks.length ? bad === 0 : undefined)} our log holds every acknowledged event — ` +
      `${checks.length - bad}/${checks.length} runs`,
  );
  return out;
}

async function toolVersions(): Promise<string> {
  const wrk = await new Deno.Command("wrk", { args: ["-v"], stdout: "piped", stderr: "piped" }).output();
  const wrkLine = new TextDecoder().decode(wrk.stdout).split("\n")[0].replace(/\s+Copyright.*$/, "");
  return `deno ${Deno.version.deno}, ${wrkLine}, ${navigator.hardwareConcurrency} CPUs`;
}

/** Run the listener benchmark and return its report as Markdown. */
export async function runListenerBench(opts: ListenerBenchOptions = optionsFromEnv()): Promise<string> {
  const sections: Section[] = [];
  for (const fsync of [false, true]) sections.push(await runSection(fsync, opts));
  const task = await denoTask("listen");
  const taskEnv = Object.entries(task.env).map(([k, v]) => `${k}=${v}`).join(" ");
  const parts = [
    "# Listener benchmark: ours (Deno, listener/main.ts) vs peer (FastAPI, shared/peers/fastapi_listener.py)",
    "",
    `${
      new Date().toISOString()
    } — ${await toolVersions()}; loopback; wrk -t1 -cN -d${opts.seconds}s --latency ` +
    `after a ${opts.warmupSeconds} s warm-up; a fresh server and temp dir per cell; ours runs with the ` +
    `\`listen\` task's environment (${taskEnv || "none"}) and V8 flags (${
      task.v8Flags.join(" ") || "none"
    }).`,
  ];
  for (const s of sections) {
    parts.push("", `## fsync ${s.fsync ? "on" : "off"}`, "", sectionTable(s, opts), "", ...checkLines(s));
  }
  parts.push(
    "",
    `\\* NDJSON rows: ours gets ${BATCH} events per request (Content-Type application/x-ndjson) and its column ` +
      `shows events/s (requests/s x ${BATCH}); its p50/p99 are per ${BATCH}-event request. The peer does not ` +
      `understand NDJSON batches (it would store one message line per request), so its events/s is its ` +
      `single-event requests/s (1 event per request) at the same connection count, from the row above.`,
    "",
    "steal: % of all cores' time the hypervisor gave to other guests during the measured run (/proc/stat); " +
      "figures of runs with more steal are lower. Each cell starts after a `sync`, so no earlier cell's writeback " +
      "runs during it.",
    "",
    "RSS columns: VmRSS at the end of the measured run (VmHWM, the peak, in parentheses), in MiB, of the server " +
      "process itself (deno run / python3 -m uvicorn, started directly).",
    "",
    "## Targets",
    "",
    ...targets(sections),
    "",
  );
  return parts.join("\n");
}
