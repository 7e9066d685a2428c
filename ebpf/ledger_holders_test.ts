/** The ledger's holders: who holds each socket through fork, close, dup, exec and exit, /proc reads and scans. */
import assert from "node:assert/strict";
import { type PortRef, SocketLedger } from "./ledger.ts";
import type { SocketEvent } from "./socket_event.ts";
import { scannedSocket as scanned } from "./testing/socket_events.ts";

const NS = 7;
const P = 100; // the parent
const C = 101; // its child

/** A TCP listen by `pid` (bpftrace-style: inode and sk known). */
const listen = (pid: number, inode: number, port: number, kts?: number, fd = 3): SocketEvent => ({
  ts: 0,
  kts,
  kind: "listen",
  pid,
  proto: "tcp",
  fd,
  sk: `0x${inode}`,
  inode,
  port,
  family: 4,
  addr: "0.0.0.0",
  netns: NS,
});
/** A close of fd by pid of socket `inode` (as bpftrace reports it: every close, `last` or not). */
const close = (pid: number, inode: number, last: boolean | undefined, kts?: number, fd = 3): SocketEvent => ({
  ts: 0,
  kts,
  kind: "close",
  pid,
  fd,
  sk: `0x${inode}`,
  inode,
  ...(last === undefined ? {} : { last }),
});
const fork = (pid: number, childPid: number, kts?: number): SocketEvent => ({
  ts: 0,
  kts,
  kind: "fork",
  pid,
  childPid,
});
const exec = (pid: number, kts?: number): SocketEvent => ({ ts: 0, kts, kind: "exec", pid });
const exit = (pid: number, kts?: number): SocketEvent => ({ ts: 0, kts, kind: "exit", pid });

const pidsOf = (l: SocketLedger, port: number) => l.observationOf({ netns: NS, proto: "tcp", port })?.pids;
const ports = (refs: PortRef[]) => [...new Set(refs.map((r) => r.port))];

Deno.test("SocketLedger holders: a close that was the last reference ends the socket, as one naming it does", () => {
  const l = new SocketLedger();
  l.apply(listen(P, 1, 80), NS);
  l.apply(listen(P, 2, 81), NS);
  assert.deepEqual(l.apply(close(P, 1, true), NS), [NS]);
  assert.deepEqual(l.apply(close(P, 2, undefined, undefined, 3), NS), [NS], "no `last`: ends it, as before");
  assert.deepEqual(l.sockets(), []);
  assert.deepEqual([...l.recheck], []);
});

Deno.test("SocketLedger holders: a fork hands a TCP listener to the child; the parent's close of its copy asks for a recheck", () => {
  const l = new SocketLedger();
  l.apply(listen(P, 1, 80), NS);
  assert.deepEqual(l.apply(fork(P, C), NS), [NS], "a new holder touches the port");
  assert.deepEqual(ports(l.touched), [80]);
  assert.deepEqual(pidsOf(l, 80), [P, C]);
  // The parent closes its copy: the socket lives on (the child's), the parent may hold it through a dup.
  assert.deepEqual(l.apply(close(P, 1, false), NS), []);
  assert.deepEqual(pidsOf(l, 80), [P, C], "not guessed");
  assert.deepEqual([...l.recheck], [P]);
  // /proc says the parent holds no socket now.
  assert.deepEqual(l.holdings(P, new Set([555])), [NS]);
  assert.deepEqual(ports(l.touched), [80]);
  assert.deepEqual(pidsOf(l, 80), [C], "only the child");
  assert.deepEqual([...l.recheck], []);
  assert.deepEqual([...l.sockets()[0].fds], [`${C}:3`]);
  // The child's close is the last: the socket ends.
  assert.deepEqual(l.apply(close(C, 1, true), NS), [NS]);
  assert.deepEqual(l.sockets(), []);
});

Deno.test("SocketLedger holders: a close that was not the last, with another fd of that pid known, needs no recheck", () => {
  const l = new SocketLedger();
  // Tracee-style: the dup is an event; bpftrace-style: a second listen() of the same socket through another fd.
  l.apply(listen(P, 1, 80, undefined, 3), NS);
  l.apply({ ts: 0, kind: "dup", pid: P, fd: 7, oldFd: 3 }, NS);
  assert.deepEqual([...l.sockets()[0].fds].sort(), [`${P}:3`, `${P}:7`]);
  assert.deepEqual(l.apply(close(P, 1, false, undefined, 3), NS), []);
  assert.deepEqual([...l.recheck], [], "fd 7 still holds it");
  assert.deepEqual(pidsOf(l, 80), [P]);
  assert.deepEqual([...l.sockets()[0].fds], [`${P}:7`]);
  // A close that was not the last and found no socket is no end: an older open read after it still counts.
  l.apply(close(9, 5, false, 20), NS);
  assert.deepEqual([...l.recheck], [9]);
  l.apply(listen(9, 5, 85, 10), NS);
  assert.deepEqual(pidsOf(l, 85), [9], "no tomb: the socket is live");
  assert.equal(l.lateOpens, 0);
});

