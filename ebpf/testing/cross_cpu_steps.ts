/**
 * The cross-CPU scenario the eBPF engines' root tests share (ebpf/bpftrace_engine_test.ts and
 * ebpf/libbpf/libbpf_engine_test.ts), written once and registered for each engine under its name: sockets opened
 * on one CPU and ended on another while the engine's reader is stopped leave no phantom open. Each engine says
 * how its reader is found and stopped, and what else it checks ({@link CrossCpuCase}).
 * @module
 */
import assert from "node:assert/strict";
import { type NetNs, skipIf } from "../../testing/netns.ts";
import type { WatcherProc } from "../../watcher/testing/watcher_proc.ts";
import type { PortEvent } from "../../events/schema.ts";
import { type EngineUnderTest, inNamespace, py } from "./engine_steps.ts";

/** What one engine's cross-CPU test does its own way. */
export interface CrossCpuCase {
  /** The test's name after "<engine> engine: ". */
  name: string;
  /** Why it cannot run here (the engine cannot, or fewer than 2 CPUs), or undefined. */
  skipReason: string | undefined;
  /** The engine's environment besides EBPF_ENGINE, EBPF_ONLY, EBPF_RECONCILE and SNAPSHOT_PATH. */
  env: Record<string, string>;
  /** The pid of the process that reads the engine's buffers (it is stopped while the sockets are made). */
  reader(w: WatcherProc): number;
  /** Resolves once the reader, sent SIGSTOP, is stopped (default: at once). */
  paused?(pid: number): Promise<unknown>;
  /** What to throw when not every port's open and close came (default: the timeout `e`). */
  missing?(w: WatcherProc, e: unknown): unknown;
  /** More checks, once every port's open and close came. */
  after?(w: WatcherProc, ns: NetNs): Promise<void>;
}

/**
 * Python: each socket opened pinned to CPU a and ended pinned to CPU b (sched_setaffinity moves the thread
 * before it returns); a first socket lives on b alone. TCP (listen, then close: LISTEN -> CLOSE) on 8200 + i,
 * UDP (bind, then close) on 8400 + i, UDP ended by the exit of its process on 8600 + i, for i below `n`; UDP
 * 8199 first.
 */
const crossCpuPy = (n: number) =>
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
    os.waitpid(pid, 0)`;

/**
 * Register "<engine> engine: <c.name>": sockets opened on one CPU and ended on another while the engine's reader
 * is stopped: no phantom open (an open whose close never comes).
 */
export function crossCpuTest(engine: EngineUnderTest, c: CrossCpuCase): void {
  Deno.test({
    name: `${engine.name} engine: ${c.name}`,
    ignore: skipIf(c.skipReason, `${engine.name} engine across CPUs`),
    async fn() {
      // No reconciliation during the test: it would correct a phantom and hide it.
      await inNamespace(engine, { EBPF_RECONCILE: "600", ...c.env }, async (w, ns) => {
        const n = 100;
        const reader = c.reader(w);
        Deno.kill(reader, "SIGSTOP");
        try {
          await c.paused?.(reader);
          await py(ns, crossCpuPy(n));
        } finally {
          Deno.kill(reader, "SIGCONT");
        }
        const ports = [
          8199,
          ...[8200, 8400, 8600].flatMap((base) => Array.from({ length: n }, (_, i) => base + i)),
        ];
        const inTest = (e: PortEvent) => e.port >= 8199 && e.port < 8600 + n;
        // Every open is followed by its close; a phantom is an open whose close never comes.
        await w.waitFor("an open and a close of every port", inTest, 2 * ports.length, 30_000).catch((e) => {
          throw c.missing?.(w, e) ?? e;
        });
        for (const p of ports) {
          assert.deepEqual(
            w.matching((e) => e.port === p).map((e) => e.event),
            ["open", "close"],
            `port ${p}`,
          );
        }
        await c.after?.(w, ns);
      });
    },
  });
}
