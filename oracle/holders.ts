/**
 * Oracle workload: holder processes (oracle/holder.py, python3) inside the test's network namespace, driven over
 * a Unix control socket so that forked children (python's os.fork) can be commanded too. Every process started
 * here is SIGKILLed and waited for by {@link HolderPool.close}.
 * @module
 */
import { readLines } from "../infra/lines.ts";
import { waitUntil } from "../infra/wait.ts";
import { withDeadline } from "../testing/netns.ts";

const HOLDER_PY = new URL("./holder.py", import.meta.url).pathname;

/** What a holder answers to one command. */
export interface HolderReply {
  id: number;
  ok: boolean;
  /** With `fork`: the child's pid. */
  child?: number;
  /** On failure: the errno name (EADDRINUSE) and text. */
  errno?: string;
  error?: string;
}

/** One command (see oracle/holder.py). */
export type HolderCommand =
  | {
    op: "open";
    sid: number;
    proto: "tcp" | "udp";
    host: string;
    port: number;
    v6only: boolean | null;
    reuseport: boolean;
  }
  | { op: "connect"; sid: number; proto: "tcp" | "udp"; host: string; port: number }
  | { op: "close"; sid: number }
  | { op: "fork" }
  | { op: "ping" };

/** A connected holder process. */
class Conn {
  #next = 1;
  #waiting = new Map<number, (r: HolderReply) => void>();
  #ended = false;
  readonly done: Promise<void>;

  constructor(readonly pid: number, readonly conn: Deno.UnixConn, lines: AsyncIterable<string>) {
    this.done = (async () => {
      try {
        for await (const line of lines) {
          const r = JSON.parse(line) as HolderReply;
          this.#waiting.get(r.id)?.(r);
          this.#waiting.delete(r.id);
        }
      } catch { /* reset by a killed holder */ }
      this.#ended = true;
      for (const [id, resolve] of this.#waiting) {
        resolve({ id, ok: false, errno: "EOF", error: "the holder went away" });
      }
      this.#waiting.clear();
    })();
  }

  async send(cmd: HolderCommand | { op: "exit" }, timeoutMs: number): Promise<HolderReply> {
    if (this.#ended) return { id: 0, ok: false, errno: "EOF", error: "the holder went away" };
    const id = this.#next++;
    const answer = new Promise<HolderReply>((resolve) => this.#waiting.set(id, resolve));
    await this.conn.write(new TextEncoder().encode(JSON.stringify({ id, ...cmd }) + "\n"));
    if (cmd.op === "exit") return { id, ok: true };
    return await withDeadline(answer, timeoutMs, `holder ${this.pid}'s answer to ${JSON.stringify(cmd)}`);
  }

  close(): void {
    try {
      this.conn.close();
    } catch { /* closed */ }
  }
}

/** Whether process `pid` is gone or a zombie (its files are released by then). */
export function processGone(pid: number, proc = "/proc"): boolean {
  try {
    const stat = Deno.readTextFileSync(`${proc}/${pid}/stat`);
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) === "Z";
  } catch {
    return true;
  }
}

/** Holder processes of one test, each known by its pid. */
export class HolderPool {
  #listener: Deno.UnixListener;
  #conns = new Map<number, Conn>();
  #hello = new Map<number, (c: Conn) => void>();
  #children: Deno.ChildProcess[] = [];
  #stderr: Promise<string>[] = [];
  #accepting: Promise<void>;
  #pids = new Set<number>();
  #greeting = new Set<Promise<void>>();

  private constructor(
    readonly dir: string,
    readonly wrap: (cmd: string[]) => string[],
    readonly python: string,
    readonly timeoutMs: number,
  ) {
    const listener = Deno.listen({ transport: "unix", path: `${dir}/ctl.sock` });
    this.#listener = listener;
    this.#accepting = (async () => {
      try {
        for await (const conn of listener) {
          const g = this.#greet(conn);
          this.#greeting.add(g);
          g.finally(() => this.#greeting.delete(g));
        }
      } catch { /* listener closed */ }
    })();
  }

  /**
   * A pool whose holders run `python` through `wrap` (e.g. a namespace's `ip netns exec`); its control socket
   * lives in `dir`.
   */
  static create(
    dir: string,
    wrap: (cmd: string[]) => string[],
    python = "python3",
    timeoutMs = 10_000,
  ): HolderPool {
    return new HolderPool(dir, wrap, python, timeoutMs);
  }

