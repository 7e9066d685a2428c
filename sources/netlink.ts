/**
 * Listening sockets from the kernel's sock_diag netlink interface (what `ss` uses), through Deno FFI.
 *
 * Each scan sends four SOCK_DIAG_BY_FAMILY dump requests (`inet_diag_req_v2`): AF_INET and AF_INET6 x TCP with
 * `idiag_states = 1 << TCP_LISTEN`, so the kernel walks only the listening hash and never sends established
 * connections, and x UDP in state TCP_CLOSE (bound, not connected: what `ss -l` lists), keeping sockets
 * with a local port. Replies (`inet_diag_msg`, possibly
 * over several recv calls) are read with MSG_DONTWAIT and poll(2) against a deadline, so a scan cannot hang.
 *
 * A netlink socket stays in the network namespace it was created in. To watch another namespace without
 * moving the whole process, {@link NetlinkSource} briefly moves Deno's JS thread: it saves its current
 * namespace (/proc/thread-self/ns/net), setns(2)es into the target, creates the socket, and setns(2)es back, all
 * in synchronous FFI calls during which no other JS runs. Other Deno threads never change namespace.
 * @module
 */
import {
  ERRNO,
  errno,
  ErrnoError,
  errnoError,
  type Libc,
  libc,
  LibcUnavailableError,
} from "../infra/libc.ts";
import { cstr } from "../infra/libc.ts";
import { formatIPv4, formatIPv6, type ListeningSocket, type SocketSource } from "./socket.ts";

const AF_INET = 2;
const AF_INET6 = 10;
const AF_NETLINK = 16;
const SOCK_DGRAM = 2;
const SOCK_CLOEXEC = 0o2000000;
const O_RDONLY = 0;
const O_CLOEXEC = 0o2000000;
const CLONE_NEWNET = 0x40000000;
const NETLINK_SOCK_DIAG = 4;
const SOCK_DIAG_BY_FAMILY = 20;
const NLM_F_REQUEST = 0x1;
const NLM_F_DUMP = 0x300;
const NLMSG_ERROR = 2;
const NLMSG_DONE = 3;
const IPPROTO_TCP = 6;
const IPPROTO_UDP = 17;
const TCP_LISTEN = 10;
const MSG_TRUNC = 0x20;
const MSG_DONTWAIT = 0x40;
const POLLIN = 0x1;

const NLMSG_HDRLEN = 16;
const REQ_LEN = NLMSG_HDRLEN + 56; // nlmsghdr + inet_diag_req_v2
const DIAG_MSG_LEN = 72; // inet_diag_msg
const LE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1; // netlink headers are in host order

/** Netlink cannot be used here (no FFI permission, socket or setns refused, sock_diag missing): use /proc. */
export class NetlinkUnavailableError extends Error {
  /** @param reason what failed, e.g. "socket(AF_NETLINK, NETLINK_SOCK_DIAG) failed: ... (EPERM)" */
  constructor(reason: string, options?: ErrorOptions) {
    super(`sock_diag netlink is unavailable: ${reason}; fall back to /proc/net`, options);
    this.name = "NetlinkUnavailableError";
  }
}

/** Options of {@link NetlinkSource}. */
export interface NetlinkOptions {
  /** A network namespace to watch instead of the current one: /proc/<pid>/ns/net or /run/netns/NAME. */
  netns?: string;
  /** Receive buffer size in bytes (default 64 KiB; the kernel fills at most ~32 KiB per dump part). */
  bufferSize?: number;
  /** How long one dump may take before the scan fails (default 2000 ms). */
  timeoutMs?: number;
}

/** Counters of the last scan, for tests and benches. */
export interface NetlinkStats {
  /** recv calls that returned data (a dump arrives in one or more parts). */
  recvCalls: number;
  /** inet_diag_msg records received (before the UDP local-port filter). */
  records: number;
}

const DUMPS = [
  { family: AF_INET, protocol: IPPROTO_TCP, states: 1 << TCP_LISTEN },
  { family: AF_INET6, protocol: IPPROTO_TCP, states: 1 << TCP_LISTEN },
  // UDP: unconnected sockets only (state TCP_CLOSE = 7), as `ss -l` lists them; connected ones are clients.
  { family: AF_INET, protocol: IPPROTO_UDP, states: 1 << 7 },
  { family: AF_INET6, protocol: IPPROTO_UDP, states: 1 << 7 },
] as const;

