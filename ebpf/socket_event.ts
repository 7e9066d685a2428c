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
   * - `close`: fd was closed by pid (or replaced by dup2/dup3 over it).
   * - `fork`: pid created child `childPid`, which inherits every fd.
   * - `exit`: process pid exited (all its fds closed).
   */
  kind: "socket" | "bind" | "listen" | "unlisten" | "close" | "fork" | "exit";
  /** Process id (tgid) in the watcher's pid namespace (Tracee: hostProcessId). */
  pid: number;
  /** For `fork`: the child process id. */
  childPid?: number;
  /** Command name, when known. */
  comm?: string;
  /** File descriptor, for socket/bind/listen/close. */
  fd?: number;
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
}
