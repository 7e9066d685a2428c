/**
 * The bpftrace engine (EBPF_ENGINE=bpftrace) as users run it (`deno run ebpf/main.ts`): the scenarios it shares
 * with the libbpf engine (testing/engine_steps.ts), and its own. Needs root, network namespaces, python3, curl
 * and bpftrace; skips and says why otherwise.
 */
import assert from "node:assert/strict";
import { WatcherProc } from "../watcher/testing/watcher_proc.ts";
import { BPFTRACE, descendantNamed, twoCpusSkipReason } from "./testing/bpftrace.ts";
import { EBPF_MAIN, hostWideTest, namespaceTest } from "./testing/engine_steps.ts";
import { crossCpuTest } from "./testing/cross_cpu_steps.ts";

namespaceTest(BPFTRACE);

Deno.test({
  name: "ebpf command: EBPF_ONLY=1 with no engine available exits with a clear error; fallback says why",
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "portwatch-ebpf-test-" });
    try {
      // An engine that cannot exist here: bpftrace is looked up on PATH, which we empty.
      const only = WatcherProc.start(
        { EBPF_ENGINE: "bpftrace", EBPF_ONLY: "1", SNAPSHOT_PATH: `${dir}/s`, PATH: "/nonexistent" },
        undefined,
        [],
        EBPF_MAIN,
      );
      assert.equal((await only.exited()).code, 1);
      assert.match(only.stderr.join("\n"), /no eBPF engine can run[\s\S]*bpftrace cannot run/);
      const fb = WatcherProc.start(
        { EBPF_ENGINE: "bpftrace", SNAPSHOT_PATH: `${dir}/s`, PATH: "/nonexistent", SCAN_INTERVAL: "0.1" },
        undefined,
        [],
        EBPF_MAIN,
      );
      await fb.waitLog(/falling back to polling \(source "fallback"\)/);
      await fb.waitLog(/watching this network namespace with polling fallback/);
      assert.equal((await fb.stop("SIGTERM")).code, 0);
      for (const e of fb.events) assert.ok(["fallback", "shutdown-fallback"].includes(e.source), e.source);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

hostWideTest(BPFTRACE);

crossCpuTest(BPFTRACE, {
  name: "a socket opened on one CPU and ended on another, read first, leaves no phantom open",
  skipReason: twoCpusSkipReason(),
  // bpftrace is stopped a moment while the host goes on (other work on it, too, makes records): perf buffers of
  // 4 MB per CPU (not 256 KB) keep everything.
  env: { BPFTRACE_PERF_RB_PAGES: "1024" },
  // Each socket's open and end are in different per-CPU buffers, and a first socket lives on CPU b alone: when
  // bpftrace resumes, b's buffer is ready first and is read first, whole: every end before its open.
  reader(w) {
    const bpftrace = descendantNamed(w.child.pid, "bpftrace");
    assert.ok(bpftrace, "the engine's bpftrace process");
    return bpftrace;
  },
  missing(w, e) {
    const lost = w.stderr.filter((l) => /Lost \d+ events/.test(l));
    return lost.length ? new Error(`bpftrace lost events: ${lost.join("; ")}`) : e;
  },
});
