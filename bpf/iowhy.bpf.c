// SPDX-License-Identifier: GPL-2.0
// iowhy's eBPF program: write and sync calls aggregated per (process, fd, generation,
// call) with a latency histogram, paths and flags of files opened for writing, exec/exit
// of processes, and block request latency (insert -> issue -> complete) per device and
// operation, keyed by the request pointer. Built by bpf/build.sh into bpf/iowhy.bpf.o, which is checked in so
// that `cargo build` needs no clang. Loaded by src/trace/ebpf.rs (aya).
//
// The histogram bucket must match src/trace/hist.rs: log2 buckets of nanoseconds split
// into 16 linear sub-buckets, 41 exponents.

#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

typedef __u8 u8;
typedef __u16 u16;
typedef __u32 u32;
typedef __s32 s32;
typedef __u64 u64;

#define SUB_BITS 4
#define SUB 16
#define MAX_EXP 40
#define BUCKETS ((MAX_EXP + 1) * SUB)

// The call, as in src/trace/ebpf.rs: 0 and 7-10 are the write calls, 1-6 the sync calls.
#define KIND_WRITE 0
#define KIND_FSYNC 1
#define KIND_FDATASYNC 2
#define KIND_SYNC_FILE_RANGE 3
#define KIND_MSYNC 4
#define KIND_SYNC 5
#define KIND_SYNCFS 6
#define KIND_PWRITE64 7
#define KIND_WRITEV 8
#define KIND_PWRITEV 9
#define KIND_PWRITEV2 10

static __always_inline int is_write(u32 kind)
{
	return kind == KIND_WRITE || kind >= KIND_PWRITE64;
}

// include/uapi/asm-generic/fcntl.h (x86-64 and arm64 share these three).
#define O_WRONLY 01
#define O_CREAT 0100
#define O_TRUNC 01000
#define AT_FDCWD -100

#define EV_OPEN 1
#define EV_EXEC 2
#define EV_EXIT 3
#define EV_DUP 4
#define EV_CLOSE 5

#define DROP_RINGBUF 0
#define DROP_FILES 1
#define DROP_HIST 2
#define DROP_PENDING 3
#define DROP_BLOCK 4

const volatile u32 filter_enabled = 0;
const volatile u32 self_tgid = 0;

// Minimal kernel types for CO-RE (relocated against the running kernel's BTF).
struct gendisk {
	int major;
	int first_minor;
} __attribute__((preserve_access_index));

struct request_queue {
	struct gendisk *disk;
} __attribute__((preserve_access_index));

struct request {
	struct request_queue *q;
	unsigned int cmd_flags;
} __attribute__((preserve_access_index));

// gen tells apart the files that one fd number of one process pointed at in turn (see
// fdgen): without it, a log closed and another file opened on the same number would be
// counted as one file.
struct file_key {
	u32 tgid;
	s32 fd;
	u32 kind;
	u32 gen;
};

struct file_val {
	u64 count;
	u64 bytes;
	u64 total_ns;
	u64 max_ns;
};

struct hist_key {
	u32 tgid;
	s32 fd;
	u32 kind;
	u32 gen;
	u32 bucket;
};

struct pending {
	u64 ts;
	s32 fd;
	u32 kind;
};

struct open_pending {
	char path[256];
	u32 flags;
	s32 dfd;
};

// What one fd number of one process points at now: the generation its calls are counted
// under, whether any call was counted under it, and whether user space was sent its name.
struct fd_state {
	u32 gen;
	u8 used;
	u8 named;
	u16 pad;
};

struct event {
	u32 type;
	u32 tgid;
	s32 fd;
	u32 pad; // EV_DUP: the old fd
	u32 gen; // EV_OPEN, EV_DUP: the fd's new generation; EV_CLOSE: the one that ended
	u32 old_gen; // EV_DUP: the old fd's generation
	u32 flags; // EV_OPEN: open flags
	s32 dfd; // EV_OPEN: the directory a relative path is relative to (AT_FDCWD: cwd)
	char comm[16];
	char path[256];
};

