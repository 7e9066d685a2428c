// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * portwatch's native eBPF programs: tracepoints only (these kernels have no kprobes and no fentry), CO-RE
 * through BTF, one ring buffer for every CPU (records arrive in the order they were written: no reorder window).
 * The engine (libbpf_source.ts) loads this object with libbpf through Deno FFI and reads the ring from its
 * mmap'ed pages. What it records mirrors the bpftrace engine's program (bpftrace_script.ts):
 *
 * - TCP opens at a successful listen() (sys_exit_listen): the socket is read from the fd table, so the port
 *   is the real one even for listen() without bind(). A failed listen() says so (never an open).
 * - TCP closes at the socket's LISTEN -> other state transition (sock:inet_sock_set_state), whichever process
 *   holds it and however it ends (close, exit, kill, exec).
 * - UDP opens at a successful bind(); it closes with its last file reference: a close() or a dup2()/dup3()
 *   over its fd with the file's refcount at one, or a holder's exit (the engine then checks with a scan).
 * - Holders: the process of a listen() or bind() holds the socket; the engine adds the holders it finds by
 *   scanning (the `holders` map). Their forks (new processes, not threads), execs and exits are recorded, and
 *   each close() or dup2()/dup3() over an fd of a listening TCP or bound UDP socket, with whether it was the
 *   socket's last reference (a TCP listener's last close has no record: its state transition ends it), and
 *   each close_range() (the engine reads what the holder still holds, as after an exec).
 * - Filtering here, before a record is written: the watched network namespace (settings.netns, 0: any) and
 *   the watched ports (settings.ports_only: the `ports` bitmap). A record that is filtered out marks no holder.
 * - A record that finds the ring full is counted in `drops` (the engine then reconciles at once).
 */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#define PW_AF_INET6 10
#define PW_TCP 6
#define PW_UDP 17
#define PW_TCP_LISTEN 10
#define PW_S_IFMT 0170000
#define PW_S_IFSOCK 0140000
#define PW_CLONE_THREAD 0x10000

/* Record kinds (record.ts decodes them). */
enum pw_kind {
	PW_LISTEN = 1,	      /* listen() succeeded */
	PW_LISTEN_FAILED = 2, /* listen() failed: arg is its error */
	PW_BIND = 3,	      /* a UDP bind() succeeded */
	PW_UNLISTEN = 4,      /* a TCP socket left LISTEN */
	PW_CLOSE = 5,	      /* a holder closed (or dup2/dup3'd over) an fd of a listening or bound socket */
	PW_FORK = 6,	      /* a holder created a process: arg is the child */
	PW_EXEC = 7,	      /* a holder exec'd */
	PW_EXIT = 8,	      /* a holder exited */
	PW_CLOSE_RANGE = 9,   /* a holder closed a range of fds (close_range): what it holds is read again */
};

/* One record: 64 bytes, 72 with the ring's header. */
struct pw_record {
	__u64 ts;    /* bpf_ktime_get_ns */
	__u64 sk;    /* struct sock address: the socket's key across fds and forks */
	__u64 ino;   /* the socket's inode (socket:[N]) */
	__u32 kind;  /* enum pw_kind */
	__u32 pid;   /* tgid */
	__s32 arg;   /* fd; the child for PW_FORK; the error for PW_LISTEN_FAILED */
	__u32 netns; /* network namespace inode */
	__u16 port;
	__u8 family; /* 4 or 6 */
	__u8 proto;  /* 6 or 17 */
	__u8 last;   /* PW_CLOSE: 1 when it dropped the socket's last reference */
	__u8 pad[3];
	__u8 addr[16]; /* the local address: IPv4 in the first 4 bytes */
};

/* What the engine sets after loading (key 0). */
struct pw_settings {
	__u32 netns;	  /* only this network namespace; 0: every one */
	__u32 ports_only; /* 1: only the ports set in `ports` */
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20); /* the engine may set another size before loading */
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, __u8);
} holders SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct pw_settings);
} settings SEC(".maps");

/* Watched ports, a bitmap: bit (port & 63) of word (port >> 6). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u64);
} ports SEC(".maps");

/* Records that found the ring full (key 0). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} drops SEC(".maps");

/* struct file's refcount before 6.13 (f_count; from 6.13 f_ref, where 0 means one reference). */
struct file___old {
	atomic_long_t f_count;
} __attribute__((preserve_access_index));

static __always_inline __u32 current_tgid(void)
{
	return bpf_get_current_pid_tgid() >> 32;
}

static __always_inline int is_holder(__u32 pid)
{
	return bpf_map_lookup_elem(&holders, &pid) != 0;
}

static __always_inline void mark_holder(__u32 pid)
{
	__u8 one = 1;
	bpf_map_update_elem(&holders, &pid, &one, BPF_ANY);
}

