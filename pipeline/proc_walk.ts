/**
 * Reading /proc for socket holders: which processes hold a socket (socket inode -> pids, by walking
 * /proc/<pid>/fd and reading the links "socket:[INODE]"), what one process holds, how many fds it has, and the
 * last pid handed out. Two walkers give the same answer: one through libc (opendir/readdir64/readlinkat via FFI,
 * no string per fd) and a pure Deno.readDirSync/Deno.readLinkSync one.
 *
 * Processes that vanish during a walk and fd directories that cannot be read (another user's, without root)
 * are skipped silently. Only /proc/<pid>/fd is read, so a thread that unshared its fd table
 * (unshare(CLONE_FILES)) is not seen; pids are those of the pid namespace the /proc mount belongs to.
 * @module
 */
import { cstr, type Libc, libc } from "../infra/libc.ts";

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
    const read = readPid(pid, proc); // undefined: gone, or not ours to read
    if (!read) continue;
    for (const inode of read.inodes.keys()) if (want === undefined || want.has(inode)) add(out, inode, pid);
  }
  return sorted(out);
}

/**
 * Walk `proc` through libc (opendir, readdir64, readlinkat); the same answer as {@link walkPure}. Throws
 * LibcUnavailableError (infra/libc.ts) without FFI.
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

/** How many fds `pid` has open (the size of /proc/<pid>/fd, Linux 6.2+; 0 before), or undefined when gone. */
export function fdCount(pid: number, proc: string): number | undefined {
  try {
    return Deno.statSync(`${proc}/${pid}/fd`).size;
  } catch {
    return undefined;
  }
}

/**
 * What the scheduler says of each thread of `pid` (/proc/<pid>/task/<tid>/schedstat: time on the CPU, time
 * waiting, times switched in), all threads together; undefined when gone. The same text twice means no thread of
 * it was switched in, or ran a tick, in between: it cannot have changed its fds.
 */
export function schedSignature(pid: number, proc: string): string | undefined {
  const dir = `${proc}/${pid}/task`;
  try {
    let out = "";
    for (const t of Deno.readDirSync(dir)) {
      out += `${t.name}:${Deno.readTextFileSync(`${dir}/${t.name}/schedstat`)}`;
    }
    return out;
  } catch {
    return undefined;
  }
}

/** True when fd `fd` of `pid` is still socket `inode` (one readlink). */
export function fdIsSocket(pid: number, fd: number, inode: number, proc: string): boolean {
  try {
    return Deno.readLinkSync(`${proc}/${pid}/fd/${fd}`) === `${SOCKET_PREFIX}${inode}]`;
  } catch {
    return false;
  }
}

/** The last pid handed out (the last field of /proc/loadavg): it moves on every fork. */
export function readLastPid(proc: string): string {
  try {
    const text = Deno.readTextFileSync(`${proc}/loadavg`);
    return text.slice(text.lastIndexOf(" ") + 1);
  } catch {
    return String(Date.now()); // unknown: as if a process had been made
  }
}

/**
 * The socket inodes `pid` holds (each with the fds it holds it through) and its number of fds, or undefined when
 * it is gone or not ours to read.
 */
export function readPid(
  pid: number,
  proc: string,
): { fds: number; inodes: Map<number, number[]> } | undefined {
  const dir = `${proc}/${pid}/fd`;
  const inodes = new Map<number, number[]>();
  let fds = 0;
  try {
    for (const fd of Deno.readDirSync(dir)) {
      fds++;
      let link: string;
      try {
        link = Deno.readLinkSync(`${dir}/${fd.name}`);
      } catch {
        continue; // closed meanwhile
      }
      if (!link.startsWith(SOCKET_PREFIX)) continue;
      const inode = Number(link.slice(SOCKET_PREFIX.length, -1));
      const through = inodes.get(inode);
      if (through) through.push(Number(fd.name));
      else inodes.set(inode, [Number(fd.name)]);
    }
  } catch {
    return undefined;
  }
  return { fds, inodes };
}