struct rq_start {
	u64 insert_ns;
	u64 issue_ns;
};

struct blk_key {
	u32 dev; // major << 20 | minor, the kernel's dev_t layout
	u32 op;
	u32 which; // 0 = queue (insert -> issue), 1 = device (issue -> complete)
	u32 bucket;
};

struct blk_sum_key {
	u32 dev;
	u32 op;
	u32 which;
	u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, u32);
	__type(value, u8);
} targets SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct file_key);
	__type(value, struct file_val);
} files SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct hist_key);
	__type(value, u64);
} hist SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, u32);
	__type(value, struct pending);
} pend SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, u32);
	__type(value, struct open_pending);
} opens SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct open_pending);
} scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);
} events SEC(".maps");

// (tgid << 32 | fd) -> fd_state. LRU: entries of processes that exited are never deleted
// (exit closes fds without a close call); the least recently used go first.
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, u64);
	__type(value, struct fd_state);
} fdgen SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, u32);
} gen_ctr SEC(".maps");

// In flight requests, keyed by the request pointer. LRU so that a request we never see
// complete cannot fill the table: the oldest entry goes first.
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, u64);
	__type(value, struct rq_start);
} rqs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct blk_key);
	__type(value, u64);
} blk_hist SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct blk_sum_key);
	__type(value, struct file_val);
} blk_sum SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 8);
	__type(key, u32);
	__type(value, u64);
} drops SEC(".maps");

// ctl[0] != 0 while the window is open: user space sets it once every program is
// attached and clears it at the end, so the counts cover exactly the window it times.
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, u32);
} ctl SEC(".maps");

static __always_inline int window_open(void)
{
	u32 zero = 0;
	u32 *on = bpf_map_lookup_elem(&ctl, &zero);
	return on && *on;
}

static __always_inline void drop(u32 what)
{
	u64 *v = bpf_map_lookup_elem(&drops, &what);
	if (v)
		__sync_fetch_and_add(v, 1);
}

static __always_inline u32 ilog2(u64 v)
{
	u32 r = 0;
	if (v >> 32) { v >>= 32; r += 32; }
	if (v >> 16) { v >>= 16; r += 16; }
	if (v >> 8) { v >>= 8; r += 8; }
	if (v >> 4) { v >>= 4; r += 4; }
	if (v >> 2) { v >>= 2; r += 2; }
	if (v >> 1) { r += 1; }
	return r;
}

static __always_inline u32 bucket(u64 ns)
{
	if (ns < SUB)
		return (u32)ns;
	u32 e = ilog2(ns);
	if (e > MAX_EXP)
		return BUCKETS - 1;
	u32 sub = (u32)(ns >> (e - SUB_BITS)) & (SUB - 1);
	return (e - SUB_BITS + 1) * SUB + sub;
}

static __always_inline int wanted(u32 tgid)
{
	if (tgid == self_tgid || !window_open())
		return 0;
	if (!filter_enabled)
		return 1;
	return bpf_map_lookup_elem(&targets, &tgid) != 0;
}

// A new generation, unique in this run: a per-CPU counter with the CPU in the top bits
// (a shared atomic counter would need fetch-and-add, BPF ISA v3, kernel 5.12+). Never 0:
// generation 0 is "the file the fd had before we saw it opened".
static __always_inline u32 next_gen(void)
{
	u32 zero = 0;
	u32 *c = bpf_map_lookup_elem(&gen_ctr, &zero);
	if (!c)
		return 0;
	*c += 1;
	return ((bpf_get_smp_processor_id() + 1) << 20) | (*c & 0xfffff);
}

static __always_inline u64 fd_key(u32 tgid, s32 fd)
{
	return ((u64)tgid << 32) | (u32)fd;
}

