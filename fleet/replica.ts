/**
 * One listener replica as its own process (`listener/main.ts`), on a fixed loopback port so it can be killed
 * with SIGKILL and started again at the same address, as a supervisor would behind a load balancer.
 * @module
 */
import { fileURLToPath } from "node:url";
import { cpuSeconds } from "./cpu.ts";
import { freePort } from "../testing/port.ts";
import { type ListenerProc, startListener } from "../testing/listener.ts";

const ROOT = fileURLToPath(new URL("../", import.meta.url));

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
  #proc?: ListenerProc;
  /** The stderr tail of the last incarnation that ended. */
  #lastLog = "";
  /** CPU seconds of earlier incarnations (a killed replica's time still counts). */
  #pastCpu = 0;

  constructor(readonly options: ReplicaOptions) {
    this.port = options.port ?? freePort();
    this.url = `http://127.0.0.1:${this.port}`;
  }

  /** Whether the process runs. */
  get running(): boolean {
    return this.#proc !== undefined;
  }

  /** Its process id (undefined while stopped). */
  get pid(): number | undefined {
    return this.#proc?.pid;
  }

  /** The last lines of its stderr, for failure messages. */
  log(): string {
    return this.#proc?.log() ?? this.#lastLog;
  }

  /** Start the process; resolves once it prints its `{"listening": url}` line. */
  async start(): Promise<void> {
    if (this.#proc) return;
    this.#proc = await startListener(this.options.logPath, {
      port: this.port,
      args: ["--host", "127.0.0.1", "--max-bytes", "0"],
      denoFlags: this.options.denoFlags,
      cwd: ROOT,
      env: { LOG_LEVEL: "warning", ...this.options.env },
      startMs: this.options.startMs ?? 30_000,
      stderr: "tail",
    });
  }

  async #end(how: "stop" | "kill9"): Promise<void> {
    const proc = this.#proc;
    if (!proc) return;
    this.#pastCpu += await cpuSeconds(proc.pid).catch(() => 0);
    // A replica that needed SIGKILL after 10 s of SIGTERM is stopped all the same; the run goes on.
    await proc[how]().catch(() => {});
    this.#lastLog = proc.log();
    this.#proc = undefined;
  }

  /** SIGKILL: a crash; resolves once the process is gone. */
  kill9(): Promise<void> {
    return this.#end("kill9");
  }

  /** SIGTERM (graceful), SIGKILL after 10 s. */
  stop(): Promise<void> {
    return this.#end("stop");
  }

  /** CPU seconds used so far, over every incarnation. */
  async cpu(): Promise<number> {
    const now = this.#proc ? await cpuSeconds(this.#proc.pid).catch(() => 0) : 0;
    return this.#pastCpu + now;
  }
}
