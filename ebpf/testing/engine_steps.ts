/**
 * The scenarios the eBPF engines' root tests share (ebpf/bpftrace_engine_test.ts and
 * ebpf/libbpf/libbpf_engine_test.ts), written once and registered for each engine under its name: the engine run
 * as users run it (`deno run ebpf/main.ts`) in a network namespace of its own and host-wide (with sockets that
 * cross CPUs: cross_cpu_steps.ts); and what they share with the engines' other tests. Needs root, network
 * namespaces, python3, curl and what the engine needs; each test skips and says why otherwise. What only one
 * engine has stays in that engine's test file.
 * @module
 */
import assert from "node:assert/strict";
import { NetNs, run, skipIf } from "../../testing/netns.ts";
import { WatcherProc } from "../../watcher/testing/watcher_proc.ts";
import type { PortEvent } from "../../events/schema.ts";
import { elapse, waitUntil } from "../../infra/wait.ts";
import { readLines } from "../../infra/lines.ts";

/** The command the tests start (ebpf/main.ts). */
export const EBPF_MAIN = new URL("../main.ts", import.meta.url).pathname;

/** An engine under test. */
export interface EngineUnderTest {
  /** Its EBPF_ENGINE value; it names the engine in test names, temporary directories and its start line. */
  name: "bpftrace" | "libbpf";
  /** Why its tests cannot run here, or undefined (called once a test, when the test is registered). */
  skipReason(): string | undefined;
  /** Its metrics port inside a test's namespace (scraped there with curl): each engine's own. */
  metricsPort: number;
}

/** The line the engine logs once it watches this network namespace, or (`hostWide`) every one on the host. */
export function startLine(engine: EngineUnderTest, hostWide = false): RegExp {
  const where = hostWide ? "every network namespace on this host" : "this network namespace";
  return new RegExp(`watching ${where} with ${engine.name} events`);
}

/** Run a python snippet inside `ns`; it prints nothing unless it fails. */
export async function py(ns: NetNs, code: string): Promise<string> {
  const out = await run(ns.wrap(["python3", "-c", code]), { timeoutMs: 30_000 });
  return out.stdout;
}

/** How many events of this kind (and protocol, if given) the watcher reported for `port`. */
export const count = (w: WatcherProc, kind: string, port: number, proto?: string): number =>
  w.matching((e: PortEvent) => e.event === kind && e.port === port && (!proto || e.proto === proto)).length;

/** The eBPF engine's counters, as its metrics endpoint exposes them. */
export interface EbpfMetrics {
  events: number;
  reconciliations: number;
  drift: number;
  lost: number;
}

/** Scrape the engine's metrics at 127.0.0.1:`port` inside `ns` (curl, run there). */
export async function ebpfMetrics(ns: NetNs, port: number): Promise<EbpfMetrics> {
  const text = (await run(ns.wrap(["curl", "-sf", `http://127.0.0.1:${port}/metrics`]))).stdout;
  const value = (name: string) => Number(new RegExp(`^${name} (\\d+)$`, "m").exec(text)?.[1] ?? NaN);
  return {
    events: value("portwatch_ebpf_events_total"),
    reconciliations: value("portwatch_ebpf_reconciliations_total"),
    drift: value("portwatch_ebpf_drift_sockets_total"),
    lost: value("portwatch_ebpf_lost_events_total"),
  };
}

/** What a step of the namespace test gets: the engine, running in `ns`. */
interface NamespaceRun {
  engine: EngineUnderTest;
  w: WatcherProc;
  ns: NetNs;
  nsInode: number | null;
}

const hostName = (engine: EngineUnderTest) => `${engine.name}-host`;

