/**
 * Which processes hold a socket: socket inode -> pids, found by walking /proc/<pid>/fd and reading the links
 * ("socket:[INODE]"). Two walkers give the same answer: one through libc (opendir/readdir64/readlinkat via FFI,
 * no string per fd) and a pure Deno.readDirSync/Deno.readLinkSync one. {@link PidResolver} caches the answer
 * and walks /proc only for inodes it does not know.
 *
 * Processes that vanish during a walk and fd directories that cannot be read (another user's, without root)
 * are skipped silently. Only /proc/<pid>/fd is read, so a thread that unshared its fd table
 * (unshare(CLONE_FILES)) is not seen; pids are those of the pid namespace the /proc mount belongs to.
 * @module
 */
import { cstr, type Libc, libc, LibcUnavailableError } from "../infra/libc.ts";

/** inode -> pids holding it (ascending). */
export type InodePids = Map<number, number[]>;

const SOCKET_PREFIX = "socket:[";
const PREFIX_BYTES = new TextEncoder().encode(SOCKET_PREFIX);
const D_NAME = 19; // offsetof(struct dirent64, d_name) on Linux

function add(map: InodePids, inode: number, pid: number): void {
  const pids = map.get(inode);
  if (pids === undefined) map.set(inode, [pid]);
  else if (pids.at(-1) !== pid) pids.push(pid);
}

function sorted(map: InodePids): InodePids {
  for (const pids of map.values()) pids.sort((a, b) => a - b);
  return map;
}

/**
 * Walk `proc` with plain Deno file APIs; inode -> pids for every socket fd, or only for inodes in `want`.
 */
export function walkPure(want?: ReadonlySet<number>, proc = "/proc"): InodePids {
  const out: InodePids = new Map();
  let entries: Deno.DirEntry[];
  try {
    entries = [...Deno.readDirSync(proc)];
  } catch (e) {
    throw new Error(`cannot list ${proc}: ${e instanceof Error ? e.message : e}`, { cause: e });
  }
  for (const entry of entries) {
    const c = entry.name.charCodeAt(0);
    if (c < 48 || c > 57) continue;
    const pid = Number(entry.name);
    if (!Number.isInteger(pid)) continue;
    const dir = `${proc}/${pid}/fd`;
    let fds: Iterable<Deno.DirEntry>;
    try {
      fds = Deno.readDirSync(dir);
      for (const fd of fds) {
        let link: string;
        try {
          link = Deno.readLinkSync(`${dir}/${fd.name}`);
        } catch {
          continue; // closed meanwhile
        }
        if (!link.startsWith(SOCKET_PREFIX)) continue;
        const inode = Number(link.slice(SOCKET_PREFIX.length, -1));
        if (want === undefined || want.has(inode)) add(out, inode, pid);
      }
    } catch {
      continue; // gone, or not ours to read
    }
  }
  return sorted(out);
}

/**
 * Walk `proc` through libc (opendir, readdir64, readlinkat); the same answer as {@link walkPure}. Throws
 * {@link LibcUnavailableError} without FFI.
 */
export function walkFfi(want?: ReadonlySet<number>, proc = "/proc"): InodePids {
  const c: Libc = libc();
  const out: InodePids = new Map();
  const top = c.opendir(cstr(proc));
  if (top === null) throw new Error(`cannot list ${proc} (opendir failed)`);
  const link = new Uint8Array(64);
  const linkLen = BigInt(link.length);
  try {
    for (;;) {
      const ent = c.readdir64(top);
      if (ent === null) break;
      const name = Deno.UnsafePointerView.getCString(ent, D_NAME);
      const ch = name.charCodeAt(0);
      if (ch < 48 || ch > 57) continue;
      const pid = Number(name);
      const dir = c.opendir(cstr(`${proc}/${name}/fd`));
      if (dir === null) continue; // gone, or not ours to read
      try {
        const dfd = c.dirfd(dir);
        for (;;) {
          const fd = c.readdir64(dir);
          if (fd === null) break;
          const n = Number(c.readlinkat(dfd, Deno.UnsafePointer.offset(fd, D_NAME), link, linkLen));
          if (n <= PREFIX_BYTES.length || link[n - 1] !== 0x5d /* ] */) continue; // ".", "..", not a socket
          let i = 0;
          while (i < PREFIX_BYTES.length && link[i] === PREFIX_BYTES[i]) i++;
          if (i < PREFIX_BYTES.length) continue;
          let inode = 0;
          for (; i < n - 1; i++) inode = inode * 10 + (link[i] - 48);
          if (want === undefined || want.has(inode)) add(out, inode, pid);
        }
      } finally {
        c.closedir(dir);
      }
    }
  } finally {
    c.closedir(top);
  }
  return sorted(out);
}

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