Deno.test("SocketLedger holders: an exec asks for a recheck; /proc then says which sockets it kept", () => {
  const l = new SocketLedger();
  l.apply(listen(P, 1, 80), NS);
  l.apply(listen(P, 2, 81, undefined, 4), NS);
  l.apply(fork(P, C), NS);
  assert.deepEqual(l.apply(exec(C), NS), []);
  assert.deepEqual([...l.recheck], [C]);
  // The child kept socket 2 (not close-on-exec) and lost 1.
  assert.deepEqual(l.holdings(C, new Set([2])), [NS]);
  assert.deepEqual(ports(l.touched), [80]);
  assert.deepEqual(pidsOf(l, 80), [P]);
  assert.deepEqual(pidsOf(l, 81), [P, C]);
  assert.deepEqual([...l.recheck], []);
});

Deno.test("SocketLedger holders: holdings() adds a holder /proc names, drops a gone process, ends unheld sockets", () => {
  const l = new SocketLedger();
  l.apply(listen(P, 1, 80), NS);
  l.apply(listen(P, 2, 81, undefined, 4), NS);
  // Pid 300 got socket 1 in a way no event shows (SCM_RIGHTS): /proc names it.
  assert.deepEqual(l.holdings(300, new Set([1, 999])), [NS]);
  assert.deepEqual(pidsOf(l, 80), [P, 300]);
  assert.deepEqual(ports(l.touched), [80]);
  assert.deepEqual(l.holdings(300, new Set([1])), [], "nothing to change");
  assert.deepEqual(l.touched, []);
  // P is gone (undefined: no /proc entry): socket 2 had no other holder.
  assert.deepEqual(l.holdings(P, undefined), [NS]);
  assert.deepEqual(ports(l.touched).sort(), [80, 81]);
  assert.deepEqual(pidsOf(l, 80), [300]);
  assert.equal(pidsOf(l, 81), undefined, "its socket went with its last holder");
  // Sockets known by no inode (Tracee's pid:fd) are not judged by a /proc read of inodes.
  l.apply({ ts: 0, kind: "bind", pid: 400, fd: 5, proto: "udp", port: 53, addr: "0.0.0.0", netns: NS }, NS);
  assert.deepEqual(l.holdings(400, new Set()), []);
  assert.equal(l.sockets().find((s) => s.port === 53)?.pids.has(400), true);
});

Deno.test("SocketLedger holders: a /proc read that raced with events about its pid changes nothing", () => {
  const l = new SocketLedger();
  l.apply(listen(P, 1, 80), NS);
  l.apply(exec(P), NS);
  const changed = l.watchChanges();
  const proc = new Set<number>(); // read now: P holds nothing (yet)
  l.apply(listen(P, 2, 81), NS); // P opens a socket meanwhile
  l.unwatchChanges(changed);
  assert.deepEqual(l.holdings(P, proc, changed), []);
  assert.deepEqual([...l.recheck], [P], "read again");
  assert.deepEqual(pidsOf(l, 81), [P]);
  const fresh = l.watchChanges();
  l.unwatchChanges(fresh);
  assert.deepEqual(l.holdings(P, new Set([2]), fresh), [NS]);
  assert.equal(pidsOf(l, 80), undefined);
  assert.deepEqual(pidsOf(l, 81), [P]);
});

Deno.test("SocketLedger holders: a fork of a pid in doubt puts the child in doubt; an exit clears the doubt", () => {
  const l = new SocketLedger();
  l.apply(listen(P, 1, 80), NS);
  l.apply(exec(P), NS);
  l.apply(fork(P, C), NS);
  assert.deepEqual([...l.recheck].sort(), [P, C]);
  assert.deepEqual(l.apply(exit(C), NS), [NS], "a holder less touches the port");
  assert.deepEqual([...l.recheck], [P]);
  assert.deepEqual(pidsOf(l, 80), [P]);
});

Deno.test("SocketLedger holders, out of order: an exec read before an older open of its process asks for a recheck", () => {
  const l = new SocketLedger();
  l.apply(exec(P, 20), NS);
  l.holdings(P, new Set()); // the engine read /proc: nothing held yet
  assert.deepEqual([...l.recheck], []);
  l.apply(listen(P, 1, 80, 10), NS); // opened before the exec, read after
  assert.deepEqual([...l.recheck], [P], "the exec may have closed it");
  l.apply(listen(P, 2, 81, 30), NS); // opened after: no doubt of its own
  l.holdings(P, new Set([2]));
  assert.deepEqual(l.sockets().map((s) => s.port), [81]);
});

