/**
 * Running tracee (or reading a file of its JSON output) as a stream of socket events, with its exit and its
 * stderr kept for the error that explains a failure.
 * @module
 */
import { readLines } from "../../infra/lines.ts";
import { getLogger } from "@logtape/logtape";
import type { SocketEvent } from "../socket_event.ts";
import { EngineUnavailableError } from "../event_source.ts";
import { TraceeAdapter, type TraceeStats } from "./adapter.ts";
import {
  DEFAULT_TRACEE_EVENTS,
  DEFAULT_TRACEE_EVENTS_FLAG,
  DEFAULT_TRACEE_OUTPUT_FLAG,
  traceeArgv,
  type TraceeSettings,
  unhandledEvents,
} from "./settings.ts";

const log = getLogger(["portwatch", "tracee"]);

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

  return streamOf(adapter.stats, exit, () => {
    iterated = true; // (stop() above releases stdout only when nobody iterates)
    return iterate();
  });
}

/** Socket events from a file of Tracee JSON lines, or from stdin when `path` is "-". */
export function readTraceeFile(path: string, options: ReadTraceeFileOptions = {}): TraceeStream {
  const adapter = options.adapter ?? new TraceeAdapter();
  const signal = options.signal;
  let resolveExit!: (e: TraceeExit) => void;
  const exit = new Promise<TraceeExit>((r) => (resolveExit = r));

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

  return streamOf(adapter.stats, exit, iterate);
}

/** A {@link TraceeStream} over `iterate`, which may be iterated once. */
function streamOf(
  stats: TraceeStats,
  exit: Promise<TraceeExit>,
  iterate: () => AsyncGenerator<SocketEvent>,
): TraceeStream {
  let iterated = false;
  return {
    stats,
    exit,
    [Symbol.asyncIterator]() {
      if (iterated) throw new Error("a Tracee stream can be iterated only once");
      iterated = true;
      return iterate();
    },
  };
}
