import assert from "node:assert/strict";
import { SocketLedger } from "./ledger.ts";
import type { SocketEvent } from "./socket_event.ts";
import { scannedSocket as scanned } from "./testing/socket_events.ts";

const NS = 7;
const listen = (inode: number, port: number, sk: string): SocketEvent => ({
  ts: 0,
  kind: "listen",
  pid: 10,
  proto: "tcp",
  fd: 3,
  sk,
  inode,
  port,
  family: 4,
  addr: "0.0.0.0",
  netns: NS,
});

Deno.test("SocketLedger: an unlisten removes its socket by sk, and only that one", () => {
  const l = new SocketLedger();
  l.apply(listen(1, 80, "0xa"), NS);
  l.apply(listen(2, 81, "0xb"), NS);
  assert.deepEqual(l.apply({ ts: 0, kind: "unlisten", pid: 0, sk: "0xa", port: 80, netns: NS }, NS), [NS]);
  assert.deepEqual(l.sockets().map((s) => s.port), [81]);
  assert.deepEqual(l.apply({ ts: 0, kind: "unlisten", pid: 0, sk: "0xa", port: 80, netns: NS }, NS), []);
});

Deno.test("SocketLedger: a reconciliation does not judge sockets events changed while its scan was in flight", () => {
  const l = new SocketLedger();
  l.apply(listen(1, 80, "0xa"), NS);
  const changed = l.watchChanges();
  // The scan saw 80 open and 81 not yet; then the events arrive: 80 closed, 81 opened.
  const scan = [scanned(1, 80)];
  l.apply({ ts: 0, kind: "unlisten", pid: 0, sk: "0xa", port: 80, netns: NS }, NS);
  l.apply(listen(2, 81, "0xb"), NS);
  l.unwatchChanges(changed);
  assert.deepEqual([...changed].filter((k) => k.startsWith("ino:")).sort(), ["ino:1", "ino:2"]);
  assert.ok(changed.has("pid:10"), "and the processes they were about");
  assert.equal(l.reconcile(NS, scan, () => [], changed), 0, "no drift");
  assert.deepEqual(l.sockets().map((s) => s.port), [81], "the events' word stands");
  // Without the watch the same scan is drift both ways.
  assert.equal(l.reconcile(NS, scan, () => []), 2);
  assert.deepEqual(l.sockets().map((s) => s.port), [80]);
});

const bind = (pid: number, port: number, sk: string, inode: number, kts: number): SocketEvent => ({
  ts: 0,
  kts,
  kind: "bind",
  pid,
  proto: "udp",
  fd: 4,
  sk,
  inode,
  port,
  family: 4,
  addr: "0.0.0.0",
  netns: NS,
});

Deno.test("SocketLedger, out of order: an end applied before its older open leaves no socket", () => {
  const l = new SocketLedger();
  // Read first (another CPU), applied first (the engine's hold was not enough): the ends find nothing.
  assert.deepEqual(
    l.apply({ ts: 0, kts: 20, kind: "unlisten", pid: 0, sk: "0xa", port: 80, netns: NS }, NS),
    [],
  );
  assert.deepEqual(l.apply({ ts: 0, kts: 21, kind: "close", pid: 9, fd: 4, sk: "0xb", inode: 2 }, NS), []);
  l.apply({ ts: 0, kts: 22, kind: "exit", pid: 11 }, NS);
  l.apply({ ...listen(1, 80, "0xa"), kts: 10 }, NS);
  l.apply(bind(9, 81, "0xb", 2, 11), NS);
  l.apply(bind(11, 82, "0xc", 3, 12), NS);
  assert.deepEqual(l.sockets(), [], "no phantom");
  assert.equal(l.lateOpens, 3);
  // A newer socket at the same address is not one of those.
  l.apply({ ...listen(4, 80, "0xa"), kts: 30 }, NS);
  l.apply(bind(11, 83, "0xd", 5, 31), NS); // pid 11 reused
  assert.deepEqual(l.sockets().map((s) => s.port), [80, 83]);
});

Deno.test("SocketLedger, out of order: a socket made at the address of one whose end is still held", () => {
  const l = new SocketLedger();
  l.apply({ ...listen(1, 80, "0xa"), kts: 10 }, NS);
  // Socket 1 closed at 20 (its end held), socket 4 made at the same address at 30.
  assert.deepEqual(l.apply({ ...listen(4, 81, "0xa"), kts: 30 }, NS), [NS]);
  assert.deepEqual(l.sockets().map((s) => s.port), [81], "the freed one is gone");
  assert.deepEqual(
    l.apply({ ts: 0, kts: 20, kind: "unlisten", pid: 0, sk: "0xa", port: 80, netns: NS }, NS),
    [],
  );
  assert.deepEqual(l.sockets().map((s) => s.port), [81], "the old end does not close the new socket");
});

Deno.test("SocketLedger, out of order: a fork read before the bind it follows still hands the socket down", () => {
  const l = new SocketLedger();
  l.apply({ ts: 0, kts: 20, kind: "fork", pid: 9, childPid: 10 }, NS); // read first
  l.apply({ ts: 0, kts: 25, kind: "fork", pid: 10, childPid: 12 }, NS); // the child forks too
  l.apply(bind(9, 81, "0xb", 2, 10), NS);
  assert.deepEqual([...l.sockets()[0].pids].sort(), [10, 12, 9]);
  l.apply({ ts: 0, kts: 30, kind: "exit", pid: 9 }, NS);
  l.apply({ ts: 0, kts: 31, kind: "exit", pid: 10 }, NS);
  assert.deepEqual(l.sockets().map((s) => s.port), [81], "the grandchild holds it");
  // A fork older than a bind (the bind read first) does not give the child that socket.
  l.apply(bind(20, 82, "0xc", 3, 50), NS);
  l.apply({ ts: 0, kts: 40, kind: "fork", pid: 20, childPid: 21 }, NS);
  assert.deepEqual([...l.sockets().find((s) => s.port === 82)!.pids], [20]);
  assert.deepEqual(l.apply({ ts: 0, kts: 60, kind: "exit", pid: 20 }, NS), [NS], "its exit closes it");
});
