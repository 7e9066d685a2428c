/**
 * Runs Debian's bpftrace with portwatch's program and reads its text output (records, see bpftrace_script.ts) as
 * SocketEvents. Mounts tracefs and debugfs when missing (tracepoints need them).
 * @module
 */
import { getLogger } from "@logtape/logtape";
import {
  ADOPT_SIGNAL,
  bpftraceScript,
  FLUSH_MS,
  NUDGE_PID,
  READY_MARKS,
  READY_PID,
  REORDER_MS,
} from "./bpftrace_script.ts";
import { readLines } from "../infra/lines.ts";
import { parseBpftraceLine } from "./bpftrace_parse.ts";
import { EngineUnavailableError, type SocketEventSource } from "./event_source.ts";
import type { SocketEvent } from "./socket_event.ts";
import { libc, monotonicNs } from "../infra/libc.ts";
import { ensureTracefs } from "./tracefs.ts";
import { tryCommand } from "../infra/try_command.ts";

const log = getLogger(["portwatch", "bpftrace"]);

/** After records, quiet this long (ms) before a nudge (see NUDGE_PID), and twice as long again before a second. */
const NUDGE_AFTER_MS = 3 * FLUSH_MS;

/**
 * A read with a record older than this (ms, by the kernel clock) comes from a backlog: bpftrace was kept off the
 * CPU and now drains its per-CPU buffers one after the other (the newest records of the buffer read first can
 * be recent while another CPU's older ones still wait). A record normally waits at most for two of the
 * program's newlines (2 FLUSH_MS).
 */
const BEHIND_MS = 2 * FLUSH_MS + 10;

/** Output other than newlines. */
const NOT_NEWLINE = /[^\n]/;

/** Most output kept while waiting for a newline (the program prints one every FLUSH_MS while it has output). */
const MAX_PENDING = 16 * 1024 * 1024;

/** Start bpftrace; resolves once its probes are attached, or throws EngineUnavailableError saying why not. */
export async function startBpftrace(options: { readyTimeoutMs?: number } = {}): Promise<BpftraceSource> {
  if (Deno.uid() !== 0) {
    throw new EngineUnavailableError("bpftrace", `needs root (running as uid ${Deno.uid()})`);
  }
  const which = await tryCommand("bpftrace", ["--version"]);
  if (!which.success) {
    throw new EngineUnavailableError(
      "bpftrace",
      "the bpftrace command is not installed (Debian: apt-get install bpftrace)",
    );
  }
  const tracefs = await ensureTracefs();
  if (tracefs) throw new EngineUnavailableError("bpftrace", tracefs);
  const source = new BpftraceSource(bpftraceScript(Deno.osRelease()));
  await source.start(options.readyTimeoutMs ?? 60_000);
  return source;
}

/** A running bpftrace. */
export class BpftraceSource implements SocketEventSource {
  readonly name = "bpftrace";
  /** The program hands its events over every FLUSH_MS already: the engine reports what one read brings. */
  readonly gatherMs = 0;
  /** A record waits for at most two newlines (see bpftrace_script.ts), then the pipe. */
  readonly settleMs = 3 * FLUSH_MS + 40;
  /** Per-CPU buffers are read in turn: a record can arrive up to this long after a newer one (see REORDER_MS). */
  readonly reorderMs = REORDER_MS;
  lost = 0;
  #child?: Deno.ChildProcess;
  #ready!: Promise<void>;
  #lines: string[] = [];
  #wake?: () => void;
  #ended?: string;
  #stderr: string[] = [];
  #attached = false;
  /** The ready marks seen (see READY_PID); the probes are attached once both are. */
  #marks = new Set<string>();
  #readyTimer?: ReturnType<typeof setInterval>;
  #nudgeTimer?: ReturnType<typeof setTimeout>;
  /** Nudges sent since the last records (two at most; two: no nudge pending). */
  #nudges = 2;
  /** A read of newlines alone started a round of nudges, and no record has come since. */
  #probed = false;

  constructor(readonly script: string) {}

  /** Resolves when the probes are attached. */
  get ready(): Promise<void> {
    return this.#ready;
  }

