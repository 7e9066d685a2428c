/**
 * Test helpers for processes: a deadline on a promise, stopping a child, a command run to completion, and "reporters" (processes
 * that print one JSON line when ready and hold until their stdin closes).
 * @module
 */

/** Settle `p` within `ms` or throw an error naming `what`. */
export async function withDeadline<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Stop `child` with `signal`, then SIGKILL if it still runs after `killAfterMs`; resolves with its status.
 *
 * @example
 * ```ts
 * await stopChild(child, "SIGTERM", 5000);
 * ```
 */
export async function stopChild(
  child: Deno.ChildProcess,
  signal: Deno.Signal = "SIGTERM",
  killAfterMs = 5000,
): Promise<Deno.CommandStatus> {
  const kill = (s: Deno.Signal) => {
    try {
      child.kill(s);
    } catch { /* already gone */ }
  };
  kill(signal);
  const timer = setTimeout(() => kill("SIGKILL"), killAfterMs);
  try {
    return await child.status;
  } finally {
    clearTimeout(timer);
  }
}

/** Output of a finished command. */
export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run a command to completion (with a deadline); throws with its stderr when it fails and `check` is set. */
export async function run(cmd: string[], { check = true, timeoutMs = 10_000 } = {}): Promise<CommandResult> {
  const child = new Deno.Command(cmd[0], { args: cmd.slice(1), stdout: "piped", stderr: "piped" }).spawn();
  let out: Deno.CommandOutput;
  try {
    out = await withDeadline(child.output(), timeoutMs, cmd.join(" "));
  } catch (e) {
    try {
      child.kill("SIGKILL");
    } catch { /* already gone */ }
    await child.status;
    throw e;
  }
  const res = {
    code: out.code,
    stdout: new TextDecoder().decode(out.stdout),
    stderr: new TextDecoder().decode(out.stderr),
  };
  if (check && res.code !== 0) throw new Error(`${cmd.join(" ")} exited ${res.code}: ${res.stderr.trim()}`);
  return res;
}

/** A process that reports one JSON line on stdout when ready, and holds until its stdin closes. */
export interface Reporter<R> {
  child: Deno.ChildProcess;
  /** Its report, parsed. */
  report: R;
  stdin: WritableStreamDefaultWriter<Uint8Array>;
  /** All of its stderr, once it has exited. */
  stderr: Promise<string>;
  /** With `keepReading`: its next stdout line (undefined at its end); cancel with endReporter's `stdout`. */
  nextLine?: () => Promise<string | undefined>;
  /** With `keepReading`: the stdout reader, for endReporter. */
  stdout?: ReadableStreamDefaultReader<string>;
}

/**
 * Start `cmd` and wait (with a deadline) for its one-line JSON report; on failure it is killed and the error
 * names `what` and its stderr.
 * @example
 * ```ts
 * const r = await startReporter<{ pid: number }>(["python3", "-c", "import os,sys; print('{\"pid\": %d}' % os.getpid()); sys.stdin.read()"], "probe", 5_000);
 * await endReporter(r.child, r.stdin, r.stderr, "the probe");
 * ```
 */
export async function startReporter<R>(
  cmd: string[],
  what: string,
  timeoutMs = 20_000,
  keepReading = false,
): Promise<Reporter<R>> {
  const child = new Deno.Command(cmd[0], {
    args: cmd.slice(1),
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stdin = child.stdin.getWriter();
  const stderr = new Response(child.stderr).text();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  let keep = false;
  try {
    const line = withDeadline(
      (async () => {
        while (!text.includes("\n")) {
          const { value, done } = await reader.read();
          if (done) break;
          text += value;
        }
        return text;
      })(),
      timeoutMs,
      `the ${what}'s report`,
    );
    const first = await line;
    const nl = first.indexOf("\n");
    const report = JSON.parse(first.slice(0, nl)) as R;
    if (!keepReading) return { child, report, stdin, stderr };
    let rest = first.slice(nl + 1);
    const nextLine = async () => {
      while (!rest.includes("\n")) {
        const { value, done } = await reader.read();
        if (done) return undefined;
        rest += value;
      }
      const i = rest.indexOf("\n");
      const out = rest.slice(0, i);
      rest = rest.slice(i + 1);
      return out;
    };
    keep = true;
    return { child, report, stdin, stderr, nextLine, stdout: reader };
  } catch (e) {
    try {
      child.kill("SIGKILL");
    } catch { /* gone */ }
    await child.status;
    await stdin.close().catch(() => {});
    throw new Error(`${what} failed: ${e instanceof Error ? e.message : e}; stderr: ${await stderr}`);
  } finally {
    if (!keep) await reader.cancel().catch(() => {});
  }
}

/** Close a reporter's stdin and wait for it to exit (5 s, then SIGKILL); `what` names it in errors. */
export async function endReporter(
  child: Deno.ChildProcess,
  stdin: WritableStreamDefaultWriter<Uint8Array>,
  stderr: Promise<string>,
  what: string,
  stdout?: ReadableStreamDefaultReader<string>,
): Promise<void> {
  await stdin.close().catch(() => {});
  await stdout?.cancel().catch(() => {});
  try {
    await withDeadline(child.status, 5_000, `${what} to exit after stdin closed`);
  } catch {
    try {
      child.kill("SIGKILL");
    } catch { /* gone */ }
    await child.status;
  }
  await stderr;
}
