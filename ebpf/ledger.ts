/**
 * The live sockets an event-driven engine knows of, per network namespace, built from socket events and
 * corrected by reconciliation scans. It yields the same per-namespace port observations as a polling scan, so
 * the shared PortTracker does the diff, the grace and the events.
 * @module
 */
import type { PortObservation } from "../pipeline/observe.ts";
import type { ListeningSocket } from "../sources/socket.ts";
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

/** How long (kernel ns) forks and ends are remembered for events that arrive after newer ones. */
const RECENT_NS = 5_000_000_000;
/** At most this many of each are remembered. */
const RECENT_MAX = 4096;

/** An event that ended something (kts > the open's) was applied before the open: undo the open. */
function endedAfter(end: number | undefined, open: number | undefined): boolean {
  return end !== undefined && open !== undefined && end > open;
}

/** Options of {@link SocketLedger}. */
export interface SocketLedgerOptions {
  /**
   * Sockets not to observe (kept in the ledger, left out of observations): the runtime-owned ones (see
   * pipeline/scope/runtime_sockets.ts), given the socket's namespace and its holders.
   */
  hides?: (netns: number, pids: Iterable<number>) => boolean;
}

/**
 * Sockets by key, with indexes by pid:fd, by kernel address and by port. Sockets `options.hides` names stay in
 * the ledger (reconciliation sees them as known) but are not observed as ports.
 */
export class SocketLedger {
  /** A ledger; see {@link SocketLedgerOptions}. */
  constructor(readonly options: SocketLedgerOptions = {}) {}

  #sockets = new Map<string, LiveSocket>();
  #byPort = new Map<string, Set<string>>();
  /** The ports whose sockets the last apply() added or removed (for incremental tracking). */
  touched: PortRef[] = [];
  #byFd = new Map<string, string>();
  #bySk = new Map<string, string>();
  /** Sockets added or removed by reconciliation: drift the events did not explain. */
  drift = 0;
  /** Open change watches: each collects the keys of sockets events open or close (see watchChanges). */
  #watches = new Set<Set<string>>();
  /**
   * Recent forks by parent pid (child, kts): an open read after a newer fork of its process (another CPU's
   * buffer) still goes to the child.
   */
  #forks = new Map<number, { child: number; kts: number }[]>();
  #forkCount = 0;
  /**
   * Recent ends that found no socket, by socket key or `sk:` address (kts): an open older than that end, read
   * after it (beyond the engine's reorder window), is not a live socket.
   */
  #tombs = new Map<string, number>();
  /** Opens dropped because their socket's end had already been applied (see #tombs). */
  lateOpens = 0;

  /**
   * Collect, from now until {@link unwatchChanges}, the keys of the sockets that events open or close: what a
   * reconciliation must not judge, its scan having raced with those events.
   */
  watchChanges(): Set<string> {
    const keys = new Set<string>();
    this.#watches.add(keys);
    return keys;
  }

  /** Stop collecting into `keys`. */
  unwatchChanges(keys: Set<string>): void {
    this.#watches.delete(keys);
  }

