/**
 * The live sockets an event-driven engine knows of, per network namespace, and which processes hold them, built
 * from socket events and corrected by /proc reads ({@link SocketLedger.holdings}) and reconciliation scans. It
 * yields the same per-namespace port observations as a polling scan, so the shared PortTracker does the diff,
 * the grace and the events. The indexes are in ledger_index.ts, the memory of recent forks and ends (for events
 * read out of order) in ledger_recent.ts; the rules are here.
 * @module
 */
import type { ListeningSocket } from "../sources/socket.ts";
import type { SocketEvent } from "./socket_event.ts";
import { eventKey, type LiveSocket, type PortRef, SocketIndex } from "./ledger_index.ts";
import { RecentEnds, RecentForks } from "./ledger_recent.ts";
import { reconcileIndex } from "./ledger_reconcile.ts";
import type { PortObservation } from "../pipeline/observe.ts";

export { eventKey, type LiveSocket, type PortRef } from "./ledger_index.ts";

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
 * Sockets by key and their holders. Sockets `options.hides` names stay in the ledger (reconciliation sees them as
 * known) but are not observed as ports.
 *
 * Holders: the pid of the open holds the socket (with its fd); a fork's child inherits what its parent holds; an
 * exit drops the pid (a socket left with no holder is gone). A close that says it was the last reference (or
 * names the socket and says nothing) ends the socket; one that says it was not drops that fd, and the pid is
 * kept but put in {@link recheck} unless another of its fds is known to hold the socket (a dup the events did
 * not name). An exec puts the pid in {@link recheck} (its close-on-exec fds went without a close). The engine
 * reads what those pids hold from /proc and tells {@link holdings}. A close that names only an fd (Tracee) drops
 * that fd, the pid when none of its fds is left, and the socket when no fd is left.
 */
export class SocketLedger {
  /** A ledger; see {@link SocketLedgerOptions}. */
  constructor(readonly options: SocketLedgerOptions = {}) {
    this.#ix = new SocketIndex(options.hides);
  }

  readonly #ix: SocketIndex;
  readonly #forks = new RecentForks();
  readonly #ends = new RecentEnds();
  /** Sockets added or removed, and sockets whose holders differed, found by reconciliation: drift. */
  drift = 0;
  /** Opens dropped because their socket's end had already been applied (see RecentEnds). */
  lateOpens = 0;
  /**
   * Pids whose holdings the engine must read from /proc and hand to {@link holdings} (which takes them out):
   * an exec, or a close that was not the last reference of a socket the pid may hold through another fd.
   */
  readonly recheck = new Set<number>();

  /**
   * The ports whose sockets or holders the last apply(), holdings() or reconcile() changed (for incremental
   * tracking).
   */
  get touched(): PortRef[] {
    return this.#ix.touched;
  }

  /**
   * Collect, from now until {@link unwatchChanges}, the keys of the sockets that events open, close or change
   * the holders of, and `pid:N` for each process an event is about: what a reconciliation (or a /proc read for
   * {@link holdings}) must not judge, having raced with those events.
   */
  watchChanges(): Set<string> {
    return this.#ix.watch();
  }

  /** Stop collecting into `keys`. */
  unwatchChanges(keys: Set<string>): void {
    this.#ix.unwatch(keys);
  }

  /** How many sockets are live. */
  get size(): number {
    return this.#ix.size;
  }

  /** Live sockets, optionally of one namespace. */
  sockets(netns?: number): LiveSocket[] {
    return this.#ix.sockets(netns);
  }

  /** Live sockets held by `pid`. */
  heldBy(pid: number): LiveSocket[] {
    return this.#ix.heldBy(pid);
  }

  /** One port's observation (undefined when no socket holds it): O(sockets on that port). */
  observationOf(ref: PortRef): PortObservation | undefined {
    return this.#ix.observationOf(ref);
  }

  /** The ports open in `netns`, as a polling scan would observe them. */
  observations(netns: number): PortObservation[] {
    return this.#ix.observations(netns);
  }

