/**
 * The Tracee engine's adapter: Tracee JSON lines in, portwatch {@link SocketEvent}s out, in order.
 *
 * Settings (all optional):
 * - `TRACE_EBPF_EVENTS`: the Tracee events to ask for, comma-separated. Default {@link DEFAULT_TRACEE_EVENTS}
 *   (the seed's minimal set was "bind,close").
 * - `TRACEE_ARGS`: extra arguments for tracee, split like a shell does (quotes and backslashes respected).
 * - `TRACEE_OUTPUT_FLAG`: the words that select JSON output. Default `--output json` (Tracee v0.16+);
 *   `-o format:json` for tracee-ebpf v0.8–v0.15.
 * - `TRACEE_EVENTS_FLAG`: the words that select events. Default `--events` (v0.18+); `--filter event=`
 *   (v0.12–v0.17) or `--trace event=` (v0.8–v0.11): a last word ending in "=" gets the list glued on.
 * @module
 */
export { readLines } from "../../events/lines.ts";
import { readLines } from "../../events/lines.ts";
import { getLogger } from "@logtape/logtape";
import type { SocketEvent } from "../socket_event.ts";
import { ConfigError, type EnvSource, firstSet } from "../../events/env.ts";
import { EngineUnavailableError } from "../event_source.ts";
import { HANDLED_TRACEE_EVENTS, parseTraceeLine } from "./parse.ts";

const log = getLogger(["portwatch", "tracee"]);

/**
 * portwatch's default Tracee events: socket() for the protocol of each fd, the LSM bind and listen hooks for
 * addresses (security_socket_listen reports the bound address, so a listen needs no earlier bind), close and
 * fork/exit for the fd table.
 */
export const DEFAULT_TRACEE_EVENTS: readonly string[] = [
  "socket",
  "security_socket_bind",
  "security_socket_listen",
  "close",
  "sched_process_fork",
  "sched_process_exit",
];

/** Default words selecting JSON output (Tracee v0.16 and later). */
export const DEFAULT_TRACEE_OUTPUT_FLAG: readonly string[] = ["--output", "json"];

/** Default words selecting events (Tracee v0.18 and later). */
export const DEFAULT_TRACEE_EVENTS_FLAG: readonly string[] = ["--events"];

/** Counts of what the adapter saw. */
export interface TraceeStats {
  /** Lines that gave socket events. */
  used: number;
  /** Lines not used (not JSON, other events, non-IP sockets, threads, malformed); each logged at debug. */
  skipped: number;
  /** Socket events yielded. */
  events: number;
}

/** What the adapter remembers about one fd of one process. */
interface FdState {
  proto?: "tcp" | "udp";
  family?: 4 | 6;
  addr?: string;
  port?: number;
}

/**
 * Turns Tracee lines into socket events, keeping a per-(pid, fd) table so that a bind learns its protocol
 * from the socket() that made the fd, a `listen` syscall learns its address from the bind, forks copy the
 * table and close/exit forget it. Blank lines are ignored (not counted).
 */
export class TraceeAdapter {
  /** Used/skipped line and event counts. */
  readonly stats: TraceeStats = { used: 0, skipped: 0, events: 0 };
  #fds = new Map<number, Map<number, FdState>>();
  #tracked = 0;

  /** @param maxTracked most fds remembered; past it the oldest process's table is dropped. */
  constructor(readonly maxTracked = 200_000) {}

  /** Consume one line; the socket events it gives, in order (often none). */
  push(line: string): SocketEvent[] {
    if (line.trim() === "") return [];
    const result = parseTraceeLine(line);
    if ("skip" in result) {
      this.stats.skipped++;
      log.debug("Skipped Tracee line: {reason}", { reason: result.skip, line: line.slice(0, 300) });
      return [];
    }
    this.stats.used++;
    for (const e of result.events) this.#track(e);
    this.stats.events += result.events.length;
    return result.events;
  }

  /** Socket events from a stream of lines, in order. */
  async *events(lines: AsyncIterable<string> | Iterable<string>): AsyncGenerator<SocketEvent> {
    for await (const line of lines) yield* this.push(line);
  }

  /** How many fds are remembered (for tests and diagnostics). */
  get trackedFds(): number {
    return this.#tracked;
  }

