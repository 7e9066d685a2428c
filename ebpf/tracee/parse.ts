/**
 * One line of Tracee JSON output to portwatch {@link SocketEvent}s. Pure; never throws.
 *
 * Three format generations are understood:
 * - flat (v0.8–v0.17): `eventName`, `args:[{name,type,value}]`, `containerId`/`containerName` at top level;
 * - envelope (v0.18–v0.24): the same plus `container:{id,name,…}`, `kubernetes`, `executable`, entity ids;
 * - v1beta1 (main after v0.24.1): `name`, RFC3339 `timestamp`, `workload.{process,container}`,
 *   `data:[{name,"<kind>":value}]`, sockaddr ports as numbers with zero fields omitted, `returnValue` as a
 *   data item.
 *
 * Socket events carry no netns (Tracee reports none; `pidNamespace`/`mountNamespace` are other namespaces)
 * and no `sk` or inode (Tracee does not expose the kernel socket): a close names an fd only, so it cannot say
 * whether it was the socket's last reference (SocketEvent `last`), and a /proc read of a process's socket inodes
 * cannot be matched with the sockets Tracee opened until a reconciliation scan names them.
 * @module
 */
import type { SocketEvent } from "../socket_event.ts";
import { formatIPv4, formatIPv6 } from "../../sources/socket.ts";

/** What {@link parseTraceeLine} makes of one line: events (possibly none) or why the line was not used. */
export type TraceeParseResult = { events: SocketEvent[] } | { skip: string };

/** The Tracee events {@link parseTraceeLine} turns into socket events. */
export const HANDLED_TRACEE_EVENTS: readonly string[] = [
  "security_socket_bind",
  "security_socket_listen",
  "security_socket_create",
  "bind",
  "listen",
  "socket",
  "close",
  "dup",
  "dup2",
  "dup3",
  "sched_process_exec",
  "sched_process_exit",
  "sched_process_fork",
];

type Obj = Record<string, unknown>;

/** The fields every format has, once found. */
interface Header {
  name: string;
  ts: number;
  pid: number;
  tid?: number;
  comm?: string;
  cgroupId?: number;
  containerId: string | null;
  containerName: string | null;
  /** Syscall return value (undefined when absent). */
  ret?: number;
  /** Argument values by name. */
  args: Map<string, unknown>;
  /** v1beta1: zero sockaddr fields are omitted. */
  omitsZero: boolean;
}

const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);

/** A safe integer from a number or a decimal string (Tracee prints int64/uint64 as strings in v1beta1). */
function toInt(v: unknown): number | undefined {
  if (typeof v === "number") return Number.isSafeInteger(v) ? v : undefined;
  if (typeof v === "string" && /^-?\d{1,16}$/.test(v)) {
    const n = Number(v);
    return Number.isSafeInteger(n) ? n : undefined;
  }
  return undefined;
}

const nonEmpty = (v: unknown): string | undefined => (typeof v === "string" && v !== "" ? v : undefined);

/** ms since the epoch from an RFC3339(Nano) string (sub-ms digits truncated), or undefined. */
export function rfc3339ToMs(s: string): number | undefined {
  const m = /^(\d{4})-(\d\d)-(\d\d)[Tt ](\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?(Z|z|[+-]\d\d:\d\d)$/.exec(s);
  if (!m) return undefined;
  const [y, mo, d, h, mi, sec] = m.slice(1, 7).map(Number);
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60) return undefined;
  let ms = Date.UTC(y, mo - 1, d, h, mi, sec) + Number((m[7] ?? "").padEnd(3, "0").slice(0, 3));
  if (m[8] !== "Z" && m[8] !== "z") {
    const sign = m[8][0] === "-" ? -1 : 1;
    ms -= sign * (Number(m[8].slice(1, 3)) * 60 + Number(m[8].slice(4, 6))) * 60_000;
  }
  return Number.isFinite(ms) ? ms : undefined;
}

/**
 * ms since the epoch from Tracee's ns timestamp. JSON numbers above 2^53 lose precision, so the digits are
 * taken from the line itself when `timestamp` is its first key (Go struct order), else from the parsed number.
 */
