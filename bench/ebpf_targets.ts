/**
 * The eBPF benchmark's targets, as PASS/FAIL lines with the figures and ratios behind them: the bpftrace engine's
 * (as before), and the libbpf engine's from its issue (CPU at 1,000 binds/s under 4% and at most a quarter of the
 * bpftrace engine's, idle under 0.2%, ready within 300 ms, p99 under 50 ms open and close, 100% capture once
 * each way also at 10,000 binds/s, the whole tree under 80 MB as `deno task ebpf` starts it); and the start-up
 * table.
 * @module
 */
import { fmtInt, fmtMb, fmtMs, fmtRatio, markdownTable } from "./table.ts";
import { ALIGN_R, pct, verdict } from "./ebpf_shared.ts";
import { idleTotal } from "./ebpf_idle.ts";
import { floodComplete } from "./ebpf_flood.ts";
import type { MemResult } from "./ebpf_memory.ts";
import {
  cpuTotal,
  type EngineRun,
  exact,
  type Group,
  type GroupStats,
  HOLDS_MS,
  isEbpf,
} from "./ebpf_model.ts";

/** The libbpf engine's targets. */
const LIBBPF = { cpuPct: 4, cpuOfBpftrace: 0.25, idlePct: 0.2, readyMs: 300, p99Ms: 50, memMb: 80 };
/** The bpftrace engine's. */
const BPFTRACE = { cpuPct: 5, p99Ms: 50 };

/** Spawn to start line and to the listener's own port stored, per engine. */
export function startupTable(runs: EngineRun[]): string {
  const header = [
    "engine",
    'spawn → start line ("watching ... with <engine> events")',
    "spawn → listener's own port stored",
  ];
  const rows = runs.map((r) => [
    r.spec.key,
    r.startS === undefined ? "n/a" : `${(r.startS * 1000).toFixed(0)} ms`,
    `${(r.readyS * 1000).toFixed(0)} ms`,
  ]);
  return markdownTable(header, rows, ALIGN_R(header.length));
}

/** What the targets read. */
export interface TargetInput {
  runs: EngineRun[];
  stats: Map<string, GroupStats[]>;
  groups: Group[];
  loadRate: number;
  floodRate: number;
  /** How long the wait after a load lasts, ms. */
  loadWaitMs: number;
  memory: MemResult[];
}

/** Lines for one engine's capture: every hold time, and every burst (the first, cold one when `cold`). */
function captureLines(key: string, input: TargetInput, cold: boolean): string[] {
  const st = input.stats.get(key)!;
  const out: string[] = [];
  for (const h of HOLDS_MS) {
    // `hold1tcp`, not `hold120tcp`: the key is hold<ms><proto>
    const ss = input.groups.flatMap((
      g,
      gi,
    ) => (new RegExp(`^hold${h}(tcp|udp)$`).test(g.key) ? [st[gi]] : []));
    const ports = ss.reduce((n, s) => n + s.ports, 0);
    const exactPorts = ss.reduce((n, s) => n + Math.min(s.openOnce, s.closeOnce), 0);
    const ok = ss.every(exact);
    out.push(
      `- ${verdict(ok)} held ${h} ms: ${key} captures 100%, each port once each way — opens ×1 ${
        ss.reduce((n, s) => n + s.openOnce, 0)
      }/${ports}, closes ×1 ${ss.reduce((n, s) => n + s.closeOnce, 0)}/${ports}` +
        (ok ? "" : ` (${ports - exactPorts} port(s) not exact)`),
    );
  }
  for (const [gi, g] of input.groups.entries()) {
    if (!(g.key.startsWith("burst") || (cold && g.key.startsWith("first")))) continue;
    const s = st[gi];
    out.push(
      `- ${verdict(exact(s))} ${g.label}: ${key} captures 100%, each port once each way — opens ×1 ` +
        `${s.openOnce}/${s.ports} (missing ${s.openMissing}, dup ${s.openDup}), closes ×1 ${s.closeOnce}/` +
        `${s.ports} (missing ${s.closeMissing}, dup ${s.closeDup})`,
    );
  }
  return out;
}

function p99Line(key: string, which: "open" | "close", what: string, l: number[], ref?: number[]): string {
  const p99 = pct(l, 0.99);
  return `- ${
    verdict((p99 ?? Infinity) < LIBBPF.p99Ms)
  } ${key} p99 ${which}-to-event (stored) < ${LIBBPF.p99Ms} ` +
    `ms, ${what} — ${fmtMs(p99)} (p50 ${fmtMs(pct(l, 0.5))}, max ${fmtMs(pct(l, 1))}, ${l.length} ports)` +
    (ref ? `; ÷ bpftrace p99 ${fmtRatio(p99, pct(ref, 0.99))}` : "");
}

