import assert from "node:assert/strict";
import type { SocketEvent } from "../socket_event.ts";
import { parseIPv6, parseTraceeLine, rfc3339ToMs, type TraceeParseResult } from "./parse.ts";
import { TRACEE_FIXTURES } from "./testing/fixtures.ts";

const FIXTURES = TRACEE_FIXTURES;
const fixtureLines = (name: string) =>
  Deno.readTextFileSync(FIXTURES + name).split("\n").filter((l) => l.trim() !== "");

const events = (r: TraceeParseResult): SocketEvent[] => {
  assert.ok("events" in r, `expected events, got skip: ${"skip" in r ? r.skip : ""}`);
  return r.events;
};
const one = (line: string): SocketEvent => {
  const list = events(parseTraceeLine(line));
  assert.equal(list.length, 1);
  return list[0];
};
const skip = (line: string): string => {
  const r = parseTraceeLine(line);
  assert.ok("skip" in r, `expected a skip, got ${JSON.stringify(r)}`);
  return r.skip;
};

// A v0.24 envelope line to vary: python3 (pid 52000) on the host.
const V024 = JSON.parse(fixtureLines("socket_bind_listen_close.v0.24.constructed.jsonl")[0]);
/** A v0.24 line for `eventName` with args and returnValue. */
function v024(eventName: string, args: { name: string; type: string; value: unknown }[], returnValue = 0) {
  return JSON.stringify({ ...V024, eventName, args, argsNum: args.length, returnValue });
}
const V1 = JSON.parse(fixtureLines("security_socket_bind_listen.main-v1beta1.constructed.jsonl")[2]);
/** A v1beta1 line for `name` with data items. */
function v1(name: string, data: Record<string, unknown>[]) {
  return JSON.stringify({ ...V1, name, data });
}
const host = { cgroupId: 5650, containerId: null, containerName: null };

Deno.test("parseTraceeLine: flat v0.8 close", () => {
  assert.deepEqual(one(fixtureLines("close.v0.8-flat.jsonl")[0]), {
    ts: 1657322300534,
    kind: "close",
    pid: 2578238,
    comm: "bash",
    fd: 3,
    cgroupId: 1,
    containerId: null,
    containerName: null,
  });
});

Deno.test("parseTraceeLine: security_socket_bind in a container, IPv6 on the host, AF_UNIX skipped", () => {
  const [nginx, dnsmasq, unix] = fixtureLines("security_socket_bind.v0.24.constructed.jsonl");
  assert.deepEqual(one(nginx), {
    ts: 1735689600123,
    kind: "bind",
    pid: 43210, // hostProcessId, not the container's processId 1
    comm: "nginx",
    fd: 6,
    family: 4,
    addr: "0.0.0.0",
    port: 80,
    cgroupId: 9876,
    containerId: "3f8a1c2b9d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8",
    containerName: "web",
  });
  const d = one(dnsmasq);
  assert.equal(d.proto, undefined, "an LSM bind does not say the protocol");
  assert.deepEqual([d.family, d.addr, d.port, d.containerId], [6, "::", 5353, null]);
  assert.match(skip(unix), /AF_UNIX/);
});

Deno.test("parseTraceeLine: security_socket_listen is tcp with its address", () => {
  const [, py] = fixtureLines("security_socket_listen.v0.24.constructed.jsonl");
  assert.deepEqual(one(py), {
    ts: 1735689702000,
    kind: "listen",
    pid: 52000,
    comm: "python3",
    fd: 3,
    proto: "tcp",
    family: 6,
    addr: "::",
    port: 8080,
    ...host,
  });
});

Deno.test("parseTraceeLine: ns timestamps keep their precision (no rounding up into the next ms)", () => {
  // 1735689600123999999 is 1735689600124000000 as a double.
  const line = fixtureLines("security_socket_listen.v0.24.constructed.jsonl")[0];
  assert.ok(line.startsWith('{"timestamp":1735689600123999999,'));
  assert.equal(one(line).ts, 1735689600123);
  // Not the first key: the parsed number is used.
  const moved = JSON.stringify({ ...JSON.parse(line), timestamp: undefined }).replace(
    "{",
    '{"x":1,"timestamp":1735689600123000000,',
  );
  assert.equal(one(moved).ts, 1735689600123);
});

Deno.test("parseTraceeLine: v1beta1 envelope", () => {
  const lines = fixtureLines("security_socket_bind_listen.main-v1beta1.constructed.jsonl");
  const bind = one(lines[2]);
  assert.deepEqual(bind, {
    ts: 1735689701700,
    kind: "bind",
    pid: 52000,
    comm: "python3",
    fd: 3,
    family: 6,
    addr: "::",
    port: 8080,
    containerId: null,
    containerName: null,
  });
  assert.equal(one(lines[0]).containerName, "web");
  assert.equal(one(lines[0]).cgroupId, undefined, "v1beta1 has no cgroup id");
  assert.equal(one(lines[4]).kind, "close");
});

