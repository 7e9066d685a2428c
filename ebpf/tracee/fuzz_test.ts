import assert from "node:assert/strict";
import type { SocketEvent } from "../socket_event.ts";
import { TraceeAdapter } from "./adapter.ts";
import { parseTraceeLine } from "./parse.ts";
import { TRACEE_FIXTURES } from "./testing/fixtures.ts";

const FIXTURES = TRACEE_FIXTURES;
const ALL = [...Deno.readDirSync(FIXTURES)].map((e) => e.name).filter((n) => n.endsWith(".jsonl")).sort()
  .flatMap((n) => Deno.readTextFileSync(FIXTURES + n).split("\n").filter((l) => l.trim() !== ""));

/** mulberry32: a small deterministic PRNG. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const KINDS = new Set(["socket", "bind", "listen", "unlisten", "close", "dup", "fork", "exec", "exit"]);

/** What every produced event must look like, whatever the input. */
function checkEvent(e: SocketEvent, input: string): void {
  const where = `for input ${input.slice(0, 200)}`;
  assert.ok(Number.isFinite(e.ts), `ts ${where}`);
  assert.ok(KINDS.has(e.kind), `kind ${where}`);
  assert.ok(Number.isSafeInteger(e.pid) && e.pid > 0, `pid ${where}`);
  if (e.fd !== undefined) assert.ok(Number.isSafeInteger(e.fd) && e.fd >= 0, `fd ${where}`);
  if (e.oldFd !== undefined) assert.ok(Number.isSafeInteger(e.oldFd) && e.oldFd >= 0, `oldFd ${where}`);
  if (e.kind === "dup") {
    assert.ok(e.fd !== undefined && e.oldFd !== undefined && e.fd !== e.oldFd, `dup ${where}`);
  }
  if (e.port !== undefined) {
    assert.ok(Number.isInteger(e.port) && e.port >= 0 && e.port <= 65535, `port ${where}`);
  }
  if (e.addr !== undefined) assert.equal(typeof e.addr, "string", `addr ${where}`);
  if (e.family !== undefined) assert.ok(e.family === 4 || e.family === 6, `family ${where}`);
  if (e.proto !== undefined) assert.ok(e.proto === "tcp" || e.proto === "udp", `proto ${where}`);
  if (e.childPid !== undefined) {
    assert.ok(Number.isSafeInteger(e.childPid) && e.childPid > 0, `childPid ${where}`);
  }
  for (const k of ["containerId", "containerName"] as const) {
    assert.ok(
      e[k] === null || e[k] === undefined || (typeof e[k] === "string" && e[k] !== ""),
      `${k} ${where}`,
    );
  }
  for (const [k, v] of Object.entries(e)) assert.notEqual(v, undefined, `${k} is set to undefined ${where}`);
}

/** Parse must not throw and must answer events or a skip reason; the adapter must not throw either. */
function check(line: string, adapter: TraceeAdapter): void {
  const r = parseTraceeLine(line);
  if ("skip" in r) assert.equal(typeof r.skip, "string");
  else for (const e of r.events) checkEvent(e, line);
  for (const e of adapter.push(line)) checkEvent(e, line);
}

const WEIRD: unknown[] = [
  null,
  true,
  false,
  0,
  -1,
  1.5,
  -0,
  1e308,
  -1e308,
  2 ** 53,
  2 ** 64,
  18446744073709551615,
  "",
  "0",
  "-1",
  "99999999999999999999",
  "AF_INET",
  "AF_INET6",
  "SOCK_DGRAM",
  "::",
  "0.0.0.0",
  "x".repeat(5000),
  [],
  [1, 2],
  {},
  { sa_family: "AF_INET" },
  { sa_family: "AF_INET6", sin6_addr: "::", sin6_port: "-5" },
];

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** Every (container, key) pair in a value, to mutate one. */
function slots(v: Json, out: [Json[] | { [k: string]: Json }, string | number][] = []) {
  if (Array.isArray(v)) v.forEach((x, i) => (out.push([v, i]), slots(x, out)));
  else if (v !== null && typeof v === "object") {
    for (const [k, x] of Object.entries(v)) (out.push([v, k]), slots(x, out));
  }
  return out;
}

