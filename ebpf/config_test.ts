import assert from "node:assert/strict";
import { loadEbpfConfig } from "./config.ts";
import { ConfigError, envOf } from "../infra/env.ts";

const load = (env: Record<string, string>) => loadEbpfConfig(envOf(env));

Deno.test("ebpf config: defaults", () => {
  assert.deepEqual(load({}), {
    engine: "auto",
    only: false,
    fallback: true,
    reconcileMs: 30_000,
    ringBytes: undefined,
  });
  assert.equal(load({ EBPF_RING_KB: "  " }).ringBytes, undefined, "a blank value is unset");
});

Deno.test("ebpf config: EBPF_ENGINE accepts libbpf and every other engine", () => {
  for (const engine of ["auto", "libbpf", "tracee", "bpftrace"] as const) {
    assert.equal(load({ EBPF_ENGINE: engine }).engine, engine);
  }
  const c = load({ EBPF_ENGINE: "libbpf", EBPF_ONLY: "1", EBPF_FALLBACK: "0", EBPF_RECONCILE: "600" });
  assert.deepEqual([c.engine, c.only, c.fallback, c.reconcileMs], ["libbpf", true, false, 600_000]);
});

Deno.test("ebpf config: a bad EBPF_ENGINE names the variable and lists libbpf among the engines", () => {
  for (const value of ["libbpf2", "LIBBPF", "bcc"]) {
    assert.throws(() => load({ EBPF_ENGINE: value }), (e: unknown) => {
      assert.ok(e instanceof ConfigError, String(e));
      assert.equal(e.setting, "EBPF_ENGINE");
      assert.equal(e.value, value);
      assert.match(e.message, /^EBPF_ENGINE=".*" is not valid: expected .*libbpf/);
      return true;
    });
  }
});

Deno.test("ebpf config: EBPF_RING_KB is the ring's size in KiB, a power of two from 4 to 1048576", () => {
  for (
    const [kb, bytes] of [
      ["4", 4096],
      ["8", 8192],
      ["1024", 1 << 20],
      ["65536", 1 << 26],
      ["1048576", 1 << 30],
      [" 256 ", 256 * 1024],
    ] as const
  ) {
    assert.equal(load({ EBPF_RING_KB: kb }).ringBytes, bytes, kb);
  }
});

Deno.test("ebpf config: a bad EBPF_RING_KB names the variable, the value and what is accepted", () => {
  for (const value of ["3", "1000", "abc", "0", "2", "-4", "4.0", "1e3", "0x400", "2097152", "64k"]) {
    assert.throws(() => load({ EBPF_RING_KB: value }), (e: unknown) => {
      assert.ok(e instanceof ConfigError, `${value}: ${e}`);
      assert.equal(e.setting, "EBPF_RING_KB");
      assert.equal(e.value, value);
      assert.match(e.message, new RegExp(`^EBPF_RING_KB="${value.replace(/[.+]/g, "\\$&")}" is not valid`));
      assert.match(e.message, /power of two/);
      assert.match(e.message, /4 to 1048576/);
      return true;
    }, value);
  }
});