  /**
   * Apply one event; returns the namespaces whose open ports or their holders may have changed (empty when
   * nothing did; {@link touched} names the ports). `bind` opens UDP ports, `listen` opens TCP ports; `unlisten`,
   * `close` and `exit` remove what they end; `fork`, `dup`, `exit` and `close` change holders; `exec` and a
   * `close` that was not the last put the pid in {@link recheck}.
   */
  apply(e: SocketEvent, defaultNetns: number): number[] {
    this.#ix.touched = [];
    this.#ix.changed(`pid:${e.pid}`);
    if (e.childPid !== undefined) this.#ix.changed(`pid:${e.childPid}`);
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
        const key = e.sk ? this.#ix.keyOfSk(e.sk) : eventKey(e);
        if (key && this.#ix.get(key) && this.#endsSocket(key, e)) return this.#ix.remove(key);
        this.#ends.remember(e.sk ? `sk:${e.sk}` : key, e.kts);
        return [];
      }
      case "close":
        return this.#close(e);
      case "dup":
        return this.#dup(e);
      case "fork":
        return this.#fork(e);
      case "exec":
        this.#ends.remember(`exec:${e.pid}`, e.kts);
        // Only a process that holds known sockets has anything to check (a tree of processes under a holder
        // execs often, holding nothing).
        if (this.recheck.has(e.pid) || this.#ix.heldBy(e.pid).length > 0) this.#markRecheck(e.pid);
        return [];
      case "exit": {
        // The exiting process lets go of its fds; sockets it alone held (as far as we know) close.
        this.recheck.delete(e.pid);
        this.#ends.remember(`pid:${e.pid}`, e.kts);
        const touched = new Set<number>();
        for (const s of this.#ix.heldBy(e.pid)) {
          if (endedAfter(s.kts, e.kts)) continue; // opened after the exit: a new process with the pid reused
          touched.add(this.#dropHolder(s, e.pid));
        }
        return [...touched];
      }
      default:
        return [];
    }
  }

  #close(e: SocketEvent): number[] {
    const pidFd = `${e.pid}:${e.fd}`;
    const bySocket = e.inode !== undefined || e.sk !== undefined;
    const key = bySocket ? (e.sk && this.#ix.keyOfSk(e.sk)) || eventKey(e) : this.#ix.keyOfFd(pidFd);
    const s = key ? this.#ix.get(key) : undefined;
    if (e.last === false) {
      // Not an end (so no tomb either): the socket lives on, held by another fd of this process or another's.
      if (s && !endedAfter(s.kts, e.kts)) {
        this.#ix.dropFd(s, pidFd);
        if (this.#ix.hasFdOf(s, e.pid)) return [];
      }
      this.#markRecheck(e.pid);
      return [];
    }
    if (!key || !s) {
      if (e.inode !== undefined && e.inode > 0) this.#ends.remember(`ino:${e.inode}`, e.kts);
      if (e.sk) this.#ends.remember(`sk:${e.sk}`, e.kts);
      return [];
    }
    // An engine that knows the last reference went (inode/sk given, or last) closes the socket; one that only
    // knows an fd closed drops that holder, and the socket when it was the last known one.
    if (bySocket || e.last === true) return this.#endsSocket(key, e) ? this.#ix.remove(key) : [];
    this.#ix.dropFd(s, pidFd);
    if (s.fds.size === 0) return this.#ix.remove(key);
    if (this.#ix.hasFdOf(s, e.pid)) return [];
    s.pids.delete(e.pid);
    this.#ix.touch(s);
    return [s.netns];
  }

  /** `fd` is a copy of `oldFd`: the socket oldFd holds is held through fd too. */
  #dup(e: SocketEvent): number[] {
    if (e.fd === undefined || e.oldFd === undefined || e.fd === e.oldFd) return [];
    const key = this.#ix.keyOfFd(`${e.pid}:${e.oldFd}`);
    const s = key ? this.#ix.get(key) : undefined;
    if (!s) return [];
    this.#ix.addFd(s, e.pid, e.fd);
    if (s.pids.has(e.pid)) return [];
    s.pids.add(e.pid);
    this.#ix.touch(s);
    return [s.netns];
  }

  #fork(e: SocketEvent): number[] {
    if (e.childPid === undefined) return [];
    if (e.kts !== undefined) this.#forks.remember(e.pid, e.childPid, e.kts);
    // What the parent holds is in doubt: so is what the child inherited.
    if (this.recheck.has(e.pid)) this.#markRecheck(e.childPid);
    const touched = new Set<number>();
    for (const s of this.#ix.heldBy(e.pid)) {
      // A socket opened after the fork (its open read first, from another CPU) is not the child's.
      if (endedAfter(s.kts, e.kts)) continue;
      this.#inherit(s, e.pid, e.childPid);
      this.#ix.touch(s);
      touched.add(s.netns);
    }
    return [...touched];
  }

  #markRecheck(pid: number): void {
    this.recheck.add(pid);
    this.#ix.changed(`pid:${pid}`);
  }

