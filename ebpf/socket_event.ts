/**
 * What every event-driven engine (bpftrace, Tracee) reports, before the shared ledger turns it into port
 * opens and closes: one socket-level happening of one process.
 * @module
 */

/** A socket-level happening. */
export interface SocketEvent {
  /** When it happened (ms since the epoch). */
  ts: number;
  /**
   * When it happened by the kernel's monotonic clock (ns; bpftrace: `nsecs`), when the engine reads it: the
   * order of events that reached us out of order (per-CPU buffers read in turn). Exact in a double for the
   * first 104 days of uptime, then to a few ns: far finer than any two events of one socket.
   */
  kts?: number;
  /**
   * - `socket`: a socket was created (fd, proto from its type).
   * - `bind`: a successful bind() of fd to addr:port (UDP: the port is now open).
   * - `listen`: a socket started listening on addr:port (TCP: the port is now open).
   * - `unlisten`: a listening socket stopped listening (TCP close of a listener).
   * - `close`: fd was closed by pid (or replaced by dup2/dup3 over it); `last` says whether that was the
   *   socket's last reference, when the engine knows (bpftrace does: every close of a tracked socket's fd by a
   *   holder is reported; Tracee does not: its closes name an fd only).
   * - `dup`: pid duplicated `oldFd` as `fd` (dup, dup2, dup3): fd now refers to the same socket. A dup2/dup3 over
   *   an open fd comes as a `close` of that fd first.
   * - `fork`: pid created child `childPid`, which inherits every fd.
   * - `exec`: pid exec'd a new program: its close-on-exec fds are gone without a close(), which no event names;
   *   what it holds now must be read from /proc (see SocketLedger.recheck).
   * - `exit`: process pid exited (all its fds closed).
   */
  kind: "socket" | "bind" | "listen" | "unlisten" | "close" | "dup" | "fork" | "exec" | "exit";
  /** Process id (tgid) in the watcher's pid namespace (Tracee: hostProcessId). */
  pid: number;
  /** For `fork`: the child process id. */
  childPid?: number;
  /** Command name, when known. */
  comm?: string;
  /** File descriptor, for socket/bind/listen/close (and the new one of a dup). */
  fd?: number;
  /** For `dup`: the fd that was duplicated. */
  oldFd?: number;
  /**
   * For `close`: whether it dropped the socket's last reference (the socket is gone: true) or another fd, of
   * this process or another, still holds it (false). Absent: the engine does not know; a close naming the
   * socket (inode or sk) then ends it, one naming only an fd drops that holder.
   */
  last?: boolean;
  /** Kernel socket address (bpftrace: the struct sock pointer), a key stable across fds and forks. */
  sk?: string;
  /** The socket's inode (the N of socket:[N]), when the engine reads it; matches /proc and netlink scans. */
  inode?: number;
  proto?: "tcp" | "udp";
  family?: 4 | 6;
  /** Local address in canonical text form ("0.0.0.0", "::"). */
  addr?: string;
  port?: number;
  /** Network namespace inode. */
  netns?: number;
  /** cgroup v2 id (bpf_get_current_cgroup_id). */
  cgroupId?: number;
  /** Container id and name when the engine knows them (Tracee enriches events). */
  containerId?: string | null;
  containerName?: string | null;
  /** A failed operation (e.g. bind or listen returned an error): never an open. */
  failed?: boolean;
  /**
   * For `socket` and `dup`: the fd is close-on-exec (SOCK_CLOEXEC, dup3's O_CLOEXEC), when the engine says so
   * (Tracee's syscall events): it goes at the process's next exec, unless fcntl cleared the flag, which no event
   * here shows.
   */
  cloexec?: boolean;
}
