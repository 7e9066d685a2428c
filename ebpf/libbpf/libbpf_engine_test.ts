/**
 * The native engine (EBPF_ENGINE=libbpf) as users run it (`deno run ebpf/main.ts` in a namespace of its own), as
 * ebpf/bpftrace_engine_test.ts tests the bpftrace engine. Needs root, network namespaces, python3, curl and what
 * the engine needs (libbpf.so.1, BTF, the host's pid namespace); skips and says why otherwise.
 */
import assert from "node:assert/strict";
import { NetNs, netnsSkipReason, run, skipIf } from "../../testing/netns.ts";
import { WatcherProc } from "../../watcher/testing/watcher_proc.ts";
import type { PortEvent } from "../../events/schema.ts";
import { elapse, waitUntil } from "../../infra/wait.ts";
import { readLines } from "../../infra/lines.ts";
import { denoPidOf, ebpfMetrics, libbpfSkipReason, processState } from "./testing/libbpf.ts";
import { descendantNamed } from "../testing/bpftrace.ts";

const EBPF_MAIN = new URL("../main.ts", import.meta.url).pathname;

/** Run a python snippet inside `ns`; it prints nothing unless it fails. */
async function py(ns: NetNs, code: string): Promise<string> {
  const out = await run(ns.wrap(["python3", "-c", code]), { timeoutMs: 30_000 });
  return out.stdout;
}

/** The engine's metrics port inside the test's namespace (not the bpftrace tests' 19091). */
const METRICS_PORT = 19093;

const count = (w: WatcherProc, kind: string, port: number, proto?: string) =>
  w.matching((e: PortEvent) => e.event === kind && e.port === port && (!proto || e.proto === proto)).length;

Deno.test({
  name: "libbpf engine: every open and close as an event, in a namespace of its own",
  ignore: skipIf(libbpfSkipReason(), "libbpf engine"),
  async fn(t) {
    const dir = await Deno.makeTempDir({ prefix: "portwatch-libbpf-test-" });
    const ns = await NetNs.create();
    const w = WatcherProc.start(
      {
        EBPF_ENGINE: "libbpf",
        EBPF_ONLY: "1",
        EBPF_RECONCILE: "2",
        METRICS_PORT: String(METRICS_PORT),
        SNAPSHOT_PATH: `${dir}/snapshot`,
        HOST_NAME: "libbpf-host",
        LOG_LEVEL: "info",
      },
      ns,
      [],
      EBPF_MAIN,
    );
    try {
      await w.waitLog(/watching this network namespace with libbpf events/, 60_000);
      const nsInode = Deno.statSync(ns.path).ino;

      await t.step("TCP and UDP, IPv4 and IPv6, each held 1 ms: an open and a close each", async () => {
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
          assert.equal(e.host, "libbpf-host");
        }
        for (let p = 8001; p <= 8004; p++) assert.equal(count(w, "close", p), 1, `close ${p}`);
      });

      await t.step("listen() without bind(): the real port, not 0", async () => {
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
      });

      await t.step("a failed bind and a failed listen (port taken) make no phantom open", async () => {
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
        await w.waitFor(
          "closes of 8010-8012",
          (e) => e.event === "close" && e.port >= 8010 && e.port <= 8012,
          3,
        );
        for (const p of [8010, 8011, 8012]) {
          assert.equal(count(w, "open", p), 1, `one open of ${p}`);
          assert.equal(count(w, "close", p), 1, `one close of ${p}`);
        }
      });

      await t.step(
        "a forked child keeps the socket after its parent exits; SIGKILL of the owner closes",
        async () => {
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
          const opens = await w.waitFor(
            "opens of 8020 and 8021",
            (e) => e.event === "open" && (e.port === 8020 || e.port === 8021),
            2,
          );
          assert.deepEqual(opens.map((e) => e.proto).sort(), ["tcp", "udp"]);
          await elapse(
            500,
            "the parent is gone and the child holds both: a window in which no close may come",
          );
          assert.equal(
            count(w, "close", 8020) + count(w, "close", 8021),
            0,
            "no close while the child holds them",
          );
          // The parent's exit leaves the child as the only holder of both.
          for (const port of [8020, 8021]) {
            await w.waitFor(
              `port ${port} held by the child alone`,
              (e) => e.port === port && String(e.pids) === String([childPid]),
            );
          }
          Deno.kill(childPid, "SIGKILL");
          await w.waitFor(
            "closes after SIGKILL",
            (e) => e.event === "close" && (e.port === 8020 || e.port === 8021),
            2,
          );
        },
      );

      await t.step(
        "holders: the parent closes its copy after a fork; a child exec's its copy away",
        async () => {
          // The parent stays (its exit would drop it anyway): listens on 8030 and 8031, forks a child that
          // sleeps with both, closes its copy of 8030, forks a second child that exec's (python's sockets are
          // close-on-exec), then waits for stdin to close.
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
          const child = new Deno.Command(cmd[0], { args: cmd.slice(1), stdin: "piped", stdout: "piped" })
            .spawn();
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
      );

      await t.step("500 ports opened and closed in a burst: each seen once each way", async () => {
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
      });

      await t.step(
        "reconciliation finds no drift, and nothing was lost: the events told the whole story",
        async () => {
          // No process exits from here on, so the reconciliations counted are the periodic ones (EBPF_RECONCILE=2).
          const first = await ebpfMetrics(ns, METRICS_PORT);
          const after = await waitUntil(
            "a reconciliation scan",
            async () => {
              const m = await ebpfMetrics(ns, METRICS_PORT);
              return m.reconciliations > first.reconciliations && m;
            },
            10_000,
            100,
          );
          assert.equal(after.drift, 0, w.stderr.join("\n"));
          assert.equal(after.lost, 0, "the 1 MiB ring never filled");
          assert.ok(after.events > 1000, `events counted: ${after.events}`);
          assert.ok(
            !w.stderr.some((l) => /reconciliation found|the ring was full/.test(l)),
            w.stderr.join("\n"),
          );
        },
      );
    } finally {
      const status = await w.stop("SIGTERM");
      await ns.delete();
      await Deno.remove(dir, { recursive: true });
      assert.equal(status.code, 0, w.stderr.join("\n"));
    }
  },
});