function nsToMs(line: string, value: number): number | undefined {
  const m = /^\s*\{\s*"timestamp"\s*:\s*(\d{1,30})\s*[,}]/.exec(line);
  if (m) {
    const ms = Number(BigInt(m[1]) / 1_000_000n);
    return Number.isSafeInteger(ms) ? ms : undefined;
  }
  if (!Number.isFinite(value) || value < 0) return undefined;
  return Math.floor(value / 1e6);
}

function legacyHeader(line: string, o: Obj): Header | string {
  const name = o.eventName;
  if (typeof name !== "string") return "eventName is not a string";
  if (typeof o.timestamp !== "number") return "timestamp is not a number";
  const ts = nsToMs(line, o.timestamp);
  if (ts === undefined) return "timestamp is not a valid ns count";
  const pid = toInt(o.hostProcessId) ?? toInt(o.processId);
  if (pid === undefined || pid <= 0) return "no hostProcessId/processId";
  const args = new Map<string, unknown>();
  if (o.args !== null && o.args !== undefined) {
    if (!Array.isArray(o.args)) return "args is not an array";
    for (const a of o.args) {
      if (isObj(a) && typeof a.name === "string") args.set(a.name, a.value);
    }
  }
  const container = isObj(o.container) ? o.container : {};
  const cgroupId = toInt(o.cgroupId);
  return {
    name,
    ts,
    pid,
    tid: toInt(o.hostThreadId) ?? toInt(o.threadId),
    comm: nonEmpty(o.processName),
    cgroupId: cgroupId !== undefined && cgroupId >= 0 ? cgroupId : undefined,
    containerId: nonEmpty(container.id) ?? nonEmpty(o.containerId) ?? null,
    containerName: nonEmpty(container.name) ?? nonEmpty(o.containerName) ?? null,
    ret: toInt(o.returnValue),
    args,
    omitsZero: false,
  };
}

function v1beta1Header(o: Obj): Header | string {
  const name = o.name;
  if (typeof name !== "string") return "name is not a string";
  if (typeof o.timestamp !== "string") return "timestamp is not a string";
  const ts = rfc3339ToMs(o.timestamp);
  if (ts === undefined) return "timestamp is not RFC3339";
  const workload = isObj(o.workload) ? o.workload : {};
  const process = isObj(workload.process) ? workload.process : {};
  const thread = isObj(process.thread) ? process.thread : {};
  const container = isObj(workload.container) ? workload.container : {};
  const pid = toInt(process.host_pid) ?? toInt(process.pid);
  if (pid === undefined || pid <= 0) return "no workload.process.host_pid/pid";
  const args = new Map<string, unknown>();
  if (o.data !== undefined && o.data !== null) {
    if (!Array.isArray(o.data)) return "data is not an array";
    for (const item of o.data) {
      if (!isObj(item) || typeof item.name !== "string") continue;
      // The value sits under its kind: {"name":"fd","int32":3}, {"name":"returnValue","int64":"0"}.
      const kind = Object.keys(item).find((k) => k !== "name");
      args.set(item.name, kind === undefined ? undefined : item[kind]);
    }
  }
  const ret = args.has("returnValue") ? toInt(args.get("returnValue")) : undefined;
  return {
    name,
    ts,
    pid,
    tid: toInt(thread.host_tid) ?? toInt(thread.tid),
    comm: nonEmpty(thread.name),
    containerId: nonEmpty(container.id) ?? null,
    containerName: nonEmpty(container.name) ?? null,
    ret,
    args,
    omitsZero: true,
  };
}

/** The event with the header's common fields, in a stable key order; undefined fields left out. */
function base(h: Header, kind: SocketEvent["kind"], extra: Partial<SocketEvent>): SocketEvent {
  const e: SocketEvent = { ts: h.ts, kind, pid: h.pid };
  if (extra.childPid !== undefined) e.childPid = extra.childPid;
  if (h.comm !== undefined) e.comm = h.comm;
  if (extra.fd !== undefined) e.fd = extra.fd;
  if (extra.oldFd !== undefined) e.oldFd = extra.oldFd;
  if (extra.proto !== undefined) e.proto = extra.proto;
  if (extra.family !== undefined) e.family = extra.family;
  if (extra.addr !== undefined) e.addr = extra.addr;
  if (extra.port !== undefined) e.port = extra.port;
  if (h.cgroupId !== undefined) e.cgroupId = h.cgroupId;
  e.containerId = h.containerId;
  e.containerName = h.containerName;
  if (extra.failed) e.failed = true;
  if (extra.cloexec) e.cloexec = true;
  return e;
}