function loadLine(key: string, r: EngineRun, input: TargetInput): string {
  const c = r.cpu.capture, n = r.cpu.load.count;
  const ok = c.opens === n && c.closes === n && c.portsExact === c.ports;
  return `- ${verdict(ok)} ${key} stores every load bind once each way at ${
    fmtInt(input.loadRate)
  } binds/s ` +
    `(done: ${fmtInt(n / r.cpu.load.seconds)}/s), within ${input.loadWaitMs / 1000} s of the load's end — ` +
    `opens ${fmtInt(c.opens)}, closes ${fmtInt(c.closes)} of ${fmtInt(n)}; ports exact ${
      fmtInt(c.portsExact)
    }` +
    ` of ${fmtInt(c.ports)}`;
}

function floodLine(key: string, r: EngineRun, input: TargetInput): string {
  const f = r.flood;
  if (!f) return `- N/A  ${key} at ${fmtInt(input.floodRate)} binds/s: ${r.floodWhy ?? "not run"}`;
  const rate = f.load.count / f.load.seconds;
  return `- ${verdict(floodComplete(f))} ${key} stores every bind once each way at ${
    fmtInt(input.floodRate)
  } binds/s (done: ${fmtInt(rate)}/s${
    rate < 0.95 * input.floodRate ? ", the load generator fell short" : ""
  }, ${fmtInt(f.load.count)} binds) — opens ${fmtInt(f.capture.opens)}, closes ${
    fmtInt(f.capture.closes)
  }; ports exact ${fmtInt(f.capture.portsExact)} of ${fmtInt(f.capture.ports)}${
    f.stillArriving ? ` (still arriving when the ${f.waitMs / 1000} s wait ended)` : ""
  }${f.notes.length ? `; engine log: ${f.notes.map((n) => `\`${n.trim()}\``).join(" ")}` : ""}`;
}

function bpftraceLines(r: EngineRun, input: TargetInput): string[] {
  const st = input.stats.get(r.spec.key)!;
  const holdIdx = input.groups.flatMap((g, gi) => (g.key.startsWith("hold") ? [gi] : []));
  const out = captureLines("bpftrace", input, false);
  const line = (what: string, l: number[]) =>
    `- ${verdict((pct(l, 0.99) ?? Infinity) < BPFTRACE.p99Ms)} bpftrace p99 open-to-event (stored) < ` +
    `${BPFTRACE.p99Ms} ms, ${what} — ${fmtMs(pct(l, 0.99))} (p50 ${fmtMs(pct(l, 0.5))}, max ${
      fmtMs(pct(l, 1))
    }, ${l.length} ports)`;
  out.push(line("ports held 1-120 ms", holdIdx.flatMap((gi) => st[gi].openLat)));
  for (const [gi, g] of input.groups.entries()) {
    if (g.key.startsWith("burst")) out.push(line(g.label, st[gi].openLat));
  }
  const total = cpuTotal(r.cpu);
  out.push(
    `- ${verdict(total < BPFTRACE.cpuPct)} bpftrace engine < ${BPFTRACE.cpuPct}% of one core at ${
      fmtInt(input.loadRate)
    } binds/s (deno + bpftrace) — ${total.toFixed(2)}%` +
      (r.cpu.bpf === undefined
        ? ""
        : `; plus ${r.cpu.bpf.pct.toFixed(2)}% in the BPF programs, kernel-side, not in that figure`),
    loadLine("(extra) bpftrace", r, input),
  );
  return out;
}