// The generation a call on this fd is counted under, marking it used.
static __always_inline u32 fd_gen_used(u32 tgid, s32 fd)
{
	if (fd < 0)
		return 0;
	u64 k = fd_key(tgid, fd);
	struct fd_state *st = bpf_map_lookup_elem(&fdgen, &k);
	if (st) {
		st->used = 1;
		return st->gen;
	}
	struct fd_state n = { .gen = 0, .used = 1 };
	bpf_map_update_elem(&fdgen, &k, &n, BPF_NOEXIST);
	return 0;
}

// fd now points at something new (opened, or a dup target): give it a fresh generation.
static __always_inline u32 fd_renew(u32 tgid, s32 fd, u8 named)
{
	u64 k = fd_key(tgid, fd);
	struct fd_state n = { .gen = next_gen(), .used = 0, .named = named };
	bpf_map_update_elem(&fdgen, &k, &n, BPF_ANY);
	return n.gen;
}

// The layout of syscalls:sys_enter_* / sys_exit_* records (see their tracefs format).
struct sys_enter_ctx {
	u64 common;
	s32 nr;
	u32 pad;
	u64 args[6];
};

struct sys_exit_ctx {
	u64 common;
	s32 nr;
	u32 pad;
	long ret;
};

// Tracepoint programs return KEEP: a BPF program that returns 0 on a tracepoint makes the
// kernel drop the event for every perf user of it (perf_trace_run_bpf_submit), which
// would blind `perf`, `iowhy trace --tracing perf` and others while we run.
#define KEEP 1

static __always_inline int enter(s32 fd, u32 kind)
{
	u64 id = bpf_get_current_pid_tgid();
	if (!wanted(id >> 32))
		return KEEP;
	u32 tid = (u32)id;
	struct pending p = { .ts = bpf_ktime_get_ns(), .fd = fd, .kind = kind };
	if (bpf_map_update_elem(&pend, &tid, &p, BPF_ANY))
		drop(DROP_PENDING);
	return KEEP;
}

static __always_inline void add(struct file_key *k, u64 bytes, u64 ns, int with_hist)
{
	struct file_val *v = bpf_map_lookup_elem(&files, k);
	if (!v) {
		struct file_val zero = {};
		if (bpf_map_update_elem(&files, k, &zero, BPF_NOEXIST) && bpf_map_lookup_elem(&files, k) == 0) {
			drop(DROP_FILES);
			return;
		}
		v = bpf_map_lookup_elem(&files, k);
		if (!v)
			return;
	}
	__sync_fetch_and_add(&v->count, 1);
	__sync_fetch_and_add(&v->bytes, bytes);
	__sync_fetch_and_add(&v->total_ns, ns);
	if (ns > v->max_ns)
		v->max_ns = ns;
	if (with_hist) {
		struct hist_key hk = { .tgid = k->tgid, .fd = k->fd, .kind = k->kind, .gen = k->gen, .bucket = bucket(ns) };
		u64 *c = bpf_map_lookup_elem(&hist, &hk);
		if (c) {
			__sync_fetch_and_add(c, 1);
		} else {
			u64 one = 1;
			if (bpf_map_update_elem(&hist, &hk, &one, BPF_NOEXIST)) {
				c = bpf_map_lookup_elem(&hist, &hk);
				if (c)
					__sync_fetch_and_add(c, 1);
				else
					drop(DROP_HIST);
			}
		}
	}
}

static __always_inline int leave(long ret, u32 kind)
{
	u64 id = bpf_get_current_pid_tgid();
	u32 tid = (u32)id;
	struct pending *p = bpf_map_lookup_elem(&pend, &tid);
	if (!p)
		return KEEP;
	u64 ns = bpf_ktime_get_ns() - p->ts;
	s32 fd = p->fd;
	u32 pkind = p->kind;
	bpf_map_delete_elem(&pend, &tid);
	if (pkind != kind)
		return KEEP;
	u32 tgid = id >> 32;
	struct file_key k = { .tgid = tgid, .fd = fd, .kind = kind };
	if (is_write(kind)) {
		// Writes: calls, bytes and time (for the per-syscall table), no histogram.
		if (ret >= 0) {
			k.gen = fd_gen_used(tgid, fd);
			add(&k, (u64)ret, ns, 0);
		}
	} else {
		k.gen = fd_gen_used(tgid, fd);
		add(&k, 0, ns, 1);
	}
	return KEEP;
}

