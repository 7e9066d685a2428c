/**
 * Which processes hold a socket, kept exact from scan to scan: {@link PidResolver}. The /proc
 * reading itself is in proc_walk.ts.
 * @module
 */
import { libc, LibcUnavailableError } from "../infra/libc.ts";
import {
  fdCount,
  fdIsSocket,
  type InodePids,
  readLastPid,
  readPid,
  schedSignature,
  walkFfi,
  walkPure,
} from "./proc_walk.ts";

/** From this many held sockets on, a holder is first asked whether it ran at all (see schedSignature). */
const SCHED_CHECK_FROM = 8;

/** What a process is, from /proc/<pid>/{comm,cmdline,status}. */
export interface ProcInfo {
  pid: number;
  /** The kernel's short command name (/proc/<pid>/comm). */
  comm: string;
  /** The command line, arguments joined by spaces ("" for kernel threads and zombies). */
  cmdline: string;
  /** The real user id. */
  uid: number;
}

/** Options of {@link PidResolver}. */
export interface PidResolverOptions {
  /** "ffi", "pure", or "auto" (default: ffi when libc loads, else pure). */
  walker?: "ffi" | "pure" | "auto";
  /** The /proc to walk (default "/proc"). */
  proc?: string;
  /** How long "no process holds it" is believed before walking again (default 5000 ms). */
  negativeTtlMs?: number;
  /** Entries not asked about in this many resolve() calls are forgotten (default 16). */
  maxIdleCalls?: number;
}

interface Entry {
  pids: number[];
  at: number;
  lastCall: number;
}

/** A process that holds cached sockets: how many fds it had when its fds were last read, and which it holds. */
interface Holding {
  fds: number;
  /** The cached inodes it holds, each with the fds it holds it through (empty: not read yet). */
  inodes: Map<number, number[]>;
  /** Its threads' scheduler counters when its fds were last found as cached (see schedSignature). */
  sched?: string;
}

/**
 * inode -> pids, kept exact from one call to the next.
 *
 * `resolve()` answers known inodes from its cache, which it keeps true:
 * - a holder that closed its copy, exec'd (close-on-exec fds) or exited: each holding process's number of open
 *   fds (the size of /proc/<pid>/fd, one stat) is compared with the last read, and each cached socket it holds
 *   is checked through the fd it holds it by (one readlink: a process that closed a socket and opened another
 *   file in between has as many fds as before); on any difference that process's fds are read again. Gone
 *   processes drop out.
 * - a new process that inherited a socket (fork): a new pid was handed out since the last call (the last field of
 *   /proc/loadavg, one small read) means /proc is listed and the fds of the pids not seen before are read.
 * - inodes it does not know: /proc is walked for them (as a first call does).
 * Not seen until the socket's entry is walked again (after `maxIdleCalls` calls without it, or when its holders
 * all go): an existing process that receives a socket over a unix socket (SCM_RIGHTS) or through pidfd_getfd.
 */
export class PidResolver {
  /** The walker in use. */
  readonly walker: "ffi" | "pure";
  /** Counters, for tests and benches: full walks, cache hits and misses, holders read again. */
  readonly stats = { walks: 0, hits: 0, misses: 0, rereads: 0 };
  readonly #proc: string;
  readonly #negativeTtlMs: number;
  readonly #maxIdleCalls: number;
  readonly #cache = new Map<number, Entry>();
  /** Processes holding cached inodes. */
  readonly #holders = new Map<number, Holding>();
  /** Every pid seen at the last listing of /proc (to find the new ones after a fork). */
  #pids = new Set<number>();
  #lastPid = "";
  #calls = 0;

  /** A resolver; with walker "auto" it uses FFI when libc loads. */
  constructor(options: PidResolverOptions = {}) {
    this.#proc = options.proc ?? "/proc";
    this.#negativeTtlMs = options.negativeTtlMs ?? 5000;
    this.#maxIdleCalls = options.maxIdleCalls ?? 16;
    const walker = options.walker ?? "auto";
    if (walker === "auto") {
      try {
        libc();
        this.walker = "ffi";
      } catch (e) {
        if (!(e instanceof LibcUnavailableError)) throw e;
        this.walker = "pure";
      }
    } else {
      if (walker === "ffi") libc();
      this.walker = walker;
    }
  }