function libbpfLines(r: EngineRun, input: TargetInput): string[] {
  const st = input.stats.get("libbpf")!;
  const bp = input.runs.find((x) => x.spec.key === "bpftrace");
  const bst = input.stats.get("bpftrace");
  const out: string[] = [];
  // CPU
  const total = cpuTotal(r.cpu);
  out.push(
    `- ${
      verdict(total < LIBBPF.cpuPct)
    } libbpf engine (its process tree) < ${LIBBPF.cpuPct}% of one core at ${
      fmtInt(input.loadRate)
    } binds/s, delivering over HTTP — ${total.toFixed(2)}% (schedstat: ${r.cpu.runPct.toFixed(2)}%)`,
  );
  if (bp) {
    const ratio = total / cpuTotal(bp.cpu);
    out.push(
      `- ${
        verdict(ratio <= LIBBPF.cpuOfBpftrace)
      } libbpf ≤ ${LIBBPF.cpuOfBpftrace}× the bpftrace engine's CPU ` +
        `(deno + bpftrace) in the same run — ${total.toFixed(2)}% ÷ ${cpuTotal(bp.cpu).toFixed(2)}% = ` +
        `${ratio.toFixed(2)}x`,
    );
  } else {out.push(
      `- N/A  libbpf ≤ ${LIBBPF.cpuOfBpftrace}× the bpftrace engine's CPU: bpftrace not in this run`,
    );}
  const idle = idleTotal(r.idle);
  out.push(
    `- ${verdict(idle < LIBBPF.idlePct)} libbpf idle < ${LIBBPF.idlePct}% of one core — ${
      idle.toFixed(3)
    }% over ` +
      `${r.idle.seconds.toFixed(1)} s (schedstat; clock ticks: ${
        (r.idle.userPct + r.idle.sysPct).toFixed(3)
      }%)` +
      (bp
        ? `; bpftrace engine idle ${idleTotal(bp.idle).toFixed(3)}% (÷ ${fmtRatio(idle, idleTotal(bp.idle))})`
        : ""),
  );
  const bpf = r.cpu.bpf;
  out.push(
    `- info libbpf BPF programs, kernel-side (not in the figures above) at ${
      fmtInt(input.loadRate)
    } binds/s: ` +
      (bpf
        ? `${bpf.pct.toFixed(3)}% of one core (${fmtInt(bpf.runsPerS)} runs/s, ${bpf.progs} programs)` +
          (bp?.cpu.bpf
            ? `; bpftrace's ${bp.cpu.bpf.pct.toFixed(3)}% (${fmtInt(bp.cpu.bpf.runsPerS)} runs/s; ÷ ${
              fmtRatio(bpf.pct, bp.cpu.bpf.pct)
            })`
            : "")
        : "not measured (no bpf-prog fds found, or kernel.bpf_stats_enabled could not be set)") +
      (r.idle.bpf ? `; idle ${r.idle.bpf.pct.toFixed(4)}% (${Math.round(r.idle.bpf.runsPerS)} runs/s)` : ""),
  );
  // start-up
  if (r.startS !== undefined) {
    out.push(
      `- ${
        verdict(r.startS * 1000 <= LIBBPF.readyMs)
      } libbpf start line within ${LIBBPF.readyMs} ms of spawn — ` +
        `${(r.startS * 1000).toFixed(0)} ms` +
        (bp?.startS !== undefined ? ` (bpftrace ${(bp.startS * 1000).toFixed(0)} ms)` : ""),
    );
  }
  out.push(
    `- ${verdict(r.readyS * 1000 <= LIBBPF.readyMs)} libbpf ready (the listener's own port stored) within ` +
      `${LIBBPF.readyMs} ms of spawn — ${(r.readyS * 1000).toFixed(0)} ms` +
      (bp ? ` (bpftrace ${(bp.readyS * 1000).toFixed(0)} ms)` : ""),
  );
  // latency
  const holdIdx = input.groups.flatMap((g, gi) => (g.key.startsWith("hold") ? [gi] : []));
  for (const which of ["open", "close"] as const) {
    const lat = which === "open" ? "openLat" : "closeLat";
    out.push(
      p99Line(
        "libbpf",
        which,
        "ports held 1-120 ms",
        holdIdx.flatMap((gi) => st[gi][lat]),
        bst && holdIdx.flatMap((gi) => bst[gi][lat]),
      ),
    );
    for (const [gi, g] of input.groups.entries()) {
      if (!g.key.startsWith("hold")) {
        const what = g.key.startsWith("first") ? g.label : `${g.label} (warm)`;
        out.push(p99Line("libbpf", which, what, st[gi][lat], bst?.[gi][lat]));
      }
    }
  }
  // capture
  out.push(
    ...captureLines("libbpf", input, true),
    loadLine("libbpf", r, input),
    floodLine("libbpf", r, input),
  );
  if (bp) out.push(floodLine("(extra) bpftrace", bp, input));
  // memory
  const mem = input.memory.find((m) => m.key === "libbpf");
  const bmem = input.memory.find((m) => m.key === "bpftrace");
  if (!mem) out.push(`- N/A  libbpf whole tree < ${LIBBPF.memMb} MB: not measured`);
  else {
    const mb = (kb: number) => kb / 1024;
    const parts = mem.procs.map((p) => `${p.role} ${fmtMb(mb(p.rssKb))}`).join(" + ");
    for (
      const [what, kb, bkb] of [
        ["sum of RSS", mem.rssSumKb, bmem?.rssSumKb],
        ["sum of PSS", mem.pssSumKb, bmem?.pssSumKb],
        ["shared pages counted once (Σ Anonymous + largest RssFile)", mem.onceKb, bmem?.onceKb],
      ] as const
    ) {
      out.push(
        `- ${
          verdict(mb(kb) < LIBBPF.memMb)
        } libbpf whole tree (\`deno task ebpf\`) < ${LIBBPF.memMb} MB at ` +
          `${fmtInt(input.loadRate)} binds/s, ${what} — ${fmtMb(mb(kb))} MB` +
          (what === "sum of RSS" ? ` (${parts})` : "") +
          (bkb === undefined ? "" : `; bpftrace tree ${fmtMb(mb(bkb))} MB (÷ ${fmtRatio(kb, bkb)})`),
      );
    }
  }
  return out;
}

/** The targets section's lines: one block per eBPF engine that ran. */
export function targetLines(input: TargetInput): string[] {
  const out: string[] = [];
  const lib = input.runs.find((r) => r.spec.key === "libbpf");
  const bp = input.runs.find((r) => r.spec.key === "bpftrace");
  if (lib) out.push("### libbpf engine", "", ...libbpfLines(lib, input), "");
  if (bp) out.push("### bpftrace engine", "", ...bpftraceLines(bp, input), "");
  if (!input.runs.some((r) => isEbpf(r.spec.kind))) out.push("No eBPF engine in this run: no targets.", "");
  return out;
}
