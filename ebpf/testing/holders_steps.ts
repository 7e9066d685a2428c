/**
 * The holder scenarios the eBPF engines' tests share (ebpf/bpftrace_holders_test.ts and
 * ebpf/libbpf/libbpf_holders_test.ts), written once and registered for each engine under its name: the holders
 * of sockets followed (fork, close, dup, exec) with real processes, the source's events applied to a ledger in
 * this process (testing/ledger_harness.ts); and a holder adopted at the engine's start. What only one engine has
 * stays in that engine's test file, as steps of its own (see {@link HolderStep}).
 * @module
 */
import assert from "node:assert/strict";
import { readLines } from "../../infra/lines.ts";
import { NetNs, skipIf } from "../../testing/netns.ts";
import { WatcherProc } from "../../watcher/testing/watcher_proc.ts";
import { waitUntil } from "../../infra/wait.ts";
import type { LedgerHarness } from "./ledger_harness.ts";
import { EBPF_MAIN, type EngineUnderTest } from "./engine_steps.ts";

/** A python3 process in a namespace that runs the code it is sent, one JSON string a line, and answers `out`. */
export class Py {
  readonly #stdin: WritableStreamDefaultWriter<Uint8Array>;
  readonly #lines: AsyncIterator<string>;
  /** Processes to kill at the end (this one, and the children the test made). */
  readonly pids: number[] = [];

  private constructor(
    readonly child: Deno.ChildProcess,
    readonly pid: number,
    lines: AsyncIterator<string>,
  ) {
    this.#stdin = child.stdin.getWriter();
    this.#lines = lines;
    this.pids.push(pid);
  }

