import assert from "node:assert/strict";
import { SocketLedger } from "./ledger.ts";
import type { SocketEvent } from "./socket_event.ts";
import type { ListeningSocket } from "../watcher/socket.ts";

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
const scanned = (inode: number, port: number): ListeningSocket => ({
  proto: "tcp",
  family: 4,
  addr: "0.0.0.0",
  port,
  inode,
  uid: 0,
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
  assert.deepEqual([...changed].sort(), ["ino:1", "ino:2"]);
  assert.equal(l.reconcile(NS, scan, () => [], changed), 0, "no drift");
  assert.deepEqual(l.sockets().map((s) => s.port), [81], "the events' word stands");
  // Without the watch the same scan is drift both ways.
  assert.equal(l.reconcile(NS, scan, () => []), 2);
  assert.deepEqual(l.sockets().map((s) => s.port), [80]);
});