  async #greet(conn: Deno.UnixConn): Promise<void> {
    const lines = readLines(conn.readable);
    try {
      const first = await withDeadline(lines.next(), this.timeoutMs, "a holder's hello");
      if (first.done) return conn.close();
      const pid = (JSON.parse(first.value) as { hello: number }).hello;
      const c = new Conn(pid, conn, lines);
      this.#conns.set(pid, c);
      this.#pids.add(pid);
      this.#hello.get(pid)?.(c);
      this.#hello.delete(pid);
    } catch {
      try {
        conn.close();
      } catch { /* closed */ }
    }
  }

  #connOf(pid: number): Promise<Conn> {
    const c = this.#conns.get(pid);
    if (c) return Promise.resolve(c);
    return withDeadline(
      new Promise<Conn>((resolve) => this.#hello.set(pid, resolve)),
      this.timeoutMs,
      `holder ${pid} to connect`,
    );
  }

  /** Every pid a holder of this pool had (for checking that the namespace holds nothing else). */
  get pids(): ReadonlySet<number> {
    return this.#pids;
  }

  /** Start a new holder process; resolves with its pid once it is connected. */
  async spawn(): Promise<number> {
    const [cmd, ...args] = this.wrap([this.python, HOLDER_PY, `${this.dir}/ctl.sock`]);
    const child = new Deno.Command(cmd, { args, stdin: "null", stdout: "null", stderr: "piped" }).spawn();
    this.#children.push(child);
    this.#stderr.push(new Response(child.stderr).text());
    // `ip netns exec` execs python3 in place, so the holder's pid is the child's.
    this.#pids.add(child.pid);
    await this.#connOf(child.pid);
    return child.pid;
  }

  /** Send one command to holder `pid` and wait for its answer. */
  async command(pid: number, cmd: HolderCommand): Promise<HolderReply> {
    const c = await this.#connOf(pid);
    return await c.send(cmd, this.timeoutMs);
  }

  /** Fork holder `pid`; resolves with the child's pid once the child is connected too. */
  async fork(pid: number): Promise<number> {
    const r = await this.command(pid, { op: "fork" });
    if (!r.ok || !r.child) throw new Error(`holder ${pid} could not fork: ${r.error}`);
    this.#pids.add(r.child);
    await this.#connOf(r.child);
    return r.child;
  }

  /** End holder `pid`: "exit" (it exits by itself) or "kill" (SIGKILL); resolves once its files are released. */
  async end(pid: number, how: "exit" | "kill"): Promise<void> {
    const c = await this.#connOf(pid);
    if (how === "exit") await c.send({ op: "exit" }, this.timeoutMs);
    else Deno.kill(pid, "SIGKILL");
    await waitUntil(`holder ${pid} to be gone (${how})`, () => processGone(pid), this.timeoutMs, 5);
    await c.done;
    c.close();
    this.#conns.delete(pid);
  }

  /** The stderr of the holders started so far (once they have exited): for failure messages. */
  async stderr(): Promise<string> {
    return (await Promise.all(this.#stderr)).filter((s) => s.trim() !== "").join("\n");
  }

  /** SIGKILL every holder (forked ones too) and wait for them; close the control socket. Idempotent. */
  async close(): Promise<void> {
    for (const pid of this.#pids) {
      if (processGone(pid)) continue;
      try {
        Deno.kill(pid, "SIGKILL");
      } catch { /* gone */ }
    }
    for (const c of this.#conns.values()) c.close();
    await Promise.all([...this.#conns.values()].map((c) => c.done));
    this.#conns.clear();
    this.#listener.close();
    await this.#accepting;
    await Promise.all([...this.#greeting]);
    for (const c of this.#conns.values()) c.close();
    await Promise.all([...this.#conns.values()].map((c) => c.done));
    await Promise.all(this.#children.map((c) => c.status));
    await Promise.all(this.#stderr);
    for (const pid of this.#pids) {
      await waitUntil(`holder ${pid} to be gone`, () => processGone(pid), this.timeoutMs, 5).catch(() => {});
    }
  }
}

/** The real python3 executable (not a shim such as pyenv's, which costs a shell per start). */
export async function pythonExecutable(): Promise<string> {
  const out = await new Deno.Command("python3", {
    args: ["-c", "import sys; print(sys.executable)"],
    stdout: "piped",
    stderr: "null",
  }).output();
  const path = new TextDecoder().decode(out.stdout).trim();
  return out.success && path !== "" ? path : "python3";
}
