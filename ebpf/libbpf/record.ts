/**
 * Decoding the native engine's ring records (struct pw_record of portwatch.bpf.c, 64 bytes, little-endian) as
 * SocketEvents. Pure: reads a DataView at an offset, allocates only the event.
 * @module
 */
import { formatIPv4, formatIPv6 } from "../../sources/socket.ts";
import type { SocketEvent } from "../socket_event.ts";

/** The size of one record, without the ring's 8-byte header. */
export const RECORD_SIZE = 64;

/** Record kinds (enum pw_kind). */
export const KIND = {
  LISTEN: 1,
  LISTEN_FAILED: 2,
  BIND: 3,
  UNLISTEN: 4,
  CLOSE: 5,
  FORK: 6,
  EXEC: 7,
  EXIT: 8,
  CLOSE_RANGE: 9,
} as const;

/** Field offsets in struct pw_record. */
export const FIELD = {
  ts: 0,
  sk: 8,
  ino: 16,
  kind: 24,
  pid: 28,
  arg: 32,
  netns: 36,
  port: 40,
  family: 42,
  proto: 43,
  last: 44,
  addr: 48,
} as const;

const HEX = "0123456789abcdef";

/** A kernel address as bpftrace prints a pointer ("0xffff..."): the socket's key in the ledger. */
function pointer(view: DataView, at: number): string {
  const hi = view.getUint32(at + 4, true);
  const lo = view.getUint32(at, true);
  if (hi === 0) return "0x" + lo.toString(16);
  let low = "";
  for (let shift = 28; shift >= 0; shift -= 4) low += HEX[(lo >>> shift) & 0xf];
  return "0x" + hi.toString(16) + low;
}

/** The local address of an open record, canonical text. */
function address(view: DataView, at: number, family: 4 | 6): string {
  const bytes = new Uint8Array(view.buffer, view.byteOffset + at, 16);
  return family === 4 ? formatIPv4(bytes) : formatIPv6(bytes);
}

/**
 * The record at `at` as a SocketEvent, or undefined for an unknown kind (an object newer than this code).
 * `now` is the event's wall-clock time (when it was read), `ts` its kernel time.
 */
export function decodeRecord(view: DataView, at: number, now: number): SocketEvent | undefined {
  const kind = view.getUint32(at + FIELD.kind, true);
  const pid = view.getUint32(at + FIELD.pid, true);
  // The kernel's monotonic ns as a double: exact for 104 days of uptime, then to a few ns.
  const kts = view.getUint32(at + FIELD.ts + 4, true) * 2 ** 32 + view.getUint32(at + FIELD.ts, true);
  const arg = view.getInt32(at + FIELD.arg, true);
  switch (kind) {
    case KIND.LISTEN:
    case KIND.BIND: {
      const family: 4 | 6 = view.getUint8(at + FIELD.family) === 6 ? 6 : 4;
      return {
        ts: now,
        kts,
        kind: kind === KIND.LISTEN ? "listen" : "bind",
        pid,
        proto: view.getUint8(at + FIELD.proto) === 17 ? "udp" : "tcp",
        fd: arg,
        sk: pointer(view, at + FIELD.sk),
        inode: view.getUint32(at + FIELD.ino + 4, true) * 2 ** 32 + view.getUint32(at + FIELD.ino, true),
        port: view.getUint16(at + FIELD.port, true),
        family,
        addr: address(view, at + FIELD.addr, family),
        netns: view.getUint32(at + FIELD.netns, true),
      };
    }
    case KIND.LISTEN_FAILED:
      return { ts: now, kts, kind: "listen", pid, proto: "tcp", failed: true };
    case KIND.UNLISTEN:
      return {
        ts: now,
        kts,
        kind: "unlisten",
        pid,
        proto: "tcp",
        sk: pointer(view, at + FIELD.sk),
        port: view.getUint16(at + FIELD.port, true),
        netns: view.getUint32(at + FIELD.netns, true),
      };
    case KIND.CLOSE:
      return {
        ts: now,
        kts,
        kind: "close",
        pid,
        fd: arg,
        sk: pointer(view, at + FIELD.sk),
        inode: view.getUint32(at + FIELD.ino + 4, true) * 2 ** 32 + view.getUint32(at + FIELD.ino, true),
        last: view.getUint8(at + FIELD.last) === 1,
      };
    case KIND.FORK:
      return { ts: now, kts, kind: "fork", pid, childPid: arg };
    case KIND.EXEC:
    // close_range(): as after an exec, fds went without a close() per fd; the engine reads what pid holds now.
    case KIND.CLOSE_RANGE:
      return { ts: now, kts, kind: "exec", pid };
    case KIND.EXIT:
      return { ts: now, kts, kind: "exit", pid };
    default:
      return undefined;
  }
}
