/**
 * Test helpers: throw-away network namespaces (`ip netns add pwtest-<random>`), commands run inside them, and
 * "holder" processes (python3) that open real sockets, report their inodes and keep them open until closed.
 * Everything started here is killed and deleted by `close()`/`delete()`; callers use try/finally.
 * @module
 */

/** Why tests needing root and network namespaces cannot run here, or undefined when they can. */
export function netnsSkipReason(): string | undefined {
  if (Deno.build.os !== "linux") return `network namespaces need Linux, this is ${Deno.build.os}`;
  if (Deno.uid() !== 0) {
    return `not root (uid ${Deno.uid()}): creating network namespaces needs CAP_SYS_ADMIN`;
  }
  if (!hasCommand("ip", ["-V"])) return "iproute2's `ip` is not installed";
  return pythonSkipReason();
}

/** Why tests needing python3 (the socket holder) cannot run here, or undefined when they can. */
export function pythonSkipReason(): string | undefined {
  if (Deno.build.os !== "linux") return `/proc and socket tests need Linux, this is ${Deno.build.os}`;
  return hasCommand("python3", ["-c", "pass"]) ? undefined : "python3 is not installed";
}

/** `ignore` for Deno.test: logs why the test is skipped (once per name) and returns true when it must be. */
export function skipIf(reason: string | undefined, testName: string): boolean {
  if (reason !== undefined) console.log(`skipping "${testName}": ${reason}`);
  return reason !== undefined;
}

const commandCache = new Map<string, boolean>();

function hasCommand(cmd: string, args: string[]): boolean {
  let ok = commandCache.get(cmd);
  if (ok === undefined) {
    try {
      ok = new Deno.Command(cmd, { args, stdout: "null", stderr: "null" }).outputSync().success;
    } catch {
      ok = false;
    }
    commandCache.set(cmd, ok);
  }
  return ok;
}

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

/** A network namespace made for one test, with its loopback up; `delete()` kills its holders and removes it. */
export class NetNs {
  readonly #holders = new Set<Holder>();

  private constructor(
    /** Its name, e.g. "pwtest-1a2b3c4d". */
    readonly name: string,
  ) {}

  /** Its bind-mount, usable with setns(2): /run/netns/NAME. */
  get path(): string {
    return `/run/netns/${this.name}`;
  }

  /** Create a namespace "pwtest-<random>" and bring its loopback up. */
  static async create(): Promise<NetNs> {
    const name = `pwtest-${crypto.randomUUID().slice(0, 8)}`;
    await run(["ip", "netns", "add", name]);
    const ns = new NetNs(name);
    try {
      await run(["ip", "-n", name, "link", "set", "lo", "up"]);
    } catch (e) {
      await ns.delete();
      throw e;
    }
    return ns;
  }

  /** `cmd` prefixed so that it runs inside the namespace. */
  wrap(cmd: string[]): string[] {
    return ["ip", "netns", "exec", this.name, ...cmd];
  }

  /** Run a command inside the namespace to completion. */
  exec(cmd: string[], options?: { check?: boolean; timeoutMs?: number }): Promise<CommandResult> {
    return run(this.wrap(cmd), options);
  }

  /** Start a socket holder inside the namespace; it is closed by {@link NetNs.delete} at the latest. */
  async holder(spec: HolderSpec): Promise<Holder> {
    const h = await Holder.start(spec, this);
    this.#holders.add(h);
    return h;
  }