/* Whether a socket of netns on port is watched (settings). */
static __always_inline int watched(__u32 netns, __u16 port)
{
	__u32 zero = 0;
	struct pw_settings *s = bpf_map_lookup_elem(&settings, &zero);
	if (!s)
		return 1;
	if (s->netns && s->netns != netns)
		return 0;
	if (s->ports_only) {
		__u32 word = port >> 6;
		__u64 *bits = bpf_map_lookup_elem(&ports, &word);
		if (!bits || !(*bits & (1ULL << (port & 63))))
			return 0;
	}
	return 1;
}

static __always_inline struct pw_record *reserve(__u32 kind, __u32 pid)
{
	struct pw_record *r = bpf_ringbuf_reserve(&events, sizeof(*r), 0);
	if (!r) {
		__u32 zero = 0;
		__u64 *n = bpf_map_lookup_elem(&drops, &zero);
		if (n)
			__sync_fetch_and_add(n, 1);
		return 0;
	}
	__builtin_memset(r, 0, sizeof(*r));
	r->ts = bpf_ktime_get_ns();
	r->kind = kind;
	r->pid = pid;
	return r;
}

/* The file at fd of the current task, or 0. */
static __always_inline struct file *file_of(struct task_struct *task, int fd)
{
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	struct file **fds;
	struct file *f = 0;
	if (fd < 0 || !fdt || (unsigned int)fd >= BPF_CORE_READ(fdt, max_fds))
		return 0;
	fds = BPF_CORE_READ(fdt, fd);
	bpf_probe_read_kernel(&f, sizeof(f), &fds[fd]);
	return f;
}

/* The socket of a file, or 0 when it is not one. */
static __always_inline struct sock *sock_of(struct file *f)
{
	struct socket *sock;
	if (!f || (BPF_CORE_READ(f, f_inode, i_mode) & PW_S_IFMT) != PW_S_IFSOCK)
		return 0;
	sock = BPF_CORE_READ(f, private_data);
	return sock ? BPF_CORE_READ(sock, sk) : 0;
}

static __always_inline __u32 netns_of(struct sock *sk)
{
	return BPF_CORE_READ(sk, __sk_common.skc_net.net, ns.inum);
}

/* Whether the file holds its last reference (its refcount, whichever field this kernel has). */
static __always_inline int last_reference(struct file *f)
{
	if (bpf_core_field_exists(f->f_ref))
		return BPF_CORE_READ(f, f_ref.refcnt.counter) == 0;
	return BPF_CORE_READ((struct file___old *)f, f_count.counter) == 1;
}

/* A record for an opened (or failed) socket: the socket's fields and filters. Returns 0 when filtered out. */
static __always_inline int opened(__u32 kind, __u32 pid, int fd, struct file *f, struct sock *sk, int err)
{
	__u32 netns = netns_of(sk);
	__u16 port = BPF_CORE_READ(sk, __sk_common.skc_num);
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
	struct pw_record *r;
	if (!watched(netns, port))
		return 0;
	r = reserve(kind, pid);
	if (!r)
		return 1;
	r->sk = (__u64)sk;
	r->ino = BPF_CORE_READ(f, f_inode, i_ino);
	r->arg = err ? err : fd;
	r->netns = netns;
	r->port = port;
	r->proto = BPF_CORE_READ(sk, sk_protocol);
	r->family = family == PW_AF_INET6 ? 6 : 4;
	if (family == PW_AF_INET6)
		BPF_CORE_READ_INTO(&r->addr, sk, __sk_common.skc_v6_rcv_saddr);
	else
		BPF_CORE_READ_INTO((__u32 *)r->addr, sk, __sk_common.skc_rcv_saddr);
	bpf_ringbuf_submit(r, 0);
	return 1;
}

/* The syscall's first argument, read at its exit from the task's saved user registers. */
static __always_inline int first_arg(struct task_struct *task)
{
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(task);
	return (int)PT_REGS_PARM1_CORE_SYSCALL(regs);
}

SEC("tp/syscalls/sys_exit_listen")
int pw_listen_exit(struct trace_event_raw_sys_exit *ctx)
{
	struct task_struct *task = bpf_get_current_task_btf();
	int fd = first_arg(task);
	struct file *f = file_of(task, fd);
	struct sock *sk = sock_of(f);
	__u32 pid = current_tgid();
	if (!sk)
		return 0;
	if (ctx->ret != 0) {
		opened(PW_LISTEN_FAILED, pid, fd, f, sk, (int)ctx->ret);
		return 0;
	}
	if (opened(PW_LISTEN, pid, fd, f, sk, 0))
		mark_holder(pid);
	return 0;
}

SEC("tp/syscalls/sys_exit_bind")
int pw_bind_exit(struct trace_event_raw_sys_exit *ctx)
{
	struct task_struct *task;
	struct file *f;
	struct sock *sk;
	__u32 pid;
	int fd;
	if (ctx->ret != 0)
		return 0;
	task = bpf_get_current_task_btf();
	fd = first_arg(task);
	f = file_of(task, fd);
	sk = sock_of(f);
	if (!sk || BPF_CORE_READ(sk, sk_protocol) != PW_UDP)
		return 0;
	pid = current_tgid();
	if (opened(PW_BIND, pid, fd, f, sk, 0))
		mark_holder(pid);
	return 0;
}

