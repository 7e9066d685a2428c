/**
 * The bpftrace program of the bpftrace engine, built on tracepoints only (these kernels have no kprobes):
 *
 * - TCP opens at a successful listen() (sys_exit_listen): the socket is read from the fd table through BTF, so
 *   the port is the real one even for listen() without bind() (the state tracepoint still says sport 0 then),
 *   and a failed listen() (port taken) reports nothing. TCP closes at the socket's LISTEN -> CLOSE transition
 *   (sock:inet_sock_set_state), whichever process holds it and however it ends (close, exit, kill, exec).
 * - UDP opens at a successful bind(). It closes when the last file reference goes: close() or dup2()/dup3()
 *   over the fd with the file's refcount at one, or the exit of a holder (the engine then checks which of its
 *   sockets are gone).
 * - Holders: the process of a listen() or a bind() holds the socket. Holders are followed through fork() (a new
 *   process, not a thread: task:task_newtask without CLONE_THREAD), exec() and exit(), and each close() or
 *   dup2()/dup3() over an fd of a tracked socket (a listener, until it leaves LISTEN, or a bound UDP socket,
 *   until its last reference goes) by a holder is reported, with whether it was the last reference. What the
 *   program cannot see (a dup()'d fd, close-on-exec fds that go at exec without a close(), fds passed over unix
 *   sockets, holders from before it started) the engine reads from /proc when a close was not the last or a
 *   holder exec'd, and a reconciliation scan corrects.
 * Output (`bpftrace -f text`, read by bpftrace_parse.ts): each event is one record of space-separated fields
 * ending in RS (\036), without a newline, so bpftrace's line-buffered stdout gathers records and writes them
 * out together when a newline comes. A record after a quiet spell (no newline for {@link FLUSH_MS} ms) prints
 * one at once; otherwise a timer probe prints it, every FLUSH_MS while there is output (twice after the last
 * record: bpftrace reads its per-CPU buffers in turn, so a record printed just before a newline may be read just
 * after it). A lone event leaves at once; a storm of 2,000 events/s leaves in ~50 writes a second instead of
 * 2,000, each event at most FLUSH_MS late; a burst leaves every {@link FLUSH_RECORDS} records.
 * Records of different CPUs may be read out of order; each carries the kernel time it happened (see below).
 * @module
 */

/** Which refcount field `struct file` has: `f_ref` (file_ref_t, kernel 6.13+; 0 means one reference). */
export function fileRefField(kernelRelease: string): { expr: string; lastRef: number } {
  const m = /^(\d+)\.(\d+)/.exec(kernelRelease);
  const [major, minor] = m ? [Number(m[1]), Number(m[2])] : [0, 0];
  return major > 6 || (major === 6 && minor >= 13)
    ? { expr: "f_ref.refcnt.counter", lastRef: 0 }
    : { expr: "f_count.counter", lastRef: 1 };
}

/**
 * How often the program flushes what it printed (ms): the most it delays an event, and what bounds how many
 * batches a second the engine reports (each one snapshot write and one delivery).
 */
export const FLUSH_MS = 20;

/**
 * A burst does not wait for the timer: every this many records leave at once (~13 KB; a few stdout buffers
 * for a pipe), so the engine and the listener work on a burst's first ports while its last are opening.
 */
export const FLUSH_RECORDS = 256;

/**
 * The engine's nudge: kill(NUDGE_PID, SIGCONT), a pid no process can have (above the kernel's limit, 2^22), makes
 * the program print a newline. The timer's newlines can be read before the last records of a burst (another
 * CPU's buffer, read after them when bpftrace was kept off the CPU a moment), which then wait in bpftrace's
 * stdout for the next newline: until the next event, however long. The engine nudges once its output has been
 * quiet a moment (see bpftrace_source.ts), so that nothing stays there.
 */
export const NUDGE_PID = 2147483646;

/**
 * The engine's ready check: kill(READY_PID, SIGCONT) makes the program print {@link READY_MARKS} from its first
 * and its last probe. bpftrace says "Attaching N probes..." before it attaches them, one after the other (in the
 * order they are declared, or in reverse for some kinds): once both marks are printed, every probe is attached.
 */
export const READY_PID = 2147483645;

/** The lines the first and the last probe print for READY_PID. */
export const READY_MARKS = ["Probes ready 1", "Probes ready 2"] as const;

/**
 * The engine's adoption of holders it found by scanning (they opened their sockets before the program
 * started, so it never marked them): kill(pid, 0) from the engine's process (the one that sent READY_PID, as the
 * kernel numbers it) marks `pid` a holder, whose forks, closes, execs and exit are then reported. kill(pid, 0)
 * only checks that the process exists; it sends nothing.
 */
