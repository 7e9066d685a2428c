import assert from "node:assert/strict";
import type { SocketEvent } from "../socket_event.ts";
import { TraceeAdapter } from "./adapter.ts";
import { SocketLedger } from "../ledger.ts";
import {
  fixtureLines as lines,
  TRACEE_EXPECTED as EXPECTED,
  TRACEE_FIXTURES as FIXTURES,
} from "./testing/fixtures.ts";

const fixtureNames = () =>
  [...Deno.readDirSync(FIXTURES)].map((e) => e.name).filter((n) => n.endsWith(".jsonl")).sort();

// ---------------------------------------------------------------------------------------------------------------
// Fixtures

Deno.test("TraceeAdapter: every fixture file gives exactly its expected events", () => {
  const expectedFiles = [...Deno.readDirSync(EXPECTED)].map((e) => e.name).sort();
  assert.deepEqual(expectedFiles, fixtureNames().map((n) => n.replace(/\.jsonl$/, ".json")).sort());
  for (const name of fixtureNames()) {
    const expected = JSON.parse(Deno.readTextFileSync(EXPECTED + name.replace(/\.jsonl$/, ".json")));
    const adapter = new TraceeAdapter();
    const got = lines(name).flatMap((l) => adapter.push(l));
    assert.deepEqual(got, expected.events, name);
    assert.deepEqual([adapter.stats.used, adapter.stats.skipped], [expected.used, expected.skipped], name);
    assert.equal(adapter.stats.events, expected.events.length, name);
  }
});

Deno.test("TraceeAdapter: network packet fixtures give nothing, every line counted as skipped", () => {
  for (const name of fixtureNames().filter((n) => n.startsWith("net_packet"))) {
    const adapter = new TraceeAdapter();
    const all = lines(name).filter((l) => l.trim() !== "");
    assert.deepEqual(all.flatMap((l) => adapter.push(l)), [], name);
    assert.deepEqual(adapter.stats, { used: 0, skipped: all.length, events: 0 }, name);
  }
});

// ---------------------------------------------------------------------------------------------------------------
// The per-(pid, fd) table

const BASE = JSON.parse(lines("socket_bind_listen_close.v0.24.constructed.jsonl")[0]);
type Arg = { name: string; type: string; value: unknown };
const line = (eventName: string, pid: number, args: Arg[], returnValue = 0) =>
  JSON.stringify({ ...BASE, eventName, hostProcessId: pid, hostThreadId: pid, args, returnValue });
const socket = (pid: number, fd: number, type: string) =>
  line("socket", pid, [
    { name: "domain", type: "string", value: "AF_INET" },
    { name: "type", type: "string", value: type },
    { name: "protocol", type: "int32", value: 0 },
  ], fd);
const sockfd = (fd: number): Arg => ({ name: "sockfd", type: "int32", value: fd });
const addr = (name: string, port: number): Arg => ({
  name,
  type: "SockAddr",
  value: { sa_family: "AF_INET", sin_addr: "0.0.0.0", sin_port: String(port) },
});
const lsmBind = (pid: number, fd: number, port: number) =>
  line("security_socket_bind", pid, [sockfd(fd), addr("local_addr", port)]);
const bind = (pid: number, fd: number, port: number, ret = 0) =>
  line("bind", pid, [sockfd(fd), addr("addr", port)], ret);
const listen = (pid: number, fd: number, ret = 0) =>
  line("listen", pid, [sockfd(fd), { name: "backlog", type: "int32", value: 5 }], ret);
const close = (pid: number, fd: number) => line("close", pid, [{ name: "fd", type: "int32", value: fd }]);
const fork = (pid: number, child: number) =>
  line("sched_process_fork", pid, [{ name: "child_pid", type: "int32", value: child }]);
const exit = (pid: number) =>
  line("sched_process_exit", pid, [{ name: "process_group_exit", type: "bool", value: true }]);
const pick = (e: SocketEvent) => [e.kind, e.pid, e.fd, e.proto, e.addr, e.port];

