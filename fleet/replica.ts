/**
 * One listener replica as its own process (`listener/main.ts`), on a fixed loopback port so it can be killed
 * with SIGKILL and started again at the same address, as a supervisor would behind a load balancer.
 * @module
 */
import { fileURLToPath } from "node:url";
import { cpuSeconds } from "./cpu.ts";

const ROOT = fileURLToPath(new URL("../", import.meta.url));
const MAIN = fileURLToPath(new URL("../listener/main.ts", import.meta.url));

/** A free loopback TCP port (bound, read, released). */
export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** How to run a replica. */
export interface ReplicaOptions {
  /** Its JSON-lines log (the file store; unused with STORE_URL but still passed). */
  logPath: string;
  /** Extra environment (STORE_URL, RECENT_EVENTS, ...). */
  env?: Record<string, string>;
  /** Port; default a free one. */
  port?: number;
  /** Start-up deadline (default 30 s). */
  startMs?: number;
  /** Extra `deno run` flags (e.g. `--inspect=127.0.0.1:9229` to profile a replica). */
  denoFlags?: string[];
}

/** A listener process that can be stopped, killed and started again on the same port. */
export class Replica {
  readonly port: number;
  readonly url: string;
  #child?: Deno.ChildProcess;
  #tail: string[] = [];
  /** CPU seconds of earlier incarnations (a killed replica's time still counts). */
  #pastCpu = 0;

  constructor(readonly options: ReplicaOptions) {
    this.port = options.port ?? freePort();
    this.url = `http://127.0.0.1:${this.port}`;
  }

  /** Whether the process runs. */
  get running(): boolean {
    return this.#child !== undefined;
  }

  /** Its process id (undefined while stopped). */
  get pid(): number | undefined {
    return this.#child?.pid;
  }

  /** The last lines of its stderr, for failure messages. */
  log(): string {
    return this.#tail.join("\n");
  }

  /** Start the process; resolves once it prints its `{"listening": url}` line. */
  async start(): Promise<void> {
    if (this.#child) return;
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-all",
        ...(this.options.denoFlags ?? []),
        MAIN,
        "--host",
        "127.0.0.1",
        "--port",
        String(this.port),
        "--log-path",
        this.options.logPath,
        "--max-bytes",
        "0",
      ],
      cwd: ROOT,
      env: { LOG_LEVEL: "warning", ...this.options.env },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.#child = child;
    (async () => {
      try {
        for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) {
          this.#tail.push(...chunk.split("\n").filter((l) => l !== ""));
          if (this.#tail.length > 100) this.#tail = this.#tail.slice(-50);
        }
      } catch { /* killed */ }
    })();
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    const timer = setTimeout(() => this.#signal(child, "SIGKILL"), this.options.startMs ?? 30_000);
    let buf = "";
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) throw new Error(`listener on port ${this.port} exited before listening:\n${this.log()}`);
        buf += value;
        if (buf.includes('{"listening":')) break;
      }
    } catch (e) {
      this.#signal(child, "SIGKILL");
      await child.status;
      this.#child = undefined;
      throw e;
    } finally {
      clearTimeout(timer);
    }
    (async () => {
      try {
        while (!(await reader.read()).done) { /* keep the pipe drained */ }
      } catch { /* killed */ }
    })();
  }

  #signal(child: Deno.ChildProcess, signal: Deno.Signal): void {
    try {
      child.kill(signal);
    } catch { /* already gone */ }
  }

  async #end(signal: Deno.Signal): Promise<void> {
    const child = this.#child;
    if (!child) return;
    this.#pastCpu += await cpuSeconds(child.pid).catch(() => 0);
    this.#signal(child, signal);
    const timer = setTimeout(() => this.#signal(child, "SIGKILL"), 10_000);
    await child.status;
    clearTimeout(timer);
    this.#child = undefined;
  }

  /** SIGKILL: a crash; resolves once the process is gone. */
  kill9(): Promise<void> {
    return this.#end("SIGKILL");
  }

  /** SIGTERM (graceful), SIGKILL after 10 s. */
  stop(): Promise<void> {
    return this.#end("SIGTERM");
  }

  /** CPU seconds used so far, over every incarnation. */
  async cpu(): Promise<number> {
    const now = this.#child ? await cpuSeconds(this.#child.pid).catch(() => 0) : 0;
    return this.#pastCpu + now;
  }
}
