/**
 * The bpftrace program of the bpftrace engine, built on tracepoints only (these kernels have no kprobes):
 *
 * - TCP opens at a successful listen() (sys_exit_listen): the socket is read from the fd table through BTF, so
 *   the port is the real one even for listen() without bind() (the state tracepoint still says sport 0 then),
 *   and a failed listen() (port taken) reports nothing. TCP closes at the socket's LISTEN -> CLOSE transition
 *   (sock:inet_sock_set_state), whichever process holds it and however it ends (close, exit, kill).
 * - UDP opens at a successful bind(). It closes when the last file reference goes: close() or dup2()/dup3()
 *   over the fd with the file's refcount at one, or the exit of a holder (the engine then checks which of its
 *   sockets are gone). Holders are followed through fork().
 * Each event is one JSON object in a printf, read by bpftrace_parse.ts.
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

/** The program for a kernel of release `kernelRelease` (uname -r). */
export function bpftraceScript(kernelRelease: string): string {
  const ref = fileRefField(kernelRelease);
  // $f, $sk for fd $fd of the current task; 0 when the fd is out of range.
  const sockOf = (fd: string) => `
  $fdt = curtask->files->fdt;
  $f = (struct file *)0;
  if (${fd} >= 0 && ${fd} < (int64)$fdt->max_fds) { $f = *($fdt->fd + ${fd}); }
  $sk = (struct sock *)0;
  if ($f != 0) { $sk = ((struct socket *)$f->private_data)->sk; }`;
  const sockJson = `"sk":"%p","ino":%lu,"port":%d,"fam":%d,"proto":%d,"ns":%u,"a4":%u,"a6":"%s"`;
  const sockArgs = `$sk, $f->f_inode->i_ino, $sk->__sk_common.skc_num, $sk->__sk_common.skc_family, ` +
    `$sk->sk_protocol, $sk->__sk_common.skc_net.net->ns.inum, $sk->__sk_common.skc_rcv_saddr, ` +
    `ntop($sk->__sk_common.skc_v6_rcv_saddr.in6_u.u6_addr8)`;
  return `
tracepoint:syscalls:sys_enter_listen { @lfd[tid] = args->fd + 1; }
tracepoint:syscalls:sys_exit_listen /@lfd[tid]/ {
  $fd = (int64)@lfd[tid] - 1;
  delete(@lfd[tid]);
  if (args->ret != 0) {
    printf("{\\"k\\":\\"LF\\",\\"pid\\":%d,\\"fd\\":%d,\\"ret\\":%d}\\n", pid, $fd, args->ret);
  } else {${sockOf("$fd")}
    if ($sk != 0) {
      printf("{\\"k\\":\\"L\\",\\"pid\\":%d,\\"comm\\":\\"%s\\",\\"fd\\":%d,\\"cg\\":%lu,${
    sockJson.replaceAll('"', '\\"')
  }}\\n",
        pid, comm, $fd, cgroup, ${sockArgs});
    }
  }
}
tracepoint:sock:inet_sock_set_state /args->protocol == 6 && args->oldstate == 10 && args->newstate != 10/ {
  $sk = (struct sock *)args->skaddr;
  printf("{\\"k\\":\\"U\\",\\"pid\\":%d,\\"sk\\":\\"%p\\",\\"port\\":%d,\\"ns\\":%u}\\n",
    pid, args->skaddr, args->sport, $sk->__sk_common.skc_net.net->ns.inum);
}
tracepoint:syscalls:sys_enter_bind { @bfd[tid] = args->fd + 1; }
tracepoint:syscalls:sys_exit_bind /@bfd[tid]/ {
  $fd = (int64)@bfd[tid] - 1;
  delete(@bfd[tid]);
  if (args->ret == 0) {${sockOf("$fd")}
    if ($sk != 0 && $sk->sk_protocol == 17) {
      @udp[$sk] = 1;
      @holder[pid] = 1;
      printf("{\\"k\\":\\"B\\",\\"pid\\":%d,\\"comm\\":\\"%s\\",\\"fd\\":%d,\\"cg\\":%lu,${
    sockJson.replaceAll('"', '\\"')
  }}\\n",
        pid, comm, $fd, cgroup, ${sockArgs});
    }
  }
}
tracepoint:syscalls:sys_enter_close /@holder[pid]/ {${sockOf("(int64)args->fd")}
  if ($sk != 0 && @udp[$sk] && $f->${ref.expr} == ${ref.lastRef}) {
    delete(@udp[$sk]);
    printf("{\\"k\\":\\"C\\",\\"pid\\":%d,\\"fd\\":%d,\\"sk\\":\\"%p\\",\\"ino\\":%lu}\\n", pid, args->fd, $sk, $f->f_inode->i_ino);
  }
}
tracepoint:syscalls:sys_enter_dup2 /@holder[pid]/ {${sockOf("(int64)args->newfd")}
  if ($sk != 0 && @udp[$sk] && $f->${ref.expr} == ${ref.lastRef}) {
    delete(@udp[$sk]);
    printf("{\\"k\\":\\"C\\",\\"pid\\":%d,\\"fd\\":%d,\\"sk\\":\\"%p\\",\\"ino\\":%lu}\\n", pid, args->newfd, $sk, $f->f_inode->i_ino);
  }
}
tracepoint:syscalls:sys_enter_dup3 /@holder[pid]/ {${sockOf("(int64)args->newfd")}
  if ($sk != 0 && @udp[$sk] && $f->${ref.expr} == ${ref.lastRef}) {
    delete(@udp[$sk]);
    printf("{\\"k\\":\\"C\\",\\"pid\\":%d,\\"fd\\":%d,\\"sk\\":\\"%p\\",\\"ino\\":%lu}\\n", pid, args->newfd, $sk, $f->f_inode->i_ino);
  }
}
tracepoint:sched:sched_process_fork /@holder[args->parent_pid]/ {
  @holder[args->child_pid] = 1;
  printf("{\\"k\\":\\"F\\",\\"pid\\":%d,\\"child\\":%d}\\n", args->parent_pid, args->child_pid);
}
tracepoint:sched:sched_process_exit /pid == tid && @holder[pid]/ {
  delete(@holder[pid]);
  printf("{\\"k\\":\\"X\\",\\"pid\\":%d}\\n", pid);
}
END { clear(@lfd); clear(@bfd); clear(@udp); clear(@holder); }
`;
}