  /** Walk /proc now (no cache): inode -> pids for the inodes in `want`, or every socket. */
  walk(want?: ReadonlySet<number>): InodePids {
    this.stats.walks++;
    return this.walker === "ffi" ? walkFfi(want, this.#proc) : walkPure(want, this.#proc);
  }

  /** The socket inodes `pid` holds now, or undefined when it is gone (or its fds cannot be read). */
  socketsOf(pid: number): Set<number> | undefined {
    const read = readPid(pid, this.#proc);
    return read && new Set(read.inodes.keys());
  }

  /** The pids holding each of `inodes` (an empty list when none is found: another pid namespace, or in flight). */
  resolve(inodes: readonly number[]): Map<number, number[]> {
    const call = ++this.#calls;
    const now = Date.now();
    this.#followHolders();
    const result = new Map<number, number[]>();
    const missing = new Set<number>();
    for (const inode of inodes) {
      const e = this.#cache.get(inode);
      if (e && (e.pids.length > 0 || now - e.at < this.#negativeTtlMs)) {
        e.lastCall = call;
        result.set(inode, [...e.pids]);
        this.stats.hits++;
      } else {
        if (e) this.#forget(inode, e);
        missing.add(inode);
      }
    }
    if (missing.size > 0) {
      this.stats.misses += missing.size;
      if (this.#pids.size === 0) this.#listPids(); // before the walk: a process made after it is new
      const found = this.walk(missing);
      for (const inode of missing) {
        const pids: number[] = [];
        for (const pid of found.get(inode) ?? []) {
          if (!this.#hold(pid, inode)) continue; // gone meanwhile
          pids.push(pid);
        }
        this.#cache.set(inode, { pids, at: now, lastCall: call });
        result.set(inode, [...pids]);
      }
    }
    this.#prune(call);
    return result;
  }

  /** `pid` holds cached `inode`; false when the process is gone. */
  #hold(pid: number, inode: number): boolean {
    let h = this.#holders.get(pid);
    if (!h) {
      const fds = fdCount(pid, this.#proc);
      if (fds === undefined) return false;
      this.#holders.set(pid, h = { fds, inodes: new Map() });
    }
    h.inodes.set(inode, []); // through which fds: read at the first check
    return true;
  }

  /** Bring the cached holders up to date (see the class's description). */
  #followHolders(): void {
    if (this.#cache.size === 0) return;
    for (const [pid, h] of this.#holders) {
      if (fdCount(pid, this.#proc) === h.fds && this.#stillHolds(pid, h)) continue;
      h.sched = undefined;
      this.stats.rereads++;
      this.#reread(pid, h);
    }
    const lastPid = readLastPid(this.#proc);
    if (lastPid === this.#lastPid) return;
    this.#lastPid = lastPid;
    const before = this.#pids;
    for (const pid of this.#listPids()) {
      if (before.has(pid)) continue;
      const read = readPid(pid, this.#proc);
      if (!read) continue;
      for (const [inode, through] of read.inodes) {
        const e = this.#cache.get(inode);
        if (!e || e.pids.includes(pid)) continue;
        e.pids = [...e.pids, pid].sort((a, b) => a - b);
        let h = this.#holders.get(pid);
        if (!h) this.#holders.set(pid, h = { fds: read.fds, inodes: new Map() });
        h.inodes.set(inode, through);
      }
    }
  }

  /** Read `pid`'s fds again: it no longer holds what it closed, and holds what it gained of the cached inodes. */
  #reread(pid: number, h: Holding): void {
    const read = readPid(pid, this.#proc);
    for (const inode of h.inodes.keys()) {
      if (read?.inodes.has(inode)) continue;
      const e = this.#cache.get(inode);
      if (e) e.pids = e.pids.filter((p) => p !== pid);
      h.inodes.delete(inode);
    }
    if (!read) {
      this.#holders.delete(pid);
      return;
    }
    h.fds = read.fds;
    for (const [inode, through] of read.inodes) {
      const e = this.#cache.get(inode);
      if (!e) continue;
      h.inodes.set(inode, through);
      if (!e.pids.includes(pid)) e.pids = [...e.pids, pid].sort((a, b) => a - b);
    }
    if (h.inodes.size === 0) this.#holders.delete(pid);
  }

  /**
   * Whether `pid` still holds each of its cached sockets through the fds it held it by (one readlink each): a
   * process that closed a socket and opened another file between two calls has as many fds as before.
   */
  #stillHolds(pid: number, h: Holding): boolean {
    // A holder of many sockets that has not run since they were checked has not touched its fds: one look at
    // its threads instead of a readlink per socket.
    const sched = h.inodes.size >= SCHED_CHECK_FROM ? schedSignature(pid, this.#proc) : undefined;
    if (sched !== undefined && sched === h.sched) return true;
    for (const [inode, through] of h.inodes) {
      if (through.length === 0) return false; // not read yet
      let held = false;
      for (const fd of through) if ((held = fdIsSocket(pid, fd, inode, this.#proc))) break;
      if (!held) return false;
    }
    h.sched = sched; // read before the checks: a change after them shows next time
    return true;
  }

  /** List /proc's pids (remembered, to find new ones later). */
  #listPids(): Set<number> {
    const pids = new Set<number>();
    try {
      for (const e of Deno.readDirSync(this.#proc)) {
        const c = e.name.charCodeAt(0);
        if (c >= 48 && c <= 57) pids.add(Number(e.name));
      }
    } catch { /* keep the last listing */ }
    if (this.#lastPid === "") this.#lastPid = readLastPid(this.#proc);
    this.#pids = pids;
    return pids;
  }

  #forget(inode: number, e: Entry): void {
    this.#cache.delete(inode);
    for (const pid of e.pids) {
      const h = this.#holders.get(pid);
      if (!h) continue;
      h.inodes.delete(inode);
      if (h.inodes.size === 0) this.#holders.delete(pid);
    }
  }

  /** Forget everything. */
  clear(): void {
    this.#cache.clear();
    this.#holders.clear();
    this.#pids = new Set();
    this.#lastPid = "";
  }

  /** How many inodes are cached. */
  get size(): number {
    return this.#cache.size;
  }

  /** comm, command line and real uid of `pid`, or undefined when it is gone or cannot be read. */
  processInfo(pid: number): ProcInfo | undefined {
    // A process that opens many ports is asked about many times in a row: its answer is kept briefly (a pid is
    // not reused within a second), which spares three /proc reads per event under load.
    const now = Date.now();
    const cached = this.#infos.get(pid);
    if (cached && now - cached.at < 1000) return cached.info;
    const info = this.#readInfo(pid);
    if (this.#infos.size > 4096) this.#infos.clear();
    this.#infos.set(pid, { info, at: now });
    return info;
  }

  #infos = new Map<number, { info: ProcInfo | undefined; at: number }>();

  #readInfo(pid: number): ProcInfo | undefined {
    const base = `${this.#proc}/${pid}`;
    try {
      const comm = Deno.readTextFileSync(`${base}/comm`).replace(/\n$/, "");
      const raw = Deno.readTextFileSync(`${base}/cmdline`);
      const cmdline = raw.split("\0").filter((a, i, all) => a !== "" || i < all.length - 1).join(" ");
      const status = Deno.readTextFileSync(`${base}/status`);
      const m = /^Uid:\s+(\d+)/m.exec(status);
      if (!m) return undefined;
      return { pid, comm, cmdline, uid: Number(m[1]) };
    } catch {
      return undefined;
    }
  }

  #prune(call: number): void {
    for (const [inode, e] of this.#cache) {
      if (call - e.lastCall >= this.#maxIdleCalls) this.#forget(inode, e);
    }
  }
}