function mutate(line: string, rand: () => number): string {
  const o = JSON.parse(line) as Json;
  const all = slots(o);
  const n = 1 + Math.floor(rand() * 3);
  for (let i = 0; i < n && all.length; i++) {
    const [holder, key] = all[Math.floor(rand() * all.length)];
    const op = rand();
    if (op < 0.3) {
      if (Array.isArray(holder)) holder.splice(key as number, 1);
      else delete holder[key as string];
    } else {
      const value = WEIRD[Math.floor(rand() * WEIRD.length)] as Json;
      (holder as Record<string | number, Json>)[key] = structuredClone(value);
    }
  }
  return JSON.stringify(o);
}

// Lines with every handled event, in each format, to mutate.
const V024 = JSON.parse(ALL.find((l) => l.includes('"eventName":"socket"'))!);
const EXTRA = [
  JSON.stringify({
    ...V024,
    eventName: "sched_process_fork",
    args: [{ name: "child_pid", type: "int32", value: 61000 }, {
      name: "child_tid",
      type: "int32",
      value: 61000,
    }],
  }),
  JSON.stringify({
    ...V024,
    eventName: "dup2",
    args: [{ name: "oldfd", type: "int32", value: 3 }, { name: "newfd", type: "int32", value: 0 }],
  }),
  JSON.stringify({
    ...V024,
    eventName: "dup",
    args: [{ name: "oldfd", type: "int32", value: 3 }],
    returnValue: 7,
  }),
  JSON.stringify({
    ...V024,
    eventName: "sched_process_exec",
    args: [{ name: "cmdpath", type: "const char*", value: "/usr/bin/python3" }],
  }),
  JSON.stringify({
    ...V024,
    eventName: "listen",
    args: [{ name: "sockfd", type: "int32", value: 3 }, { name: "backlog", type: "int32", value: 5 }],
  }),
  ALL.find((l) => l.includes('"name":"bind"'))!.replace('"name":"bind"', '"name":"sched_process_fork"')
    .replace(
      '{"name":"sockfd","int32":3}',
      '{"name":"child_pid","int32":61000}',
    ),
];
const SOCKET_LINES = [...ALL.filter((l) => !l.includes('"net_packet')), ...EXTRA];

Deno.test("fuzz: truncating lines at every position never throws", () => {
  const adapter = new TraceeAdapter();
  const picks = [
    ALL.find((l) => l.includes('"eventName":"close"'))!,
    ALL.find((l) => l.includes('"name":"bind"'))!,
    ALL.find((l) => l.includes('"eventName":"security_socket_bind"') && l.includes("AF_INET6"))!,
    ALL.find((l) => l.includes('"eventName":"socket"'))!,
  ];
  let cases = 0;
  for (const line of picks) {
    for (let i = 0; i <= line.length; i++) {
      check(line.slice(0, i), adapter);
      check(line.slice(i), adapter);
      cases += 2;
    }
  }
  assert.ok(cases > 4000, `${cases}`);
  // Every non-empty piece is counted once, as used or skipped (the two empty pieces per line are not).
  assert.equal(adapter.stats.used + adapter.stats.skipped, cases - 2 * picks.length);
});

Deno.test("fuzz: values replaced with wrong types, nulls, huge numbers; keys deleted", () => {
  const rand = rng(0x7ace);
  const adapter = new TraceeAdapter();
  let produced = 0;
  for (let i = 0; i < 4000; i++) {
    const line = mutate(SOCKET_LINES[i % SOCKET_LINES.length], rand);
    const r = parseTraceeLine(line);
    if ("events" in r) produced += r.events.length;
    check(line, adapter);
  }
  assert.ok(produced > 100, `mutations still leave many usable lines (${produced})`);
});

Deno.test("fuzz: random bytes and byte splices never throw", () => {
  const rand = rng(42);
  const adapter = new TraceeAdapter();
  const dec = new TextDecoder();
  for (let i = 0; i < 2000; i++) {
    const base = new TextEncoder().encode(SOCKET_LINES[i % SOCKET_LINES.length]);
    if (i % 2 === 0) {
      const bytes = new Uint8Array(Math.floor(rand() * 300));
      for (let j = 0; j < bytes.length; j++) bytes[j] = Math.floor(rand() * 256);
      check(dec.decode(bytes), adapter);
    } else {
      for (let k = 0; k < 1 + rand() * 4; k++) {
        base[Math.floor(rand() * base.length)] = Math.floor(rand() * 256);
      }
      check(dec.decode(base), adapter);
    }
  }
  // Deep nesting and a non-string input must not throw either.
  check("[".repeat(100_000), adapter);
  check('{"eventName":"close","args":' + "[".repeat(5000) + "]".repeat(5000) + "}", adapter);
  assert.ok("skip" in parseTraceeLine(undefined as unknown as string));
});