  #changed(key: string): void {
    for (const w of this.#watches) w.add(key);
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

  /**
   * Apply one event; returns the namespaces whose open ports may have changed (empty when nothing did).
   * `bind` opens UDP ports, `listen` opens TCP ports; `unlisten`, `close` and `exit` remove what they end.
   */
  apply(e: SocketEvent, defaultNetns: number): number[] {
    this.touched = [];
    // A failed bind or listen opens nothing; a failed close still frees the fd (Linux frees it even on EINTR).
    if (e.failed && e.kind !== "close") return [];
    switch (e.kind) {
      case "bind":
        if (e.proto !== "udp") return [];
        return this.#open(e, defaultNetns);
      case "listen":
        if (e.proto !== undefined && e.proto !== "tcp") return [];
        return this.#open({ ...e, proto: "tcp" }, defaultNetns);
      case "unlisten": {
        const key = e.sk ? this.#bySk.get(e.sk) : eventKey(e);
        if (key && this.#sockets.has(key) && this.#endsSocket(key, e)) return this.#remove(key);
        this.#tomb(e.sk ? `sk:${e.sk}` : key, e.kts);
        return [];
      }
      case "close": {
        const byFd = this.#byFd.get(`${e.pid}:${e.fd}`);
        const key = e.inode !== undefined || e.sk ? (e.sk && this.#bySk.get(e.sk)) || eventKey(e) : byFd;
        const s = key ? this.#sockets.get(key) : undefined;
        if (!key || !s) {
          if (e.inode !== undefined && e.inode > 0) this.#tomb(`ino:${e.inode}`, e.kts);
          if (e.sk) this.#tomb(`sk:${e.sk}`, e.kts);
          return [];
        }
        // An engine that knows the last reference went (inode/sk given) closes the socket; one that only
        // knows an fd closed drops that holder, and the socket when it was the last known one.
        if (e.inode !== undefined || e.sk) return this.#endsSocket(key, e) ? this.#remove(key) : [];
        s.fds.delete(`${e.pid}:${e.fd}`);
        this.#byFd.delete(`${e.pid}:${e.fd}`);
        if (![...s.fds].some((f) => f.startsWith(`${e.pid}:`))) s.pids.delete(e.pid);
        return s.fds.size === 0 ? this.#remove(key) : [];
      }
      case "fork": {
        if (e.childPid === undefined) return [];
        if (e.kts !== undefined) this.#rememberFork(e.pid, e.childPid, e.kts);
        for (const s of this.heldBy(e.pid)) {
          // A socket opened after the fork (its open read first, from another CPU) is not the child's.
          if (endedAfter(s.kts, e.kts)) continue;
          this.#inherit(s, e.pid, e.childPid);
        }
        return [];
      }
      case "exit": {
        // The exiting process lets go of its fds; sockets it alone held (as far as we know) close.
        const touched = new Set<number>();
        this.#tomb(`pid:${e.pid}`, e.kts);
        for (const s of this.heldBy(e.pid)) {
          if (endedAfter(s.kts, e.kts)) continue; // opened after the exit: a new process with the pid reused
          s.pids.delete(e.pid);
          for (const f of [...s.fds]) {
            if (f.startsWith(`${e.pid}:`)) {
              s.fds.delete(f);
              this.#byFd.delete(f);
            }
          }
          if (s.pids.size === 0) { for (const n of this.#remove(s.key)) touched.add(n); }
        }
        return [...touched];
      }
      default:
        return [];
    }
  }

  #open(e: SocketEvent, defaultNetns: number): number[] {
    if (e.port === undefined || e.port <= 0 || e.addr === undefined || e.proto === undefined) return [];
    const key = eventKey(e);
    if (!key) return [];
    const netns = e.netns ?? defaultNetns;
    const known = this.#sockets.get(key);
    if (known) {
      known.pids.add(e.pid);
      if (e.fd !== undefined) this.#addFd(known, e.pid, e.fd);
      return [];
    }
    if (e.kts !== undefined && this.#tombs.size > 0) {
      // Its end was applied already (it came that much earlier): this socket is gone, no phantom.
      const ended = this.#tombs.get(key) ?? (e.sk ? this.#tombs.get(`sk:${e.sk}`) : undefined);
      if (endedAfter(ended, e.kts)) {
        this.lateOpens++;
        return [];
      }
    }
    const touched: number[] = [];
    if (e.sk) {
      // A socket known at this kernel address has been freed for this one to be made there: its end (held,
      // or lost) is older than this open. It goes now; its end, when it comes, finds it gone.
      const prior = this.#bySk.get(e.sk);
      const old = prior !== undefined && prior !== key ? this.#sockets.get(prior) : undefined;
      if (old && old.kts !== undefined && e.kts !== undefined && old.kts < e.kts) {
        touched.push(...this.#remove(prior!));
      }
    }
    const s: LiveSocket = {
      key,
      netns,
      proto: e.proto,
      family: e.family ?? (e.addr.includes(":") ? 6 : 4),
      addr: e.addr,
      port: e.port,
      inode: e.inode,
      pids: new Set([e.pid]),
      fds: new Set(),
    };
    if (e.kts !== undefined) s.kts = e.kts;
    if (e.containerId !== undefined || e.containerName !== undefined) {
      s.container = { id: e.containerId ?? null, name: e.containerName ?? null };
    }
    this.#sockets.set(key, s);
    this.#index(s);
    if (this.#watches.size > 0) this.#changed(key);
    if (e.sk) {
      s.sk = e.sk;
      this.#bySk.set(e.sk, key);
    }
    if (e.fd !== undefined) this.#addFd(s, e.pid, e.fd);
    if (e.kts !== undefined && this.#forkCount > 0) this.#forkedSince(s, e.pid, e.kts);
    if (e.kts !== undefined && endedAfter(this.#tombs.get(`pid:${e.pid}`), e.kts)) {
      // Its process's exit was applied already: it holds nothing (its children, if any, do).
      s.pids.delete(e.pid);
      for (const f of [...s.fds]) {
        if (f.startsWith(`${e.pid}:`)) {
          s.fds.delete(f);
          this.#byFd.delete(f);
        }
      }
      if (s.pids.size === 0) {
        this.lateOpens++;
        this.#remove(key);
        return touched;
      }
    }
    if (!touched.includes(netns)) touched.push(netns);
    return touched;
  }

  /** Whether end event `e` ends socket `key` (not one opened after it, at the same address). */
  #endsSocket(key: string, e: SocketEvent): boolean {
    const s = this.#sockets.get(key)!;
    return !endedAfter(s.kts, e.kts);
  }

  /** `child` (forked by `parent`) holds what `parent` held of `s`. */
  #inherit(s: LiveSocket, parent: number, child: number): void {
    s.pids.add(child);
    for (const f of [...s.fds]) {
      if (!f.startsWith(`${parent}:`)) continue;
      const childFd = `${child}:${f.slice(f.indexOf(":") + 1)}`;
      s.fds.add(childFd);
      this.#byFd.set(childFd, s.key);
    }
  }

  /** Socket `s`, opened by `pid` at `kts`, goes to the children it forked after (forks read before the open). */
  #forkedSince(s: LiveSocket, pid: number, kts: number): void {
    const queue = [{ pid, kts }];
    for (let n = 0; n < queue.length && n < 64; n++) {
      for (const f of this.#forks.get(queue[n].pid) ?? []) {
        if (f.kts <= queue[n].kts || s.pids.has(f.child)) continue;
        this.#inherit(s, queue[n].pid, f.child);
        queue.push({ pid: f.child, kts: f.kts });
      }
    }
  }

  #rememberFork(parent: number, child: number, kts: number): void {
    let list = this.#forks.get(parent);
    if (!list) this.#forks.set(parent, list = []);
    list.push({ child, kts });
    this.#forkCount++;
    if (this.#forkCount > RECENT_MAX || list.length > 64) {
      for (const [p, l] of this.#forks) {
        const kept = l.filter((f) => f.kts > kts - RECENT_NS).slice(-64);
        this.#forkCount -= l.length - kept.length;
        if (kept.length === 0) this.#forks.delete(p);
        else this.#forks.set(p, kept);
      }
      while (this.#forkCount > RECENT_MAX) {
        const [p, l] = this.#forks.entries().next().value!;
        this.#forks.delete(p);
        this.#forkCount -= l.length;
      }
    }
  }

  /** An end that found no socket: remembered (with its time) for an older open that arrives later. */
  #tomb(key: string | undefined, kts: number | undefined): void {
    if (key === undefined || kts === undefined) return;
    this.#tombs.delete(key);
    this.#tombs.set(key, kts);
    if (this.#tombs.size > RECENT_MAX) {
      for (const [k, t] of this.#tombs) {
        if (this.#tombs.size <= RECENT_MAX / 2 && t > kts - RECENT_NS) break;
        this.#tombs.delete(k);
      }
    }
  }

  #addFd(s: LiveSocket, pid: number, fd: number) {
    s.fds.add(`${pid}:${fd}`);
    this.#byFd.set(`${pid}:${fd}`, s.key);
  }

  #remove(key: string): number[] {
    const s = this.#sockets.get(key);
    if (!s) return [];
    if (this.#watches.size > 0) this.#changed(key);
    this.#unindex(s);
    this.#sockets.delete(key);
    for (const f of s.fds) if (this.#byFd.get(f) === key) this.#byFd.delete(f);
    if (s.sk !== undefined && this.#bySk.get(s.sk) === key) this.#bySk.delete(s.sk);
    return [s.netns];
  }

  /**
   * Make namespace `netns` agree with a scan of it (sockets and their holders). Returns how many sockets the
   * events had not accounted for (added or removed here): 0 when the events told the whole story. Sockets in
   * `skip` (events opened or closed them while the scan was under way, see watchChanges) are left as they are.
   */
  reconcile(
    netns: number,
    scanned: readonly ListeningSocket[],
    pidsOf: (inode: number) => readonly number[],
    skip?: ReadonlySet<string>,
  ): number {
    const seen = new Set<string>();
    let drift = 0;
    for (const sock of scanned) {
      const key = `ino:${sock.inode}`;
      seen.add(key);
      if (skip?.has(key)) continue;
      const known = this.#sockets.get(key);
      const pids = pidsOf(sock.inode);
      if (known) {
        if (pids.length > 0) known.pids = new Set(pids);
        continue;
      }
      // A socket known under another key (Tracee: pid:fd) that matches proto/port/addr is the same one.
      const alias = [...this.#sockets.values()].find((s) =>
        s.netns === netns && s.inode === undefined && s.proto === sock.proto && s.port === sock.port &&
        s.addr === sock.addr
      );
      if (alias) {
        this.#unindex(alias);
        this.#sockets.delete(alias.key);
        alias.key = key;
        alias.inode = sock.inode;
        this.#sockets.set(key, alias);
        this.#index(alias);
        for (const f of alias.fds) this.#byFd.set(f, key);
        seen.add(key);
        continue;
      }
      const added: LiveSocket = {
        key,
        netns,
        proto: sock.proto,
        family: sock.family,
        addr: sock.addr,
        port: sock.port,
        inode: sock.inode,
        pids: new Set(pids),
        fds: new Set(),
      };
      this.#sockets.set(key, added);
      this.#index(added);
      drift++;
    }
    for (const s of this.sockets(netns)) {
      if (!seen.has(s.key) && !skip?.has(s.key)) {
        this.#remove(s.key);
        drift++;
      }
    }
    this.drift += drift;
    return drift;
  }

  /** Seed namespace `netns` from a scan at start (not counted as drift). */
  seed(
    netns: number,
    scanned: readonly ListeningSocket[],
    pidsOf: (inode: number) => readonly number[],
  ): void {
    const before = this.drift;
    this.reconcile(netns, scanned, pidsOf);
    this.drift = before;
  }

  /** Forget a namespace that is gone. */
  dropNamespace(netns: number): void {
    for (const s of this.sockets(netns)) this.#remove(s.key);
  }

  #index(s: LiveSocket): void {
    const k = portKeyOf(s);
    let set = this.#byPort.get(k);
    if (!set) this.#byPort.set(k, set = new Set());
    set.add(s.key);
    this.touched.push({ netns: s.netns, proto: s.proto, port: s.port, containerId: s.container?.id });
  }

  #unindex(s: LiveSocket): void {
    const k = portKeyOf(s);
    const set = this.#byPort.get(k);
    set?.delete(s.key);
    if (set?.size === 0) this.#byPort.delete(k);
    this.touched.push({ netns: s.netns, proto: s.proto, port: s.port, containerId: s.container?.id });
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
    const hides = this.options.hides;
    for (const k of keys) {
      const s = this.#sockets.get(k)!;
      if (hides?.(s.netns, s.pids)) continue;
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
    const hides = this.options.hides;
    for (const s of this.sockets(netns)) {
      if (hides?.(s.netns, s.pids)) continue;
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
