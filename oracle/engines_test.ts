import assert from "node:assert/strict";
import {
  commonEnv,
  DELIVERY_SLACK_MS,
  EBPF_LATENCY_MS,
  ENGINES,
  findOnPath,
  POLL_INTERVAL_MS,
} from "./engines.ts";
import { loadWatcherConfig } from "../watcher/config.ts";
import { loadEbpfConfig } from "../ebpf/config.ts";

const envOf = (vars: Record<string, string>) => ({ get: (k: string) => vars[k] });

Deno.test("engines: each case's settings are accepted by the engine it runs, as meant", () => {
  for (const e of ENGINES) {
    const vars = { ...commonEnv("http://10.0.0.1:8080", "oracle-x", "/tmp/d"), ...e.env };
    const cfg = loadWatcherConfig([], envOf(vars));
    assert.ok(cfg !== "help");
    assert.equal(cfg.graceMs, 0, e.name);
    assert.equal(cfg.snapshotPath, "/tmp/d/snapshot");
    if (e.program === "watcher/main.ts") {
      assert.equal(cfg.intervalMs, POLL_INTERVAL_MS);
      assert.equal(cfg.backend, e.env.USE_PROC === "1" ? "proc" : "auto");
      assert.equal(e.deadlineMs, POLL_INTERVAL_MS + DELIVERY_SLACK_MS);
    } else {
      const ebpf = loadEbpfConfig(envOf(vars));
      assert.equal(ebpf.only, true, e.name);
      assert.equal(ebpf.fallback, false);
      assert.ok(["libbpf", "bpftrace", "tracee"].includes(ebpf.engine), e.name);
      assert.equal(ebpf.engine, e.name, "the case is named after its engine");
      assert.ok(ebpf.reconcileMs >= 120_000, "no reconciliation during a run");
      assert.equal(e.deadlineMs, EBPF_LATENCY_MS + DELIVERY_SLACK_MS);
    }
  }
  assert.deepEqual(ENGINES.map((e) => e.name), [
    "polling (netlink)",
    "polling (/proc/net, USE_PROC=1)",
    "libbpf",
    "bpftrace",
    "tracee",
  ]);
});

Deno.test("engines: the libbpf case waits for its own engine's line, never a fallback's", () => {
  const libbpf = ENGINES.find((e) => e.name === "libbpf")!;
  assert.ok(
    libbpf.ready.test(
      "watching this network namespace with libbpf events (reconciling every 600 s); events to x",
    ),
  );
  assert.ok(
    !libbpf.ready.test("watching this network namespace with bpftrace events (reconciling every 600 s)"),
  );
  assert.ok(!libbpf.ready.test("watching this network namespace with polling fallback with netlink"));
  const bpftrace = ENGINES.find((e) => e.name === "bpftrace")!;
  assert.equal(libbpf.deadlineMs, bpftrace.deadlineMs);
  assert.deepEqual(
    { ...libbpf.env, EBPF_ENGINE: "bpftrace" },
    bpftrace.env,
    "the same settings as bpftrace's",
  );
});

Deno.test("engines: a binary is looked up on PATH in order", () => {
  const have = new Set(["/b/tracee", "/c/tracee"]);
  assert.equal(findOnPath("tracee", "/a::/b:/c", (p) => have.has(p)), "/b/tracee");
  assert.equal(findOnPath("tracee", "/a", (p) => have.has(p)), undefined);
  assert.equal(findOnPath("tracee", undefined, () => true), undefined);
});