Deno.test("TraceeAdapter: a bind learns tcp/udp from the socket() that made its fd", () => {
  const a = new TraceeAdapter();
  a.push(socket(10, 5, "SOCK_DGRAM|SOCK_CLOEXEC"));
  a.push(socket(10, 6, "SOCK_STREAM"));
  assert.deepEqual(a.push(lsmBind(10, 5, 53)).map(pick), [["bind", 10, 5, "udp", "0.0.0.0", 53]]);
  assert.deepEqual(a.push(lsmBind(10, 6, 80)).map(pick), [["bind", 10, 6, "tcp", "0.0.0.0", 80]]);
  assert.equal(a.push(lsmBind(11, 5, 54))[0].proto, undefined, "another process's fd 5 is unknown");
  assert.equal(a.trackedFds, 3);
});

Deno.test("TraceeAdapter: a listen syscall gets the address of the bind before it; failed binds are not kept", () => {
  const a = new TraceeAdapter();
  a.push(socket(10, 6, "SOCK_STREAM"));
  a.push(bind(10, 6, 8080, -98)); // EADDRINUSE
  assert.deepEqual(a.push(listen(10, 6, -22)).map(pick), [["listen", 10, 6, "tcp", undefined, undefined]]);
  a.push(bind(10, 6, 8081));
  const [l] = a.push(listen(10, 6));
  assert.deepEqual(pick(l), ["listen", 10, 6, "tcp", "0.0.0.0", 8081]);
  assert.deepEqual(Object.keys(l).slice(0, 10), [
    "ts",
    "kind",
    "pid",
    "comm",
    "fd",
    "proto",
    "family",
    "addr",
    "port",
    "cgroupId",
  ]);
});

Deno.test("TraceeAdapter: close and exit forget fds; fork copies them to the child", () => {
  const a = new TraceeAdapter();
  a.push(socket(10, 5, "SOCK_DGRAM"));
  a.push(socket(10, 7, "SOCK_STREAM"));
  assert.deepEqual(a.push(fork(10, 20)).map((e) => [e.kind, e.pid, e.childPid]), [["fork", 10, 20]]);
  assert.equal(a.trackedFds, 4);
  assert.equal(a.push(lsmBind(20, 5, 53))[0].proto, "udp", "the child inherited fd 5");
  a.push(close(10, 5));
  assert.equal(a.push(lsmBind(10, 5, 53))[0].proto, undefined, "fd 5 was closed in the parent");
  assert.equal(a.push(lsmBind(20, 7, 80))[0].proto, "tcp");
  assert.deepEqual(a.push(exit(20)).map((e) => e.kind), ["exit"]);
  assert.equal(a.push(lsmBind(20, 7, 80))[0].proto, undefined);
  a.push(exit(10));
  assert.equal(a.trackedFds, 1, "only the bind after pid 20's exit (a reused pid)");
  a.push(close(20, 7));
  assert.equal(a.trackedFds, 0);
});

const dup2 = (pid: number, oldfd: number, newfd: number) =>
  line("dup2", pid, [
    { name: "oldfd", type: "int32", value: oldfd },
    { name: "newfd", type: "int32", value: newfd },
  ], newfd);
const dup = (pid: number, oldfd: number, newfd: number) =>
  line("dup", pid, [{ name: "oldfd", type: "int32", value: oldfd }], newfd);
const exec = (pid: number) =>
  line("sched_process_exec", pid, [{ name: "cmdpath", type: "const char*", value: "/bin/true" }]);
const kindFd = (e: SocketEvent) => [e.kind, e.fd, e.oldFd];

Deno.test("TraceeAdapter: a dup of a socket fd is passed on, after a close of the socket fd it replaced", () => {
  const a = new TraceeAdapter();
  a.push(socket(10, 5, "SOCK_STREAM"));
  a.push(socket(10, 6, "SOCK_DGRAM"));
  assert.deepEqual(a.push(dup2(10, 5, 0)).map(kindFd), [["dup", 0, 5]], "fd 0 was no socket we know");
  assert.equal(a.push(lsmBind(10, 0, 80))[0].proto, "tcp", "fd 0 is the TCP socket now");
  assert.deepEqual(a.push(dup2(10, 6, 0)).map(kindFd), [["close", 0, undefined], ["dup", 0, 6]]);
  assert.equal(a.push(lsmBind(10, 0, 53))[0].proto, "udp");
  assert.deepEqual(a.push(dup2(10, 9, 0)).map(kindFd), [["close", 0, undefined]], "fd 9 is no socket");
  assert.deepEqual(a.push(dup(10, 1, 7)), [], "neither is fd 1");
  assert.equal(a.stats.events, 8, "2 sockets, 2 binds, 4 from the dups");
  const [c] = a.push(dup2(10, 5, 6));
  assert.deepEqual(Object.keys(c), [
    "ts",
    "kind",
    "pid",
    "comm",
    "fd",
    "cgroupId",
    "containerId",
    "containerName",
  ]);
});