Deno.test("parseTraceeLine: v1beta1 omits zero ports and carries returnValue as a data item", () => {
  const addr = { name: "addr", sockaddr: { sa_family: "AF_INET", sin_addr: "127.0.0.1" } };
  const e = one(v1("bind", [{ name: "sockfd", int32: 5 }, addr, { name: "returnValue", int64: "0" }]));
  assert.deepEqual([e.addr, e.port, e.failed], ["127.0.0.1", 0, undefined]);
  const failed = one(v1("bind", [{ name: "sockfd", int32: 5 }, addr, { name: "returnValue", int64: "-98" }]));
  assert.equal(failed.failed, true);
  const sock = one(v1("socket", [
    { name: "domain", int32: 2 },
    { name: "type", int32: 2 },
    { name: "protocol", int32: 0 },
    { name: "returnValue", int64: "7" },
  ]));
  assert.deepEqual([sock.kind, sock.fd, sock.proto, sock.family], ["socket", 7, "udp", 4]);
  // The old formats always print the port: a missing one is malformed.
  assert.match(
    skip(v024("bind", [{ name: "sockfd", type: "int32", value: 3 }, {
      name: "addr",
      type: "SockAddr",
      value: { sa_family: "AF_INET", sin_addr: "0.0.0.0" },
    }])),
    /sin_port/,
  );
});

Deno.test("parseTraceeLine: v1beta1 timestamps with offsets and short fractions", () => {
  assert.equal(rfc3339ToMs("2025-01-01T00:00:00Z"), 1735689600000);
  assert.equal(rfc3339ToMs("2025-01-01T00:01:41.7Z"), 1735689701700);
  assert.equal(rfc3339ToMs("2025-01-01T02:00:00.999999999+02:00"), 1735689600999);
  assert.equal(rfc3339ToMs("2024-12-31T23:00:00-01:00"), 1735689600000);
  assert.equal(rfc3339ToMs("2025-13-01T00:00:00Z"), undefined);
  assert.equal(rfc3339ToMs("yesterday"), undefined);
  assert.match(skip(JSON.stringify({ ...V1, timestamp: "soon" })), /RFC3339/);
});

Deno.test("parseTraceeLine: bind/listen/close syscalls: returnValue != 0 is failed", () => {
  const fd = { name: "sockfd", type: "int32", value: 3 };
  const addr = {
    name: "addr",
    type: "SockAddr",
    value: { sa_family: "AF_INET", sin_addr: "127.0.0.1", sin_port: "53" },
  };
  assert.equal(one(v024("bind", [fd, addr], -98)).failed, true);
  assert.equal(one(v024("bind", [fd, addr], 0)).failed, undefined);
  const listen = one(v024("listen", [fd, { name: "backlog", type: "int32", value: 5 }], -95));
  assert.deepEqual([listen.kind, listen.proto, listen.failed, listen.addr], [
    "listen",
    "tcp",
    true,
    undefined,
  ]);
  assert.equal(one(v024("close", [{ name: "fd", type: "int32", value: 9 }], -9)).failed, true);
});

Deno.test("parseTraceeLine: socket() and security_socket_create", () => {
  const args = (domain: unknown, type: unknown, protocol: unknown = 0) => [
    { name: "domain", type: "int32", value: domain },
    { name: "type", type: "int32", value: type },
    { name: "protocol", type: "int32", value: protocol },
  ];
  const udp = one(v024("socket", args("AF_INET", "SOCK_DGRAM|SOCK_NONBLOCK|SOCK_CLOEXEC"), 4));
  assert.deepEqual([udp.fd, udp.proto, udp.family], [4, "udp", 4]);
  // Without option:parse-arguments: numbers (SOCK_STREAM|SOCK_CLOEXEC = 524289).
  const tcp = one(v024("socket", args(10, 524289, 6), 5));
  assert.deepEqual([tcp.fd, tcp.proto, tcp.family], [5, "tcp", 6]);
  assert.deepEqual([udp.cloexec, tcp.cloexec], [true, true], "close-on-exec, in words or bits");
  assert.equal(one(v024("socket", args(2, 1), 6)).cloexec, undefined);
  assert.equal(one(v024("socket", args(2, 1, "IPPROTO_MPTCP"), 5)).proto, "tcp");
  assert.equal(one(v024("socket", args(2, 2), -24)).failed, true);
  assert.match(skip(v024("socket", args("AF_UNIX", "SOCK_STREAM"), 3)), /not an IP socket/);
  assert.match(skip(v024("socket", args("AF_NETLINK", 3), 3)), /not an IP socket/);
  assert.match(skip(v024("socket", args("AF_INET", "SOCK_RAW", 1), 3)), /not a TCP\/UDP socket/);
  assert.match(skip(v024("socket", args(2, 1, 132), 3)), /not a TCP\/UDP socket/, "SCTP");
  assert.match(skip(v024("socket", args(2, { x: 1 }), 3)), /unreadable/);

  const create = fixtureLines("socket_bind_listen_close.v0.24.constructed.jsonl")[1];
  assert.deepEqual(one(create), {
    ts: 1735689701600,
    kind: "socket",
    pid: 52000,
    comm: "python3",
    proto: "tcp",
    family: 6,
    ...host,
  });
  const kern = JSON.parse(create);
  kern.args[3].value = 1;
  assert.match(skip(JSON.stringify(kern)), /kernel-internal/);
});