/** The steps of the namespace test, in order: each a scenario of its own ports. */
const NAMESPACE_STEPS: { name: string; fn(r: NamespaceRun): Promise<void> }[] = [{
  name: "TCP and UDP, IPv4 and IPv6, each held 1 ms: an open and a close each",
  async fn({ engine, w, ns, nsInode }) {
    await py(
      ns,
      `import socket, time
for fam, typ, host, port in [(socket.AF_INET, socket.SOCK_STREAM, "0.0.0.0", 8001), (socket.AF_INET6, socket.SOCK_STREAM, "::1", 8002), (socket.AF_INET, socket.SOCK_DGRAM, "127.0.0.1", 8003), (socket.AF_INET6, socket.SOCK_DGRAM, "::", 8004)]:
    s = socket.socket(fam, typ); s.bind((host, port))
    if typ == socket.SOCK_STREAM: s.listen()
    time.sleep(0.001); s.close()`,
    );
    await w.waitFor("4 opens and 4 closes", (e) => e.port >= 8001 && e.port <= 8004, 8);
    const got = w.matching((e) => e.port >= 8001 && e.port <= 8004);
    assert.deepEqual(
      got.filter((e) => e.event === "open").map((e) => [e.port, e.proto, e.family, e.addrs]),
      [
        [8001, "tcp", 4, ["0.0.0.0"]],
        [8002, "tcp", 6, ["::1"]],
        [8003, "udp", 4, ["127.0.0.1"]],
        [8004, "udp", 6, ["::"]],
      ],
    );
    for (const e of got) {
      assert.equal(e.source, "ebpf");
      assert.equal(e.netns, nsInode);
      assert.equal(e.host, hostName(engine));
    }
    for (let p = 8001; p <= 8004; p++) assert.equal(count(w, "close", p), 1, `close ${p}`);
  },
}, {
  name: "listen() without bind(): the real port, not 0",
  async fn({ w, ns }) {
    const port = Number(
      await py(
        ns,
        `import socket, time
s = socket.socket(); s.listen(); print(s.getsockname()[1], flush=True); time.sleep(0.05); s.close()`,
      ),
    );
    assert.ok(port > 0);
    const got = await w.waitFor("open and close of the autobound port", (e) => e.port === port, 2);
    assert.deepEqual(got.map((e) => [e.event, e.proto]), [["open", "tcp"], ["close", "tcp"]]);
    assert.equal(count(w, "open", 0), 0, "no open of port 0");
  },
}, {
  name: "a failed bind and a failed listen (port taken) make no phantom open",
  async fn({ w, ns }) {
    await py(
      ns,
      `import socket, time
a = socket.socket(); a.bind(("0.0.0.0", 8010)); a.listen()
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("0.0.0.0", 8011))
b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
try: b.bind(("0.0.0.0", 8011))
except OSError: pass
c = socket.socket(); c.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
d = socket.socket(); d.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
c.bind(("127.0.0.1", 8012)); d.bind(("127.0.0.1", 8012))
c.listen()
try: d.listen()
except OSError: pass
time.sleep(0.2)`,
    );
    await w.waitFor("closes of 8010-8012", (e) => e.event === "close" && e.port >= 8010 && e.port <= 8012, 3);
    for (const p of [8010, 8011, 8012]) {
      assert.equal(count(w, "open", p), 1, `one open of ${p}`);
      assert.equal(count(w, "close", p), 1, `one close of ${p}`);
    }
  },
}, {
  name: "a forked child keeps the socket after its parent exits; SIGKILL of the owner closes",
  async fn({ w, ns }) {
    const childPid = Number(
      await py(
        ns,
        `import os, socket, time, sys
t = socket.socket(); t.bind(("0.0.0.0", 8020)); t.listen()
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("0.0.0.0", 8021))
pid = os.fork()
if pid == 0:
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2): os.dup2(null, fd)
    os.setsid(); time.sleep(60); os._exit(0)
print(pid, flush=True)`,
      ),
    );
    const is8020or8021 = (e: PortEvent) => e.port === 8020 || e.port === 8021;
    const opens = await w.waitFor("opens of 8020 and 8021", (e) => e.event === "open" && is8020or8021(e), 2);
    assert.deepEqual(opens.map((e) => e.proto).sort(), ["tcp", "udp"]);
    await elapse(500, "the parent is gone and the child holds both: a window in which no close may come");
    assert.equal(count(w, "close", 8020) + count(w, "close", 8021), 0, "no close while the child holds them");
    // The parent's exit leaves the child as the only holder of both.
    for (const port of [8020, 8021]) {
      await w.waitFor(
        `port ${port} held by the child alone`,
        (e) => e.port === port && String(e.pids) === String([childPid]),
      );
    }
    Deno.kill(childPid, "SIGKILL");
    await w.waitFor("closes after SIGKILL", (e) => e.event === "close" && is8020or8021(e), 2);
  },
}, {
  name: "holders: the parent closes its copy after a fork; a child exec's its copy away",
  async fn({ w, ns }) {
    // The parent stays (its exit would drop it anyway): listens on 8030 and 8031, forks a child that sleeps with
    // both, closes its copy of 8030, forks a second child that exec's (python's sockets are close-on-exec), then
    // waits for stdin to close.
    const code = `import os, socket, sys, time
def listen(port):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("0.0.0.0", port)); s.listen()
    return s
a, b = listen(8030), listen(8031)
kept = os.fork()
if kept == 0:
    time.sleep(60); os._exit(0)
a.close()
time.sleep(0.2)
gone = os.fork()
if gone == 0:
    os.execvp("sleep", ["sleep", "60"])
print(os.getpid(), kept, gone, flush=True)
sys.stdin.read()`;
    const cmd = ns.wrap(["python3", "-c", code]);
    const child = new Deno.Command(cmd[0], { args: cmd.slice(1), stdin: "piped", stdout: "piped" }).spawn();
    const [parent, kept, gone] = (await readLines(child.stdout)[Symbol.asyncIterator]().next()).value
      .split(" ").map(Number);
    try {
      const holders = (port: number, pids: number[]) =>
        w.waitFor(
          `port ${port} held by ${pids}`,
          (e) => e.port === port && e.event === "change" && String(e.pids) === String(pids),
        );
      await holders(8030, [kept]);
      await holders(8031, [parent, kept].sort((x, y) => x - y));
      assert.equal(count(w, "close", 8030) + count(w, "close", 8031), 0);
      const last = (port: number) => w.matching((e) => e.port === port).at(-1);
      await waitUntil("the exec'd child gone from 8031", () => !last(8031)?.pids.includes(gone));
      assert.deepEqual(last(8031)?.pids, [parent, kept].sort((x, y) => x - y));
      assert.deepEqual(last(8030)?.pids, [kept]);
    } finally {
      for (const pid of [kept, gone]) {
        try {
          Deno.kill(pid, "SIGKILL");
        } catch { /* gone */ }
      }
      await child.stdin.close();
      await child.status;
      await child.stdout.cancel().catch(() => {});
    }
    await w.waitFor(
      "closes of 8030 and 8031",
      (e) => e.event === "close" && [8030, 8031].includes(e.port),
      2,
    );
  },
}, {
  name: "500 ports opened and closed in a burst: each seen once each way",
  async fn({ w, ns }) {
    await py(
      ns,
      `import socket
socks = []
for i in range(500):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM if i % 2 == 0 else socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 20000 + i))
    if i % 2 == 0: s.listen()
    socks.append(s)
for s in socks: s.close()`,
    );
    const inRange = (e: PortEvent) => e.port >= 20000 && e.port < 20500;
    await w.waitFor("1000 events", inRange, 1000, 30_000);
    for (let i = 0; i < 500; i++) {
      const port = 20000 + i;
      const proto = i % 2 === 0 ? "tcp" : "udp";
      assert.equal(count(w, "open", port, proto), 1, `open ${port}`);
      assert.equal(count(w, "close", port, proto), 1, `close ${port}`);
    }
  },
}, {
  name: "reconciliation finds no drift, and nothing was lost: the events told the whole story",
  async fn({ engine, w, ns }) {
    // No process exits from here on, so the reconciliations counted are the periodic ones (EBPF_RECONCILE=2).
    const first = await ebpfMetrics(ns, engine.metricsPort);
    const after = await waitUntil(
      "a reconciliation scan",
      async () => {
        const m = await ebpfMetrics(ns, engine.metricsPort);
        return m.reconciliations > first.reconciliations && m;
      },
      10_000,
      100,
    );
    assert.equal(after.drift, 0, w.stderr.join("\n"));
    assert.equal(after.lost, 0, "the engine's buffers never filled");
    assert.ok(after.events > 1000, `events counted: ${after.events}`);
    // "the ring was full" is the libbpf engine's word for a loss.
    assert.ok(!w.stderr.some((l) => /reconciliation found|the ring was full/.test(l)), w.stderr.join("\n"));
  },
}];