#define WRITE_TP(name, kind)                                                      \
	SEC("tracepoint/syscalls/sys_enter_" #name)                                   \
	int enter_##name(struct sys_enter_ctx *ctx) { return enter((s32)ctx->args[0], kind); } \
	SEC("tracepoint/syscalls/sys_exit_" #name)                                    \
	int exit_##name(struct sys_exit_ctx *ctx) { return leave(ctx->ret, kind); }

#define SYNC_TP(name, kind, fdexpr)                                               \
	SEC("tracepoint/syscalls/sys_enter_" #name)                                   \
	int enter_##name(struct sys_enter_ctx *ctx) { return enter(fdexpr, kind); }  \
	SEC("tracepoint/syscalls/sys_exit_" #name)                                    \
	int exit_##name(struct sys_exit_ctx *ctx) { return leave(ctx->ret, kind); }

WRITE_TP(write, KIND_WRITE)
WRITE_TP(pwrite64, KIND_PWRITE64)
WRITE_TP(writev, KIND_WRITEV)
WRITE_TP(pwritev, KIND_PWRITEV)
WRITE_TP(pwritev2, KIND_PWRITEV2)
SYNC_TP(fsync, KIND_FSYNC, (s32)ctx->args[0])
SYNC_TP(fdatasync, KIND_FDATASYNC, (s32)ctx->args[0])
SYNC_TP(sync_file_range, KIND_SYNC_FILE_RANGE, (s32)ctx->args[0])
SYNC_TP(msync, KIND_MSYNC, -1)
SYNC_TP(sync, KIND_SYNC, -1)
SYNC_TP(syncfs, KIND_SYNCFS, (s32)ctx->args[0])

// Paths and flags of files opened for writing, so short-lived fds still get a name:
// open, openat, creat and openat2 (the kernel lacks open and creat on arm64; user space
// attaches what exists).
static __always_inline int open_enter(s32 dfd, const char *path, u32 flags)
{
	u64 id = bpf_get_current_pid_tgid();
	if (!wanted(id >> 32))
		return KEEP;
	// O_WRONLY or O_RDWR only: reads are not what stalls a disk here.
	if ((flags & 3) == 0)
		return KEEP;
	u32 zero = 0;
	struct open_pending *s = bpf_map_lookup_elem(&scratch, &zero);
	if (!s)
		return KEEP;
	bpf_probe_read_user_str(s->path, sizeof(s->path), path);
	s->flags = flags;
	s->dfd = dfd;
	u32 tid = (u32)id;
	bpf_map_update_elem(&opens, &tid, s, BPF_ANY);
	return KEEP;
}

static __always_inline int open_exit(long ret)
{
	u64 id = bpf_get_current_pid_tgid();
	u32 tid = (u32)id;
	struct open_pending *o = bpf_map_lookup_elem(&opens, &tid);
	if (!o)
		return KEEP;
	if (ret >= 0) {
		u32 tgid = id >> 32;
		u32 gen = fd_renew(tgid, (s32)ret, 1);
		struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
		if (e) {
			e->type = EV_OPEN;
			e->tgid = tgid;
			e->fd = (s32)ret;
			e->pad = 0;
			e->gen = gen;
			e->old_gen = 0;
			e->flags = o->flags;
			e->dfd = o->dfd;
			bpf_get_current_comm(e->comm, sizeof(e->comm));
			__builtin_memcpy(e->path, o->path, sizeof(e->path));
			bpf_ringbuf_submit(e, 0);
		} else {
			drop(DROP_RINGBUF);
		}
	}
	bpf_map_delete_elem(&opens, &tid);
	return KEEP;
}

SEC("tracepoint/syscalls/sys_enter_openat")
int enter_openat(struct sys_enter_ctx *ctx)
{
	return open_enter((s32)ctx->args[0], (const char *)ctx->args[1], (u32)ctx->args[2]);
}
SEC("tracepoint/syscalls/sys_exit_openat")
int exit_openat(struct sys_exit_ctx *ctx) { return open_exit(ctx->ret); }

SEC("tracepoint/syscalls/sys_enter_open")
int enter_open(struct sys_enter_ctx *ctx)
{
	return open_enter(AT_FDCWD, (const char *)ctx->args[0], (u32)ctx->args[1]);
}
SEC("tracepoint/syscalls/sys_exit_open")
int exit_open(struct sys_exit_ctx *ctx) { return open_exit(ctx->ret); }

SEC("tracepoint/syscalls/sys_enter_creat")
int enter_creat(struct sys_enter_ctx *ctx)
{
	// creat(2) is open(path, O_CREAT | O_WRONLY | O_TRUNC).
	return open_enter(AT_FDCWD, (const char *)ctx->args[0], O_CREAT | O_WRONLY | O_TRUNC);
}
SEC("tracepoint/syscalls/sys_exit_creat")
int exit_creat(struct sys_exit_ctx *ctx) { return open_exit(ctx->ret); }

SEC("tracepoint/syscalls/sys_enter_openat2")
int enter_openat2(struct sys_enter_ctx *ctx)
{
	// openat2(dfd, path, struct open_how *how, size): the flags are how->flags (u64 first).
	u64 flags = 0;
	bpf_probe_read_user(&flags, sizeof(flags), (const void *)ctx->args[2]);
	return open_enter((s32)ctx->args[0], (const char *)ctx->args[1], (u32)flags);
}
SEC("tracepoint/syscalls/sys_exit_openat2")
int exit_openat2(struct sys_exit_ctx *ctx) { return open_exit(ctx->ret); }

// close: the fd's file ends here. Calls on the number from now on belong to whatever it
// points at next, under a new generation. A name we sent that has no call counted under
// it is useless: tell user space to forget it (keeps its table small).
SEC("tracepoint/syscalls/sys_enter_close")
int enter_close(struct sys_enter_ctx *ctx)
{
	u64 id = bpf_get_current_pid_tgid();
	u32 tgid = id >> 32;
	if (!wanted(tgid))
		return KEEP;
	s32 fd = (s32)ctx->args[0];
	u64 k = fd_key(tgid, fd);
	struct fd_state *st = bpf_map_lookup_elem(&fdgen, &k);
	if (!st)
		return KEEP;
	if (st->named && !st->used) {
		struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
		if (e) {
			e->type = EV_CLOSE;
			e->tgid = tgid;
			e->fd = fd;
			e->pad = 0;
			e->gen = st->gen;
			e->old_gen = 0;
			e->flags = 0;
			e->dfd = 0;
			e->comm[0] = 0;
			e->path[0] = 0;
			bpf_ringbuf_submit(e, 0);
		}
		// Not counted as a loss if the ring is full: the name only stays longer.
	}
	st->gen = next_gen();
	st->used = 0;
	st->named = 0;
	return KEEP;
}

// dup/dup2/dup3: shells and daemons open a log and move it onto fd 1 or 2; follow the
// move so writes to the new fd keep the name (the event's pad field holds the old fd).
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, u32);
	__type(value, s32);
} dups SEC(".maps");

static __always_inline int dup_enter(s32 oldfd)
{
	u64 id = bpf_get_current_pid_tgid();
	if (!wanted(id >> 32))
		return KEEP;
	u32 tid = (u32)id;
	bpf_map_update_elem(&dups, &tid, &oldfd, BPF_ANY);
	return KEEP;
}

static __always_inline int dup_exit(long ret)
{
	u64 id = bpf_get_current_pid_tgid();
	u32 tid = (u32)id;
	s32 *old = bpf_map_lookup_elem(&dups, &tid);
	if (!old)
		return KEEP;
	s32 oldfd = *old;
	bpf_map_delete_elem(&dups, &tid);
	if (ret < 0 || (s32)ret == oldfd)
		return KEEP;
	u32 tgid = id >> 32;
	u64 ok = fd_key(tgid, oldfd);
	struct fd_state *ost = bpf_map_lookup_elem(&fdgen, &ok);
	u32 old_gen = ost ? ost->gen : 0;
	u32 gen = fd_renew(tgid, (s32)ret, 1);
	struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		drop(DROP_RINGBUF);
		return KEEP;
	}
	e->type = EV_DUP;
	e->tgid = tgid;
	e->fd = (s32)ret;
	e->pad = (u32)oldfd;
	e->gen = gen;
	e->old_gen = old_gen;
	e->flags = 0;
	e->dfd = 0;
	e->comm[0] = 0;
	e->path[0] = 0;
	bpf_ringbuf_submit(e, 0);
	return KEEP;
}

SEC("tracepoint/syscalls/sys_enter_dup")
int enter_dup(struct sys_enter_ctx *ctx) { return dup_enter((s32)ctx->args[0]); }
SEC("tracepoint/syscalls/sys_exit_dup")
int exit_dup(struct sys_exit_ctx *ctx) { return dup_exit(ctx->ret); }
SEC("tracepoint/syscalls/sys_enter_dup2")
int enter_dup2(struct sys_enter_ctx *ctx) { return dup_enter((s32)ctx->args[0]); }
SEC("tracepoint/syscalls/sys_exit_dup2")
int exit_dup2(struct sys_exit_ctx *ctx) { return dup_exit(ctx->ret); }
SEC("tracepoint/syscalls/sys_enter_dup3")
int enter_dup3(struct sys_enter_ctx *ctx) { return dup_enter((s32)ctx->args[0]); }
SEC("tracepoint/syscalls/sys_exit_dup3")
int exit_dup3(struct sys_exit_ctx *ctx) { return dup_exit(ctx->ret); }

SEC("tracepoint/sched/sched_process_exec")
int on_exec(void *ctx)
{
	u64 id = bpf_get_current_pid_tgid();
	if (!wanted(id >> 32))
		return KEEP;
	struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		drop(DROP_RINGBUF);
		return KEEP;
	}
	e->type = EV_EXEC;
	e->tgid = id >> 32;
	e->fd = -1;
	e->pad = 0;
	e->gen = 0;
	e->old_gen = 0;
	e->flags = 0;
	e->dfd = 0;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	e->path[0] = 0;
	bpf_ringbuf_submit(e, 0);
	return KEEP;
}