/** 4 bytes of a dotted quad, or undefined. */
function parseIPv4(s: string): number[] | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
  if (!m) return undefined;
  const b = m.slice(1).map(Number);
  return b.every((x) => x <= 255) ? b : undefined;
}

/** 16 bytes of IPv6 text (with "::" and a trailing dotted quad allowed), or undefined. */
export function parseIPv6(s: string): Uint8Array | undefined {
  if (s.length < 2 || s.length > 45) return undefined;
  let tail: number[] = [];
  let text = s;
  const lastColon = s.lastIndexOf(":");
  if (s.indexOf(".", lastColon) !== -1) {
    const v4 = parseIPv4(s.slice(lastColon + 1));
    if (!v4) return undefined;
    tail = v4;
    text = s.slice(0, lastColon + 1) + "0:0"; // placeholder words, replaced below
  }
  const halves = text.split("::");
  if (halves.length > 2) return undefined;
  const words = (part: string) => (part === "" ? [] : part.split(":"));
  const head = words(halves[0]);
  const rest = halves.length === 2 ? words(halves[1]) : [];
  const total = head.length + rest.length;
  if (halves.length === 1 ? total !== 8 : total > 7) return undefined;
  const all = [...head, ...Array(8 - total).fill("0"), ...rest];
  const out = new Uint8Array(16);
  for (let i = 0; i < 8; i++) {
    if (!/^[0-9a-fA-F]{1,4}$/.test(all[i])) return undefined;
    const w = parseInt(all[i], 16);
    out[2 * i] = w >> 8;
    out[2 * i + 1] = w & 0xff;
  }
  if (tail.length) out.set(tail, 12);
  return out;
}

/** A port from "80" or 80 (absent means 0 where zero fields are omitted). */
function portOf(v: unknown, omitsZero: boolean): number | undefined {
  if (v === undefined && omitsZero) return 0;
  const n = toInt(v);
  return n !== undefined && n >= 0 && n <= 65535 ? n : undefined;
}

type Addr = { family: 4 | 6; addr: string; port: number };

/** An IP sockaddr map to family/addr/port, or a reason. */
function sockaddr(v: unknown, omitsZero: boolean): Addr | string {
  if (!isObj(v)) return "sockaddr is not an object";
  const fam = v.sa_family;
  if (fam === "AF_INET") {
    const b = typeof v.sin_addr === "string" ? parseIPv4(v.sin_addr) : undefined;
    if (!b) return "sin_addr is not an IPv4 address";
    const port = portOf(v.sin_port, omitsZero);
    if (port === undefined) return "sin_port is not a port number";
    return { family: 4, addr: formatIPv4(b), port };
  }
  if (fam === "AF_INET6") {
    const b = typeof v.sin6_addr === "string" ? parseIPv6(v.sin6_addr) : undefined;
    if (!b) return "sin6_addr is not an IPv6 address";
    const port = portOf(v.sin6_port, omitsZero);
    if (port === undefined) return "sin6_port is not a port number";
    return { family: 6, addr: formatIPv6(b), port };
  }
  if (typeof fam === "string") return `not an IP socket address (${fam.slice(0, 40)})`;
  return "sa_family is not a string";
}

const fdOf = (v: unknown): number | undefined => {
  const n = toInt(v);
  return n !== undefined && n >= 0 && n <= 0x7fffffff ? n : undefined;
};

/** 4/6 from a socket domain ("AF_INET6" or 10), "other" for non-IP domains, undefined when unreadable. */
function domainOf(v: unknown): 4 | 6 | "other" | undefined {
  if (v === "AF_INET" || v === 2) return 4;
  if (v === "AF_INET6" || v === 10) return 6;
  if (typeof v === "string" && /^AF_\w+$/.test(v)) return "other";
  const n = toInt(v);
  return n !== undefined && n >= 0 && n < 64 ? "other" : undefined;
}

