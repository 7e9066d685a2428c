/**
 * Child processes for benchmarks: start a server, wait until it is ready, read its memory, stop it and wait
 * for it. Every process started here is stopped by {@link Proc.stop}, which callers run in `finally`.
 * @module
 */

/** How to start a process. */
export interface ProcSpec {
  /** Executable (absolute path or a name on PATH). */
  cmd: string;
  args: string[];
  cwd?: string;
  /** Extra environment variables (added to the inherited environment). */
  env?: Record<string, string>;
}

/** Resident memory of a process, from /proc/<pid>/status. */
export interface Memory {
  /** VmRSS: resident now, in MiB. */
  rssMb: number;
  /** VmHWM: the highest resident size so far, in MiB. */
  hwmMb: number;
}

const decoder = new TextDecoder();

/** A started child process whose stdout and stderr are drained in the background. */
export class Proc {
  readonly #child: Deno.ChildProcess;
  #stdout = "";
  #stderr = "";
  #exited = false;
  #waiters: (() => void)[] = [];
  readonly #drained: Promise<void>;
  /** Resolves with the exit status once the process has ended. */
  readonly status: Promise<Deno.CommandStatus>;

  private constructor(readonly spec: ProcSpec, child: Deno.ChildProcess) {
    this.#child = child;
    this.#drained = Promise.all([
      this.#drain(child.stdout, (s) => this.#stdout += s),
      this.#drain(child.stderr, (s) => this.#stderr = (this.#stderr + s).slice(-16_384)),
    ]).then(() => {});
    this.status = child.status.then((s) => {
      this.#exited = true;
      this.#notify();
      return s;
    });
  }

  /** Start `spec` with stdin closed and stdout/stderr piped. */
  static start(spec: ProcSpec): Proc {
    const child = new Deno.Command(spec.cmd, {
      args: spec.args,
      cwd: spec.cwd,
      env: spec.env,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    return new Proc(spec, child);
  }

  /** The process id. */
  get pid(): number {
    return this.#child.pid;
  }

  /** Everything written to stdout so far. */
  get stdout(): string {
    return this.#stdout;
  }

  /** The last 16 KiB written to stderr. */
  get stderr(): string {
    return this.#stderr;
  }

  async #drain(stream: ReadableStream<Uint8Array>, sink: (s: string) => void): Promise<void> {
    try {
      for await (const chunk of stream) {
        sink(decoder.decode(chunk, { stream: true }));
        this.#notify();
      }
    } catch { /* the process was killed mid-read */ }
  }

  #notify(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w();
  }

  /** Wait until a stdout line matches `re` and return the match; throws on exit or after `timeoutMs`. */
  async waitForLine(re: RegExp, timeoutMs = 30_000): Promise<RegExpMatchArray> {
    const deadline = Date.now() + timeoutMs;
    while (true) {
      for (const line of this.#stdout.split("\n")) {
        const m = line.match(re);
        if (m) return m;
      }
      if (this.#exited) throw new Error(`${this.describe()} exited before printing a line matching ${re}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`${this.describe()} printed no line matching ${re} in ${timeoutMs} ms`);
      await this.#changed(left);
    }
  }

  /**
   * Wait until what was written to stderr (its last 16 KiB) matches `re`, checked as each chunk arrives (so the
   * moment it resolves is the moment the line came); throws on exit or after `timeoutMs`.
   */
  async waitForStderr(re: RegExp, timeoutMs = 30_000): Promise<RegExpMatchArray> {
    const deadline = Date.now() + timeoutMs;
    while (true) {
      const m = this.#stderr.match(re);
      if (m) return m;
      if (this.#exited) throw new Error(`${this.describe()} exited before writing ${re} to stderr`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`${this.describe()} wrote no ${re} to stderr in ${timeoutMs} ms`);
      await this.#changed(left);
    }
  }

  /** Poll `url` with GET until it answers 2xx; throws on exit or after `timeoutMs`. */
  async waitForHttp(url: string, timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (true) {
      if (this.#exited) throw new Error(`${this.describe()} exited before ${url} answered`);
      try {
        const res = await fetch(url, { signal: AbortSignal.timeout(1_000) });
        await res.body?.cancel();
        if (res.ok) return;
      } catch { /* not listening yet */ }
      if (Date.now() > deadline) {
        throw new Error(`${this.describe()}: ${url} did not answer in ${timeoutMs} ms`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  #changed(timeoutMs: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, timeoutMs);
      this.#waiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  /** Current and peak resident memory of this process. */
  memory(): Promise<Memory> {
    return readMemory(this.pid);
  }

  /** SIGTERM, then SIGKILL after `graceMs`; resolves once the process has exited and its pipes are drained. */
  async stop(graceMs = 5_000): Promise<Deno.CommandStatus> {
    if (!this.#exited) {
      try {
        this.#child.kill("SIGTERM");
      } catch { /* already gone */ }
      const timer = setTimeout(() => {
        try {
          this.#child.kill("SIGKILL");
        } catch { /* already gone */ }
      }, graceMs);
      try {
        await this.status;
      } finally {
        clearTimeout(timer);
      }
    }
    await this.#drained;
    return await this.status;
  }

  /** The command line, for error messages, with the tail of stderr. */
  describe(): string {
    const tail = this.#stderr.trim().split("\n").slice(-5).join("\n  ");
    return `${[this.spec.cmd, ...this.spec.args].join(" ")} (pid ${this.pid})${tail ? `\n  ${tail}\n` : ""}`;
  }
}

/** VmRSS and VmHWM of `pid`, in MiB, from /proc/<pid>/status. */
export async function readMemory(pid: number): Promise<Memory> {
  return parseStatus(await Deno.readTextFile(`/proc/${pid}/status`));
}

/** VmRSS and VmHWM from the text of a /proc/<pid>/status file. */
export function parseStatus(text: string): Memory {
  const kb = (field: string) => {
    const m = text.match(new RegExp(`^${field}:\\s+(\\d+) kB`, "m"));
    if (!m) throw new Error(`no ${field} in /proc status`);
    return Number(m[1]);
  };
  return { rssMb: kb("VmRSS") / 1024, hwmMb: kb("VmHWM") / 1024 };
}
