/**
 * Oracle: addresses as `ss` prints them, in the project's canonical text (sources/socket.ts: "0.0.0.0", "::",
 * "::1", "::ffff:127.0.0.1").
 * @module
 */
import { formatIPv4, formatIPv6 } from "../sources/socket.ts";

/** The 16 bytes of an IPv6 address in text form (with "::" and a dotted-quad tail allowed), or undefined. */
export function parseIPv6(text: string): number[] | undefined {
  let head = text, tail: number[] = [];
  const quad = /^(.*:)(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (quad) {
    const v4 = parseIPv4(quad[2]);
    if (!v4) return undefined;
    head = quad[1].endsWith("::") ? quad[1] : quad[1].slice(0, -1);
    tail = [(v4[0] << 8) | v4[1], (v4[2] << 8) | v4[3]];
  }
  const halves = head.split("::");
  if (halves.length > 2) return undefined;
  const words = (s: string) => (s === "" ? [] : s.split(":"));
  const left = words(halves[0]);
  const right = halves.length === 2 ? words(halves[1]) : [];
  if (![...left, ...right].every((w) => /^[0-9a-fA-F]{1,4}$/.test(w))) return undefined;
  const given = left.length + right.length + tail.length;
  if (halves.length === 1 ? given !== 8 : given > 7) return undefined;
  const all = [
    ...left.map((w) => parseInt(w, 16)),
    ...new Array(8 - given).fill(0),
    ...right.map((w) => parseInt(w, 16)),
    ...tail,
  ];
  return all.flatMap((w) => [w >> 8, w & 0xff]);
}

/** The 4 bytes of a dotted-quad IPv4 address, or undefined. */
export function parseIPv4(text: string): number[] | undefined {
  const parts = text.split(".");
  if (parts.length !== 4 || !parts.every((p) => /^\d{1,3}$/.test(p) && Number(p) <= 255)) return undefined;
  return parts.map(Number);
}

/** A local address as `ss` prints it before the port, canonical, with its family. */
export interface SsAddr {
  addr: string;
  family: 4 | 6;
  /** The interface after "%", for sockets bound to a device or link-local scopes. */
  iface?: string;
}

/**
 * Canonical form of an address `ss` printed: "*" (an IPv6 wildcard with V6ONLY off: dual-stack) is "::",
 * "[v6]" is the IPv6 address, a dotted quad is IPv4; a "%iface" suffix is split off.
 */
export function canonicalSsAddr(text: string): SsAddr {
  let host = text, iface: string | undefined;
  const pct = text.lastIndexOf("%");
  if (pct >= 0 && pct > text.lastIndexOf("]")) [host, iface] = [text.slice(0, pct), text.slice(pct + 1)];
  const withIface = (a: SsAddr): SsAddr => (iface === undefined ? a : { ...a, iface });
  if (host === "*") return withIface({ addr: "::", family: 6 });
  if (host.startsWith("[") && host.endsWith("]")) {
    const bytes = parseIPv6(host.slice(1, -1));
    if (!bytes) throw new Error(`not an IPv6 address: ${JSON.stringify(text)}`);
    return withIface({ addr: formatIPv6(bytes), family: 6 });
  }
  const v4 = parseIPv4(host);
  if (v4) return withIface({ addr: formatIPv4(v4), family: 4 });
  // Older ss versions print IPv6 without brackets.
  const bytes = parseIPv6(host);
  if (bytes) return withIface({ addr: formatIPv6(bytes), family: 6 });
  throw new Error(`not an address ss prints: ${JSON.stringify(text)}`);
}
