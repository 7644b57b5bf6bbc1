// `probe ssl-read`: per-process SSL_read/SSL_read_ex calls, returns, bytes and errors, and a
// per-thread check that every return was preceded by its entry.
#include "common.h"
#include "filter.h"
#include "ssl_read.h"

char LICENSE[] SEC("license") = "GPL";

const volatile struct ssl_config cfg = {};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, struct ssl_stats);
} stats SEC(".maps");

struct pending {
	__u64 readbytes;  /* SSL_read_ex's size_t *readbytes, read back at return */
	__u64 func;
};
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, struct pending);
} pending SEC(".maps");

static __always_inline struct ssl_stats *stats_for(__u32 tgid)
{
	struct ssl_stats *s = bpf_map_lookup_elem(&stats, &tgid);
	if (s)
		return s;
	struct ssl_stats zero = {};
	bpf_get_current_comm(zero.comm, sizeof(zero.comm));
	bpf_map_update_elem(&stats, &tgid, &zero, BPF_NOEXIST);
	return bpf_map_lookup_elem(&stats, &tgid);
}

/* The stats of the calling process, or NULL when it is not the one being traced. The return
 * program filters too: the kernel's return path ignores the perf PID filter. */
static __always_inline struct ssl_stats *stats_if_traced(__u64 id)
{
	__u32 tgid = id >> 32;
	if (!traced(&cfg.filter, tgid))
		return 0;
	return stats_for(tgid);
}

SEC("uprobe")
int ssl_read_entry(struct pt_regs *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct ssl_stats *s = stats_if_traced(id);
	if (!s)
		return 0;
	__sync_fetch_and_add(&s->calls, 1);
	struct pending p = { .func = bpf_get_attach_cookie(ctx) };
	if (p.func == SSL_FN_READ_EX)
		p.readbytes = REG(ctx, rcx);
	if (bpf_map_update_elem(&pending, &id, &p, BPF_NOEXIST) != 0) {
		__sync_fetch_and_add(&s->lost_entries, 1);
		bpf_map_update_elem(&pending, &id, &p, BPF_ANY);
	}
	return 0;
}

SEC("uprobe")
int ssl_read_return(struct pt_regs *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct ssl_stats *s = stats_if_traced(id);
	if (!s)
		return 0;
	__sync_fetch_and_add(&s->returns, 1);
	/* A real return runs at the caller's return address. At the function's own address, this
	 * "return" program was attached as an entry probe and runs before the entry program. */
	__u64 ip = REG(ctx, rip);
	__u64 func = bpf_get_func_ip(ctx);
	if (ip - func <= 1) {
		__sync_fetch_and_add(&s->orphan_returns, 1);
		return 0;
	}
	struct pending *p = bpf_map_lookup_elem(&pending, &id);
	if (!p) {
		__sync_fetch_and_add(&s->orphan_returns, 1);
		return 0;
	}
	long ret = REG(ctx, rax);
	func = p->func;
	__u64 readbytes = p->readbytes;
	bpf_map_delete_elem(&pending, &id);
	if (func == SSL_FN_READ_EX) {
		/* SSL_read_ex returns 1 on success and stores the count through its 4th argument. */
		if ((int)ret == 1) {
			__u64 n = 0;
			if (readbytes && bpf_probe_read_user(&n, sizeof(n), (void *)readbytes) == 0)
				__sync_fetch_and_add(&s->bytes, n);
		} else {
			__sync_fetch_and_add(&s->errors, 1);
		}
	} else if ((int)ret > 0) {
		__sync_fetch_and_add(&s->bytes, (int)ret);
	} else {
		__sync_fetch_and_add(&s->errors, 1);
	}
	return 0;
}