SEC("tp/sock/inet_sock_set_state")
int pw_sock_state(struct trace_event_raw_inet_sock_set_state *ctx)
{
	struct sock *sk;
	struct pw_record *r;
	__u32 netns;
	if (ctx->protocol != PW_TCP || ctx->oldstate != PW_TCP_LISTEN || ctx->newstate == PW_TCP_LISTEN)
		return 0;
	sk = (struct sock *)ctx->skaddr;
	netns = netns_of(sk);
	if (!watched(netns, ctx->sport))
		return 0;
	r = reserve(PW_UNLISTEN, current_tgid());
	if (!r)
		return 0;
	r->sk = (__u64)sk;
	r->netns = netns;
	r->port = ctx->sport;
	r->proto = PW_TCP;
	bpf_ringbuf_submit(r, 0);
	return 0;
}

/* A holder lets go of fd (close, or dup2/dup3 over it): a record when it is a listening or bound socket. */
static __always_inline void closed(__u32 pid, int fd)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct file *f = file_of(task, fd);
	struct sock *sk = sock_of(f);
	struct pw_record *r;
	__u16 proto, port;
	__u32 netns;
	int last;
	if (!sk)
		return;
	proto = BPF_CORE_READ(sk, sk_protocol);
	port = BPF_CORE_READ(sk, __sk_common.skc_num);
	if (proto == PW_TCP) {
		if (BPF_CORE_READ(sk, __sk_common.skc_state) != PW_TCP_LISTEN)
			return;
	} else if (proto != PW_UDP || port == 0) {
		return;
	}
	last = last_reference(f);
	/* A TCP listener's last reference: its LISTEN -> CLOSE transition ends it. */
	if (last && proto == PW_TCP)
		return;
	netns = netns_of(sk);
	if (!watched(netns, port))
		return;
	r = reserve(PW_CLOSE, pid);
	if (!r)
		return;
	r->sk = (__u64)sk;
	r->ino = BPF_CORE_READ(f, f_inode, i_ino);
	r->arg = fd;
	r->netns = netns;
	r->port = port;
	r->proto = proto;
	r->last = last;
	bpf_ringbuf_submit(r, 0);
}

SEC("tp/syscalls/sys_enter_close")
int pw_close(struct trace_event_raw_sys_enter *ctx)
{
	__u32 pid = current_tgid();
	if (is_holder(pid))
		closed(pid, (int)ctx->args[0]);
	return 0;
}

/* dup2/dup3 close newfd only when they succeed: oldfd open, and not newfd (dup2(fd, fd) closes nothing). */
static __always_inline void dup_over(struct trace_event_raw_sys_enter *ctx)
{
	__u32 pid = current_tgid();
	int oldfd = (int)ctx->args[0], newfd = (int)ctx->args[1];
	if (oldfd == newfd || !is_holder(pid))
		return;
	if (!file_of(bpf_get_current_task_btf(), oldfd))
		return;
	closed(pid, newfd);
}

SEC("tp/syscalls/sys_enter_dup2")
int pw_dup2(struct trace_event_raw_sys_enter *ctx)
{
	dup_over(ctx);
	return 0;
}

SEC("tp/syscalls/sys_enter_dup3")
int pw_dup3(struct trace_event_raw_sys_enter *ctx)
{
	dup_over(ctx);
	return 0;
}

/* close_range() closes many fds in one call: the engine reads the holder's fds again, as after an exec. */
SEC("tp/syscalls/sys_exit_close_range")
int pw_close_range(struct trace_event_raw_sys_exit *ctx)
{
	__u32 pid = current_tgid();
	struct pw_record *r;
	if (ctx->ret != 0 || !is_holder(pid))
		return 0;
	r = reserve(PW_CLOSE_RANGE, pid);
	if (r)
		bpf_ringbuf_submit(r, 0);
	return 0;
}

SEC("tp/task/task_newtask")
int pw_newtask(struct trace_event_raw_task_newtask *ctx)
{
	__u32 pid = current_tgid(), child = ctx->pid;
	struct pw_record *r;
	if ((ctx->clone_flags & PW_CLONE_THREAD) || !is_holder(pid))
		return 0;
	mark_holder(child);
	r = reserve(PW_FORK, pid);
	if (!r)
		return 0;
	r->arg = child;
	bpf_ringbuf_submit(r, 0);
	return 0;
}

SEC("tp/sched/sched_process_exec")
int pw_exec(void *ctx)
{
	__u32 pid = current_tgid();
	struct pw_record *r;
	if (!is_holder(pid))
		return 0;
	r = reserve(PW_EXEC, pid);
	if (r)
		bpf_ringbuf_submit(r, 0);
	return 0;
}

SEC("tp/sched/sched_process_exit")
int pw_exit(void *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 pid = id >> 32;
	struct pw_record *r;
	if (pid != (__u32)id || !is_holder(pid))
		return 0;
	bpf_map_delete_elem(&holders, &pid);
	r = reserve(PW_EXIT, pid);
	if (r)
		bpf_ringbuf_submit(r, 0);
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
