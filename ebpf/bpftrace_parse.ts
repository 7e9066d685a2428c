/** Parsing the bpftrace engine's output (`bpftrace -f json`): one SocketEvent per printf line. Pure. */
import { formatIPv4 } from "../watcher/socket.ts";
import type { SocketEvent } from "./socket_event.ts";

/** What one output line of bpftrace is. */
export type BpftraceLine =
  | { type: "event"; event: SocketEvent }
  | { type: "attached"; probes: number }
  | { type: "other"; text: string };

const num = (v: unknown): number | undefined => (typeof v === "number" && Number.isFinite(v) ? v : undefined);

/** The local address of an L/B record: a4 is skc_rcv_saddr as read (network order bytes, little-endian u32). */
function addrOf(r: Record<string, unknown>, family: 4 | 6): string {
  if (family === 6) return typeof r.a6 === "string" ? r.a6 : "::";
  const a4 = num(r.a4) ?? 0;
  return formatIPv4([a4 & 0xff, (a4 >>> 8) & 0xff, (a4 >>> 16) & 0xff, (a4 >>> 24) & 0xff]);
}

/** Turn one record printed by the program (the inner JSON) into a SocketEvent, or undefined if unusable. */
export function recordToEvent(r: Record<string, unknown>, now: number): SocketEvent | undefined {
  const pid = num(r.pid);
  if (pid === undefined) return undefined;
  const base = { ts: now, pid, comm: typeof r.comm === "string" ? r.comm : undefined };
  const family: 4 | 6 = r.fam === 10 ? 6 : 4;
  const sock = () => ({
    fd: num(r.fd),
    sk: typeof r.sk === "string" ? r.sk : undefined,
    inode: num(r.ino),
    port: num(r.port),
    family,
    addr: addrOf(r, family),
    netns: num(r.ns),
    cgroupId: num(r.cg),
  });
  switch (r.k) {
    case "L":
      return { ...base, kind: "listen", proto: "tcp", ...sock() };
    case "LF":
      return { ...base, kind: "listen", proto: "tcp", fd: num(r.fd), failed: true };
    case "B":
      return { ...base, kind: "bind", proto: "udp", ...sock() };
    case "U":
      return {
        ...base,
        kind: "unlisten",
        proto: "tcp",
        sk: typeof r.sk === "string" ? r.sk : undefined,
        port: num(r.port),
        netns: num(r.ns),
      };
    case "C":
      return {
        ...base,
        kind: "close",
        fd: num(r.fd),
        sk: typeof r.sk === "string" ? r.sk : undefined,
        inode: num(r.ino),
      };
    case "F":
      return num(r.child) === undefined ? undefined : { ...base, kind: "fork", childPid: num(r.child) };
    case "X":
      return { ...base, kind: "exit" };
    default:
      return undefined;
  }
}

/** Classify one line of `bpftrace -f json` output. */
export function parseBpftraceLine(line: string, now = Date.now()): BpftraceLine {
  let outer: { type?: string; data?: unknown };
  try {
    outer = JSON.parse(line);
  } catch {
    return { type: "other", text: line };
  }
  if (outer.type === "attached_probes") {
    const probes = (outer.data as { probes?: number })?.probes ?? 0;
    return { type: "attached", probes };
  }
  if (outer.type === "printf" && typeof outer.data === "string") {
    try {
      const event = recordToEvent(JSON.parse(outer.data), now);
      if (event) return { type: "event", event };
    } catch { /* fall through */ }
  }
  return { type: "other", text: line };
}