SEC("tracepoint/sched/sched_process_exit")
int on_exit(void *ctx)
{
	u64 id = bpf_get_current_pid_tgid();
	u32 tid = (u32)id;
	bpf_map_delete_elem(&pend, &tid);
	if ((u32)(id >> 32) != tid || !wanted(tid))
		return KEEP;
	struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		drop(DROP_RINGBUF);
		return KEEP;
	}
	e->type = EV_EXIT;
	e->tgid = tid;
	e->fd = -1;
	e->pad = 0;
	e->gen = 0;
	e->old_gen = 0;
	e->flags = 0;
	e->dfd = 0;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	e->path[0] = 0;
	bpf_ringbuf_submit(e, 0);
	return KEEP;
}

// Block requests, keyed by the request pointer: a flush or FUA write may complete more
// than once per issue; the first completion after an issue closes it, later ones find
// nothing and are ignored.
static __always_inline u32 rq_dev(struct request *rq)
{
	int major = BPF_CORE_READ(rq, q, disk, major);
	int minor = BPF_CORE_READ(rq, q, disk, first_minor);
	return ((u32)major << 20) | (u32)minor;
}

static __always_inline void blk_add(u32 dev, u32 op, u32 which, u64 ns)
{
	struct blk_key k = { .dev = dev, .op = op, .which = which, .bucket = bucket(ns) };
	u64 *c = bpf_map_lookup_elem(&blk_hist, &k);
	if (c) {
		__sync_fetch_and_add(c, 1);
	} else {
		u64 one = 1;
		if (bpf_map_update_elem(&blk_hist, &k, &one, BPF_NOEXIST)) {
			c = bpf_map_lookup_elem(&blk_hist, &k);
			if (c)
				__sync_fetch_and_add(c, 1);
			else
				drop(DROP_BLOCK);
		}
	}
	struct blk_sum_key sk = { .dev = dev, .op = op, .which = which };
	struct file_val *v = bpf_map_lookup_elem(&blk_sum, &sk);
	if (!v) {
		struct file_val zero = {};
		bpf_map_update_elem(&blk_sum, &sk, &zero, BPF_NOEXIST);
		v = bpf_map_lookup_elem(&blk_sum, &sk);
		if (!v)
			return;
	}
	__sync_fetch_and_add(&v->count, 1);
	__sync_fetch_and_add(&v->total_ns, ns);
	if (ns > v->max_ns)
		v->max_ns = ns;
}