/** Create a NETLINK_SOCK_DIAG socket, inside `netns` when given (see the module doc); returns its fd. */
export function openSockDiag(netns?: string): number {
  let c: Libc;
  try {
    c = libc();
  } catch (e) {
    if (e instanceof LibcUnavailableError) throw new NetlinkUnavailableError(e.message, { cause: e });
    throw e;
  }
  const create = () => {
    const fd = c.socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
    if (fd < 0) {
      const err = errnoError("socket(AF_NETLINK, NETLINK_SOCK_DIAG)");
      throw new NetlinkUnavailableError(err.message, { cause: err });
    }
    return fd;
  };
  if (netns === undefined) return create();

  const self = c.open(cstr("/proc/thread-self/ns/net"), O_RDONLY | O_CLOEXEC);
  if (self < 0) {
    const err = errnoError("open(/proc/thread-self/ns/net)");
    throw new NetlinkUnavailableError(err.message, { cause: err });
  }
  try {
    const target = c.open(cstr(netns), O_RDONLY | O_CLOEXEC);
    if (target < 0) {
      const err = errnoError(`open(${netns})`);
      throw new NetlinkUnavailableError(`cannot open the network namespace ${netns}: ${err.message}`, {
        cause: err,
      });
    }
    try {
      if (c.setns(target, CLONE_NEWNET) < 0) {
        const err = errnoError(`setns(${netns}, CLONE_NEWNET)`);
        throw new NetlinkUnavailableError(err.message, { cause: err });
      }
      let fd = -1;
      let failure: unknown;
      try {
        fd = create();
      } catch (e) {
        failure = e;
      }
      if (c.setns(self, CLONE_NEWNET) < 0) {
        // the JS thread is stranded in the target namespace: nothing sane can continue
        const err = errnoError("setns(back to the original network namespace)");
        if (fd >= 0) c.close(fd);
        throw new Error(`${err.message}: Deno's main thread is left in ${netns}`, { cause: err });
      }
      if (failure !== undefined) throw failure;
      return fd;
    } finally {
      c.close(target);
    }
  } finally {
    c.close(self);
  }
}

/**
 * Lists listening sockets through sock_diag netlink. The netlink socket is opened by the constructor (which
 * also runs one probe scan, so that a missing sock_diag handler surfaces as {@link NetlinkUnavailableError}
 * there) and kept open across scans; a scan that fails reopens it on the next call. `close()` closes it.
 */
export class NetlinkSource implements SocketSource {
  /** "netlink". */
  readonly name = "netlink";
  /** Counters of the last scan. */
  readonly stats: NetlinkStats = { recvCalls: 0, records: 0 };
  readonly #netns: string | undefined;
  readonly #buf: Uint8Array<ArrayBuffer>;
  readonly #view: DataView;
  readonly #req = new Uint8Array(REQ_LEN);
  readonly #pollfd = new Uint8Array(8);
  readonly #bufLen: bigint;
  readonly #timeoutMs: number;
  #fd: number;
  #seq = Math.floor(Math.random() * 0x7fffffff);
  #closed = false;

  /** Open the netlink socket (in `options.netns` when given) and probe it; throws {@link NetlinkUnavailableError}. */
  constructor(options: NetlinkOptions = {}) {
    this.#netns = options.netns;
    this.#buf = new Uint8Array(Math.max(options.bufferSize ?? 65536, 8192));
    this.#view = new DataView(this.#buf.buffer);
    this.#bufLen = BigInt(this.#buf.length);
    this.#timeoutMs = options.timeoutMs ?? 2000;
    this.#fd = openSockDiag(this.#netns);
    try {
      this.scan();
    } catch (e) {
      this.close();
      if (e instanceof ErrnoError && e.code !== "EINTR") {
        throw new NetlinkUnavailableError(e.message, { cause: e });
      }
      throw e;
    }
  }