Deno.test({
  name: "ebpf command: EBPF_ENGINE=libbpf that cannot run: EBPF_ONLY=1 exits with why; fallback says why",
  ignore: skipIf(netnsSkipReason(), "libbpf engine unavailable"),
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "portwatch-libbpf-test-" });
    // The programs report host pids: in a pid namespace of its own (a container without `pid: host`) the engine
    // says it cannot run. `unshare --pid --fork --mount-proc` runs the watcher as pid 1 of a new one.
    const start = (env: Record<string, string>) =>
      WatcherProc.start(
        env,
        { wrap: (cmd) => ["unshare", "--pid", "--fork", "--mount-proc", ...cmd] } as NetNs,
        [],
        EBPF_MAIN,
      );
    try {
      const only = start({ EBPF_ENGINE: "libbpf", EBPF_ONLY: "1", SNAPSHOT_PATH: `${dir}/s` });
      assert.equal((await only.exited()).code, 1, only.stderr.join("\n"));
      assert.match(
        only.stderr.join("\n"),
        /no eBPF engine can run[\s\S]*libbpf cannot run: not in the host's pid namespace/,
      );
      const fb = start({ EBPF_ENGINE: "libbpf", SNAPSHOT_PATH: `${dir}/s`, SCAN_INTERVAL: "0.1" });
      try {
        await fb.waitLog(
          /falling back to polling \(source "fallback"\): libbpf cannot run: not in the host's pid/,
        );
        await fb.waitLog(/watching this network namespace with polling fallback/);
        // unshare does not pass signals on: the watcher (pid 1 of its namespace) is signalled itself.
        Deno.kill(denoPidOf(fb.child), "SIGTERM");
        assert.equal((await fb.exited()).code, 0, fb.stderr.join("\n"));
      } finally {
        const deno = descendantNamed(fb.child.pid, "deno");
        if (deno !== undefined) Deno.kill(deno, "SIGKILL");
        await fb.stop("SIGKILL").catch(() => {});
      }
      for (const e of fb.events) assert.ok(["fallback", "shutdown-fallback"].includes(e.source), e.source);
      // A ring size that is no power of two is a configuration error (exit 2), said before any engine starts.
      const bad = WatcherProc.start(
        { EBPF_ENGINE: "libbpf", EBPF_RING_KB: "48", SNAPSHOT_PATH: `${dir}/s` },
        undefined,
        [],
        EBPF_MAIN,
      );
      assert.equal((await bad.exited()).code, 2, bad.stderr.join("\n"));
      assert.match(bad.stderr.join("\n"), /EBPF_RING_KB/);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "libbpf engine, host-wide: a port opened in another network namespace is attributed to it",
  ignore: skipIf(libbpfSkipReason(), "libbpf engine host-wide"),
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "portwatch-libbpf-test-" });
    const a = await NetNs.create();
    const b = await NetNs.create();
    const w = WatcherProc.start(
      { EBPF_ENGINE: "libbpf", EBPF_ONLY: "1", WATCH_PORTS: "8100", SNAPSHOT_PATH: `${dir}/snapshot` },
      undefined,
      ["--all-netns"],
      EBPF_MAIN,
    );
    try {
      await w.waitLog(/watching every network namespace on this host with libbpf events/, 60_000);
      const code = `import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("0.0.0.0", 8100)); time.sleep(0.05); s.close()`;
      await py(a, code);
      await py(b, code);
      const events = await w.waitFor("open and close in each namespace", (e) => e.port === 8100, 4, 20_000);
      const byNs = (ns: NetNs) =>
        events.filter((e) => e.netns === Deno.statSync(ns.path).ino).map((e) => e.event);
      assert.deepEqual(byNs(a), ["open", "close"]);
      assert.deepEqual(byNs(b), ["open", "close"]);
      // The kernel-side port filter (WATCH_PORTS) lets nothing else through.
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

Deno.test({
  name:
    "libbpf engine: sockets opened on one CPU and ended on another while the engine is stopped: no phantom",
  ignore: skipIf(
    libbpfSkipReason() ??
      (navigator.hardwareConcurrency < 2 ? `${navigator.hardwareConcurrency} CPU (needs 2)` : undefined),
    "libbpf engine across CPUs",
  ),
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "portwatch-libbpf-test-" });
    const ns = await NetNs.create();
    // No reconciliation during the test: it would correct a phantom and hide it. The engine is stopped a moment;
    // the default ring (1 MiB, ~14,500 records) keeps what this makes (~600 records from its namespace).
    const w = WatcherProc.start(
      {
        EBPF_ENGINE: "libbpf",
        EBPF_ONLY: "1",
        EBPF_RECONCILE: "600",
        METRICS_PORT: String(METRICS_PORT),
        SNAPSHOT_PATH: `${dir}/snapshot`,
      },
      ns,
      [],
      EBPF_MAIN,
    );
    let stopped: number | undefined;
    try {
      await w.waitLog(/watching this network namespace with libbpf events/, 60_000);
      const deno = denoPidOf(w.child);
      // Each socket is opened pinned to CPU a and ended pinned to CPU b, the engine stopped meanwhile: one ring
      // for every CPU keeps them in order. TCP (listen, then close), UDP (bind, then close), UDP ended by the
      // exit of its process.
      Deno.kill(deno, "SIGSTOP");
      stopped = deno;
      await waitUntil("the engine stopped", () => processState(deno) === "T", 5_000);
      const n = 100;
      await py(
        ns,
        `import os, socket
a, b = sorted(os.sched_getaffinity(0))[:2]
os.sched_setaffinity(0, {b})
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 8199)); s.close()
for i in range(${n}):
    for typ, base in ((socket.SOCK_STREAM, 8200), (socket.SOCK_DGRAM, 8400)):
        os.sched_setaffinity(0, {a})
        s = socket.socket(socket.AF_INET, typ); s.bind(("127.0.0.1", base + i))
        if typ == socket.SOCK_STREAM: s.listen()
        os.sched_setaffinity(0, {b})
        s.close()
for i in range(${n}):
    pid = os.fork()
    if pid == 0:
        os.sched_setaffinity(0, {a})
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 8600 + i))
        os.sched_setaffinity(0, {b})
        os._exit(0)
    os.waitpid(pid, 0)`,
      );
      Deno.kill(deno, "SIGCONT");
      stopped = undefined;
      const ports = [
        8199,
        ...[8200, 8400, 8600].flatMap((base) => Array.from({ length: n }, (_, i) => base + i)),
      ];
      const inTest = (e: PortEvent) => e.port >= 8199 && e.port < 8600 + n;
      // Every open is followed by its close; a phantom is an open whose close never comes.
      await w.waitFor("an open and a close of every port", inTest, 2 * ports.length, 30_000);
      for (const p of ports) {
        assert.deepEqual(w.matching((e) => e.port === p).map((e) => e.event), ["open", "close"], `port ${p}`);
      }
      const m = await ebpfMetrics(ns, METRICS_PORT);
      assert.equal(m.lost, 0, "nothing lost: the ring held everything while the engine was stopped");
    } finally {
      if (stopped) Deno.kill(stopped, "SIGCONT");
      const status = await w.stop("SIGTERM");
      await ns.delete();
      await Deno.remove(dir, { recursive: true });
      assert.equal(status.code, 0, w.stderr.join("\n"));
    }
  },
});
