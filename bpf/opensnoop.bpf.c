// `probe opensnoop`: every open(2), openat(2) and openat2(2) with its path, flags and result.
// The entry tracepoint remembers the arguments per thread; the exit tracepoint reads the path and
// sends one event. The path is read at exit, not entry: the kernel has just copied it, so its page
// is resident and the non-faulting read succeeds (at entry it may not be yet).
#include "common.h"
#include "filter.h"
#include "opensnoop.h"

char LICENSE[] SEC("license") = "GPL";

const volatile struct opensnoop_config cfg = {};

/* The raw records of the syscall tracepoints (tracefs events/syscalls/.../format): the common
 * header, the syscall number, then each argument as 8 bytes. */
struct syscall_enter_record {
	__u64 common;
	__s32 nr;
	__u32 pad;
	__u64 args[6];
};
struct syscall_exit_record {
	__u64 common;
	__s32 nr;
	__u32 pad;
	__s64 ret;
};

struct open_args {
	__u64 path;     /* user pointer */
	__u64 how;      /* openat2: struct open_how *, read at exit */
	__u64 flags;
	__u64 mode;
	__s32 dfd;
	__u32 syscall;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64); /* pid_tgid: one open in flight per thread */
	__type(value, struct open_args);
} pending SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4 << 20);
} events SEC(".maps");

/* The event is built here and sent with only the bytes of its path. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct open_event);
} scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} dropped SEC(".maps");

struct open_how_user {
	__u64 flags;
	__u64 mode;
	__u64 resolve;
};

/* Whether the task's comm contains cfg.name (the length is a .rodata constant: the loops are bounded). */
static __always_inline int comm_matches(void)
{
	char comm[OPEN_NAME_MAX] = {};
	bpf_get_current_comm(comm, sizeof(comm));
	for (int i = 0; i + cfg.name_len <= OPEN_NAME_MAX - 1; i++) {
		int j = 0;
		for (; j < cfg.name_len && j < OPEN_NAME_MAX; j++) {
			if (comm[(i + j) & (OPEN_NAME_MAX - 1)] != cfg.name[j])
				break;
		}
		if (j == cfg.name_len)
			return 1;
	}
	return 0;
}

static __always_inline int enter(__u32 syscall, __s32 dfd, __u64 path, __u64 flags, __u64 mode, __u64 how)
{
	__u64 id = bpf_get_current_pid_tgid();
	if (!traced(&cfg.filter, id >> 32))
		return 0;
	if (cfg.tid && (__u32)id != cfg.tid)
		return 0;
	if (cfg.filter_uid && (__u32)bpf_get_current_uid_gid() != cfg.uid)
		return 0;
	if (cfg.name_len && !comm_matches())
		return 0;
	struct open_args a = { .path = path, .how = how, .flags = flags, .mode = mode, .dfd = dfd, .syscall = syscall };
	bpf_map_update_elem(&pending, &id, &a, BPF_ANY);
	return 0;
}

SEC("tracepoint")
int snoop_openat(struct syscall_enter_record *ctx)
{
	return enter(OPEN_SYS_OPENAT, (__s32)ctx->args[0], ctx->args[1], ctx->args[2], ctx->args[3], 0);
}

SEC("tracepoint")
int snoop_openat2(struct syscall_enter_record *ctx)
{
	return enter(OPEN_SYS_OPENAT2, (__s32)ctx->args[0], ctx->args[1], 0, 0, ctx->args[2]);
}

SEC("tracepoint")
int snoop_open(struct syscall_enter_record *ctx)
{
	return enter(OPEN_SYS_OPEN, -100 /* AT_FDCWD */, ctx->args[0], ctx->args[1], ctx->args[2], 0);
}

/* One exit program for the three syscalls: their exit records are alike. */
SEC("tracepoint")
int snoop_exit(struct syscall_exit_record *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct open_args *a = bpf_map_lookup_elem(&pending, &id);
	if (!a)
		return 0;
	struct open_args args = *a;
	bpf_map_delete_elem(&pending, &id);
	__s64 ret = ctx->ret;
	if (cfg.failed_only && ret >= 0)
		return 0;

	__u32 zero = 0;
	struct open_event *e = bpf_map_lookup_elem(&scratch, &zero);
	if (!e)
		return 0;
	e->ts = bpf_ktime_get_ns();
	e->flags = args.flags;
	e->mode = args.mode;
	e->resolve = 0;
	if (args.syscall == OPEN_SYS_OPENAT2) {
		struct open_how_user how = {};
		bpf_probe_read_user(&how, sizeof(how), (void *)args.how);
		e->flags = how.flags;
		e->mode = how.mode;
		e->resolve = how.resolve;
	}
	e->ret = ret;
	e->pid = id >> 32;
	e->tid = (__u32)id;
	e->uid = (__u32)bpf_get_current_uid_gid();
	e->nspid = cfg.want_nspid ? inner_tgid() : 0;
	e->dfd = args.dfd;
	e->syscall = args.syscall;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	long n = bpf_probe_read_user_str(e->path, sizeof(e->path), (void *)args.path);
	__u32 len = n > 0 ? (__u32)n : 0;
	if (len > OPEN_PATH_MAX)
		len = OPEN_PATH_MAX;
	e->path_len = len;
	/* The reader polls on a timer: waking it per event would cost more than the event. */
	if (bpf_ringbuf_output(&events, e, __builtin_offsetof(struct open_event, path) + len, BPF_RB_NO_WAKEUP)) {
		__u64 *d = bpf_map_lookup_elem(&dropped, &zero);
		if (d)
			__sync_fetch_and_add(d, 1);
	}
	return 0;
}