  /** The listening TCP and bound UDP sockets of the namespace, IPv4 then IPv6. */
  scan(): ListeningSocket[] {
    if (this.#closed) throw new Error("NetlinkSource.scan() after close()");
    if (this.#fd < 0) this.#fd = openSockDiag(this.#netns);
    this.stats.recvCalls = 0;
    this.stats.records = 0;
    const out: ListeningSocket[] = [];
    const seen = new Set<string>();
    try {
      for (const d of DUMPS) this.#dump(d.family, d.protocol, d.states, out, seen);
    } catch (e) {
      // a dump left half-read would make the next request fail with EBUSY: start afresh next time
      libc().close(this.#fd);
      this.#fd = -1;
      throw e;
    }
    return out;
  }

  /** Close the netlink socket (idempotent). */
  close(): void {
    if (this.#fd >= 0) libc().close(this.#fd);
    this.#fd = -1;
    this.#closed = true;
  }

  #dump(family: number, protocol: number, states: number, out: ListeningSocket[], seen: Set<string>): void {
    const c = libc();
    const seq = this.#seq = (this.#seq + 1) & 0x7fffffff;
    const req = new DataView(this.#req.buffer);
    this.#req.fill(0);
    req.setUint32(0, REQ_LEN, LE);
    req.setUint16(4, SOCK_DIAG_BY_FAMILY, LE);
    req.setUint16(6, NLM_F_REQUEST | NLM_F_DUMP, LE);
    req.setUint32(8, seq, LE);
    req.setUint8(16, family); // sdiag_family
    req.setUint8(17, protocol); // sdiag_protocol
    req.setUint32(20, states, LE); // idiag_states; idiag_ext and the socket id stay 0
    const what = `sock_diag dump (${family === AF_INET ? "AF_INET" : "AF_INET6"}, ${
      protocol === IPPROTO_TCP ? "TCP" : "UDP"
    })`;
    for (;;) {
      const sent = Number(c.sendto(this.#fd, this.#req, BigInt(REQ_LEN), 0, null, 0));
      if (sent === REQ_LEN) break;
      if (sent < 0 && errno() === ERRNO.EINTR) continue;
      throw errnoError(`sendto(${what})`);
    }
    const deadline = Date.now() + this.#timeoutMs;
    const buf = this.#buf, view = this.#view;
    const proto = protocol === IPPROTO_TCP ? "tcp" : "udp";
    for (;;) {
      const n = Number(c.recv(this.#fd, buf, this.#bufLen, MSG_DONTWAIT | MSG_TRUNC));
      if (n < 0) {
        const err = errno();
        if (err === ERRNO.EINTR) continue;
        if (err !== ERRNO.EAGAIN) throw errnoError(`recv(${what})`, err);
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`${what}: no reply within ${this.#timeoutMs} ms`);
        const pv = new DataView(this.#pollfd.buffer);
        pv.setInt32(0, this.#fd, LE);
        pv.setInt16(4, POLLIN, LE);
        pv.setInt16(6, 0, LE);
        if (c.poll(this.#pollfd, 1n, left) < 0 && errno() !== ERRNO.EINTR) throw errnoError(`poll(${what})`);
        continue;
      }
      if (n > buf.length) {
        throw new Error(`${what}: a ${n}-byte reply does not fit the ${buf.length}-byte buffer`);
      }
      this.stats.recvCalls++;
      for (let off = 0; off + NLMSG_HDRLEN <= n;) {
        const len = view.getUint32(off, LE);
        const type = view.getUint16(off + 4, LE);
        if (len < NLMSG_HDRLEN || off + len > n) {
          throw new Error(`${what}: malformed netlink message (length ${len})`);
        }
        if (view.getUint32(off + 8, LE) === seq) {
          if (type === NLMSG_DONE) {
            const e = len >= NLMSG_HDRLEN + 4 ? view.getInt32(off + NLMSG_HDRLEN, LE) : 0;
            if (e < 0) throw errnoError(what, -e);
            return;
          }
          if (type === NLMSG_ERROR) {
            const e = len >= NLMSG_HDRLEN + 4 ? view.getInt32(off + NLMSG_HDRLEN, LE) : 0;
            if (e < 0) throw errnoError(what, -e);
          } else if (type === SOCK_DIAG_BY_FAMILY && len >= NLMSG_HDRLEN + DIAG_MSG_LEN) {
            this.stats.records++;
            const s = parseDiagMsg(view, buf, off + NLMSG_HDRLEN, proto);
            if (s && !seen.has(`${proto}${s.family}:${s.inode}`)) {
              seen.add(`${proto}${s.family}:${s.inode}`);
              out.push(s);
            }
          }
        } // else: a reply to an earlier, abandoned request
        off += (len + 3) & ~3;
      }
    }
  }
}

/**
 * One `inet_diag_msg` at `off` as a listening socket: TCP in LISTEN, or UDP with a local port; undefined
 * otherwise. Ports are big-endian; uid and inode are in host order.
 */
export function parseDiagMsg(
  view: DataView,
  bytes: Uint8Array,
  off: number,
  proto: "tcp" | "udp",
): ListeningSocket | undefined {
  const fam = view.getUint8(off);
  const state = view.getUint8(off + 1);
  const port = view.getUint16(off + 4, false);
  if (proto === "tcp" ? state !== TCP_LISTEN : port === 0) return undefined;
  if (fam !== AF_INET && fam !== AF_INET6) return undefined;
  const family = fam === AF_INET ? 4 : 6;
  const addr = family === 4 ? formatIPv4(bytes, off + 8) : formatIPv6(bytes, off + 8);
  return {
    proto,
    family,
    addr,
    port,
    uid: view.getUint32(off + 64, LE),
    inode: view.getUint32(off + 68, LE),
  };
}
