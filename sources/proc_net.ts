/**
 * Listening sockets from the text of /proc/net/{tcp,tcp6,udp,udp6}: pure parsers, and {@link ProcNetSource}
 * that reads the four files of one network namespace.
 *
 * The kernel prints each address as the hex of its 32-bit words in host (little-endian) order and the port as
 * plain hex, e.g. "0100007F:1F90" is 127.0.0.1:8080. The files are not read atomically: a socket may be missed
 * or listed twice when the table changes during the read, so the source drops repeated inodes.
 * @module
 */
import { formatIPv4, formatIPv6, type ListeningSocket, type SocketSource } from "./socket.ts";

/** TCP_LISTEN in the `st` column. */
export const TCP_LISTEN = 0x0a;

/** The state of a UDP socket that is not connected (TCP_CLOSE in the kernel's numbering). */
export const UDP_UNCONNECTED = 0x07;

/** A line of a /proc/net table that cannot be read; the message names the file, the line number and the text. */
export class ProcNetParseError extends Error {
  /**
   * @param source what was parsed, e.g. "/proc/net/tcp6"
   * @param lineNumber 1-based line number in that text
   * @param line the line as read
   * @param reason what is wrong with it
   */
  constructor(
    readonly source: string,
    readonly lineNumber: number,
    readonly line: string,
    readonly reason: string,
  ) {
    super(`${source}: line ${lineNumber} is malformed (${reason}): ${JSON.stringify(line)}`);
    this.name = "ProcNetParseError";
  }
}

const HEX4 = /^[0-9A-Fa-f]{4}$/;
const HEX8 = /^[0-9A-Fa-f]{8}$/;
const HEX32 = /^[0-9A-Fa-f]{32}$/;
const DIGITS = /^\d+$/;
const STATE = /^[0-9A-Fa-f]{2}$/;

/**
 * Decode a /proc/net address ("0100007F" or 32 hex digits for IPv6) to canonical text; undefined when it is not
 * 8 (family 4) or 32 (family 6) hex digits.
 */
export function decodeProcAddr(hex: string, family: 4 | 6): string | undefined {
  if (!(family === 4 ? HEX8 : HEX32).test(hex)) return undefined;
  const bytes = new Uint8Array(family === 4 ? 4 : 16);
  for (let w = 0; w < bytes.length / 4; w++) {
    const word = parseInt(hex.slice(w * 8, w * 8 + 8), 16); // one 32-bit word, printed in host order
    bytes[w * 4] = word & 0xff;
    bytes[w * 4 + 1] = (word >>> 8) & 0xff;
    bytes[w * 4 + 2] = (word >>> 16) & 0xff;
    bytes[w * 4 + 3] = (word >>> 24) & 0xff;
  }
  return family === 4 ? formatIPv4(bytes) : formatIPv6(bytes);
}

/**
 * The listening sockets in the text of one /proc/net table: TCP sockets in state LISTEN (0A), or UDP sockets
 * with a nonzero local port (bound; state 07, or 01 when connected). The header line, trailing whitespace and
 * blank lines are skipped; any other line that cannot be read throws a {@link ProcNetParseError}.
 * @param text the file's text
 * @param proto which table this is
 * @param family 4 for tcp/udp, 6 for tcp6/udp6
 * @param source the name used in errors, e.g. the file's path
 */
export function parseProcNet(
  text: string,
  proto: "tcp" | "udp",
  family: 4 | 6,
  source = `/proc/net/${proto}${family === 6 ? "6" : ""}`,
): ListeningSocket[] {
  const out: ListeningSocket[] = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    const trimmed = line.trim();
    if (trimmed === "") continue;
    if (i === 0 && trimmed.startsWith("sl ")) continue; // the header
    const f = trimmed.split(/\s+/);
    const bad = (reason: string) => new ProcNetParseError(source, i + 1, line, reason);
    if (f.length < 10) throw bad(`expected at least 10 fields, found ${f.length}`);
    if (!/^\d+:$/.test(f[0])) throw bad(`slot "${f[0]}" is not a number and a colon`);
    if (!STATE.test(f[3])) throw bad(`state "${f[3]}" is not 2 hex digits`);
    const [addrHex, portHex, extra] = f[1].split(":");
    if (portHex === undefined || extra !== undefined || !HEX4.test(portHex)) {
      throw bad(`local address "${f[1]}" is not ADDRESS:PORT in hex`);
    }
    if (!DIGITS.test(f[7])) throw bad(`uid "${f[7]}" is not a number`);
    if (!DIGITS.test(f[9])) throw bad(`inode "${f[9]}" is not a number`);
    const state = parseInt(f[3], 16);
    const port = parseInt(portHex, 16);
    // TCP: LISTEN only. UDP: bound and not connected (state 07, as `ss -l` lists them): a connected UDP
    // socket is a client's, not a port anyone can send to.
    if (proto === "tcp" ? state !== TCP_LISTEN : state !== UDP_UNCONNECTED || port === 0) continue;
    const addr = decodeProcAddr(addrHex, family);
    if (addr === undefined) {
      throw bad(`local address "${addrHex}" is not ${family === 4 ? 8 : 32} hex digits`);
    }
    out.push({ proto, family, addr, port, inode: Number(f[9]), uid: Number(f[7]) });
  }
  return out;
}

/** The four tables, in the order they are read. */
export const PROC_NET_TABLES = [
  { file: "tcp", proto: "tcp", family: 4 },
  { file: "tcp6", proto: "tcp", family: 6 },
  { file: "udp", proto: "udp", family: 4 },
  { file: "udp6", proto: "udp", family: 6 },
] as const;

/** Options of {@link ProcNetSource}. */
export interface ProcNetOptions {
  /** Directory holding the tables: "/proc/net" (the reader's namespace, default) or "/proc/<pid>/net". */
  root?: string;
}

/**
 * Lists listening sockets by reading /proc/net text. Works without privileges (other users' sockets included),
 * but reads every established connection too, so it costs more than netlink on busy hosts. A missing tcp6 or
 * udp6 (IPv6 disabled) is skipped; a missing tcp or udp throws.
 */
export class ProcNetSource implements SocketSource {
  /** "proc". */
  readonly name = "proc";
  /** The directory read. */
  readonly root: string;

  /** A source reading `root` (default "/proc/net"). */
  constructor(options: ProcNetOptions = {}) {
    this.root = (options.root ?? "/proc/net").replace(/\/+$/, "");
  }

  /** The listening sockets now; repeated inodes (a table changing while read) are dropped. */
  scan(): ListeningSocket[] {
    const out: ListeningSocket[] = [];
    const seen = new Set<string>();
    for (const t of PROC_NET_TABLES) {
      const path = `${this.root}/${t.file}`;
      let text: string;
      try {
        text = Deno.readTextFileSync(path);
      } catch (e) {
        if (e instanceof Deno.errors.NotFound && t.family === 6) continue;
        throw e;
      }
      for (const s of parseProcNet(text, t.proto, t.family, path)) {
        const key = `${s.proto}${s.family}:${s.inode}`;
        if (s.inode !== 0 && seen.has(key)) continue;
        seen.add(key);
        out.push(s);
      }
    }
    return out;
  }

  /** Nothing to release. */
  close(): void {}
}
