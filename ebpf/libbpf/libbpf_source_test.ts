/**
 * The native engine's source in this process, with the real kernel: its programs loaded and attached through
 * libbpf, records read from the ring's mapped pages. Checks the kernel-side filters (network namespace, ports),
 * the holders it follows (its own and adopted ones), a ring smaller than a burst (wrapping, lost records counted),
 * and that stop() frees every program, map, link and mapping. Needs root, network namespaces, python3, libbpf1
 * and BTF; skips and says why otherwise.
 */
import assert from "node:assert/strict";
import { readLines } from "../../infra/lines.ts";
import { waitUntil } from "../../infra/wait.ts";
import { NetNs, netnsSkipReason, skipIf, withDeadline } from "../../testing/netns.ts";
import { freePort } from "../../testing/port.ts";
import { EngineUnavailableError } from "../event_source.ts";
import type { SocketEvent } from "../socket_event.ts";
import { libbpfUnavailableReason, startLibbpf } from "./libbpf_source.ts";
import { pageSize } from "./mapping.ts";

const SKIP = netnsSkipReason() ?? libbpfUnavailableReason();
const ignore = skipIf(SKIP, "libbpf");

/** The real python3 (not a shim, such as pyenv's, that would be a shell first: its pid would change). */
function pythonExecutable(): string {
  try {
    const out = new Deno.Command("python3", {
      args: ["-c", "import sys; print(sys.executable)"],
      stdout: "piped",
      stderr: "null",
    }).outputSync();
    const path = new TextDecoder().decode(out.stdout).trim();
    return out.success && path !== "" ? path : "python3";
  } catch {
    return "python3";
  }
}
const PYTHON = SKIP ? "python3" : pythonExecutable();

/** A python3 process (in a namespace, or this one) that runs the code it is sent and answers `out` as JSON. */
class Py {
  readonly #stdin: WritableStreamDefaultWriter<Uint8Array>;
  readonly #lines: AsyncIterator<string>;
  /** Processes to kill at the end: this one and the children it was told to keep. */
  readonly pids: number[] = [];
  #ended = false;

  private constructor(readonly child: Deno.ChildProcess, readonly pid: number, lines: AsyncIterator<string>) {
    this.#stdin = child.stdin.getWriter();
    this.#lines = lines;
    this.pids.push(pid);
  }