export const ADOPT_SIGNAL = 0;

/** clone()'s flag for a new thread (not a new process). */
const CLONE_THREAD = 0x10000;

/** The record terminator. */
export const RS = "\x1e";

/**
 * The longest a record can reach the engine after a newer one of another CPU (ms): bpftrace reads the other
 * CPU's buffer in its next round (well under a few ms, unless it is kept off the CPU), and the record then
 * waits for a newline, which the timer prints within FLUSH_MS, or twice that when the timer's newline was read
 * first. The engine holds the records that end a socket, an fd or a process, and execs and forks, this long (see
 * reorder.ts).
 */
export const REORDER_MS = 2 * FLUSH_MS + 20;

/**
 * The program for a kernel of release `kernelRelease` (uname -r). Records (fields separated by one space; `t` is
 * the kernel's monotonic clock in ns, `nsecs`, when it happened):
 *
 *     L  t pid fd sk ino port family proto netns a4 [a6]   listen() succeeded (a6 only for AF_INET6)
 *     LF t pid fd ret                                       listen() failed
 *     B  t pid fd sk ino port family proto netns a4 [a6]   UDP bind() succeeded
 *     U  t pid sk port netns                                a TCP socket left LISTEN
 *     C  t pid fd sk ino last                               a holder closed an fd of a tracked socket (or
 *                                                           dup2/dup3'd over it); last: 1 when that was the
 *                                                           socket's last reference, else 0 (a TCP
 *                                                           listener's last close has none: U ends it)
 *     F  t pid child                                        a holder forked (child: the new process)
 *     E  t pid                                              a holder exec'd
 *     X  t pid                                              a holder exited
 *
 * `t` is there for order: bpftrace reads its per-CPU buffers in turn, so a record of one CPU can be read before
 * an older one of another (a socket bound on CPU 0 and closed on CPU 1 after the process migrated: the close
 * first). The engine puts records back in order with it (see reorder.ts and the ledger).
 */
