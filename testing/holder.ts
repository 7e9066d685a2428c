/**
 * Test helper: "holder" processes (python3) that open real sockets, report their inodes and keep them open until
 * closed; on command they fork (the child keeps every socket) or close their own copies.
 * @module
 */
import { endReporter, startReporter, withDeadline } from "./process.ts";

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
    if cmd == "swap":
        for s in keep: s.close()
        files = [open("/dev/null") for _ in keep]
        print(json.dumps({"swapped": len(files)}), flush=True)
    if cmd == "fork":
        child = os.fork()
        if child == 0:
            while True: signal.pause()
        print(json.dumps({"childPid": child}), flush=True)
os._exit(0)
`;

/** Where a holder runs: a namespace that prefixes commands to run inside it (testing/netns.ts's NetNs). */
export interface InNamespace {
  wrap(cmd: string[]): string[];
}

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
  static async start(spec: HolderSpec, netns?: InNamespace, timeoutMs = 20_000): Promise<Holder> {
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

  /** Close every socket and open as many files in their place: the same number of fds, the same fd numbers. */
  async swapSockets(): Promise<void> {
    await this.#ask("swap");
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