  static async start(ns?: NetNs): Promise<Py> {
    const code = `import json, os, signal, socket, sys
signal.alarm(120)
g = {"os": os, "socket": socket, "signal": signal}
print(os.getpid(), flush=True)
for line in sys.stdin:
    g["out"] = None
    exec(json.loads(line), g)
    print(json.dumps(g["out"]), flush=True)`;
    const cmd = ns ? ns.wrap([PYTHON, "-c", code]) : [PYTHON, "-c", code];
    const child = new Deno.Command(cmd[0], {
      args: cmd.slice(1),
      stdin: "piped",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    const lines = readLines(child.stdout)[Symbol.asyncIterator]();
    let first: IteratorResult<string>;
    try {
      first = await withDeadline(lines.next(), 20_000, "python3 to start");
    } catch (e) {
      child.kill("SIGKILL");
      await child.status;
      throw e;
    }
    const py = new Py(child, Number(first.value), lines);
    if (!(py.pid > 0)) {
      await py.kill();
      throw new Error(`python3 said ${first.value} instead of its pid`);
    }
    return py;
  }

  /** Run `code` (python; sets `out` to answer) and wait, with a deadline, for its answer. */
  async do<T = unknown>(code: string): Promise<T> {
    await this.#stdin.write(new TextEncoder().encode(JSON.stringify(code) + "\n"));
    const { value, done } = await withDeadline(this.#lines.next(), 10_000, `python3 to run: ${code}`);
    if (done) throw new Error(`python3 ended running: ${code}`);
    return JSON.parse(value) as T;
  }

  /** Close its stdin: it exits by itself (its loop ends); resolves once it has been reaped. */
  async end(): Promise<void> {
    if (this.#ended) return;
    this.#ended = true;
    await this.#stdin.close().catch(() => {});
    await withDeadline(this.child.status, 10_000, "python3 to exit");
    await this.#lines.return?.().catch(() => {});
  }

  /** Kill it and the children it kept; idempotent. */
  async kill(): Promise<void> {
    for (const pid of this.pids) {
      try {
        Deno.kill(pid, "SIGKILL");
      } catch { /* gone */ }
    }
    if (this.#ended) return;
    this.#ended = true;
    await this.#stdin.close().catch(() => {});
    await this.#lines.return?.().catch(() => {});
    await this.child.status;
  }
}

const LISTEN = (name: string, host: string, port: number) =>
  `${name} = socket.socket(socket.AF_INET6 if ":" in "${host}" else socket.AF_INET)
${name}.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
if ":" in "${host}": ${name}.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
${name}.bind(("${host}", ${port})); ${name}.listen()
out = [${name}.fileno(), os.fstat(${name}.fileno()).st_ino]`;
const BIND = (name: string, host: string, port: number) =>
  `${name} = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); ${name}.bind(("${host}", ${port}))
out = [${name}.fileno(), os.fstat(${name}.fileno()).st_ino]`;
/** Fork a child that exits at once, reaped here; `out` is its pid. */
const FORK_EXIT = `out = os.fork()
if out == 0: os._exit(0)
os.waitpid(out, 0)`;

/** The inode of a network namespace's bind mount (what the programs compare with the socket's netns). */
function inodeOf(path: string): number {
  const ino = Deno.statSync(path).ino;
  if (ino === null) throw new Error(`no inode for ${path}`);
  return ino;
}

/** Two distinct ports free on the host's loopback a moment ago. */
function twoFreePorts(): [number, number] {
  for (;;) {
    const [a, b] = [freePort(), freePort()];
    if (a !== b) return [a, b];
  }
}

/** A start with the events collected; stop() in finally frees it (stopping twice is harmless). */
async function collect(options: Parameters<typeof startLibbpf>[0]) {
  const source = await startLibbpf(options);
  const events: SocketEvent[] = [];
  const lostCalls: number[] = [];
  const running = source.run((e) => events.push(e), undefined, (n) => lostCalls.push(n));
  return { source, events, lostCalls, running };
}

/** An event as a short, comparable tuple. */
function brief(e: SocketEvent): unknown[] {
  switch (e.kind) {
    case "listen":
    case "bind":
      return e.failed
        ? [e.kind, e.pid, "failed"]
        : [e.kind, e.pid, e.proto, e.family, e.addr, e.port, e.fd, e.inode, e.netns];
    case "unlisten":
      return [e.kind, e.pid, e.port, e.netns];
    case "close":
      return [e.kind, e.pid, e.fd, e.inode, e.last];
    case "fork":
      return [e.kind, e.pid, e.childPid];
    default:
      return [e.kind, e.pid];
  }
}

Deno.test({
  name:
    "libbpf source: only the watched namespace's sockets on the watched ports are recorded (kernel filters)",
  ignore,
  async fn() {
    const [P1, P3] = twoFreePorts(); // watched; free on the host, where the same ports are used too
    const [P2, P4] = [P1 === 20002 ? 20003 : 20002, P3 === 20004 ? 20005 : 20004]; // not watched
    const ns = await NetNs.create();
    let run: Awaited<ReturnType<typeof collect>> | undefined;
    const pys: Py[] = [];
    try {
      const netns = inodeOf(ns.path);
      run = await collect({ netns, ports: new Set([P1, P3]) });
      const { events, source } = run;
      const host = await Py.start();
      const inNs = await Py.start(ns);
      pys.push(host, inNs);

      // First what must not be recorded; the ring is one for every CPU, written in order, so each of these
      // records, had it been written, would be read before the records that follow.
      await host.do(LISTEN("h1", "127.0.0.1", P1)); // a watched port in another namespace
      await host.do(BIND("h3", "127.0.0.1", P3));
      await host.do(FORK_EXIT); // its records were filtered out: it is not a holder
      await host.do("h1.close(); h3.close()");
      await inNs.do(LISTEN("u2", "0.0.0.0", P2)); // the watched namespace, a port not watched
      await inNs.do(BIND("u4", "0.0.0.0", P4));
      await inNs.do(FORK_EXIT);
      await inNs.do("u2.close(); u4.close()");

      // Then what must be, in this order.
      const [t1fd, t1ino] = await inNs.do<[number, number]>(LISTEN("t1", "127.0.0.1", P1));
      const [t6fd, t6ino] = await inNs.do<[number, number]>(LISTEN("t6", "::1", P1));
      const [d3fd, d3ino] = await inNs.do<[number, number]>(BIND("d3", "127.0.0.1", P3));
      // listen() on a UDP socket fails (EOPNOTSUPP): a bind, then a failed listen, never a TCP open.
      const [ffd, fino] = await inNs.do<[number, number]>(
        `${BIND("f", "127.0.0.1", P1)}
try: f.listen()
except OSError: pass
else: raise Exception("listen on UDP succeeded")`,
      );
      await inNs.do("f.close()");
      const child = await inNs.do<number>(FORK_EXIT); // now it is a holder: its fork and the child's exit
      await inNs.do("t1.close()");
      await inNs.do("t6.close()");
      await inNs.do("d3.close()");

      const p = inNs.pid;
      const want = [
        ["listen", p, "tcp", 4, "127.0.0.1", P1, t1fd, t1ino, netns],
        ["listen", p, "tcp", 6, "::1", P1, t6fd, t6ino, netns],
        ["bind", p, "udp", 4, "127.0.0.1", P3, d3fd, d3ino, netns],
        ["bind", p, "udp", 4, "127.0.0.1", P1, ffd, fino, netns],
        ["listen", p, "failed"],
        ["close", p, ffd, fino, true],
        ["fork", p, child],
        ["exit", child],
        ["unlisten", p, P1, netns],
        ["unlisten", p, P1, netns],
        ["close", p, d3fd, d3ino, true],
      ];
      await waitUntil(
        () => `${want.length} records; got:\n${events.map((e) => JSON.stringify(brief(e))).join("\n")}`,
        () => events.length >= want.length,
        10_000,
      );
      assert.deepEqual(events.map(brief), want);
      // The socket's key: the same struct sock from its open to its end, distinct between sockets.
      const sk = (i: number) => events[i].sk;
      assert.match(sk(0)!, /^0xffff[0-9a-f]{12}$/);
      assert.equal(sk(8), sk(0), "t1's unlisten names t1's socket");
      assert.equal(sk(9), sk(1), "t6's unlisten names t6's socket");
      assert.equal(sk(10), sk(2), "d3's close names d3's socket");
      assert.equal(new Set([sk(0), sk(1), sk(2), sk(3)]).size, 4);
      assert.ok(events.every((e) => e.pid !== host.pid), "nothing of the host namespace's process");
      assert.ok(events.every((e, i) => i === 0 || e.kts! >= events[i - 1].kts!), "in kernel-time order");
      assert.equal(source.lost, 0);
    } finally {
      for (const py of pys) await py.kill();
      await run?.source.stop();
      await ns.delete();
    }
    assert.equal(await run!.running, "stopped");
  },
});

Deno.test({
  name:
    "libbpf source: adopt() follows a holder found by scanning: its forks, its children's execs and exits",
  ignore,
  async fn() {
    const ns = await NetNs.create();
    let run: Awaited<ReturnType<typeof collect>> | undefined;
    const pys: Py[] = [];
    try {
      // Only the namespace's sockets (it has none): every record here comes from the holders followed.
      run = await collect({ netns: inodeOf(ns.path) });
      const { events, source } = run;
      const adopted = await Py.start();
      const other = await Py.start();
      pys.push(adopted, other);
      source.adopt([adopted.pid]);

      await other.do(FORK_EXIT); // not adopted: nothing
      const child = await adopted.do<number>(`out = os.fork()
if out == 0: os.execv("/bin/true", ["true"])
os.waitpid(out, 0)`);
      await other.end();
      await adopted.end(); // it exits: its own exit is recorded, and it is no holder any more

      const want = [["fork", adopted.pid, child], ["exec", child], ["exit", child], ["exit", adopted.pid]];
      await waitUntil(
        () => `${want.length} records; got ${JSON.stringify(events.map(brief))}`,
        () => events.length >= want.length,
        10_000,
      );
      assert.deepEqual(events.map(brief), want);
      assert.ok(events.every((e) => e.pid !== other.pid), "nothing of the process not adopted");
      // adopt() after stop() is a no-op, not an error on a closed map.
      await source.stop();
      source.adopt([other.pid]);
    } finally {
      for (const py of pys) await py.kill();
      await run?.source.stop();
      await ns.delete();
    }
  },
});

Deno.test({
  name: "libbpf source: a one-page ring: records wrap around its end; what does not fit is counted lost",
  ignore,
  async fn() {
    const ns = await NetNs.create();
    let run: Awaited<ReturnType<typeof collect>> | undefined;
    const pys: Py[] = [];
    const N = 400; // binds and closes: 800 records of 72 bytes through a ring of 4,096
    try {
      run = await collect({ netns: inodeOf(ns.path), ringBytes: pageSize() });
      const { events, source, lostCalls } = run;
      const py = await Py.start(ns);
      pys.push(py);
      await py.do(`for i in range(${N}):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); s.close()`);
      // A marker after the storm, once the ring has room again: when it is read, the kernel's count of the
      // records that found the ring full is read after it, so it covers the whole storm.
      let markers = 0;
      for (let attempt = 1;; attempt++) {
        markers++;
        const port = await py.do<number>(`${BIND("m", "127.0.0.1", 0)}
out = m.getsockname()[1]; m.close()`);
        const markerClosed = () => {
          const sk = events.find((e) => e.kind === "bind" && e.port === port)?.sk;
          return sk !== undefined && events.some((e) => e.kind === "close" && e.sk === sk);
        };
        try {
          await waitUntil(`the marker on port ${port} to be read`, markerClosed, 500);
          break;
        } catch (e) {
          if (attempt >= 20) throw e; // lost too: the ring was still full; another one
        }
      }
      const written = 2 * (N + markers);
      await waitUntil(
        () => `read ${events.length} + lost ${source.lost} = ${written}`,
        () => events.length + source.lost === written,
        5_000,
      );
      assert.ok(events.every((e) => e.pid === py.pid && (e.kind === "bind" || e.kind === "close")));
      // Each socket's close comes after its bind; every close was its socket's last reference.
      const bound = new Set<string>();
      for (const e of events) {
        if (e.kind === "bind") bound.add(e.sk!);
        else assert.equal(e.last, true);
      }
      assert.ok(events.every((e, i) => i === 0 || e.kts! >= events[i - 1].kts!), "in order");
      const wrapped = events.length * 72 > pageSize();
      assert.ok(wrapped, `the records read went round the ring (${events.length})`);
      if (source.lost > 0) assert.equal(lostCalls.at(-1), source.lost, "onLost was told the new total");
      else assert.deepEqual(lostCalls, []);
      console.log(`  one-page ring: ${events.length} records read, ${source.lost} lost, of ${written}`);
    } finally {
      for (const py of pys) await py.kill();
      await run?.source.stop();
      await ns.delete();
    }
  },
});

/** This process's open BPF objects and what the source maps: fds by kind, and ring mappings. */
function ownBpf(): { fds: Record<string, number>; progIds: number[]; ringMaps: number } {
  const fds: Record<string, number> = {};
  const progIds: number[] = [];
  for (const e of Deno.readDirSync("/proc/self/fd")) {
    let target: string;
    try {
      target = Deno.readLinkSync(`/proc/self/fd/${e.name}`);
    } catch {
      continue; // the directory's own fd, gone
    }
    if (!/^anon_inode:(bpf|\[perf_event\]|\[eventfd\])/.test(target)) continue;
    fds[target] = (fds[target] ?? 0) + 1;
    if (target === "anon_inode:bpf-prog") {
      const id = /^prog_id:\s*(\d+)/m.exec(Deno.readTextFileSync(`/proc/self/fdinfo/${e.name}`))?.[1];
      if (id) progIds.push(Number(id));
    }
  }
  const ringMaps = Deno.readTextFileSync("/proc/self/maps").split("\n").filter((l) => l.includes("bpf-map"))
    .length;
  return { fds, progIds, ringMaps };
}

/** The ids of the loaded programs named pw_* (any process's), from bpftool. */
async function loadedPwPrograms(): Promise<Set<number>> {
  const out = await new Deno.Command("bpftool", {
    args: ["-j", "prog", "show"],
    stdout: "piped",
    stderr: "piped",
  })
    .output();
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
  const progs = JSON.parse(new TextDecoder().decode(out.stdout)) as { id: number; name?: string }[];
  return new Set(progs.filter((p) => p.name?.startsWith("pw_")).map((p) => p.id));
}

function hasBpftool(): boolean {
  try {
    return new Deno.Command("bpftool", { args: ["version"], stdout: "null", stderr: "null" }).outputSync()
      .success;
  } catch {
    return false;
  }
}

Deno.test({
  name: "libbpf source: stop() reads what the ring holds, then frees every program, link, map and mapping",
  ignore: ignore || skipIf(hasBpftool() ? undefined : "bpftool is not installed", "libbpf stop"),
  async fn() {
    const ns = await NetNs.create();
    let run: Awaited<ReturnType<typeof collect>> | undefined;
    let py: Py | undefined;
    const before = ownBpf();
    try {
      run = await collect({ netns: inodeOf(ns.path) });
      const { source, events } = run;
      assert.deepEqual(source.attached, [
        "pw_listen_exit",
        "pw_bind_exit",
        "pw_sock_state",
        "pw_close",
        "pw_dup2",
        "pw_dup3",
        "pw_close_range",
        "pw_newtask",
        "pw_exec",
        "pw_exit",
      ]);
      const during = ownBpf();
      const mine = during.progIds.filter((id) => !before.progIds.includes(id));
      assert.equal(mine.length, 10, `this process's programs: ${JSON.stringify(during.fds)}`);
      assert.ok(during.ringMaps > before.ringMaps, "the ring's pages are mapped");
      const loaded = await loadedPwPrograms();
      assert.ok(mine.every((id) => loaded.has(id)), "bpftool lists them");

      py = await Py.start(ns);
      const [fd] = await py.do<[number, number]>(LISTEN("s", "127.0.0.1", 8080));
      await source.stop(); // at once: the listen's record is in the ring, read or not yet
      assert.equal(await run.running, "stopped");
      assert.deepEqual(
        events.filter((e) => e.kind === "listen").map((e) => [e.pid, e.port, e.fd]),
        [[py.pid, 8080, fd]],
        "what the ring held when stop() was called is read",
      );

      const after = ownBpf();
      assert.deepEqual(
        after.fds,
        before.fds,
        "every map, program, link, perf event and eventfd fd is closed",
      );
      assert.equal(after.ringMaps, before.ringMaps, "the ring's pages are unmapped");
      // The kernel frees a program once its last reference is gone (after an RCU grace period).
      await waitUntil(
        `bpftool to list none of ${mine.join(", ")}`,
        async () => {
          const now = await loadedPwPrograms();
          return mine.every((id) => !now.has(id));
        },
        10_000,
        100,
      );
      await source.stop(); // twice: nothing left to do
    } finally {
      await py?.kill();
      await run?.source.stop();
      await ns.delete();
    }
  },
});

Deno.test({
  name:
    "libbpf source: ring sizes that are not a power of two of at least a page are refused, nothing left loaded",
  ignore,
  async fn() {
    const before = ownBpf();
    for (const ringBytes of [3000, pageSize() / 2, pageSize() * 3]) {
      await assert.rejects(() => startLibbpf({ ringBytes }), RangeError, String(ringBytes));
    }
    assert.deepEqual(ownBpf().fds, before.fds);
  },
});

Deno.test("libbpf source: a missing object file is named, and startLibbpf refuses it before loading", async () => {
  const missing = `/nonexistent-${crypto.randomUUID()}/portwatch.bpf.o`;
  const why = libbpfUnavailableReason(missing);
  const earlier = libbpfUnavailableReason();
  if (earlier === undefined) {
    assert.equal(
      why,
      `the compiled programs are missing (${missing}; build them with deno task bpf build)`,
    );
  } else {
    // A check before the object's (not Linux, not root, no BTF, ...) says why first, here as without a path.
    assert.equal(why, earlier);
  }
  await assert.rejects(() => startLibbpf({ objectPath: missing }), (e: unknown) => {
    assert.ok(e instanceof EngineUnavailableError, String(e));
    assert.equal(e.engine, "libbpf");
    assert.equal(e.reason, why);
    assert.match(e.message, /^libbpf cannot run: /);
    return true;
  });
});
