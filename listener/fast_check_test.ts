import assert from "node:assert/strict";
import { isPlainValidEvent } from "./fast_check.ts";
import { IngestEventSchema } from "../events/schema.ts";

const base = {
  id: "0190c8e0-0000-7000-8000-000000000001",
  event: "open",
  port: 5000,
  proto: "tcp",
  family: 4,
  addrs: ["0.0.0.0"],
  pids: [123],
  last_pids: [7],
  last_addrs: ["127.0.0.1"],
  container_id: "abc",
  image: "debian:bookworm",
  compose_project: null,
  compose_service: "web",
  container_name: null,
  source: "polling",
  observed_at: "2026-11-25T08:00:00.123Z",
  host: "h",
  netns: 4026531840,
};

const VALUES: unknown[] = [
  undefined,
  null,
  0,
  -1,
  1,
  4,
  6,
  80,
  65535,
  65536,
  1.5,
  NaN,
  Infinity,
  2 ** 53,
  "",
  "x",
  "80",
  "open",
  "close",
  "change",
  "tcp",
  "udp",
  "polling",
  "ebpf",
  "shutdown-ebpf",
  "lsof",
  "2026-11-25T08:00:00Z",
  "2026-02-30T08:00:00Z",
  "2026-11-25T08:00:00+01:00",
  "2026-11-25 08:00:00Z",
  "2026-11-25T24:00:00Z",
  [],
  [1],
  [0],
  [1, "2"],
  ["0.0.0.0"],
  [null],
  {},
  { comm: "x", cmdline: "x", uid: 0 },
  { pid: 9, comm: "nginx", cmdline: "nginx -g daemon off;", uid: 101, extra: [1] },
  { pid: 0, comm: "x", cmdline: "x", uid: 0 },
  { pid: 9, comm: "x", cmdline: "x", uid: -1 },
  { pid: 9, comm: "x", cmdline: "x", uid: 1.5 },
  { pid: "9", comm: "x", cmdline: "x", uid: 0 },
  { comm: 1, cmdline: "x", uid: 0 },
  { comm: "x", uid: 0 },
  { comm: "x", cmdline: null, uid: 0 },
  { comm: "x", cmdline: "x", uid: 2 ** 53 },
  true,
  "a".repeat(129),
];

function mulberry32(seed: number) {
  return () => {
    seed |= 0;
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

Deno.test("isPlainValidEvent accepts only what zod accepts unchanged (20,000 mutated events)", () => {
  const rand = mulberry32(42);
  const keys = [...Object.keys(base), "process", "extra"];
  let accepted = 0;
  for (let n = 0; n < 20_000; n++) {
    const item: Record<string, unknown> = { ...base };
    const mutations = 1 + Math.floor(rand() * 3);
    for (let m = 0; m < mutations; m++) {
      const key = keys[Math.floor(rand() * keys.length)];
      const value = VALUES[Math.floor(rand() * VALUES.length)];
      if (value === undefined && rand() < 0.5) delete item[key];
      else item[key] = value;
    }
    if (!isPlainValidEvent(item)) continue;
    accepted++;
    const zod = IngestEventSchema.safeParse(item);
    assert.ok(zod.success, `fast path accepted what zod refuses: ${JSON.stringify(item)}`);
    const { ...same } = item;
    for (const k of Object.keys(same)) if (same[k] === undefined) delete same[k];
    const out = Object.fromEntries(Object.entries(zod.data).filter(([, v]) => v !== undefined));
    assert.deepEqual(out, same, `zod changed an item the fast path accepted: ${JSON.stringify(item)}`);
  }
  assert.ok(accepted > 1000, `the fuzz exercised the fast path (${accepted} accepted)`);
});

Deno.test("isPlainValidEvent: a plain process description takes the fast path, a bad one goes to zod", () => {
  const process = { pid: 9, comm: "nginx", cmdline: "nginx -g daemon off;", uid: 101 };
  assert.equal(isPlainValidEvent({ ...base, process }), true);
  assert.equal(isPlainValidEvent({ ...base, process: { ...process, uid: -1 } }), false);
  assert.equal(isPlainValidEvent({ ...base, process: { ...process, pid: 0 } }), false);
  assert.equal(isPlainValidEvent({ ...base, process: { comm: "x", uid: 0 } }), false);
  assert.equal(isPlainValidEvent({ ...base, process: null }), false);
  assert.equal(isPlainValidEvent({ ...base, process: [process] }), false);
});

Deno.test("isPlainValidEvent: the seed's text pids and string ports go to zod for normalisation", () => {
  assert.equal(isPlainValidEvent({ event: "open", port: 80, source: "polling" }), true);
  assert.equal(isPlainValidEvent({ event: "open", port: "80", source: "polling" }), false);
  assert.equal(isPlainValidEvent({ event: "open", port: 80, pids: "1,2", source: "polling" }), false);
});

Deno.test("isPlainValidEvent: a change event takes the fast path; a bad last_addrs or image goes to zod", () => {
  const change = { ...base, event: "change", pids: [124], last_pids: [123], addrs: ["::"], last_addrs: [] };
  assert.equal(isPlainValidEvent(change), true);
  assert.equal(IngestEventSchema.safeParse(change).success, true);
  for (const bad of [{ last_addrs: "::" }, { last_addrs: [6] }, { image: 5 }, { compose_service: [] }]) {
    const item = { ...change, ...bad };
    assert.equal(isPlainValidEvent(item), false, JSON.stringify(bad));
    assert.equal(IngestEventSchema.safeParse(item).success, false, `zod refuses ${JSON.stringify(bad)}`);
  }
});
