/**
 * The native engine (EBPF_ENGINE=libbpf) as users run it (`deno run ebpf/main.ts`): the scenarios it shares with
 * the bpftrace engine (ebpf/testing/engine_steps.ts), and its own. Needs root, network namespaces, python3, curl
 * and what the engine needs (libbpf.so.1, BTF, the host's pid namespace); skips and says why otherwise.
 */
import assert from "node:assert/strict";
import { type NetNs, netnsSkipReason, skipIf } from "../../testing/netns.ts";
import { WatcherProc } from "../../watcher/testing/watcher_proc.ts";
import { waitUntil } from "../../infra/wait.ts";
import { denoPidOf, LIBBPF, libbpfSkipReason, processState } from "./testing/libbpf.ts";
import { descendantNamed } from "../testing/bpftrace.ts";
import { EBPF_MAIN, ebpfMetrics, hostWideTest, namespaceTest } from "../testing/engine_steps.ts";
import { crossCpuTest } from "../testing/cross_cpu_steps.ts";

namespaceTest(LIBBPF);

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

hostWideTest(LIBBPF);

crossCpuTest(LIBBPF, {
  name: "sockets opened on one CPU and ended on another while the engine is stopped: no phantom",
  skipReason: libbpfSkipReason() ??
    (navigator.hardwareConcurrency < 2 ? `${navigator.hardwareConcurrency} CPU (needs 2)` : undefined),
  // The engine is stopped a moment; the default ring (1 MiB, ~14,500 records) keeps what this makes (~600
  // records from its namespace). The metrics port: to read its loss counter.
  env: { METRICS_PORT: String(LIBBPF.metricsPort) },
  // The engine's deno process reads the ring: one ring for every CPU keeps each socket's open and end in order.
  reader: (w) => denoPidOf(w.child),
  paused: (deno) => waitUntil("the engine stopped", () => processState(deno) === "T", 5_000),
  async after(_w, ns) {
    const m = await ebpfMetrics(ns, LIBBPF.metricsPort);
    assert.equal(m.lost, 0, "nothing lost: the ring held everything while the engine was stopped");
  },
});