Deno.test("parseTraceeLine: sched_process_exit is the process's, not a thread's", () => {
  const exit = (group: unknown, tid = 52000) =>
    JSON.stringify({
      ...V024,
      eventName: "sched_process_exit",
      hostThreadId: tid,
      args: group === undefined ? [] : [{ name: "process_group_exit", type: "bool", value: group }],
    });
  assert.deepEqual(one(exit(true)), {
    ts: 1735689701500,
    kind: "exit",
    pid: 52000,
    comm: "python3",
    ...host,
  });
  assert.match(skip(exit(false)), /thread/);
  assert.equal(one(exit(undefined)).kind, "exit", "no flag: the leader thread's exit is the process's");
  assert.match(skip(exit(undefined, 52001)), /thread/);
  assert.match(skip(exit("yes")), /not a bool/);
});

Deno.test("parseTraceeLine: sched_process_fork (shape from Tracee's event definitions)", () => {
  const fork = (childPid: unknown) =>
    v024("sched_process_fork", [
      { name: "parent_tid", type: "int32", value: 52000 },
      { name: "parent_pid", type: "int32", value: 52000 },
      { name: "child_tid", type: "int32", value: 52077 },
      { name: "child_pid", type: "int32", value: childPid },
      { name: "child_ns_pid", type: "int32", value: 7 },
    ]);
  assert.deepEqual(one(fork(52077)), {
    ts: 1735689701500,
    kind: "fork",
    pid: 52000,
    childPid: 52077,
    comm: "python3",
    ...host,
  });
  assert.match(skip(fork(52000)), /thread/);
  assert.match(skip(fork(null)), /child_pid/);
  const v1fork = one(v1("sched_process_fork", [{ name: "child_pid", int32: 60001 }]));
  assert.deepEqual([v1fork.kind, v1fork.childPid], ["fork", 60001]);
});

Deno.test("parseTraceeLine: pid, container and comm fall-backs", () => {
  const o = { ...V024, eventName: "close", args: [{ name: "fd", type: "int", value: 1 }] };
  assert.equal(one(JSON.stringify({ ...o, hostProcessId: undefined })).pid, 52000);
  assert.equal(one(JSON.stringify({ ...o, hostProcessId: undefined, processId: 7 })).pid, 7);
  // Flat format: containerName at the top level; envelope: container.name wins.
  const flat = one(JSON.stringify({ ...o, container: undefined, containerId: "abc", containerName: "db" }));
  assert.deepEqual([flat.containerId, flat.containerName], ["abc", "db"]);
  const env = one(JSON.stringify({ ...o, containerId: "abc", container: { id: "abc", name: "" } }));
  assert.deepEqual([env.containerId, env.containerName], ["abc", null]);
  assert.equal("comm" in one(JSON.stringify({ ...o, processName: "" })), false);
  assert.equal("netns" in one(JSON.stringify(o)), false, "pidNamespace/mountNamespace are not netns");
  // The real container line (net_packet_http) keeps only the id: name is null; it is skipped anyway.
  assert.match(skip(fixtureLines("net_packet_http.container.v0.20.jsonl")[0]), /network packet/);
});