/** SOCK_CLOEXEC (O_CLOEXEC) in a socket type or dup3 flags ("SOCK_STREAM|SOCK_CLOEXEC", "O_CLOEXEC", 524289). */
function cloexecOf(type: unknown): boolean {
  if (typeof type === "string") return type.split("|").some((w) => w === "SOCK_CLOEXEC" || w === "O_CLOEXEC");
  const n = toInt(type);
  return n !== undefined && (n & 0x80000) !== 0;
}

/** tcp/udp from a socket type ("SOCK_STREAM|SOCK_CLOEXEC" or 524289) and protocol (0, 6, 17, "IPPROTO_TCP"). */
function protoOf(type: unknown, protocol: unknown): "tcp" | "udp" | string {
  let base: number | undefined;
  if (typeof type === "string" && /^SOCK_[A-Z]+(\|SOCK_[A-Z]+)*$/.test(type)) {
    base = { SOCK_STREAM: 1, SOCK_DGRAM: 2 }[type.split("|")[0]] ?? 0;
  } else if (toInt(type) !== undefined) {
    base = toInt(type)! & 0xf;
  }
  if (base === undefined) return "socket type is unreadable";
  const named: Record<string, number> = {
    IPPROTO_IP: 0,
    IPPROTO_TCP: 6,
    IPPROTO_UDP: 17,
    IPPROTO_MPTCP: 262,
  };
  const p = typeof protocol === "string" && protocol in named ? named[protocol] : toInt(protocol ?? 0);
  if (base === 1 && (p === 0 || p === 6 || p === 262)) return "tcp";
  if (base === 2 && (p === 0 || p === 17)) return "udp";
  return `not a TCP/UDP socket (type ${String(type).slice(0, 40)}, protocol ${
    String(protocol).slice(0, 20)
  })`;
}

const ok = (...events: SocketEvent[]) => ({ events });

function bindOrListen(h: Header, kind: "bind" | "listen", addrArg: string, lsm: boolean): TraceeParseResult {
  const fd = fdOf(h.args.get("sockfd"));
  if (fd === undefined) return { skip: `${h.name}: sockfd is missing or not an fd` };
  // A syscall's result is known (returnValue); an LSM hook runs before the kernel does the work.
  const failed = !lsm && h.ret !== undefined && h.ret !== 0;
  const proto = kind === "listen" ? "tcp" : undefined;
  if (!h.args.has(addrArg)) {
    if (kind === "listen" && !lsm) return ok(base(h, kind, { fd, proto, failed }));
    return { skip: `${h.name}: ${addrArg} is missing` };
  }
  const a = sockaddr(h.args.get(addrArg), h.omitsZero);
  if (typeof a === "string") return { skip: `${h.name}: ${a}` };
  return ok(base(h, kind, { fd, proto, ...a, failed }));
}

function socketCreate(h: Header, lsm: boolean): TraceeParseResult {
  const family = domainOf(h.args.get(lsm ? "family" : "domain"));
  if (family === undefined) return { skip: `${h.name}: socket family is missing or unreadable` };
  if (family === "other") {
    return {
      skip: `${h.name}: not an IP socket (${String(h.args.get(lsm ? "family" : "domain")).slice(0, 40)})`,
    };
  }
  const proto = protoOf(h.args.get("type"), h.args.get("protocol"));
  if (proto !== "tcp" && proto !== "udp") return { skip: `${h.name}: ${proto}` };
  if (lsm) {
    const kern = toInt(h.args.get("kern") ?? 0);
    if (kern !== 0) return { skip: `${h.name}: kernel-internal socket` };
    // The LSM hook runs before the fd exists: no fd to key on.
    return ok(base(h, "socket", { proto, family }));
  }
  if (h.ret === undefined) return { skip: "socket: returnValue (the fd) is missing" };
  if (h.ret < 0) return ok(base(h, "socket", { proto, family, failed: true }));
  const fd = fdOf(h.ret);
  if (fd === undefined) return { skip: "socket: returnValue is not an fd" };
  return ok(base(h, "socket", { fd, proto, family, cloexec: cloexecOf(h.args.get("type")) }));
}

/**
 * dup(oldfd) (the new fd is its returnValue), dup2/dup3(oldfd, newfd): a `dup` event. That dup2/dup3 closed
 * newfd first, when it was open, the adapter says (it knows which fds are sockets).
 */
