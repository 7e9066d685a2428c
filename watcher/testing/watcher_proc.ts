/**
 * Test helper: the watcher as users run it, a `deno run watcher/main.ts` process (inside a test namespace when
 * given), with its stdout events collected.
 * @module
 */
import type { PortEvent } from "../../events/schema.ts";
import { readLines } from "../../infra/lines.ts";
import { type NetNs, withDeadline } from "../../testing/netns.ts";
import { waitUntil } from "../../infra/wait.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;

/** A running watcher process. */
export class WatcherProc {
  readonly events: PortEvent[] = [];
  readonly stderr: string[] = [];
  #done: Promise<void>;

  private constructor(readonly child: Deno.ChildProcess) {
    const collect = async (stream: ReadableStream<Uint8Array>, onLine: (l: string) => void) => {
      for await (const line of readLines(stream)) onLine(line);
    };
    this.#done = Promise.all([
      collect(child.stdout, (l) => {
        if (l.startsWith("{")) this.events.push(JSON.parse(l));
      }),
      collect(child.stderr, (l) => this.stderr.push(l)),
    ]).then(() => {});
  }

  /**
   * Start the watcher with exactly `env` (plus PATH and HOME); inside `ns` when given. `program` is the entry
   * point (default watcher/main.ts; the eBPF tests pass ebpf/main.ts).
   */
  static start(env: Record<string, string>, ns?: NetNs, args: string[] = [], program = MAIN): WatcherProc {
    const cmd = [Deno.execPath(), "run", "--allow-all", program, ...args];
    const full = ns ? ns.wrap(cmd) : cmd;
    const child = new Deno.Command(full[0], {
      args: full.slice(1),
      env: { PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin", HOME: Deno.env.get("HOME") ?? "/root", ...env },
      clearEnv: true,
      stdout: "piped",
      stderr: "piped",
      stdin: "null",
    }).spawn();
    return new WatcherProc(child);
  }

  /** Events matching `pred` so far. */
  matching(pred: (e: PortEvent) => boolean): PortEvent[] {
    return this.events.filter(pred);
  }

  /** Wait until `n` events match `pred` (deadline `ms`); returns them. */
  waitFor(what: string, pred: (e: PortEvent) => boolean, n = 1, ms = 10_000): Promise<PortEvent[]> {
    return waitUntil(
      () => `${what}; events: ${JSON.stringify(this.events)}\nstderr: ${this.stderr.join("\n")}`,
      () => {
        const got = this.matching(pred);
        return got.length >= n && got;
      },
      ms,
      25,
    );
  }

  /** Wait until the watcher has logged a line matching `re`. */
  async waitLog(re: RegExp, ms = 10_000): Promise<void> {
    await waitUntil(
      () => `a log line ${re}; stderr: ${this.stderr.join("\n")}`,
      () => this.stderr.some((l) => re.test(l)),
      ms,
      25,
    );
  }

  /** Wait (deadline 20 s) for the process to exit by itself, e.g. on a bad setting. */
  async exited(): Promise<Deno.CommandStatus> {
    const status = await withDeadline(this.child.status, 20_000, "the watcher to exit");
    await this.#done;
    return status;
  }

  /** Send `signal` and wait for the process to exit and its output to be read. */
  async stop(signal: Deno.Signal = "SIGTERM"): Promise<Deno.CommandStatus> {
    try {
      this.child.kill(signal);
    } catch { /* already gone */ }
    const status = await withDeadline(this.child.status, 20_000, `the watcher to exit after ${signal}`).catch(
      async (e) => {
        this.child.kill("SIGKILL");
        await this.child.status;
        throw e;
      },
    );
    await this.#done;
    return status;
  }
}