/**
 * Start the engine as users run it (EBPF_ONLY=1, and `env`) in a network namespace of its own, wait for its
 * start line and run `body`; then stop it, assert that it exited 0 and remove the namespace and the snapshot's
 * directory.
 */
export async function inNamespace(
  engine: EngineUnderTest,
  env: Record<string, string>,
  body: (w: WatcherProc, ns: NetNs) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: `portwatch-${engine.name}-test-` });
  const ns = await NetNs.create();
  const w = WatcherProc.start(
    { EBPF_ENGINE: engine.name, EBPF_ONLY: "1", SNAPSHOT_PATH: `${dir}/snapshot`, ...env },
    ns,
    [],
    EBPF_MAIN,
  );
  try {
    await w.waitLog(startLine(engine), 60_000);
    await body(w, ns);
  } finally {
    const status = await w.stop("SIGTERM");
    await ns.delete();
    await Deno.remove(dir, { recursive: true });
    assert.equal(status.code, 0, w.stderr.join("\n"));
  }
}

/** Register "<engine> engine: every open and close as an event, in a namespace of its own" and its steps. */
export function namespaceTest(engine: EngineUnderTest): void {
  Deno.test({
    name: `${engine.name} engine: every open and close as an event, in a namespace of its own`,
    ignore: skipIf(engine.skipReason(), `${engine.name} engine`),
    async fn(t) {
      await inNamespace(engine, {
        EBPF_RECONCILE: "2",
        METRICS_PORT: String(engine.metricsPort),
        HOST_NAME: hostName(engine),
        LOG_LEVEL: "info",
      }, async (w, ns) => {
        const r: NamespaceRun = { engine, w, ns, nsInode: Deno.statSync(ns.path).ino };
        for (const step of NAMESPACE_STEPS) await t.step(step.name, () => step.fn(r));
      });
    },
  });
}