function dupOf(h: Header): TraceeParseResult {
  const oldFd = fdOf(h.args.get("oldfd"));
  if (oldFd === undefined) return { skip: `${h.name}: oldfd is missing or not an fd` };
  if (h.ret !== undefined && h.ret < 0) return { skip: `${h.name}: failed (${h.ret}), no fd changed` };
  const fd = h.name === "dup" ? (h.ret === undefined ? undefined : fdOf(h.ret)) : fdOf(h.args.get("newfd"));
  if (fd === undefined) {
    return { skip: `${h.name}: ${h.name === "dup" ? "returnValue" : "newfd"} is missing or not an fd` };
  }
  if (fd === oldFd) return { skip: `${h.name}: an fd onto itself, nothing changed` };
  // dup3(…, O_CLOEXEC): the copy is close-on-exec (O_CLOEXEC and SOCK_CLOEXEC are one value).
  const cloexec = h.name === "dup3" && cloexecOf(h.args.get("flags"));
  return ok(base(h, "dup", { fd, oldFd, cloexec }));
}

function eventOf(h: Header): TraceeParseResult {
  switch (h.name) {
    case "security_socket_bind":
      return bindOrListen(h, "bind", "local_addr", true);
    case "bind":
      return bindOrListen(h, "bind", "addr", false);
    case "security_socket_listen":
      return bindOrListen(h, "listen", "local_addr", true);
    case "listen":
      return bindOrListen(h, "listen", "local_addr", false);
    case "socket":
      return socketCreate(h, false);
    case "security_socket_create":
      return socketCreate(h, true);
    case "close": {
      const fd = fdOf(h.args.get("fd"));
      if (fd === undefined) return { skip: "close: fd is missing or not an fd" };
      return ok(base(h, "close", { fd, failed: h.ret !== undefined && h.ret !== 0 }));
    }
    case "dup":
    case "dup2":
    case "dup3":
      return dupOf(h);
    case "sched_process_exec":
      return ok(base(h, "exec", {}));
    case "sched_process_exit": {
      const group = h.args.get("process_group_exit");
      if (group === false) return { skip: "sched_process_exit: a thread exited, not the process" };
      if (group === undefined && h.tid !== undefined && h.tid !== h.pid) {
        return { skip: "sched_process_exit: a thread exited, not the process" };
      }
      if (group !== undefined && group !== true) {
        return { skip: "sched_process_exit: process_group_exit is not a bool" };
      }
      return ok(base(h, "exit", {}));
    }
    case "sched_process_fork": {
      const child = toInt(h.args.get("child_pid"));
      if (child === undefined || child <= 0) {
        return { skip: "sched_process_fork: child_pid is missing or not a pid" };
      }
      if (child === h.pid) return { skip: "sched_process_fork: a thread was created, not a process" };
      return ok(base(h, "fork", { childPid: child }));
    }
  }
  if (h.name.startsWith("net_packet_") || h.name.startsWith("net_flow_")) {
    return { skip: `${h.name}: a network packet event, not socket lifecycle` };
  }
  return { skip: `unhandled event ${JSON.stringify(h.name.slice(0, 60))}` };
}

/** Parse one line of `tracee --output json` (any format generation) into socket events, or say why not. */
export function parseTraceeLine(line: string): TraceeParseResult {
  try {
    if (typeof line !== "string") return { skip: "not a string" };
    let o: unknown;
    try {
      o = JSON.parse(line);
    } catch {
      return { skip: "not JSON" };
    }
    if (!isObj(o)) return { skip: "not a JSON object" };
    let h: Header | string;
    if (typeof o.eventName === "string") h = legacyHeader(line, o);
    else if (typeof o.name === "string" && (typeof o.timestamp === "string" || isObj(o.workload))) {
      h = v1beta1Header(o);
    } else return { skip: "not a Tracee event (no eventName or name)" };
    if (typeof h === "string") return { skip: h };
    return eventOf(h);
  } catch (err) {
    // Nothing above should throw; this keeps the promise of the signature if something does.
    return { skip: `internal error: ${err instanceof Error ? err.message : String(err)}` };
  }
}
