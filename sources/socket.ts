/**
 * The socket model shared by every source of listening sockets (/proc/net text, sock_diag netlink, ...).
 * @module
 */

/** One listening TCP socket or one bound UDP socket, as a source reports it. */
export interface ListeningSocket {
  /** Transport protocol. */
  proto: "tcp" | "udp";
  /** Address family of the socket: 6 for AF_INET6 sockets, v4-mapped addresses included. */
  family: 4 | 6;
  /** Local address in canonical text form, as Node's net prints it: "0.0.0.0", "::", "::1", "::ffff:127.0.0.1". */
  addr: string;
  /** Local port, 1-65535. */
  port: number;
  /** The socket's inode number (the N of "socket:[N]" in /proc/<pid>/fd). */
  inode: number;
  /** The uid that owns the socket. */
  uid: number;
}

/** Something that lists the listening sockets of one network namespace. */
export interface SocketSource {
  /** Short name for logs and benches, e.g. "netlink" or "proc". */
  readonly name: string;
  /** The listening TCP and bound UDP sockets right now. */
  scan(): ListeningSocket[] | Promise<ListeningSocket[]>;
  /** Release what the source holds (file descriptors); scan() must not be called after. */
  close(): void;
}

/** A stable key for one socket: "tcp 6 [::1]:8080 #12345". */
export function socketKey(s: ListeningSocket): string {
  return `${s.proto} ${s.family} ${s.family === 6 ? `[${s.addr}]` : s.addr}:${s.port} #${s.inode}`;
}

/** Sort sockets by proto, family, address, port and inode (a copy; for stable output and comparisons). */
export function sortSockets(sockets: readonly ListeningSocket[]): ListeningSocket[] {
  return [...sockets].sort((a, b) =>
    a.proto.localeCompare(b.proto) || a.family - b.family || a.addr.localeCompare(b.addr) ||
    a.port - b.port || a.inode - b.inode
  );
}

/** Dotted-quad text of 4 address bytes in network order, e.g. "127.0.0.1". */
export function formatIPv4(b: ArrayLike<number>, offset = 0): string {
  return `${b[offset]}.${b[offset + 1]}.${b[offset + 2]}.${b[offset + 3]}`;
}

/**
 * Canonical text of 16 IPv6 address bytes in network order, the way glibc's and libuv's inet_ntop (so Node's net)
 * print it: lowercase hex, the first longest run of two or more zero groups shortened to "::", and the last 32
 * bits in dotted-quad form for v4-mapped ("::ffff:127.0.0.1") and v4-compatible ("::1.2.3.4") addresses.
 */
export function formatIPv6(b: ArrayLike<number>, offset = 0): string {
  const words: number[] = [];
  for (let i = 0; i < 8; i++) words.push((b[offset + 2 * i] << 8) | b[offset + 2 * i + 1]);
  let bestBase = -1, bestLen = 0;
  for (let i = 0; i < 8;) {
    if (words[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i >= 2 && j - i > bestLen) [bestBase, bestLen] = [i, j - i];
    i = j;
  }
  let out = "";
  for (let i = 0; i < 8; i++) {
    if (bestBase !== -1 && i >= bestBase && i < bestBase + bestLen) {
      if (i === bestBase) out += ":";
      continue;
    }
    if (i !== 0) out += ":";
    if (i === 6 && bestBase === 0 && (bestLen === 6 || (bestLen === 5 && words[5] === 0xffff))) {
      return out + formatIPv4(b, offset + 12);
    }
    out += words[i].toString(16);
  }
  if (bestBase !== -1 && bestBase + bestLen === 8) out += ":";
  return out;
}