SEC("raw_tp/block_rq_insert")
int on_rq_insert(struct bpf_raw_tracepoint_args *ctx)
{
	if (!window_open())
		return 0;
	u64 rq = ctx->args[0];
	struct rq_start s = { .insert_ns = bpf_ktime_get_ns(), .issue_ns = 0 };
	if (bpf_map_update_elem(&rqs, &rq, &s, BPF_ANY))
		drop(DROP_BLOCK);
	return 0;
}

SEC("raw_tp/block_rq_issue")
int on_rq_issue(struct bpf_raw_tracepoint_args *ctx)
{
	if (!window_open())
		return 0;
	u64 rq = ctx->args[0];
	u64 now = bpf_ktime_get_ns();
	struct rq_start *s = bpf_map_lookup_elem(&rqs, &rq);
	if (s) {
		s->issue_ns = now;
	} else {
		// Issued without passing the scheduler (no elevator, or a flush): no queue time.
		struct rq_start n = { .insert_ns = 0, .issue_ns = now };
		if (bpf_map_update_elem(&rqs, &rq, &n, BPF_ANY))
			drop(DROP_BLOCK);
	}
	return 0;
}

// A request merged into another after insert is freed without being issued or completed:
// forget it, or its pointer, reused by a later request that skips the scheduler (a flush),
// would carry the old insert time.
SEC("raw_tp/block_rq_merge")
int on_rq_merge(struct bpf_raw_tracepoint_args *ctx)
{
	u64 rq = ctx->args[0];
	bpf_map_delete_elem(&rqs, &rq);
	return 0;
}

SEC("raw_tp/block_rq_complete")
int on_rq_complete(struct bpf_raw_tracepoint_args *ctx)
{
	u64 rq = ctx->args[0];
	struct rq_start *s = bpf_map_lookup_elem(&rqs, &rq);
	if (!s)
		return 0;
	u64 now = bpf_ktime_get_ns();
	u64 insert = s->insert_ns, issue = s->issue_ns;
	bpf_map_delete_elem(&rqs, &rq);
	if (!issue)
		return 0;
	struct request *r = (struct request *)rq;
	u32 dev = rq_dev(r);
	u32 op = BPF_CORE_READ(r, cmd_flags) & 0xff;
	if (insert && issue >= insert)
		blk_add(dev, op, 0, issue - insert);
	blk_add(dev, op, 1, now - issue);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