  /** Follow processes a scan found holding sockets: kill(pid, 0) from this process marks each (ADOPT_SIGNAL). */
  adopt(pids: Iterable<number>): void {
    const { kill } = libc();
    for (const pid of pids) if (pid > 0) kill(pid, ADOPT_SIGNAL);
  }

  /** Spawn bpftrace and wait until it is attached. */
  async start(readyTimeoutMs: number): Promise<void> {
    const child = new Deno.Command("bpftrace", {
      args: ["-f", "text", "-e", this.script],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      env: { BPFTRACE_STRLEN: "64" },
    }).spawn();
    this.#child = child;
    let attached!: () => void;
    let failed!: (e: Error) => void;
    this.#ready = new Promise<void>((resolve, reject) => {
      attached = resolve;
      failed = reject;
    });
    this.#ready.catch(() => {});
    const pump = async (stream: ReadableStream<Uint8Array>, onLine: (l: string) => void) => {
      for await (const line of readLines(stream)) onLine(line);
    };
    this.#readOutput(child.stdout, attached).catch(() => {});
    pump(child.stderr, (line) => {
      const lost = /Lost (\d+) events/.exec(line);
      if (lost) this.lost += Number(lost[1]);
      if (/RLIMIT_MEMLOCK|Addrspace|^\s*$|~|^\s+(if|printf|\$)/.test(line)) log.debug("{line}", { line });
      else {
        this.#stderr.push(line);
        log.warn("bpftrace: {line}", { line });
      }
    }).catch(() => {});
    child.status.then((s) => {
      clearTimeout(this.#nudgeTimer);
      clearInterval(this.#readyTimer);
      this.#ended = `bpftrace exited (${s.signal ?? `code ${s.code}`})${
        this.#stderr.length ? `: ${this.#stderr.slice(-5).join(" | ")}` : ""
      }`;
      failed(new EngineUnavailableError("bpftrace", this.#ended));
      this.#wake?.();
    });
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      await Promise.race([
        this.#ready,
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () =>
              reject(
                new EngineUnavailableError("bpftrace", `probes not attached within ${readyTimeoutMs} ms`),
              ),
            readyTimeoutMs,
          );
        }),
      ]);
    } catch (e) {
      await this.stop();
      throw e;
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Read bpftrace's stdout: lines (each a run of records) into #lines. A plain reader and one TextDecoder, not a
   * stream pipeline: this is the engine's hottest input.
   */
  async #readOutput(stream: ReadableStream<Uint8Array>, attached: () => void): Promise<void> {
    const decoder = new TextDecoder();
    let rest = "";
    for await (const chunk of stream) {
      const fresh = decoder.decode(chunk, { stream: true });
      const text = rest + fresh;
      let start = 0;
      for (let nl = text.indexOf("\n"); nl !== -1; nl = text.indexOf("\n", start)) {
        const line = text.slice(start, nl);
        start = nl + 1;
        if (!this.#attached) {
          const left = this.#readyLine(line, attached);
          if (left !== "") this.#lines.push(left);
        } else if (line !== "") this.#lines.push(line);
      }
      rest = text.slice(start);
      if (rest.length > MAX_PENDING) {
        log.warn("bpftrace: {n} bytes without a newline; dropped", { n: rest.length });
        rest = "";
      }
      if (this.#lines.length > 0) this.#wake?.();
      if (NOT_NEWLINE.test(fresh)) {
        this.#probed = false;
        this.#nudgeLater(0);
      } else if (!this.#probed && this.#nudges >= 2 && this.#attached) {
        // Newlines alone: the program's timer printed them after records that bpftrace may not have printed
        // yet (it reads its per-CPU buffers in turn; after a stop or a backlog, the newlines can come first and
        // the records then wait in its stdout). One round of nudges, not one per nudge's own newline.
        this.#probed = true;
        this.#nudgeLater(0);
      }
    }
    if (rest !== "") this.#lines.push(rest);
    this.#wake?.();
  }

  /**
   * A line before the probes are known to be attached: "Attaching N probes..." (printed before bpftrace attaches
   * them) starts asking the program for its ready marks, every 20 ms; once the first and the last probe have
   * answered, every probe is attached. Returns what is left of the line (records before a mark).
   */
  #readyLine(line: string, attached: () => void): string {
    if (/^Attaching \d+ probe/.test(line)) {
      const ask = () => {
        try {
          Deno.kill(READY_PID, "SIGCONT");
        } catch { /* ESRCH, as meant: the probes see the call */ }
      };
      ask();
      this.#readyTimer ??= setInterval(ask, 20);
      return "";
    }
    const mark = READY_MARKS.find((m) => line.endsWith(m));
    if (mark === undefined) return line;
    this.#marks.add(mark);
    if (this.#marks.size === READY_MARKS.length) {
      this.#attached = true;
      clearInterval(this.#readyTimer);
      attached();
    }
    return line.slice(0, -mark.length);
  }

  /**
   * Records came: a nudge (a newline from the program) once the output has been quiet for a while, in case the
   * last records wait in bpftrace's stdout behind a newline that was read before them; a second one later.
   */
  #nudgeLater(sent: number): void {
    clearTimeout(this.#nudgeTimer);
    this.#nudges = sent;
    if (sent >= 2 || this.#ended) return;
    this.#nudgeTimer = setTimeout(() => {
      try {
        Deno.kill(NUDGE_PID, "SIGCONT");
      } catch { /* ESRCH, as meant: the probe has seen it */ }
      this.#nudgeLater(this.#nudges + 1);
    }, NUDGE_AFTER_MS * (sent + 1));
  }

  /**
   * Deliver events in order until bpftrace ends or stop() is called; `onBehind` when a read brings a record over
   * BEHIND_MS old (see event_source.ts).
   */
  async run(onEvent: (e: SocketEvent) => void, onBehind?: () => void): Promise<string> {
    for (;;) {
      while (this.#lines.length > 0) {
        const lines = this.#lines;
        this.#lines = [];
        const now = Date.now();
        let oldest = Infinity;
        for (const line of lines) {
          const parsed = parseBpftraceLine(line, now);
          for (const e of parsed.events) {
            onEvent(e);
            if (e.kts !== undefined && e.kts < oldest) oldest = e.kts;
          }
          for (const text of parsed.other) this.#otherText(text);
        }
        if (onBehind && oldest !== Infinity && this.#ageMs(oldest) > BEHIND_MS) onBehind();
      }
      if (this.#ended) return this.#ended;
      await new Promise<void>((resolve) => (this.#wake = resolve));
      this.#wake = undefined;
    }
  }

  /** Whether the kernel clock can be read (FFI); when not, no read is taken for a backlog. */
  #clock = true;

  /** How old a record of kernel time `kts` is now (ms); 0 when the kernel clock cannot be read. */
  #ageMs(kts: number): number {
    if (!this.#clock) return 0;
    try {
      return (monotonicNs() - kts) / 1e6;
    } catch (e) {
      this.#clock = false;
      log.warn("cannot read the kernel clock ({error}); a backlog of bpftrace's output goes unnoticed", {
        error: (e as Error).message,
      });
      return 0;
    }
  }

  /**
   * Output that is not a record. bpftrace 0.17 says "Lost N events" (its perf buffers overflowed) on stdout:
   * counted (the engine reports it, and a reconciliation corrects what was lost) and logged.
   */
  #otherText(text: string): void {
    const lost = /Lost (\d+) events/.exec(text);
    if (lost) {
      this.lost += Number(lost[1]);
      log.warn("bpftrace: {text}", { text });
    } else log.debug("bpftrace: {text}", { text });
  }

  /** Stop bpftrace (SIGINT lets it detach cleanly) and wait. */
  async stop(): Promise<void> {
    clearTimeout(this.#nudgeTimer);
    clearInterval(this.#readyTimer);
    this.#nudges = 2;
    const child = this.#child;
    if (!child) return;
    try {
      child.kill("SIGINT");
    } catch { /* gone */ }
    const timer = setTimeout(() => {
      try {
        child.kill("SIGKILL");
      } catch { /* gone */ }
    }, 5000);
    await child.status;
    clearTimeout(timer);
  }
}
