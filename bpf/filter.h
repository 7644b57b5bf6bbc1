/* Which processes a program reports: every one, one process (its host tgid), a set of processes
 * (a process and its descendants), or every process of a set of PID namespaces (a container is all
 * of its processes, those started later too, and nested namespaces inside it).
 * The PID namespace walk reads kernel structs through CO-RE (libbpf relocates the offsets against
 * the running kernel's BTF at load): only the fields named here, nothing compiled at run time.
 * Loading the kernel's BTF costs libbpf tens of milliseconds, so every object is built twice
 * (build.ts): with PROBE_CORE for containers and descendants, without for everything else. */
#ifndef PROBE_FILTER_H
#define PROBE_FILTER_H
#include <bpf/bpf_core_read.h>
#include "proc_filter.h"


#define FILTER_MAX_NS_LEVEL 8

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 65536);
	__type(key, __u32);   /* host tgid */
	__type(value, __u8);
} filter_tgids SEC(".maps");

/* Processes to trace from their next exec on (a command probe starts: its wrapper's own calls
 * before the exec are not the command's). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 64);
	__type(key, __u32);   /* host tgid */
	__type(value, __u8);
} filter_pending SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 4096);
	__type(key, __u32);   /* inode number of a PID namespace (its /proc/PID/ns/pid) */
	__type(value, __u32); /* its level below the initial namespace */
} filter_pidns SEC(".maps");

#ifdef PROBE_CORE
/* Only the fields read below; CO-RE finds them in the running kernel whatever their offsets. */
struct ns_common___probe { unsigned int inum; } __attribute__((preserve_access_index));
struct pid_namespace___probe { struct ns_common___probe ns; unsigned int level; } __attribute__((preserve_access_index));
struct upid___probe { int nr; struct pid_namespace___probe *ns; } __attribute__((preserve_access_index));
struct pid___probe { unsigned int level; struct upid___probe numbers[1]; } __attribute__((preserve_access_index));
struct task_struct___probe {
	int pid;
	int tgid;
	struct pid___probe *thread_pid;
	struct task_struct___probe *group_leader;
} __attribute__((preserve_access_index));

/* The upid of `pid` at namespace `level` (0: the initial namespace); nonzero below its depth. */
static __always_inline int upid_at(struct pid___probe *pid, __u32 level, struct upid___probe *out)
{
	if (!pid || level > BPF_CORE_READ(pid, level))
		return -1;
	void *first = (void *)pid + bpf_core_field_offset(struct pid___probe, numbers);
	return bpf_probe_read_kernel(out, sizeof(*out), first + level * bpf_core_type_size(struct upid___probe));
}

static __always_inline int task_upid(__u32 level, struct upid___probe *out)
{
	struct task_struct___probe *task = (void *)bpf_get_current_task();
	return upid_at(BPF_CORE_READ(task, thread_pid), level, out);
}

/* The current process's PID as its innermost namespace sees it (a container's own PID): its
 * group leader's number there. 0 when it cannot be read. */
static __always_inline __u32 inner_tgid(void)
{
	struct task_struct___probe *task = (void *)bpf_get_current_task();
	struct pid___probe *pid = BPF_CORE_READ(task, group_leader, thread_pid);
	struct upid___probe u = {};
	if (!pid || upid_at(pid, BPF_CORE_READ(pid, level), &u))
		return 0;
	return u.nr;
}

/* The inode number of the traced PID namespace the current process is in (the one of filter_pidns
 * that matched: a container's own, also for processes of namespaces nested in it), or 0. Rows made
 * for a process keep it, so that user space names the container of a process gone before it
 * looked (a selection of containers). */
static __always_inline __u32 traced_pidns(void)
{
	for (__u32 level = 1; level <= FILTER_MAX_NS_LEVEL; level++) {
		struct upid___probe u = {};
		if (task_upid(level, &u))
			return 0;
		unsigned int inum = BPF_CORE_READ(u.ns, ns.inum);
		__u32 *want = bpf_map_lookup_elem(&filter_pidns, &inum);
		if (want && *want == level)
			return inum;
	}
	return 0;
}
static __always_inline int in_traced_pidns(void)
{
	return traced_pidns() != 0;
}

#else
/* Without CO-RE (no kernel BTF loaded): no namespaces to walk. The session loads the PROBE_CORE
 * build whenever a filter or a record needs them. */
static __always_inline __u32 inner_tgid(void) { return 0; }
static __always_inline __u32 traced_pidns(void) { return 0; }
static __always_inline int in_traced_pidns(void) { return 0; }
#endif

/* Whether the current process is one the user asked for. `f` is a .rodata constant: branches
 * for filters not in use are dropped by the verifier. */
static __always_inline int traced(const volatile struct proc_filter *f, __u32 tgid)
{
	if (!f->tgid && !f->use_tgids && !f->use_pidns)
		return 1;
	if (f->tgid && tgid == f->tgid)
		return 1;
	if (f->use_tgids && bpf_map_lookup_elem(&filter_tgids, &tgid))
		return 1;
	if (f->use_pidns && in_traced_pidns())
		return 1;
	return 0;
}

#ifdef PROBE_CORE
/* With follow_forks: a child process of a traced process is traced too (threads share their
 * process's tgid and need nothing). Attached as a raw tracepoint: its arguments are the tasks. */
SEC("raw_tp/sched_process_fork")
int filter_fork(struct bpf_raw_tracepoint_args *ctx)
{
	__u32 parent = bpf_get_current_pid_tgid() >> 32;
	if (!bpf_map_lookup_elem(&filter_tgids, &parent))
		return 0;
	struct task_struct___probe *child = (void *)ctx->args[1];
	__u32 pid = BPF_CORE_READ(child, pid);
	__u32 tgid = BPF_CORE_READ(child, tgid);
	if (pid != tgid)
		return 0;
	__u8 one = 1;
	bpf_map_update_elem(&filter_tgids, &tgid, &one, BPF_ANY);
	return 0;
}
#endif

/* A process waiting for its exec joins the set when it execs. */
SEC("raw_tp/sched_process_exec")
int filter_exec(struct bpf_raw_tracepoint_args *ctx)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	if (!bpf_map_lookup_elem(&filter_pending, &tgid))
		return 0;
	__u8 one = 1;
	bpf_map_update_elem(&filter_tgids, &tgid, &one, BPF_ANY);
	bpf_map_delete_elem(&filter_pending, &tgid);
	return 0;
}

/* A traced process that exits leaves the set, so that its PID, reused later, is not traced. */
SEC("raw_tp/sched_process_exit")
int filter_exit(struct bpf_raw_tracepoint_args *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32;
	if ((__u32)id == tgid)
		bpf_map_delete_elem(&filter_tgids, &tgid);
	return 0;
}

#endif