  /** Kill every holder started in it and delete the namespace (idempotent). */
  async delete(): Promise<void> {
    for (const h of this.#holders) await h.close();
    this.#holders.clear();
    await run(["ip", "netns", "del", this.name], { check: false });
  }
}

/** One kind of socket a holder opens. */
export interface HolderSocketSpec {
  proto: "tcp" | "udp";
  /** Address to bind, e.g. "0.0.0.0", "::1", "::ffff:127.0.0.1" (a v6 socket with V6ONLY off). */
  host: string;
  /** Port to bind; 0 (default) for any. */
  port?: number;
  /** IPV6_V6ONLY for v6 sockets; default true, except for v4-mapped hosts. */
  v6only?: boolean;
  /** Set SO_REUSEPORT before binding. */
  reuseport?: boolean;
  /** How many such sockets to open (each on its own port unless `port` is given with reuseport); default 1. */
  count?: number;
  /**
   * Connections to make to each socket: TCP ones are accepted, so each makes two established sockets (not
   * listening); UDP ones make a connected client socket (which has a local port, so sources report it).
   */
  connect?: number;
}

/** What a holder opens. */
export interface HolderSpec {
  sockets: HolderSocketSpec[];
  /** Fork after opening: the child keeps every socket too; `exitParent()` then ends the parent only. */
  fork?: boolean;
}

/** A socket as the holder saw it (python's getsockname and fstat). */
export interface HeldSocket {
  proto: "tcp" | "udp";
  family: 4 | 6;
  addr: string;
  port: number;
  inode: number;
}

/** What a holder reports once its sockets are open. */
export interface HolderReport {
  pid: number;
  /** The forked child's pid, with `fork`. */
  childPid?: number;
  /** The bound sockets (listening TCP, bound UDP). */
  sockets: HeldSocket[];
  /** Connected UDP client sockets (bound to an ephemeral port). */
  connectedUdp: HeldSocket[];
  /** Inodes of established TCP sockets (both ends). */
  established: number[];
}

const HOLDER_PY = String.raw`
import json, os, signal, socket, sys
signal.alarm(300)  # safety net: never outlive a test run by long
spec = json.loads(sys.argv[1])
keep = []
out = {"pid": os.getpid(), "sockets": [], "connectedUdp": [], "established": []}
def ino(s): return os.fstat(s.fileno()).st_ino
def held(proto, s):
    name = s.getsockname()
    return {"proto": proto, "family": 6 if s.family == socket.AF_INET6 else 4, "addr": name[0], "port": name[1], "inode": ino(s)}
for e in spec["sockets"]:
    for _ in range(e.get("count", 1)):
        fam = socket.AF_INET6 if ":" in e["host"] else socket.AF_INET
        typ = socket.SOCK_STREAM if e["proto"] == "tcp" else socket.SOCK_DGRAM
        s = socket.socket(fam, typ)
        keep.append(s)
        if typ == socket.SOCK_STREAM: s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if e.get("reuseport"): s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if fam == socket.AF_INET6:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1 if e.get("v6only", not e["host"].startswith("::ffff:")) else 0)
        s.bind((e["host"], e.get("port", 0)))
        if typ == socket.SOCK_STREAM: s.listen(512)
        out["sockets"].append(held(e["proto"], s))
        host, port = s.getsockname()[:2]
        for _ in range(e.get("connect", 0)):
            target, cfam = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host), fam
            if target.startswith("::ffff:"): target, cfam = target[7:], socket.AF_INET
            c = socket.socket(cfam, typ)
            keep.append(c)
            c.connect((target, port))
            if typ == socket.SOCK_STREAM:
                a, _ = s.accept()
                keep.append(a)
                out["established"] += [ino(c), ino(a)]
            else:
                out["connectedUdp"].append(held("udp", c))
if spec.get("fork"):
    child = os.fork()
    if child == 0:
        while True: signal.pause()
    out["childPid"] = child
print(json.dumps(out), flush=True)
for line in sys.stdin:
    cmd = line.strip()
    if cmd == "exit": break
    if cmd == "close":
        for s in keep: s.close()
        print(json.dumps({"closed": len(keep)}), flush=True)
    if cmd == "fork":
        child = os.fork()
        if child == 0:
            while True: signal.pause()
        print(json.dumps({"childPid": child}), flush=True)
os._exit(0)
`;

/** A python3 process holding sockets open until {@link Holder.close}. */
export class Holder {
  #stdin: WritableStreamDefaultWriter<Uint8Array>;
  #stderr: Promise<string>;
  #closed = false;

  private constructor(
    /** The process (for a netns holder: `ip netns exec`, which execs python3 in place). */
    readonly child: Deno.ChildProcess,
    /** What it opened. */
    readonly report: HolderReport,
    stdin: WritableStreamDefaultWriter<Uint8Array>,
    stderr: Promise<string>,
    nextLine: () => Promise<string | undefined>,
    stdout: ReadableStreamDefaultReader<string>,
  ) {
    this.#stdin = stdin;
    this.#stderr = stderr;
    this.#nextLine = nextLine;
    this.#stdout = stdout;
  }

  #nextLine: () => Promise<string | undefined>;
  #stdout: ReadableStreamDefaultReader<string>;

  /** Start a holder (inside `netns` when given) and wait (with a deadline) for its report. */
  static async start(spec: HolderSpec, netns?: NetNs, timeoutMs = 20_000): Promise<Holder> {
    const cmd = ["python3", "-c", HOLDER_PY, JSON.stringify(spec)];
    const full = netns ? netns.wrap(cmd) : cmd;
    const r = await startReporter<HolderReport>(full, "socket holder", timeoutMs, true);
    return new Holder(r.child, r.report, r.stdin, r.stderr, r.nextLine!, r.stdout!);
  }

  /** The pid of the process holding the sockets (python's own pid). */
  get pid(): number {
    return this.report.pid;
  }

  /** With `fork`: end the parent (the child keeps the sockets) and wait until it is reaped. */
  async exitParent(): Promise<void> {
    await this.#stdin.write(new TextEncoder().encode("exit\n"));
    await withDeadline(this.child.status, 10_000, "the holder's parent to exit");
  }

  /** The holder (the parent) closes its copies of every socket and stays; a forked child keeps its own. */
  async closeSockets(): Promise<void> {
    await this.#ask("close");
  }

  /** Fork now: the child holds every socket the parent holds; returns its pid (killed by close()). */
  async fork(): Promise<number> {
    const { childPid } = await this.#ask("fork") as { childPid: number };
    this.#children.push(childPid);
    return childPid;
  }

  #children: number[] = [];

  /** Send a command and wait (with a deadline) for its one-line JSON answer. */
  async #ask(cmd: string): Promise<unknown> {
    await this.#stdin.write(new TextEncoder().encode(`${cmd}\n`));
    const line = await withDeadline(this.#nextLine(), 10_000, `the holder's answer to ${cmd}`);
    if (line === undefined) throw new Error(`the holder ended before answering ${cmd}`);
    return JSON.parse(line);
  }

  /** Kill the holder (and its forked child) and wait for it; idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const pid of [this.report.childPid, ...this.#children]) {
      if (pid === undefined) continue;
      try {
        Deno.kill(pid, "SIGKILL");
      } catch { /* gone */ }
    }
    await endReporter(this.child, this.#stdin, this.#stderr, "the holder", this.#stdout);
  }
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