export function bpftraceScript(kernelRelease: string): string {
  const ref = fileRefField(kernelRelease);
  // $f, $sk for fd $fd of the current task; 0 when the fd is out of range.
  const sockOf = (fd: string) => `
  $fdt = curtask->files->fdt;
  $f = (struct file *)0;
  if (${fd} >= 0 && ${fd} < (int64)$fdt->max_fds) { $f = *($fdt->fd + ${fd}); }
  $sk = (struct sock *)0;
  if ($f != 0) { $sk = ((struct socket *)$f->private_data)->sk; }`;
  const end = "\\036";
  // After each record: a newline at once when none was printed for FLUSH_MS (an event after a quiet spell
  // leaves now), else the timer's newline takes it (a storm leaves in batches, about one every FLUSH_MS: a
  // timer newline that carried records counts as a flush, its straggler newlines do not); and a burst leaves
  // every FLUSH_RECORDS records.
  const flush = `@n = @n + 1;
    if (nsecs - @flushed > ${FLUSH_MS * 1_000_000} || @n >= ${FLUSH_RECORDS}) {
      @flushed = nsecs; @pend = 0; @n = 0; printf("\\n");
    } else { @pend = 1; }
    @out = 2;`;
  const sockArgs = `$sk, $f->f_inode->i_ino, $sk->__sk_common.skc_num, $sk->__sk_common.skc_family, ` +
    `$sk->sk_protocol, $sk->__sk_common.skc_net.net->ns.inum, $sk->__sk_common.skc_rcv_saddr`;
  // One record for an opened socket: the IPv6 address only for AF_INET6 (ntop is the costly field).
  const opened = (kind: string) => `
      if ($sk->__sk_common.skc_family == 10) {
        printf("${kind} %llu %d %d %p %lu %d %d %d %u %u %s${end}", nsecs, pid, $fd, ${sockArgs},
          ntop($sk->__sk_common.skc_v6_rcv_saddr.in6_u.u6_addr8));
      } else {
        printf("${kind} %llu %d %d %p %lu %d %d %d %u %u${end}", nsecs, pid, $fd, ${sockArgs});
      }
      ${flush}`;
  // A holder lets go of fd (close, or dup2/dup3 over it) of a tracked socket, or of any listening TCP or bound
  // UDP socket (one opened before the program started, by a holder the engine adopted): a record, and the last
  // reference untracks it. The file must be a socket (S_IFSOCK) for private_data to be one.
  const isPort = `($f->f_inode->i_mode & 0xf000) == 0xc000 && (($sk->sk_protocol == 6 && ` +
    `$sk->__sk_common.skc_state == 10) || ($sk->sk_protocol == 17 && $sk->__sk_common.skc_num != 0))`;
  const closed = (fd: string) =>
    `${sockOf(`(int64)${fd}`)}
  if ($sk != 0 && (@sock[$sk] || (${isPort}))) {
    $last = $f->${ref.expr} == ${ref.lastRef} ? 1 : 0;
    if ($last) { delete(@sock[$sk]); }
    // A TCP listener's last reference: its LISTEN -> CLOSE transition (U) ends it, no record needed.
    if (!$last || $sk->sk_protocol != 6) {
      printf("C %llu %d %d %p %lu %d${end}", nsecs, pid, ${fd}, $sk, $f->f_inode->i_ino, $last);
      ${flush}
    }
  }`;
  // dup2/dup3 close newfd only when they succeed: oldfd open and not newfd (dup2(fd, fd) closes nothing).
  const oldOpen = `
  $ofd = (int64)args->oldfd;
  $old = (struct file *)0;
  if ($ofd >= 0 && $ofd < (int64)curtask->files->fdt->max_fds) { $old = *(curtask->files->fdt->fd + $ofd); }`;
  return `
tracepoint:syscalls:sys_enter_kill /args->pid == ${READY_PID}/ { @engine = pid; printf("${
    READY_MARKS[0]
  }\\n"); }
tracepoint:syscalls:sys_enter_kill /args->sig == ${ADOPT_SIGNAL} && pid == @engine && args->pid > 0/ {
  @holder[args->pid] = 1;
}
tracepoint:syscalls:sys_enter_listen { @lfd[tid] = args->fd + 1; }
tracepoint:syscalls:sys_exit_listen /@lfd[tid]/ {
  $fd = (int64)@lfd[tid] - 1;
  delete(@lfd[tid]);
  if (args->ret != 0) {
    printf("LF %llu %d %d %d${end}", nsecs, pid, $fd, args->ret);
    ${flush}
  } else {${sockOf("$fd")}
    if ($sk != 0) {
      @sock[$sk] = 1;
      @holder[pid] = 1;${opened("L")}
    }
  }
}
tracepoint:sock:inet_sock_set_state /args->protocol == 6 && args->oldstate == 10 && args->newstate != 10/ {
  $sk = (struct sock *)args->skaddr;
  delete(@sock[$sk]);
  printf("U %llu %d %p %d %u${end}", nsecs, pid, args->skaddr, args->sport, $sk->__sk_common.skc_net.net->ns.inum);
  ${flush}
}
tracepoint:syscalls:sys_enter_bind { @bfd[tid] = args->fd + 1; }
tracepoint:syscalls:sys_exit_bind /@bfd[tid]/ {
  $fd = (int64)@bfd[tid] - 1;
  delete(@bfd[tid]);
  if (args->ret == 0) {${sockOf("$fd")}
    if ($sk != 0 && $sk->sk_protocol == 17) {
      @sock[$sk] = 1;
      @holder[pid] = 1;${opened("B")}
    }
  }
}
tracepoint:syscalls:sys_enter_close /@holder[pid]/ {${closed("args->fd")}
}
tracepoint:syscalls:sys_enter_dup2 /@holder[pid] && args->oldfd != args->newfd/ {${oldOpen}
  if ($old != 0) {${closed("args->newfd")}
  }
}
tracepoint:syscalls:sys_enter_dup3 /@holder[pid] && args->oldfd != args->newfd/ {${oldOpen}
  if ($old != 0) {${closed("args->newfd")}
  }
}
tracepoint:task:task_newtask /@holder[pid] && !(args->clone_flags & ${CLONE_THREAD})/ {
  @holder[args->pid] = 1;
  printf("F %llu %d %d${end}", nsecs, pid, args->pid);
  ${flush}
}
tracepoint:sched:sched_process_exec /@holder[pid]/ {
  printf("E %llu %d${end}", nsecs, pid);
  ${flush}
}
tracepoint:sched:sched_process_exit /pid == tid && @holder[pid]/ {
  delete(@holder[pid]);
  printf("X %llu %d${end}", nsecs, pid);
  ${flush}
}
interval:ms:${FLUSH_MS} /@out > 0/ {
  printf("\\n");
  if (@pend) { @flushed = nsecs; @pend = 0; @n = 0; }
  @out = @out - 1;
}
tracepoint:syscalls:sys_enter_kill /args->pid == ${NUDGE_PID} || args->pid == ${READY_PID}/ {
  if (args->pid == ${READY_PID}) { printf("${READY_MARKS[1]}\\n"); } else { printf("\\n"); }
}
END {
  clear(@lfd); clear(@bfd); clear(@sock); clear(@holder); clear(@out); clear(@flushed); clear(@pend); clear(@n);
  clear(@engine);
}
`;
}
