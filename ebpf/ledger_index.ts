/**
 * The ledger's socket index: the live sockets by key, with indexes by pid:fd, by kernel address and by port, the
 * ports touched by the last change, the change watches of reconciliations, and the port observations made from
 * it. The rules that decide what an event does are in ledger.ts; this only keeps the indexes in step.
 * @module
 */
import type { PortObservation } from "../pipeline/observe.ts";
import type { SocketEvent } from "./socket_event.ts";

/** One live socket: a listening TCP socket or a bound UDP socket. */
export interface LiveSocket {
  /** Inode when known, else the kernel socket address, else "pid:fd". */
  key: string;
  netns: number;
  proto: "tcp" | "udp";
  family: 4 | 6;
  addr: string;
  port: number;
  inode?: number;
  pids: Set<number>;
  /** pid:fd pairs known to hold it (Tracee-style engines close by fd). */
  fds: Set<string>;
  /** The container, when the engine's events name it (Tracee). */
  container?: { id: string | null; name: string | null };
  /** The kernel socket address, when the engine reports it (its index entry goes with the socket). */
  sk?: string;
  /** Kernel time of its open (the event's `kts`), when known: an end older than that is not its end. */
  kts?: number;
}

/** The socket key an event is about. */
export function eventKey(e: SocketEvent): string | undefined {
  if (e.inode !== undefined && e.inode > 0) return `ino:${e.inode}`;
  if (e.sk) return `sk:${e.sk}`;
  if (e.fd !== undefined) return `fd:${e.pid}:${e.fd}`;
  return undefined;
}

/** One port of one namespace (and container, when the engine knows it per socket). */
export interface PortRef {
  netns: number;
  proto: "tcp" | "udp";
  port: number;
  containerId?: string | null;
}

function portKeyOf(
  s: { netns: number; proto: string; port: number; container?: { id: string | null } },
): string {
  return `${s.netns}/${s.proto}/${s.port}/${s.container?.id ?? ""}`;
}

const refOf = (s: LiveSocket): PortRef => ({
  netns: s.netns,
  proto: s.proto,
  port: s.port,
  containerId: s.container?.id,
});

/** Sockets by key and their indexes; `hides` names sockets kept here but left out of observations. */
export class SocketIndex {
  constructor(readonly hides?: (netns: number, pids: Iterable<number>) => boolean) {}

  #sockets = new Map<string, LiveSocket>();
  #byPort = new Map<string, Set<string>>();
  #byFd = new Map<string, string>();
  #bySk = new Map<string, string>();
  /** The ports whose sockets or holders changed since it was last reset. */
  touched: PortRef[] = [];
  /** Open change watches: each collects the keys of the sockets (and `pid:N` of the processes) events changed. */
  #watches = new Set<Set<string>>();

  get(key: string): LiveSocket | undefined {
    return this.#sockets.get(key);
  }

  /** How many sockets are live. */
  get size(): number {
    return this.#sockets.size;
  }

  /** The key of the socket `pid:fd` is known to hold. */
  keyOfFd(pidFd: string): string | undefined {
    return this.#byFd.get(pidFd);
  }

  /** The key of the socket at kernel address `sk`. */
  keyOfSk(sk: string): string | undefined {
    return this.#bySk.get(sk);
  }