Deno.test("TraceeAdapter: an exec closes the close-on-exec socket fds first", () => {
  const a = new TraceeAdapter();
  a.push(socket(10, 5, "SOCK_STREAM|SOCK_CLOEXEC"));
  a.push(socket(10, 6, "SOCK_DGRAM"));
  a.push(dup(10, 5, 8)); // a dup's copy is not close-on-exec
  a.push(fork(10, 20));
  assert.deepEqual(a.push(exec(20)).map((e) => [e.kind, e.pid, e.fd]), [["close", 20, 5], [
    "exec",
    20,
    undefined,
  ]]);
  assert.equal(a.push(lsmBind(20, 5, 80))[0].proto, undefined, "fd 5 went at exec");
  assert.equal(a.push(lsmBind(20, 8, 80))[0].proto, "tcp", "the dup stayed");
  assert.equal(a.push(lsmBind(10, 5, 80))[0].proto, "tcp", "the parent's is untouched");
  assert.deepEqual(a.push(exec(30)).map((e) => e.kind), ["exec"], "a process with no known fd");
});

Deno.test("TraceeAdapter: the fd table is bounded", () => {
  const a = new TraceeAdapter(10);
  for (let pid = 1; pid <= 50; pid++) a.push(socket(pid, 3, "SOCK_STREAM"));
  assert.ok(a.trackedFds <= 10, `${a.trackedFds}`);
  assert.equal(a.push(lsmBind(50, 3, 1))[0].proto, "tcp", "the newest is kept");
  assert.equal(a.push(lsmBind(1, 3, 1))[0].proto, undefined, "the oldest was dropped");
});

Deno.test("TraceeAdapter: events() over lines; blank lines are not counted", async () => {
  const a = new TraceeAdapter();
  const got: SocketEvent[] = [];
  for await (
    const e of a.events(["", "  ", "junk", ...lines("socket_bind_listen_close.v0.24.constructed.jsonl")])
  ) {
    got.push(e);
  }
  assert.equal(got.length, 6);
  assert.deepEqual(a.stats, { used: 6, skipped: 1, events: 6 });
});

Deno.test("TraceeAdapter into the ledger: a forked child that exec's lets go of the close-on-exec listener", () => {
  const a = new TraceeAdapter();
  const ledger = new SocketLedger();
  const feed = (l: string) => a.push(l).map((e) => ledger.apply(e, 7));
  feed(socket(10, 5, "SOCK_STREAM|SOCK_CLOEXEC"));
  feed(bind(10, 5, 8080));
  feed(listen(10, 5));
  feed(fork(10, 20));
  assert.deepEqual(ledger.observationOf({ netns: 7, proto: "tcp", port: 8080 })?.pids, [10, 20]);
  feed(exec(20));
  assert.deepEqual(ledger.observationOf({ netns: 7, proto: "tcp", port: 8080 })?.pids, [10]);
  // The adapter closed what the exec let go of: the child holds no known socket, so /proc is not asked (a
  // socket the seed scan named and the child inherited would be known, and asked about).
  assert.deepEqual([...ledger.recheck], []);
  // The parent hands the listener to fd 3 (dup2), closes fd 5: it still holds it.
  feed(dup2(10, 5, 3));
  feed(close(10, 5));
  assert.deepEqual(ledger.observationOf({ netns: 7, proto: "tcp", port: 8080 })?.pids, [10]);
  feed(close(10, 3));
  assert.equal(ledger.observationOf({ netns: 7, proto: "tcp", port: 8080 }), undefined);
});
