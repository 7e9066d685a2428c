/**
 * Test helpers: socket events as the eBPF sources report them, for the engine's and the ledger's tests.
 * @module
 */
import type { SocketEvent } from "../socket_event.ts";
import type { ListeningSocket } from "../../sources/socket.ts";
import { netnsInode } from "../../pipeline/scope/identity.ts";

/**
 * A listen() that succeeded, as the bpftrace source reports it (in this process's network namespace unless
 * `over` names another).
 * @example
 * ```ts
 * listenEvent(61231, 1, { pid: 5000 }); // a TCP listen on 0.0.0.0:61231 by pid 5000, in this netns
 * ```
 */
export function listenEvent(port: number, kts: number, over: Partial<SocketEvent> = {}): SocketEvent {
  return {
    ts: Date.now(),
    kts,
    kind: "listen",
    pid: 4242,
    proto: "tcp",
    fd: 3,
    sk: `0xffff${port}`,
    inode: 900000 + port,
    port,
    family: 4,
    addr: "0.0.0.0",
    netns: netnsInode(),
    ...over,
  };
}

/**
 * A listening TCP socket on 0.0.0.0 as a scan reports it, for reconcile and seed tests.
 * @example
 * ```ts
 * ledger.seed(netns, [scannedSocket(1, 80)], () => [4242]);
 * ```
 */
export function scannedSocket(inode: number, port: number): ListeningSocket {
  return { proto: "tcp", family: 4, addr: "0.0.0.0", port, inode, uid: 0 };
}