/**
 * inode -> pids with a cache. `resolve()` answers known inodes from the cache while every cached pid is still the
 * same live process (same start time, not a zombie), and walks /proc once per call for the rest. An entry is
 * dropped when one of its pids is gone (a fork whose parent exited is then found again), and when it has not been
 * asked about for `maxIdleCalls` calls (the socket closed). A process that gains an existing socket later (fork,
 * fd passing) while the cached holders live is not noticed until then.
 */
export class PidResolver {
  /** The walker in use. */
  readonly walker: "ffi" | "pure";
  /** Counters, for tests and benches. */
  readonly stats = { walks: 0, hits: 0, misses: 0 };
  readonly #proc: string;
  readonly #negativeTtlMs: number;
  readonly #maxIdleCalls: number;
  readonly #cache = new Map<number, Entry>();
  readonly #startTimes = new Map<number, string>();
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

  /** The pids holding each of `inodes` (an empty list when none is found: another pid namespace, or in flight). */
  resolve(inodes: readonly number[]): Map<number, number[]> {
    const call = ++this.#calls;
    const now = Date.now();
    const alive = new Map<number, boolean>();
    const isAlive = (pid: number) => {
      let a = alive.get(pid);
      if (a === undefined) {
        const st = this.#startTime(pid);
        alive.set(pid, a = st !== undefined && st === this.#startTimes.get(pid));
      }
      return a;
    };
    const result = new Map<number, number[]>();
    const missing = new Set<number>();
    for (const inode of inodes) {
      const e = this.#cache.get(inode);
      if (e && (e.pids.length > 0 || now - e.at < this.#negativeTtlMs) && e.pids.every(isAlive)) {
        e.lastCall = call;
        result.set(inode, [...e.pids]);
        this.stats.hits++;
      } else {
        this.#cache.delete(inode);
        missing.add(inode);
      }
    }
    if (missing.size > 0) {
      this.stats.misses += missing.size;
      const found = this.walk(missing);
      const started = new Map<number, string | undefined>(); // one read of /proc/<pid>/stat per pid
      for (const inode of missing) {
        const pids = (found.get(inode) ?? []).filter((pid) => {
          let st = started.get(pid);
          if (!started.has(pid)) {
            st = this.#startTime(pid);
            started.set(pid, st);
            if (st !== undefined) this.#startTimes.set(pid, st);
          }
          return st !== undefined;
        });
        this.#cache.set(inode, { pids, at: now, lastCall: call });
        result.set(inode, [...pids]);
      }
    }
    this.#prune(call, alive);
    return result;
  }

  /** Forget everything. */
  clear(): void {
    this.#cache.clear();
    this.#startTimes.clear();
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

  /** Field 22 of /proc/<pid>/stat (start time), or undefined when gone or a zombie. */
  #startTime(pid: number): string | undefined {
    let stat: string;
    try {
      stat = Deno.readTextFileSync(`${this.#proc}/${pid}/stat`);
    } catch {
      return undefined;
    }
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return f[0] === "Z" || f[0] === "X" ? undefined : f[19];
  }

  #prune(call: number, alive: Map<number, boolean>): void {
    const live = new Set<number>();
    for (const [inode, e] of this.#cache) {
      const dead = e.pids.some((p) => alive.get(p) === false);
      if (dead || call - e.lastCall >= this.#maxIdleCalls) this.#cache.delete(inode);
      else for (const p of e.pids) live.add(p);
    }
    for (const pid of this.#startTimes.keys()) if (!live.has(pid)) this.#startTimes.delete(pid);
  }
}
