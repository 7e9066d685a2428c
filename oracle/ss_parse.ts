/**
 * Oracle: the ground truth, `ss -Hlntup` output, parsed. Lines look like
 * `tcp LISTEN 0 128 [::ffff:127.0.0.1]:8080 *:* users:(("python3",pid=12,fd=3),("python3",pid=13,fd=3))`;
 * with -l, TCP sockets are LISTEN and UDP ones UNCONN (bound, not connected); only those count.
 * @module
 */
import { canonicalSsAddr } from "./addr.ts";

/** One process holding a socket, from ss's `users:(...)`. */
export interface SsUser {
  name: string;
  pid: number;
  fd: number;
}

/** One listening TCP or bound UDP socket as ss lists it. */
export interface SsSocket {
  proto: "tcp" | "udp";
  state: string;
  /** Canonical local address ("0.0.0.0", "::", "::1", "::ffff:127.0.0.1"). */
  addr: string;
  family: 4 | 6;
  port: number;
  users: SsUser[];
  /** The line it came from (for failure messages). */
  line: string;
}

const USER = /\("((?:[^"]|"(?!,pid=))*)",pid=(\d+),fd=(\d+)\)/g;

/** Split "ADDR:PORT" at its last colon (ADDR may be "[v6]", "*", "a.b.c.d", with "%iface"). */
export function splitHostPort(text: string): [string, string] {
  const i = text.lastIndexOf(":");
  if (i <= 0) throw new Error(`no port in ${JSON.stringify(text)}`);
  return [text.slice(0, i), text.slice(i + 1)];
}

/** The processes in a `users:((...),(...))` field (empty when ss printed none). */
export function parseUsers(text: string): SsUser[] {
  return [...text.matchAll(USER)].map((m) => ({ name: m[1], pid: Number(m[2]), fd: Number(m[3]) }));
}

/**
 * One line of `ss -Hlntup`; undefined for sockets that do not count (TCP not LISTEN, UDP not UNCONN, other
 * netids). Throws on a line it cannot read, so that a format change is noticed rather than ignored.
 */
export function parseSsLine(line: string): SsSocket | undefined {
  const fields = line.trim().split(/\s+/);
  if (fields.length < 6) throw new Error(`ss line with too few fields: ${JSON.stringify(line)}`);
  const [netid, state, , , local] = fields;
  if (netid !== "tcp" && netid !== "udp") return undefined;
  if (netid === "tcp" ? state !== "LISTEN" : state !== "UNCONN") return undefined;
  const [host, portText] = splitHostPort(local);
  const port = Number(portText);
  if (!/^\d+$/.test(portText) || port < 1 || port > 65535) {
    throw new Error(`bad port ${JSON.stringify(portText)} in ss line: ${JSON.stringify(line)}`);
  }
  const { addr, family } = canonicalSsAddr(host);
  const usersAt = line.indexOf("users:(");
  return {
    proto: netid,
    state,
    addr,
    family,
    port,
    users: usersAt >= 0 ? parseUsers(line.slice(usersAt)) : [],
    line: line.trim(),
  };
}

/** Every counting socket in `ss -Hlntup` output. */
export function parseSs(text: string): SsSocket[] {
  return text.split("\n").filter((l) => l.trim() !== "").map(parseSsLine).filter((s) => s !== undefined);
}
