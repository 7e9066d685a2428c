/**
 * Parsing the bpftrace engine's output (`bpftrace -f text`, the program of bpftrace_script.ts): lines of records,
 * each record space-separated fields ending in RS. A hand-written split, no JSON: this runs for every event. Pure.
 * @module
 */
import { formatIPv4 } from "../sources/socket.ts";
import { RS } from "./bpftrace_script.ts";
import type { SocketEvent } from "./socket_event.ts";

/** What one output line of bpftrace holds: its events, and text that is not a record (logged by the caller). */
export interface BpftraceLine {
  events: SocketEvent[];
  /** Probes attached ("Attaching N probes..."), on the line that says so. */
  attached?: number;
  /** Records or text that could not be used. */
  other: string[];
}

/** A decimal field, or undefined (NaN, missing). */
function int(s: string | undefined): number | undefined {
  if (s === undefined || s === "") return undefined;
  const n = Number(s);
  return Number.isInteger(n) ? n : undefined;
}

/** skc_rcv_saddr as read (network order bytes in a little-endian u32) as text. */
function ipv4(a4: number): string {
  return formatIPv4([a4 & 0xff, (a4 >>> 8) & 0xff, (a4 >>> 16) & 0xff, (a4 >>> 24) & 0xff]);
}

/** An L or B record: kind t pid fd sk ino port family proto netns a4 [a6]. */
function opened(f: string[], now: number, kts: number, kind: "listen" | "bind"): SocketEvent | undefined {
  const pid = int(f[2]);
  const port = int(f[6]);
  if (pid === undefined || port === undefined || f.length < 11) return undefined;
  const family: 4 | 6 = f[7] === "10" ? 6 : 4;
  return {
    ts: now,
    kts,
    kind,
    pid,
    proto: kind === "listen" ? "tcp" : "udp",
    fd: int(f[3]),
    sk: f[4],
    inode: int(f[5]),
    port,
    family,
    addr: family === 6 ? (f[11] || "::") : ipv4(int(f[10]) ?? 0),
    netns: int(f[9]),
  };
}

/** One record (without its RS) as a SocketEvent, or undefined when it is not one. */
export function parseRecord(rec: string, now: number): SocketEvent | undefined {
  const f = rec.split(" ");
  const kts = int(f[1]);
  const pid = int(f[2]);
  if (kts === undefined || pid === undefined) return undefined;
  switch (f[0]) {
    case "L":
      return opened(f, now, kts, "listen");
    case "B":
      return opened(f, now, kts, "bind");
    case "LF":
      return { ts: now, kts, kind: "listen", pid, proto: "tcp", fd: int(f[3]), failed: true };
    case "U":
      return f[3]
        ? { ts: now, kts, kind: "unlisten", pid, proto: "tcp", sk: f[3], port: int(f[4]), netns: int(f[5]) }
        : undefined;
    case "C": {
      if (!f[4]) return undefined;
      const e: SocketEvent = { ts: now, kts, kind: "close", pid, fd: int(f[3]), sk: f[4], inode: int(f[5]) };
      // A record without the flag (an older program) is a last reference, as such records always were.
      if (f[6] === "0" || f[6] === "1") e.last = f[6] === "1";
      return e;
    }
    case "F": {
      const child = int(f[3]);
      return child === undefined ? undefined : { ts: now, kts, kind: "fork", pid, childPid: child };
    }
    case "E":
      return { ts: now, kts, kind: "exec", pid };
    case "X":
      return { ts: now, kts, kind: "exit", pid };
    default:
      return undefined;
  }
}

const ATTACHING = /^Attaching (\d+) probes?/;

/** Everything on one line of bpftrace's stdout. */
export function parseBpftraceLine(line: string, now = Date.now()): BpftraceLine {
  const out: BpftraceLine = { events: [], other: [] };
  if (line.indexOf(RS) === -1) {
    if (line === "") return out;
    const m = ATTACHING.exec(line);
    if (m) out.attached = Number(m[1]);
    else out.other.push(line);
    return out;
  }
  let start = 0;
  for (let end = line.indexOf(RS); end !== -1; end = line.indexOf(RS, start)) {
    const rec = line.slice(start, end);
    start = end + 1;
    const e = parseRecord(rec, now);
    if (e) out.events.push(e);
    else out.other.push(rec);
  }
  if (start < line.length) out.other.push(line.slice(start));
  return out;
}
