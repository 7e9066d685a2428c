/**
 * Test harness for the tester programs (no tests of its own; named `*_test.ts` so that it stays with the tests
 * and out of the programs). {@link Tester} runs one program (`deno run -A testers/X.ts ...`), inside a
 * {@link NetNs} when given, collects its JSON stdout lines as they come and its stderr, and waits on lines and on
 * its exit with deadlines; `close()` kills it if it still runs. {@link scan} lists the sockets of a namespace
 * with netlink, as the watcher does.
 * @module
 */
import { NetlinkSource } from "../sources/netlink.ts";
import type { ListeningSocket } from "../sources/socket.ts";
import { type NetNs, withDeadline } from "../testing/netns.ts";
import { waitUntil } from "../infra/wait.ts";

/** Generous deadline for a program to start (deno startup) and print its first line. */
export const START_MS = 20_000;

/** Why tests in a test-made network namespace cannot run here, or undefined when they can. */
export function nsSkipReason(): string | undefined {
  if (Deno.build.os !== "linux") return `network namespaces need Linux, this is ${Deno.build.os}`;
  if (Deno.uid() !== 0) {
    return `not root (uid ${Deno.uid()}): creating network namespaces needs CAP_SYS_ADMIN`;
  }
  try {
    new Deno.Command("ip", { args: ["-V"], stdout: "null", stderr: "null" }).outputSync();
  } catch {
    return "iproute2's `ip` is not installed";
  }
  return undefined;
}

/** The command line running tester `program` ("hold", "burst", ...) with `args`. */
export function testerCmd(program: string, args: string[]): string[] {
  const path = new URL(`./${program}.ts`, import.meta.url).pathname;
  return [Deno.execPath(), "run", "-A", path, ...args];
}

/** A JSON line a tester printed. */
// deno-lint-ignore no-explicit-any
export type Line = Record<string, any>;

/** How a tester ended. */
export interface Finished {
  code: number;
  signal: Deno.Signal | null;
  stderr: string;
  lines: Line[];
}

/** One running tester program. */
export class Tester {
  /** The JSON lines printed so far, in order. */
  readonly lines: Line[] = [];
  #status: Deno.CommandStatus | undefined;
  readonly #stdout: Promise<void>;
  readonly #stderr: Promise<string>;

  private constructor(readonly child: Deno.ChildProcess, readonly cmd: string[]) {
    child.status.then((s) => this.#status = s);
    this.#stderr = new Response(child.stderr).text();
    this.#stdout = (async () => {
      let buf = "";
      for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) {
        buf += chunk;
        let nl: number;
        while ((nl = buf.indexOf("\n")) >= 0) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          if (line.trim() === "") continue;
          try {
            this.lines.push(JSON.parse(line));
          } catch {
            this.lines.push({ raw: line });
          }
        }
      }
      if (buf.trim() !== "") this.lines.push({ raw: buf });
    })();
  }

  /** Start `program` with `args`, inside `ns` when given (`ip netns exec`, which execs deno in place). */
  static start(program: string, args: string[], ns?: NetNs, env?: Record<string, string>): Tester {
    const base = testerCmd(program, args);
    const cmd = ns ? ns.wrap(base) : base;
    return Tester.spawn(cmd, env);
  }

  /** Start any command line (e.g. a tester wrapped in setpriv). */
  static spawn(cmd: string[], env?: Record<string, string>): Tester {
    const child = new Deno.Command(cmd[0], {
      args: cmd.slice(1),
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      env,
    }).spawn();
    return new Tester(child, cmd);
  }

  /** The exit status, once it exited. */
  get exited(): Deno.CommandStatus | undefined {
    return this.#status;
  }

  /** Wait (with a deadline) for a line matching `pred`; fails early, with stderr, if the program exits first. */
  async line(pred: (l: Line) => boolean, what: string, timeoutMs = START_MS): Promise<Line> {
    return await waitUntil(
      what,
      async () => {
        const l = this.lines.find(pred);
        if (l) return l;
        if (this.#status) {
          await this.#stdout;
          const late = this.lines.find(pred);
          if (late) return late;
          throw new Error(
            `${this.cmd.join(" ")} exited (code ${this.#status.code}) before ${what}; ` +
              `stdout: ${JSON.stringify(this.lines)}; stderr: ${await this.#stderr}`,
          );
        }
        return undefined;
      },
      timeoutMs,
      10,
    );
  }

  /** The ready line. */
  ready(timeoutMs = START_MS): Promise<Line> {
    return this.line((l) => l.ready === true, "the ready line", timeoutMs);
  }

  /** Wait (with a deadline) for it to exit by itself; then its code, signal, stderr and lines. */
  async finish(timeoutMs = START_MS): Promise<Finished> {
    const status = await withDeadline(this.child.status, timeoutMs, `${this.cmd.join(" ")} to exit`);
    await this.#stdout;
    return { code: status.code, signal: status.signal, stderr: await this.#stderr, lines: this.lines };
  }

  /** Send a signal (no-op once it exited). */
  kill(signal: Deno.Signal = "SIGTERM"): void {
    if (this.#status) return;
    try {
      this.child.kill(signal);
    } catch { /* exited meanwhile */ }
  }

  /** Kill it (SIGKILL) unless it exited, and wait for it and its pipes; idempotent. */
  async close(): Promise<void> {
    this.kill("SIGKILL");
    await this.child.status;
    await this.#stdout.catch(() => {});
    await this.#stderr.catch(() => "");
  }
}

/** Run `program` to completion (inside `ns` when given), with a deadline. */
export async function runTester(program: string, args: string[], ns?: NetNs): Promise<Finished> {
  const t = Tester.start(program, args, ns);
  try {
    return await t.finish();
  } finally {
    await t.close();
  }
}

/** The listening TCP / bound UDP sockets of `ns` (the test's own namespace when undefined), through netlink. */
export function scan(ns?: NetNs): ListeningSocket[] {
  const source = new NetlinkSource({ netns: ns?.path });
  try {
    return source.scan();
  } finally {
    source.close();
  }
}

/** The sockets of `ns` on `port` (and `proto` when given). */
export function onPort(port: number, proto?: "tcp" | "udp", ns?: NetNs): ListeningSocket[] {
  return scan(ns).filter((s) => s.port === port && (proto === undefined || s.proto === proto));
}
