// `probe ssl-read`: per process and library, the calls, returns, bytes and errors of TLS reads
// (OpenSSL SSL_read/SSL_read_ex, GnuTLS gnutls_record_recv, Go crypto/tls.(*Conn).Read, NSS
// through NSPR's PR_Read/PR_Recv), and a check that every return was preceded by its entry.
#include "common.h"
#include "filter.h"
#include "ssl_read.h"
#include "ssl_read.pairing.h"

char LICENSE[] SEC("license") = "GPL";

const volatile struct ssl_config cfg = {};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 16384);
	__type(key, struct ssl_key);
	__type(value, struct ssl_stats);
} stats SEC(".maps");

/* Reads the tables had no room for (user space moves exited processes out of `stats`, so only a
 * burst of more live processes than it holds ends here). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SSL_DROP_KINDS);
	__type(key, __u32);
	__type(value, __u64);
} dropped SEC(".maps");

static __always_inline void drop(__u32 kind)
{
	__u64 *d = bpf_map_lookup_elem(&dropped, &kind);
	if (d)
		__sync_fetch_and_add(d, 1);
}

struct pending {
	__u64 readbytes;  /* SSL_read_ex's size_t *readbytes, read back at return */
	__u64 func;
};
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 65536);
	__type(key, struct tls_call_key);
	__type(value, struct pending);
} pending SEC(".maps");

static __always_inline struct ssl_stats *stats_for(__u32 tgid, __u32 lib)
{
	struct ssl_key k = { .tgid = tgid, .lib = lib };
	struct ssl_stats *s = bpf_map_lookup_elem(&stats, &k);
	if (s)
		return s;
	struct ssl_stats zero = {};
	bpf_get_current_comm(zero.comm, sizeof(zero.comm));
	if (cfg.filter.use_pidns)
		zero.pidns = traced_pidns();
	bpf_map_update_elem(&stats, &k, &zero, BPF_NOEXIST);
	return bpf_map_lookup_elem(&stats, &k);
}

/* C calls pair per thread (a second entry before the return is a lost return); Go calls per
 * goroutine and frame. */
static __always_inline struct tls_call_key call_key(struct pt_regs *ctx, __u64 id, int go)
{
	if (go)
		return go_call_key(ctx);
	struct tls_call_key k = { .id = id, .frame = 0 };
	return k;
}

SEC("uprobe")
int ssl_read_entry(struct pt_regs *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32;
	/* The return program filters too: the kernel's return path ignores the perf PID filter. */
	if (!traced(&cfg.filter, tgid))
		return 0;
	__u64 cookie = bpf_get_attach_cookie(ctx);
	__u32 fn = TLS_COOKIE_FN(cookie);
	int go = tls_fn_is_go(fn);
	struct tls_call_key k = call_key(ctx, id, go);
	/* A Go frame that grew its stack runs its entry again: the same call. */
	if (go && bpf_map_lookup_elem(&pending, &k))
		return 0;
	struct ssl_stats *s = stats_for(tgid, TLS_COOKIE_LIB(cookie));
	if (!s) {
		drop(SSL_DROP_COUNTS);
		return 0;
	}
	__sync_fetch_and_add(&s->calls, 1);
	struct pending p = { .func = fn };
	if (fn == TLS_SSL_READ_EX)
		p.readbytes = REG(ctx, rcx);
	if (bpf_map_update_elem(&pending, &k, &p, BPF_NOEXIST) != 0) {
		/* Either this thread's previous call never returned (counted as a lost entry) or the
		 * table is full (said as dropped). */
		if (bpf_map_update_elem(&pending, &k, &p, BPF_ANY) != 0)
			drop(SSL_DROP_PAIRING);
		else
			__sync_fetch_and_add(&s->lost_entries, 1);
	}
	return 0;
}

SEC("uprobe")
int ssl_read_return(struct pt_regs *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32;
	if (!traced(&cfg.filter, tgid))
		return 0;
	__u64 cookie = bpf_get_attach_cookie(ctx);
	__u32 fn = TLS_COOKIE_FN(cookie);
	int go = tls_fn_is_go(fn);
	struct ssl_stats *s = stats_for(tgid, TLS_COOKIE_LIB(cookie));
	if (!s)
		return 0;
	struct tls_call_key k = call_key(ctx, id, go);
	struct pending *p = bpf_map_lookup_elem(&pending, &k);
	if (go) {
		/* Go returns are entry probes on RET instructions, placed by probe itself. A RET without
		 * its entry is a call that was already running when they were attached. */
		if (!p) {
			__sync_fetch_and_add(&s->inflight_returns, 1);
			return 0;
		}
		__sync_fetch_and_add(&s->returns, 1);
	} else {
		__sync_fetch_and_add(&s->returns, 1);
		/* A real return runs at the caller's return address. At the function's own address, this
		 * "return" program was attached as an entry probe and runs before the entry program. */
		__u64 ip = REG(ctx, rip);
		__u64 func = bpf_get_func_ip(ctx);
		if (ip - func <= 1 || !p) {
			__sync_fetch_and_add(&s->orphan_returns, 1);
			return 0;
		}
	}
	__u64 readbytes = p->readbytes;
	bpf_map_delete_elem(&pending, &k);
	__s64 ret = REG(ctx, rax);
	switch (fn) {
	case TLS_SSL_READ_EX:
		/* SSL_read_ex returns 1 on success and stores the count through its 4th argument. */
		if ((int)ret == 1) {
			__u64 n = 0;
			if (readbytes && bpf_probe_read_user(&n, sizeof(n), (void *)readbytes) == 0)
				__sync_fetch_and_add(&s->bytes, n);
		} else {
			__sync_fetch_and_add(&s->errors, 1);
		}
		break;
	case TLS_SSL_READ:
	case TLS_NSS_READ:
	case TLS_NSS_RECV:
		/* An int (PRInt32): the upper half of RAX is not part of it. */
		if ((int)ret > 0)
			__sync_fetch_and_add(&s->bytes, (int)ret);
		else
			__sync_fetch_and_add(&s->errors, 1);
		break;
	case TLS_GO_READ:
		/* (n int, err error): n in RAX, err's type word in RBX (nil: no error). */
		if (ret > 0)
			__sync_fetch_and_add(&s->bytes, ret);
		if (REG(ctx, rbx) != 0)
			__sync_fetch_and_add(&s->errors, 1);
		break;
	default: /* gnutls_record_recv: ssize_t */
		if (ret > 0)
			__sync_fetch_and_add(&s->bytes, ret);
		else
			__sync_fetch_and_add(&s->errors, 1);
		break;
	}
	return 0;
}