  /** `pid` no longer holds `s`: the socket goes when no holder is left. Returns its namespace. */
  #dropHolder(s: LiveSocket, pid: number): number {
    this.#ix.dropHolder(s, pid);
    if (s.pids.size === 0) this.#ix.remove(s.key);
    else this.#ix.touch(s);
    return s.netns;
  }

  #open(e: SocketEvent, defaultNetns: number): number[] {
    if (e.port === undefined || e.port <= 0 || e.addr === undefined || e.proto === undefined) return [];
    const key = eventKey(e);
    if (!key) return [];
    const netns = e.netns ?? defaultNetns;
    const known = this.#ix.get(key);
    if (known) {
      if (e.fd !== undefined) this.#ix.addFd(known, e.pid, e.fd);
      if (known.pids.has(e.pid)) return [];
      known.pids.add(e.pid);
      this.#ix.touch(known);
      return [known.netns];
    }
    if (e.kts !== undefined && this.#ends.size > 0) {
      // Its end was applied already (it came that much earlier): this socket is gone, no phantom.
      const ended = this.#ends.get(key) ?? (e.sk ? this.#ends.get(`sk:${e.sk}`) : undefined);
      if (endedAfter(ended, e.kts)) {
        this.lateOpens++;
        return [];
      }
    }
    const touched: number[] = [];
    if (e.sk) {
      // A socket known at this kernel address has been freed for this one to be made there: its end (held,
      // or lost) is older than this open. It goes now; its end, when it comes, finds it gone.
      const prior = this.#ix.keyOfSk(e.sk);
      const old = prior !== undefined && prior !== key ? this.#ix.get(prior) : undefined;
      if (old && old.kts !== undefined && e.kts !== undefined && old.kts < e.kts) {
        touched.push(...this.#ix.remove(prior!));
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
      fds: new Set(e.fd === undefined ? [] : [`${e.pid}:${e.fd}`]),
    };
    if (e.kts !== undefined) s.kts = e.kts;
    if (e.containerId !== undefined || e.containerName !== undefined) {
      s.container = { id: e.containerId ?? null, name: e.containerName ?? null };
    }
    if (e.sk) s.sk = e.sk;
    this.#ix.add(s);
    if (e.kts !== undefined && this.#forks.size > 0) this.#forkedSince(s, e.pid, e.kts);
    // Its process exec'd since (read first): its close-on-exec fds are gone, maybe this one.
    if (endedAfter(this.#ends.get(`exec:${e.pid}`), e.kts)) this.#markRecheck(e.pid);
    if (e.kts !== undefined && endedAfter(this.#ends.get(`pid:${e.pid}`), e.kts)) {
      // Its process's exit was applied already: it holds nothing (its children, if any, do).
      this.#ix.dropHolder(s, e.pid);
      if (s.pids.size === 0) {
        this.lateOpens++;
        this.#ix.remove(key);
        return touched;
      }
    }
    if (!touched.includes(netns)) touched.push(netns);
    return touched;
  }

  /** Whether end event `e` ends socket `key` (not one opened after it, at the same address). */
  #endsSocket(key: string, e: SocketEvent): boolean {
    return !endedAfter(this.#ix.get(key)!.kts, e.kts);
  }

  /** `child` (forked by `parent`) holds what `parent` held of `s`. */
  #inherit(s: LiveSocket, parent: number, child: number): void {
    s.pids.add(child);
    const prefix = `${parent}:`;
    for (const f of [...s.fds]) if (f.startsWith(prefix)) this.#ix.addFd(s, child, f.slice(prefix.length));
  }

  /** Socket `s`, opened by `pid` at `kts`, goes to the children it forked after (forks read before the open). */
  #forkedSince(s: LiveSocket, pid: number, kts: number): void {
    const queue = [{ pid, kts }];
    for (let n = 0; n < queue.length && n < 64; n++) {
      for (const f of this.#forks.of(queue[n].pid)) {
        if (f.kts <= queue[n].kts || s.pids.has(f.child)) continue;
        this.#inherit(s, queue[n].pid, f.child);
        if (this.recheck.has(queue[n].pid)) this.#markRecheck(f.child);
        queue.push({ pid: f.child, kts: f.kts });
      }
    }
  }

  /**
   * Make the ledger agree with what /proc says `pid` holds now: `inodes`, the socket inodes among its fds, or
   * undefined when the process is gone (as an exit). It stops holding the sockets whose inode is not among them
   * (a socket left with no holder is gone) and holds the known ones that are; sockets known by no inode (Tracee's
   * pid:fd, until a scan names them) are left as they are. Takes `pid` out of {@link recheck}. Returns the
   * namespaces touched ({@link touched} names the ports).
   *
   * `changed`: a {@link watchChanges} set taken before /proc was read. When events about `pid` came meanwhile
   * (`pid:N` in it), the read may be older than them: nothing is changed and `pid` stays in recheck (read it
   * again); sockets in it are not judged.
   */
  holdings(pid: number, inodes: ReadonlySet<number> | undefined, changed?: ReadonlySet<string>): number[] {
    this.#ix.touched = [];
    if (changed?.has(`pid:${pid}`)) return [];
    this.recheck.delete(pid);
    const touched = new Set<number>();
    for (const s of this.#ix.heldBy(pid)) {
      if (changed?.has(s.key)) continue;
      if (inodes !== undefined && (s.inode === undefined || inodes.has(s.inode))) continue;
      touched.add(this.#dropHolder(s, pid));
    }
    for (const inode of inodes ?? []) {
      const s = this.#ix.get(`ino:${inode}`);
      if (!s || s.pids.has(pid) || changed?.has(s.key)) continue;
      s.pids.add(pid);
      this.#ix.touch(s);
      touched.add(s.netns);
    }
    return [...touched];
  }

  /**
   * Make namespace `netns` agree with a scan of it (sockets and their holders). Returns how many sockets the
   * events had not accounted for: added or removed here, or whose holders differed (unless the only pids that
   * differed were in {@link recheck}, which the events had flagged); 0 when the events told the whole story.
   * A scan that found no holder for a socket (not ours to read) leaves its holders as they are. Sockets in `skip`
   * (events opened, closed or changed them while the scan was under way, see watchChanges) are left as they are.
   */
  reconcile(
    netns: number,
    scanned: readonly ListeningSocket[],
    pidsOf: (inode: number) => readonly number[],
    skip?: ReadonlySet<string>,
  ): number {
    this.#ix.touched = [];
    const drift = reconcileIndex(this.#ix, netns, scanned, pidsOf, skip, (pid) => this.recheck.has(pid));
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
    for (const s of this.#ix.sockets(netns)) this.#ix.remove(s.key);
  }
}