/** Register "<engine> engine, host-wide: a port opened in another network namespace is attributed to it". */
export function hostWideTest(engine: EngineUnderTest): void {
  Deno.test({
    name: `${engine.name} engine, host-wide: a port opened in another network namespace is attributed to it`,
    ignore: skipIf(engine.skipReason(), `${engine.name} engine host-wide`),
    async fn() {
      const dir = await Deno.makeTempDir({ prefix: `portwatch-${engine.name}-test-` });
      const a = await NetNs.create();
      const b = await NetNs.create();
      const w = WatcherProc.start(
        { EBPF_ENGINE: engine.name, EBPF_ONLY: "1", WATCH_PORTS: "8100", SNAPSHOT_PATH: `${dir}/snapshot` },
        undefined,
        ["--all-netns"],
        EBPF_MAIN,
      );
      try {
        await w.waitLog(startLine(engine, true), 60_000);
        const code = `import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("0.0.0.0", 8100)); time.sleep(0.05); s.close()`;
        await py(a, code);
        await py(b, code);
        const events = await w.waitFor("open and close in each namespace", (e) => e.port === 8100, 4, 20_000);
        const byNs = (ns: NetNs) =>
          events.filter((e) => e.netns === Deno.statSync(ns.path).ino).map((e) => e.event);
        assert.deepEqual(byNs(a), ["open", "close"]);
        assert.deepEqual(byNs(b), ["open", "close"]);
        // The port filter (WATCH_PORTS; kernel-side in the libbpf engine) lets nothing else through.
        await py(a, code.replaceAll("8100", "8101"));
        await elapse(300, "a port outside WATCH_PORTS: a window in which no event of it may come");
        assert.equal(w.matching((e) => e.port !== 8100).length, 0, JSON.stringify(w.events));
      } finally {
        await w.stop("SIGTERM");
        await a.delete();
        await b.delete();
        await Deno.remove(dir, { recursive: true });
      }
    },
  });
}