  #table(pid: number, create: true): Map<number, FdState>;
  #table(pid: number, create: false): Map<number, FdState> | undefined;
  #table(pid: number, create: boolean): Map<number, FdState> | undefined {
    let t = this.#fds.get(pid);
    if (!t && create) {
      if (this.#tracked >= this.maxTracked) this.#dropOldest();
      t = new Map();
      this.#fds.set(pid, t);
    }
    return t;
  }

  #set(pid: number, fd: number, state: FdState): void {
    const t = this.#table(pid, true);
    if (!t.has(fd)) this.#tracked++;
    t.set(fd, state);
  }

  #forgetPid(pid: number): void {
    const t = this.#fds.get(pid);
    if (t) this.#tracked -= t.size;
    this.#fds.delete(pid);
  }

  #dropOldest(): void {
    const oldest = this.#fds.keys().next();
    if (!oldest.done) this.#forgetPid(oldest.value);
  }

  /** Update the fd table from e, and fill in what the table knows (mutates e). */
  #track(e: SocketEvent): void {
    const fd = e.fd;
    switch (e.kind) {
      case "socket":
        if (fd !== undefined && !e.failed) this.#set(e.pid, fd, { proto: e.proto, family: e.family });
        return;
      case "bind": {
        if (fd === undefined) return;
        const known = this.#table(e.pid, false)?.get(fd);
        if (e.proto === undefined && known?.proto !== undefined) {
          e.proto = known.proto;
          reorder(e);
        }
        if (!e.failed) {
          this.#set(e.pid, fd, { proto: e.proto, family: e.family, addr: e.addr, port: e.port });
        }
        return;
      }
      case "listen": {
        if (fd === undefined) return;
        const known = this.#table(e.pid, false)?.get(fd);
        if (e.port === undefined && known?.port !== undefined) {
          e.family = known.family;
          e.addr = known.addr;
          e.port = known.port;
          reorder(e);
        }
        if (!e.failed) {
          this.#set(e.pid, fd, { proto: "tcp", family: e.family, addr: e.addr, port: e.port });
        }
        return;
      }
      case "close": {
        // Linux releases the fd even when close() reports EINTR/EIO, so forget it whatever the result.
        const t = fd === undefined ? undefined : this.#table(e.pid, false);
        if (t && fd !== undefined && t.delete(fd)) this.#tracked--;
        if (t?.size === 0) this.#fds.delete(e.pid);
        return;
      }
      case "exit":
        this.#forgetPid(e.pid);
        return;
      case "fork": {
        const t = this.#table(e.pid, false);
        if (!t || e.childPid === undefined) return;
        this.#forgetPid(e.childPid);
        for (const [f, s] of t) this.#set(e.childPid, f, { ...s });
        return;
      }
    }
  }
}

const KEY_ORDER: (keyof SocketEvent)[] = [
  "ts",
  "kind",
  "pid",
  "childPid",
  "comm",
  "fd",
  "sk",
  "proto",
  "family",
  "addr",
  "port",
  "netns",
  "cgroupId",
  "containerId",
  "containerName",
  "failed",
];