  /** Live sockets, optionally of one namespace. */
  sockets(netns?: number): LiveSocket[] {
    const all = [...this.#sockets.values()];
    return netns === undefined ? all : all.filter((s) => s.netns === netns);
  }

  /** Live sockets held by `pid`. */
  heldBy(pid: number): LiveSocket[] {
    return [...this.#sockets.values()].filter((s) => s.pids.has(pid));
  }

  /** A socket known under no inode that a scan found as `inode`, by proto/port/addr (Tracee: pid:fd keys). */
  aliasOf(netns: number, proto: string, port: number, addr: string): LiveSocket | undefined {
    for (const s of this.#sockets.values()) {
      if (
        s.netns === netns && s.inode === undefined && s.proto === proto && s.port === port && s.addr === addr
      ) {
        return s;
      }
    }
    return undefined;
  }

  watch(): Set<string> {
    const keys = new Set<string>();
    this.#watches.add(keys);
    return keys;
  }

  unwatch(keys: Set<string>): void {
    this.#watches.delete(keys);
  }

  /** Tell the open watches that `key` changed. */
  changed(key: string): void {
    for (const w of this.#watches) w.add(key);
  }

  /** Add a new socket (and its fds and kernel address). */
  add(s: LiveSocket): void {
    this.#sockets.set(s.key, s);
    this.#indexPort(s);
    this.changed(s.key);
    if (s.sk !== undefined) this.#bySk.set(s.sk, s.key);
    for (const f of s.fds) this.#byFd.set(f, s.key);
  }

  /** Remove socket `key`; its namespace, or none when it was not there. */
  remove(key: string): number[] {
    const s = this.#sockets.get(key);
    if (!s) return [];
    this.changed(key);
    this.#unindexPort(s);
    this.#sockets.delete(key);
    for (const f of s.fds) if (this.#byFd.get(f) === key) this.#byFd.delete(f);
    if (s.sk !== undefined && this.#bySk.get(s.sk) === key) this.#bySk.delete(s.sk);
    return [s.netns];
  }

  /** Known under another key from now on (a scan named its inode). */
  rekey(s: LiveSocket, key: string, inode: number): void {
    this.#unindexPort(s);
    this.#sockets.delete(s.key);
    s.key = key;
    s.inode = inode;
    this.#sockets.set(key, s);
    this.#indexPort(s);
    for (const f of s.fds) this.#byFd.set(f, key);
    if (s.sk !== undefined) this.#bySk.set(s.sk, key);
  }

  /** Its holders changed: its port is touched, and the watches told. */
  touch(s: LiveSocket): void {
    this.changed(s.key);
    this.touched.push(refOf(s));
  }

  addFd(s: LiveSocket, pid: number, fd: number | string): void {
    s.fds.add(`${pid}:${fd}`);
    this.#byFd.set(`${pid}:${fd}`, s.key);
  }

  dropFd(s: LiveSocket, pidFd: string): void {
    s.fds.delete(pidFd);
    if (this.#byFd.get(pidFd) === s.key) this.#byFd.delete(pidFd);
  }

  /** Whether `pid` is known to hold `s` through some fd. */
  hasFdOf(s: LiveSocket, pid: number): boolean {
    const prefix = `${pid}:`;
    for (const f of s.fds) if (f.startsWith(prefix)) return true;
    return false;
  }

  /** `pid` no longer holds `s`, through any fd (the caller touches or removes the socket). */
  dropHolder(s: LiveSocket, pid: number): void {
    s.pids.delete(pid);
    const prefix = `${pid}:`;
    for (const f of [...s.fds]) if (f.startsWith(prefix)) this.dropFd(s, f);
  }

  #indexPort(s: LiveSocket): void {
    const k = portKeyOf(s);
    let set = this.#byPort.get(k);
    if (!set) this.#byPort.set(k, set = new Set());
    set.add(s.key);
    this.touched.push(refOf(s));
  }

  #unindexPort(s: LiveSocket): void {
    const k = portKeyOf(s);
    const set = this.#byPort.get(k);
    set?.delete(s.key);
    if (set?.size === 0) this.#byPort.delete(k);
    this.touched.push(refOf(s));
  }

  /** One port's observation (undefined when no socket holds it): O(sockets on that port). */
  observationOf(ref: PortRef): PortObservation | undefined {
    const keys = this.#byPort.get(
      portKeyOf({ ...ref, container: ref.containerId === undefined ? undefined : { id: ref.containerId } }),
    );
    if (!keys || keys.size === 0) return undefined;
    const addrs = new Set<string>();
    const pids = new Set<number>();
    const inodes: number[] = [];
    let family: 4 | 6 = 6;
    let container: LiveSocket["container"];
    for (const k of keys) {
      const s = this.#sockets.get(k)!;
      if (this.hides?.(s.netns, s.pids)) continue;
      if (s.family === 4) family = 4;
      addrs.add(s.addr);
      if (s.inode !== undefined) inodes.push(s.inode);
      for (const p of s.pids) pids.add(p);
      container ??= s.container;
    }
    if (addrs.size === 0) return undefined; // every socket on it is hidden
    const obs: PortObservation = {
      proto: ref.proto,
      port: ref.port,
      family,
      addrs: [...addrs].sort(),
      inodes: inodes.sort((a, b) => a - b),
      pids: [...pids].sort((a, b) => a - b),
    };
    if (container) obs.container = container;
    return obs;
  }

  /** The ports open in `netns`, as a polling scan would observe them. */
  observations(netns: number): PortObservation[] {
    const byPort = new Map<string, { obs: PortObservation; addrs: Set<string>; pids: Set<number> }>();
    for (const s of this.sockets(netns)) {
      if (this.hides?.(s.netns, s.pids)) continue;
      const k = `${s.proto}/${s.port}/${s.container?.id ?? ""}`;
      let g = byPort.get(k);
      if (!g) {
        g = {
          obs: { proto: s.proto, port: s.port, family: s.family, addrs: [], inodes: [], pids: [] },
          addrs: new Set(),
          pids: new Set(),
        };
        if (s.container) g.obs.container = s.container;
        byPort.set(k, g);
      }
      if (s.family === 4) g.obs.family = 4;
      g.addrs.add(s.addr);
      if (s.inode !== undefined) g.obs.inodes.push(s.inode);
      for (const p of s.pids) g.pids.add(p);
    }
    return [...byPort.values()].map(({ obs, addrs, pids }) => ({
      ...obs,
      addrs: [...addrs].sort(),
      pids: [...pids].sort((a, b) => a - b),
      inodes: obs.inodes.sort((a, b) => a - b),
    })).sort((a, b) => a.proto.localeCompare(b.proto) || a.port - b.port);
  }
}