Deno.test("SocketLedger holders: a scan's different holders are drift, and touch the port", () => {
  const l = new SocketLedger();
  l.apply(listen(P, 1, 80), NS);
  l.apply(listen(P, 2, 81), NS);
  const scan = [scanned(1, 80), scanned(2, 81)];
  // Pid 300 holds socket 1 (an fd passed over a unix socket): the events could not see it.
  assert.equal(l.reconcile(NS, scan, (i) => (i === 1 ? [P, 300] : [P])), 1);
  assert.equal(l.drift, 1);
  assert.deepEqual(ports(l.touched), [80]);
  assert.deepEqual(pidsOf(l, 80), [P, 300]);
  // The same again: no drift. A scan that found no holder (not ours to read) leaves them.
  assert.equal(l.reconcile(NS, scan, (i) => (i === 1 ? [300, P] : [])), 0);
  assert.deepEqual(l.touched, []);
  assert.deepEqual(pidsOf(l, 81), [P]);
  // A difference only in pids the events flagged (recheck) is corrected, not counted.
  l.apply(exec(300), NS);
  assert.equal(l.reconcile(NS, scan, () => [P]), 0);
  assert.deepEqual(pidsOf(l, 80), [P]);
  assert.deepEqual(ports(l.touched), [80]);
  // Sockets whose holders events changed while the scan was in flight are not judged.
  const changed = l.watchChanges();
  l.apply(fork(P, C), NS);
  l.unwatchChanges(changed);
  assert.equal(l.reconcile(NS, scan, () => [P], changed), 0);
  assert.deepEqual(pidsOf(l, 80), [P, C]);
});

Deno.test("SocketLedger holders: SO_REUSEPORT twins opened by two pids at about the same time list both", () => {
  for (const order of [[0, 1], [1, 0]]) {
    for (const [k0, k1] of [[10, 11], [11, 10]]) {
      const l = new SocketLedger();
      const twins = [listen(200, 1, 8080, k0), listen(201, 2, 8080, k1)];
      const touched = order.map((i) => l.apply(twins[i], NS));
      assert.deepEqual(touched, [[NS], [NS]], `order ${order}, kts ${k0} ${k1}`);
      assert.deepEqual(pidsOf(l, 8080), [200, 201], `order ${order}, kts ${k0} ${k1}`);
      assert.deepEqual(l.observationOf({ netns: NS, proto: "tcp", port: 8080 })?.inodes, [1, 2]);
      assert.deepEqual(l.observations(NS).map((o) => o.pids), [[200, 201]]);
      // One twin's process exits: the other's stays, alone.
      l.apply(exit(200, 20), NS);
      assert.deepEqual(pidsOf(l, 8080), [201]);
    }
  }
});

Deno.test("SocketLedger holders: Tracee's fd-only closes follow dups; the socket goes with the last known fd", () => {
  const l = new SocketLedger();
  const bind: SocketEvent = {
    ts: 0,
    kind: "bind",
    pid: P,
    fd: 5,
    proto: "udp",
    port: 53,
    addr: "0.0.0.0",
    netns: NS,
  };
  l.apply(bind, NS);
  l.apply({ ts: 0, kind: "dup", pid: P, fd: 0, oldFd: 5 }, NS); // dup2(5, 0)
  l.apply({ ts: 0, kind: "dup", pid: P, fd: 9, oldFd: 6 }, NS); // an fd the ledger does not know: nothing
  assert.deepEqual(l.apply({ ts: 0, kind: "close", pid: P, fd: 5 }, NS), []);
  assert.deepEqual(l.sockets().map((s) => [...s.pids]), [[P]], "fd 0 holds it");
  l.apply(fork(P, C), NS);
  assert.deepEqual(l.apply({ ts: 0, kind: "close", pid: P, fd: 0 }, NS), [NS], "P lets go, C holds it");
  assert.deepEqual(l.sockets().map((s) => [...s.pids]), [[C]]);
  assert.deepEqual(l.apply({ ts: 0, kind: "close", pid: C, fd: 0 }, NS), [NS]);
  assert.deepEqual(l.sockets(), []);
});

Deno.test("SocketLedger holders: an exec of a process that holds no known socket asks for nothing", () => {
  const l = new SocketLedger();
  l.apply(listen(P, 1, 80, 10), NS);
  l.apply(exec(C, 20), NS); // a process of the tree under a holder, holding nothing
  assert.deepEqual([...l.recheck], []);
  l.apply(exec(P, 30), NS);
  assert.deepEqual([...l.recheck], [P]);
});