Deno.test("parseTraceeLine: sockaddr text is canonicalized", () => {
  const bind = (value: unknown) =>
    one(
      v024("bind", [{ name: "sockfd", type: "int32", value: 3 }, { name: "addr", type: "SockAddr", value }]),
    );
  const six = (a: string) => bind({ sa_family: "AF_INET6", sin6_addr: a, sin6_port: "1" }).addr;
  assert.equal(six("0:0:0:0:0:0:0:1"), "::1");
  assert.equal(six("::FFFF:127.0.0.1"), "::ffff:127.0.0.1");
  assert.equal(six("fd12:3456:789a:0:0:0:0:2"), "fd12:3456:789a::2");
  assert.equal(bind({ sa_family: "AF_INET", sin_addr: "10.0.0.1", sin_port: 65535 }).port, 65535);
  assert.equal(parseIPv6("1::2::3"), undefined);
  assert.equal(parseIPv6("1:2:3:4:5:6:7:8:9"), undefined);
  assert.equal(parseIPv6("::1.2.3.256"), undefined);
  assert.deepEqual([...parseIPv6("::1.2.3.4")!], [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4]);
  const bad = (value: unknown) =>
    skip(
      v024("bind", [{ name: "sockfd", type: "int32", value: 3 }, { name: "addr", type: "SockAddr", value }]),
    );
  assert.match(bad({ sa_family: "AF_INET", sin_addr: "1.2.3", sin_port: "1" }), /IPv4/);
  assert.match(bad({ sa_family: "AF_INET", sin_addr: "1.2.3.4", sin_port: "65536" }), /port/);
  assert.match(bad({ sa_family: "AF_NETLINK" }), /AF_NETLINK/);
  assert.match(bad("AF_INET"), /not an object/);
});

Deno.test("parseTraceeLine: unusable lines are skipped with a reason", () => {
  assert.equal(skip(""), "not JSON");
  assert.equal(skip("{"), "not JSON");
  assert.equal(skip("[1]"), "not a JSON object");
  assert.equal(skip("null"), "not a JSON object");
  assert.match(skip('{"hello":1}'), /not a Tracee event/);
  assert.match(skip(v024("openat", [])), /unhandled event "openat"/);
  assert.match(skip(JSON.stringify({ ...V024, eventName: "close", args: {} })), /args is not an array/);
  assert.match(skip(JSON.stringify({ ...V024, eventName: "close", args: [] })), /fd/);
  assert.match(skip(JSON.stringify({ ...V024, timestamp: "1" })), /timestamp/);
  assert.match(skip(JSON.stringify({ ...V024, hostProcessId: -1, processId: "x" })), /hostProcessId/);
  for (const name of ["net_packet_tcp", "net_packet_udp", "net_packet_http"]) {
    assert.match(skip(v024(name, [])), /network packet/);
  }
});

Deno.test("parseTraceeLine: dup, dup2, dup3 (shape from Tracee's event definitions) and sched_process_exec", () => {
  const fd = (name: string, value: unknown) => ({ name, type: "int32", value });
  const pick = (e: SocketEvent) => [e.kind, e.pid, e.fd, e.oldFd, e.cloexec];
  // dup(oldfd): the new fd is the return value.
  assert.deepEqual(pick(one(v024("dup", [fd("oldfd", 3)], 7))), ["dup", 52000, 7, 3, undefined]);
  assert.deepEqual(pick(one(v024("dup2", [fd("oldfd", 3), fd("newfd", 0)], 0))), [
    "dup",
    52000,
    0,
    3,
    undefined,
  ]);
  const dup3 = v024("dup3", [fd("oldfd", 3), fd("newfd", 9), fd("flags", "O_CLOEXEC")], 9);
  assert.deepEqual(pick(one(dup3)), ["dup", 52000, 9, 3, true]);
  assert.equal(one(v024("dup3", [fd("oldfd", 3), fd("newfd", 9), fd("flags", 524288)], 9)).cloexec, true);
  assert.equal(one(v024("dup3", [fd("oldfd", 3), fd("newfd", 9), fd("flags", 0)], 9)).cloexec, undefined);
  assert.match(skip(v024("dup2", [fd("oldfd", 3), fd("newfd", 0)], -9)), /failed/);
  assert.match(skip(v024("dup2", [fd("oldfd", 4), fd("newfd", 4)], 4)), /onto itself/);
  const noReturn = JSON.stringify({ ...JSON.parse(v024("dup", [fd("oldfd", 3)])), returnValue: undefined });
  assert.match(skip(noReturn), /returnValue/);
  assert.match(skip(v024("dup2", [fd("oldfd", 3)])), /newfd/);
  assert.match(skip(v024("dup3", [fd("newfd", 3)])), /oldfd/);
  // v1beta1: the new fd as a data item.
  const v1dup = one(v1("dup2", [{ name: "oldfd", int32: 5 }, { name: "newfd", int32: 1 }, {
    name: "returnValue",
    int64: "1",
  }]));
  assert.deepEqual([v1dup.kind, v1dup.fd, v1dup.oldFd], ["dup", 1, 5]);
  const exec = one(
    v024("sched_process_exec", [{ name: "cmdpath", type: "const char*", value: "/bin/sleep" }]),
  );
  assert.deepEqual([exec.kind, exec.pid, exec.fd], ["exec", 52000, undefined]);
});