  static async start(ns: NetNs): Promise<Py> {
    const code = `import json, os, socket, sys
g = {"os": os, "socket": socket}
print(os.getpid(), flush=True)
for line in sys.stdin:
    g["out"] = None
    exec(json.loads(line), g)
    print(json.dumps(g["out"]), flush=True)`;
    const child = new Deno.Command(ns.wrap(["python3", "-c", code])[0], {
      args: ns.wrap(["python3", "-c", code]).slice(1),
      stdin: "piped",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    const lines = readLines(child.stdout)[Symbol.asyncIterator]();
    const first = await lines.next();
    return new Py(child, Number(first.value), lines);
  }

  /** Run `code` (python; sets `out` to answer) and wait for its answer; `wait` false: send it only. */
  async do(code: string, wait = true): Promise<unknown> {
    await this.#stdin.write(new TextEncoder().encode(JSON.stringify(code) + "\n"));
    if (!wait) return undefined;
    const { value, done } = await this.#lines.next();
    if (done) throw new Error(`python ended running ${code}`);
    return JSON.parse(value);
  }

  /** Kill it and what it made. */
  async kill(): Promise<void> {
    for (const pid of this.pids) {
      try {
        Deno.kill(pid, "SIGKILL");
      } catch { /* gone */ }
    }
    await this.#stdin.close().catch(() => {});
    await this.#lines.return?.().catch(() => {});
    await this.child.status;
  }
}

/** Python: a TCP listener on 127.0.0.1:`port`, in variable `name`. */
export const LISTEN = (name: string, port: number): string =>
  `${name} = socket.socket(); ${name}.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
${name}.bind(("127.0.0.1", ${port})); ${name}.listen()`;
/** Python: a UDP socket bound to 127.0.0.1:`port`, in variable `name`. */
export const BIND = (name: string, port: number): string =>
  `${name} = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); ${name}.bind(("127.0.0.1", ${port}))`;
/** Python: fork a child that sleeps (holding what it inherited); `out` is its pid. */
export const FORK = `out = os.fork()
if out == 0:
    import signal
    while True: signal.pause()`;

/** What a holder step gets: the harness, its python processes, and a wait on a port's holders. */
export interface HoldersRun {
  h: LedgerHarness;
  /** A new python process in the test's namespace (killed, with what it recorded in `pids`, at the end). */
  start(): Promise<Py>;
  /** Wait (5 s at most) until the ledger has `pids` as the holders of this port (undefined: no such socket). */
  until(what: string, proto: "tcp" | "udp", port: number, pids: number[] | undefined): Promise<unknown>;
}

/** A scenario run as a step of the holders test, on ports of its own. */
export interface HolderStep {
  name: string;
  fn(r: HoldersRun): Promise<void>;
}

export const forkAndClose: HolderStep = {
  name: "a TCP listener's process forks and closes its copy: only the child holds it",
  async fn({ h, start, until }) {
    const py = await start();
    await py.do(`${LISTEN("t", 8301)}\n${BIND("u", 8302)}`);
    const child = await py.do(FORK) as number;
    py.pids.push(child);
    const both = [py.pid, child].sort((a, b) => a - b);
    await until("the child inherits", "tcp", 8301, both);
    await until("the child inherits", "udp", 8302, both);
    await py.do("t.close(); u.close()");
    await until("the parent let go", "tcp", 8301, [child]);
    await until("the parent let go", "udp", 8302, [child]);
    const closes = h.eventsOf(py.pid).filter((e) => e.kind === "close");
    assert.deepEqual(closes.map((e) => [e.fd, e.last]).sort(), [[3, false], [4, false]]);
    assert.ok(h.eventsOf(child).some((e) => e.kind === "fork" && e.pid === py.pid));
    assert.ok(!h.ledger.recheck.has(py.pid), "read from /proc");
    // The child's end of it: its kill ends both.
    Deno.kill(child, "SIGKILL");
    await until("the child was the last", "tcp", 8301, undefined);
    await until("the child was the last", "udp", 8302, undefined);
  },
};

export const dupThenClose: HolderStep = {
  name: "a dup keeps a holder whose first fd closes; its last close ends the socket",
  async fn({ h, start, until }) {
    const py = await start();
    await py.do(`${LISTEN("t", 8311)}\nd = os.dup(t.fileno()); t.close()`);
    await waitUntil("the close of the first fd", () => h.eventsOf(py.pid).some((e) => e.kind === "close"));
    await until("the dup holds it", "tcp", 8311, [py.pid]);
    await py.do("os.dup2(d, 9); os.close(d)");
    await until("fd 9 holds it", "tcp", 8311, [py.pid]);
    await py.do("os.close(9)");
    await until("its last fd closed", "tcp", 8311, undefined);
    const closes = h.eventsOf(py.pid).filter((e) => e.kind === "close" && e.inode !== undefined);
    // The last close of a TCP listener is no close record: its LISTEN -> CLOSE transition ends it.
    assert.deepEqual(closes.map((e) => [e.fd, e.last]), [[3, false], [4, false]]);
    assert.ok(h.events.some((e) => e.kind === "unlisten" && e.port === 8311));
  },
};

export const childExecs: HolderStep = {
  name: "a forked child exec's: its close-on-exec copies are gone, the parent holds them",
  async fn({ h, start, until }) {
    const py = await start();
    await py.do(`${LISTEN("t", 8321)}\n${BIND("u", 8322)}`);
    const child = await py.do(`out = os.fork()
if out == 0:
    os.execvp("sleep", ["sleep", "60"])`) as number;
    py.pids.push(child);
    await waitUntil("the child's exec", () => h.eventsOf(child).some((e) => e.kind === "exec"));
    await until("the child holds nothing", "tcp", 8321, [py.pid]);
    await until("the child holds nothing", "udp", 8322, [py.pid]);
  },
};

export const processExecs: HolderStep = {
  name: "a process exec's: a UDP socket it keeps stays, a close-on-exec one is gone",
  async fn({ h, start, until }) {
    const py = await start();
    await py.do(`${BIND("kept", 8331)}\nkept.set_inheritable(True)\n${BIND("lost", 8332)}`);
    await until("bound", "udp", 8332, [py.pid]);
    await py.do(`os.execvp("sleep", ["sleep", "60"])`, false);
    await waitUntil("the exec", () => h.eventsOf(py.pid).some((e) => e.kind === "exec"));
    await until("gone with the exec (no close() came)", "udp", 8332, undefined);
    await until("kept across the exec", "udp", 8331, [py.pid]);
    assert.ok(!h.eventsOf(py.pid).some((e) => e.kind === "close"), "no close() was made");
  },
};

export const reusePortTwins: HolderStep = {
  name: "SO_REUSEPORT twins opened by two processes at about the same time: both listed",
  async fn({ start, until }) {
    const [a, b] = [await start(), await start()];
    const twin = (v: string) =>
      `${v} = socket.socket(); ${v}.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
${v}.bind(("0.0.0.0", 8341)); ${v}.listen()`;
    await Promise.all([a.do(twin("s")), b.do(twin("s"))]);
    await until("both twins", "tcp", 8341, [a.pid, b.pid].sort((x, y) => x - y));
    await a.do("s.close()");
    await until("one twin closed", "tcp", 8341, [b.pid]);
  },
};

/** Register "<engine> engine: holders followed through fork, close, dup and exec": `steps` in order. */
export function holdersTest(
  engine: EngineUnderTest,
  /** Start the engine's source feeding a ledger, for the sockets of namespace `netns` (at least). */
  startHarness: (netns: number) => Promise<LedgerHarness>,
  steps: HolderStep[],
): void {
  Deno.test({
    name: `${engine.name} engine: holders followed through fork, close, dup and exec`,
    ignore: skipIf(engine.skipReason(), `${engine.name} engine holders`),
    async fn(t) {
      const ns = await NetNs.create();
      const netns = Deno.statSync(ns.path).ino!;
      const pys: Py[] = [];
      let h: LedgerHarness | undefined;
      try {
        h = await startHarness(netns);
        const l = h;
        const pidsOn = (proto: "tcp" | "udp", port: number) => l.observation(netns, proto, port)?.pids;
        const r: HoldersRun = {
          h,
          async start() {
            const py = await Py.start(ns);
            pys.push(py);
            return py;
          },
          until: (what, proto, port, pids) =>
            waitUntil(
              () =>
                `${what}: ${proto} ${port} held by ${JSON.stringify(pids)}, not ${
                  JSON.stringify(pidsOn(proto, port))
                }`,
              () => JSON.stringify(pidsOn(proto, port)) === JSON.stringify(pids),
              5_000,
            ),
        };
        for (const step of steps) await t.step(step.name, () => step.fn(r));
      } finally {
        for (const py of pys) await py.kill();
        await h?.stop();
        await ns.delete();
      }
    },
  });
}

/**
 * Register "<engine> engine: a holder that was listening before the engine started is followed (adopted at the
 * seed)": the engine run as users run it, its holder's fork and close seen from the events.
 */
export function adoptionTest(engine: EngineUnderTest): void {
  Deno.test({
    name:
      `${engine.name} engine: a holder that was listening before the engine started is followed (adopted at the seed)`,
    ignore: skipIf(engine.skipReason(), `${engine.name} engine adoption`),
    async fn() {
      const dir = await Deno.makeTempDir({ prefix: `portwatch-${engine.name}-adopt-` });
      const ns = await NetNs.create();
      const h = await ns.holder({ sockets: [{ proto: "tcp", host: "0.0.0.0", port: 7090 }] });
      const w = WatcherProc.start(
        // no reconciliation during the test: what it sees, it sees from the events
        { EBPF_ENGINE: engine.name, EBPF_ONLY: "1", EBPF_RECONCILE: "600", SNAPSHOT_PATH: `${dir}/snapshot` },
        ns,
        [],
        EBPF_MAIN,
      );
      try {
        const [open] = await w.waitFor(
          "the seeded open",
          (e) => e.event === "open" && e.port === 7090,
          1,
          60_000,
        );
        assert.deepEqual(open.pids, [h.pid]);
        const child = await h.fork();
        const [added] = await w.waitFor("the fork, from the events", (e) => e.event === "change", 1, 5_000);
        assert.deepEqual(added.pids, [h.pid, child].sort((a, b) => a - b));
        await h.closeSockets();
        const changes = await w.waitFor(
          "the parent's close, from the events",
          (e) => e.event === "change",
          2,
          5_000,
        );
        assert.deepEqual([changes[1].pids, changes[1].last_pids], [[child], added.pids]);
      } finally {
        await w.stop("SIGTERM");
        await h.close();
        await ns.delete();
        await Deno.remove(dir, { recursive: true });
      }
    },
  });
}