/** Put e's keys back in the usual order after filling fields in (for readable JSON). */
function reorder(e: SocketEvent): void {
  const copy = { ...e } as Record<string, unknown>;
  for (const k of Object.keys(copy)) delete (e as unknown as Record<string, unknown>)[k];
  for (const k of KEY_ORDER) {
    if (copy[k] !== undefined) (e as unknown as Record<string, unknown>)[k] = copy[k];
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Settings

/** Split a string into words the way a POSIX shell does: quotes ('…', "…") and backslashes respected. */
export function splitShellWords(name: string, value: string): string[] {
  const words: string[] = [];
  let word = "";
  let inWord = false;
  let i = 0;
  const bad = (what: string) => new ConfigError(name, value, `shell-like words (${what})`);
  while (i < value.length) {
    const c = value[i];
    if (c === "'") {
      const end = value.indexOf("'", i + 1);
      if (end === -1) throw bad("unterminated single quote");
      word += value.slice(i + 1, end);
      inWord = true;
      i = end + 1;
    } else if (c === '"') {
      i++;
      while (i < value.length && value[i] !== '"') {
        if (value[i] === "\\" && i + 1 < value.length && '"\\$`\n'.includes(value[i + 1])) {
          if (value[i + 1] !== "\n") word += value[i + 1];
          i += 2;
        } else word += value[i++];
      }
      if (i >= value.length) throw bad("unterminated double quote");
      inWord = true;
      i++;
    } else if (c === "\\") {
      if (i + 1 >= value.length) throw bad("trailing backslash");
      if (value[i + 1] !== "\n") {
        word += value[i + 1];
        inWord = true;
      }
      i += 2;
    } else if (c === " " || c === "\t" || c === "\n" || c === "\r") {
      if (inWord) words.push(word);
      word = "";
      inWord = false;
      i++;
    } else {
      word += c;
      inWord = true;
      i++;
    }
  }
  if (inWord) words.push(word);
  return words;
}

/** A comma-separated list of Tracee event names (or Tracee event filters such as `close.data.fd=3`). */
export function parseTraceeEvents(name: string, value: string): string[] {
  const list = value.split(",").map((s) => s.trim()).filter((s) => s !== "");
  if (list.length === 0 || !list.every((s) => /^[A-Za-z0-9_][A-Za-z0-9_.=:/*-]*$/.test(s))) {
    throw new ConfigError(
      name,
      value,
      "a comma-separated list of Tracee event names, e.g. security_socket_bind,security_socket_listen,close",
    );
  }
  return list;
}

/** How to run tracee, as far as settings decide it. */
export interface TraceeSettings {
  /** Events to ask for. */
  events: string[];
  /** Extra arguments, placed before portwatch's own. */
  args: string[];
  /** Words selecting JSON output. */
  outputFlag: string[];
  /** Words selecting events; a last word ending in "=" gets the list glued on. */
  eventsFlag: string[];
}

/** Read TRACE_EBPF_EVENTS, TRACEE_ARGS, TRACEE_OUTPUT_FLAG and TRACEE_EVENTS_FLAG (ConfigError when bad). */
export function traceeSettingsFromEnv(env: EnvSource): TraceeSettings {
  const ev = firstSet(env, "TRACE_EBPF_EVENTS");
  const args = firstSet(env, "TRACEE_ARGS");
  const out = firstSet(env, "TRACEE_OUTPUT_FLAG");
  const evFlag = firstSet(env, "TRACEE_EVENTS_FLAG");
  const outputFlag = out ? splitShellWords(out.name, out.value) : [...DEFAULT_TRACEE_OUTPUT_FLAG];
  if (out && !outputFlag.some((w) => /json/.test(w))) {
    throw new ConfigError(out.name, out.value, "flags selecting Tracee's JSON output, e.g. --output json");
  }
  const eventsFlag = evFlag ? splitShellWords(evFlag.name, evFlag.value) : [...DEFAULT_TRACEE_EVENTS_FLAG];
  if (eventsFlag.length === 0) {
    throw new ConfigError("TRACEE_EVENTS_FLAG", evFlag?.value ?? "", "e.g. --events or '--trace event='");
  }
  return {
    events: ev ? parseTraceeEvents(ev.name, ev.value) : [...DEFAULT_TRACEE_EVENTS],
    args: args ? splitShellWords(args.name, args.value) : [],
    outputFlag,
    eventsFlag,
  };
}

/** The tracee argument list for settings: extra args, output flag, events flag and list. */
export function traceeArgv(settings: TraceeSettings): string[] {
  const list = settings.events.join(",");
  const flag = [...settings.eventsFlag];
  const last = flag.at(-1);
  const eventWords = last?.endsWith("=") ? [...flag.slice(0, -1), last + list] : [...flag, list];
  return [...settings.args, ...settings.outputFlag, ...eventWords];
}

/** Events in a list that {@link parseTraceeLine} does not turn into socket events (they will be skipped). */
export function unhandledEvents(events: readonly string[]): string[] {
  return events.filter((e) => !HANDLED_TRACEE_EVENTS.includes(e.split(".")[0]));
}

// ---------------------------------------------------------------------------------------------------------------
// Sources

/** tracee is not installed where we looked: the caller can fall back to another engine. */
export class TraceeUnavailableError extends EngineUnavailableError {
  /**
   * @param command the command asked for, e.g. "tracee"
   * @param tried every path tried
   */
  constructor(readonly command: string, readonly tried: string[], options?: ErrorOptions) {
    super(
      "tracee",
      `no executable ${JSON.stringify(command)} (tried ${
        tried.length ? tried.join(", ") : "nothing: PATH is empty"
      })`,
    );
    if (options?.cause !== undefined) this.cause = options.cause;
    this.name = "TraceeUnavailableError";
  }
}

/** tracee exited with an error on its own (not stopped by us). */
export class TraceeExitError extends Error {
  /** @param exit how it ended, with the end of its stderr */
  constructor(readonly exit: TraceeExit) {
    const how = exit.signal ? `was killed by ${exit.signal}` : `exited with code ${exit.code}`;
    super(`tracee ${how}${exit.stderr.trim() ? `: ${exit.stderr.trim()}` : " (no stderr)"}`);
    this.name = "TraceeExitError";
  }
}

/** How a source ended. */
export interface TraceeExit {
  /** Exit code (0 for a file read to its end). */
  code: number;
  /** The signal that ended the process, if any. */
  signal: Deno.Signal | null;
  /** Exited by itself with code 0, or read to the end. */
  success: boolean;
  /** Ended because it was stopped (AbortSignal, or the consumer stopped iterating). */
  stopped: boolean;
  /** The end of its stderr (at most 64 KiB). */
  stderr: string;
}

/** A running source of socket events: iterate it once; `exit` settles when it has ended. */
export interface TraceeStream extends AsyncIterable<SocketEvent> {
  /** Line and event counts so far. */
  readonly stats: TraceeStats;
  /** How it ended; never rejects. Iteration throws {@link TraceeExitError} on an unrequested failure. */
  readonly exit: Promise<TraceeExit>;
}

/** Options of {@link runTracee}. */
export interface RunTraceeOptions extends Partial<TraceeSettings> {
  /** The executable: a name looked up in PATH, or a path. Default "tracee". */
  command?: string;
  /** Environment for tracee (merged over ours); its PATH is also where `command` is looked up. */
  env?: Record<string, string>;
  /** Stop tracee: SIGTERM, then SIGKILL after `killTimeoutMs`. */
  signal?: AbortSignal;
  /** Grace period between SIGTERM and SIGKILL. Default 5000. */
  killTimeoutMs?: number;
  /** The adapter to feed (a fresh one by default). */
  adapter?: TraceeAdapter;
}

/** Options of {@link readTraceeFile}. */
export interface ReadTraceeFileOptions {
  /** Stop reading. */
  signal?: AbortSignal;
  /** The adapter to feed (a fresh one by default). */
  adapter?: TraceeAdapter;
}

const STDERR_TAIL = 64 * 1024;

/** Where `command` resolves in `path` (a PATH string), or the list of places tried. */
function resolveCommand(command: string, path: string): { found: string } | { tried: string[] } {
  const candidates = command.includes("/")
    ? [command]
    : path.split(":").filter((d) => d !== "").map((d) => `${d.replace(/\/+$/, "")}/${command}`);
  for (const c of candidates) {
    try {
      const st = Deno.statSync(c);
      if (st.isFile && st.mode !== null && (st.mode & 0o111) !== 0) return { found: c };
    } catch {
      // not there or not readable: try the next
    }
  }
  return { tried: candidates };
}

/**
 * Start tracee with the given (or default) settings and turn its stdout into socket events. Throws
 * {@link TraceeUnavailableError} at once when the executable cannot be found or started.
 */
export function runTracee(options: RunTraceeOptions = {}): TraceeStream {
  const command = options.command ?? "tracee";
  const settings: TraceeSettings = {
    events: options.events ?? [...DEFAULT_TRACEE_EVENTS],
    args: options.args ?? [],
    outputFlag: options.outputFlag ?? [...DEFAULT_TRACEE_OUTPUT_FLAG],
    eventsFlag: options.eventsFlag ?? [...DEFAULT_TRACEE_EVENTS_FLAG],
  };
  const argv = traceeArgv(settings);
  const path = options.env?.PATH ?? Deno.env.get("PATH") ?? "";
  const where = resolveCommand(command, path);
  if ("tried" in where) throw new TraceeUnavailableError(command, where.tried);
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(where.found, {
      args: argv,
      env: options.env,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
  } catch (err) {
    if (err instanceof Deno.errors.NotFound || err instanceof Deno.errors.PermissionDenied) {
      throw new TraceeUnavailableError(command, [where.found], { cause: err });
    }
    throw err;
  }
  const unhandled = unhandledEvents(settings.events);
  if (unhandled.length) log.info("Tracee events that give no socket events: {unhandled}", { unhandled });
  log.info("Started tracee: {command} {argv}", {
    command: where.found,
    argv: argv.join(" "),
    pid: child.pid,
  });

  const adapter = options.adapter ?? new TraceeAdapter();
  let stopped = false;
  let exited = false;
  let killTimer: ReturnType<typeof setTimeout> | undefined;
  const stop = () => {
    if (stopped || exited) return;
    stopped = true;
    try {
      child.kill("SIGTERM");
    } catch {
      return; // already gone
    }
    killTimer = setTimeout(() => {
      try {
        if (!exited) child.kill("SIGKILL");
      } catch {
        // already gone
      }
    }, options.killTimeoutMs ?? 5000);
  };
  const signal = options.signal;
  if (signal?.aborted) stop();
  signal?.addEventListener("abort", stop, { once: true });

  let stderr = "";
  const stderrDone = (async () => {
    try {
      for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) {
        stderr = (stderr + chunk).slice(-STDERR_TAIL);
      }
    } catch {
      // the stream broke: keep what we have
    }
  })();
  const exit: Promise<TraceeExit> = (async () => {
    const status = await child.status;
    exited = true;
    clearTimeout(killTimer);
    signal?.removeEventListener("abort", stop);
    await stderrDone;
    return {
      code: status.code,
      signal: status.signal,
      success: status.success,
      stopped,
      stderr,
    };
  })();

  let iterated = false;
  let reading = false;
  // Stopped before anyone read stdout: release it (after exiting by itself, its output waits to be read).
  exit.then(() => {
    if (stopped && !reading && !iterated) child.stdout.cancel().catch(() => {});
  });

  async function* iterate(): AsyncGenerator<SocketEvent> {
    reading = true;
    let finished = false;
    try {
      for await (const line of readLines(child.stdout)) yield* adapter.push(line);
      finished = true;
    } finally {
      reading = false;
      if (!finished) stop(); // the consumer stopped early (break/throw): end tracee too
    }
    const how = await exit;
    if (!how.success && !how.stopped) throw new TraceeExitError(how);
  }

  return {
    stats: adapter.stats,
    exit,
    [Symbol.asyncIterator]() {
      if (iterated) throw new Error("a Tracee stream can be iterated only once");
      iterated = true;
      return iterate();
    },
  };
}

/** Socket events from a file of Tracee JSON lines, or from stdin when `path` is "-". */
export function readTraceeFile(path: string, options: ReadTraceeFileOptions = {}): TraceeStream {
  const adapter = options.adapter ?? new TraceeAdapter();
  const signal = options.signal;
  let resolveExit!: (e: TraceeExit) => void;
  const exit = new Promise<TraceeExit>((r) => (resolveExit = r));
  let iterated = false;

  async function* iterate(): AsyncGenerator<SocketEvent> {
    let file: Deno.FsFile | undefined;
    let stopped = false;
    let error: unknown;
    const ABORTED = Symbol("aborted");
    let onAbort = () => {};
    const aborted = new Promise<typeof ABORTED>((resolve) => {
      onAbort = () => resolve(ABORTED);
      if (signal?.aborted) onAbort();
      signal?.addEventListener("abort", onAbort, { once: true });
    });
    let pending: Promise<IteratorResult<string>> | undefined;
    try {
      if (path !== "-") file = await Deno.open(path, { read: true });
      const lines = readLines(file ? file.readable : Deno.stdin.readable);
      while (true) {
        // Race each read against the signal: a read from stdin or a FIFO may never finish.
        pending = lines.next();
        const r = await Promise.race([pending, aborted]);
        if (r === ABORTED) {
          stopped = true;
          pending.catch(() => {}); // settles (or fails) when the file is closed below
          break;
        }
        pending = undefined;
        if (r.done) break;
        yield* adapter.push(r.value);
      }
      if (!pending) await lines.return(undefined);
    } catch (err) {
      error = err;
      throw err;
    } finally {
      signal?.removeEventListener("abort", onAbort);
      try {
        file?.close();
      } catch {
        // already closed by its stream
      }
      resolveExit({
        code: error === undefined ? 0 : 1,
        signal: null,
        success: error === undefined && !stopped,
        stopped,
        stderr: error === undefined ? "" : String(error),
      });
    }
  }

  return {
    stats: adapter.stats,
    exit,
    [Symbol.asyncIterator]() {
      if (iterated) throw new Error("a Tracee stream can be iterated only once");
      iterated = true;
      return iterate();
    },
  };
}
