// `probe sslsniff`: the plaintext of TLS reads and writes, whole. Entry probes remember each
// call's buffer; at the return, where the real count is known (a read's data exists only then),
// the data is copied in chunks of up to SNIFF_CHUNK bytes, one ring buffer record each, until the
// call's real length, --max-bytes, or the ring buffer's free room: a cut is always flagged.
#include "common.h"
#include "filter.h"
#include "ssl_read.h"
#include "ssl_read.pairing.h"
#include "sslsniff.h"

char LICENSE[] SEC("license") = "GPL";

const volatile struct sniff_config cfg = {};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 16 << 20); /* set by user space before load */
} events SEC(".maps");

/* A call in progress: when it started, where its data is. */
struct call {
	__u64 ts;
	__u64 buf;        /* the data's address (Go: kept relative to the goroutine stack's top when on it) */
	__u64 count_ptr;  /* SSL_read_ex/SSL_write_ex: where the count is stored */
	__u64 fn;
};
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 65536);
	__type(key, struct tls_call_key);
	__type(value, struct call);
} calls SEC(".maps");

/* What could not be recorded: enum sniff_drop. Not per-CPU: reading per-CPU values needs /sys. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SNIFF_DROP_KINDS);
	__type(key, __u32);
	__type(value, __u64);
} dropped SEC(".maps");

/* Where a record is assembled: a header and one chunk of data, handed to the ring in one piece. */
struct scratch {
	struct sniff_event h;
	__u8 data[SNIFF_CHUNK];
};
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct scratch);
} scratch SEC(".maps");

/* Call ids: a counter per CPU, the CPU in the top bits. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} seq SEC(".maps");

static __always_inline void drop(__u32 kind, __u64 n)
{
	__u64 *d = bpf_map_lookup_elem(&dropped, &kind);
	if (d)
		__sync_fetch_and_add(d, n);
}

static __always_inline __u32 kind_of(__u32 fn)
{
	switch (fn) {
	case TLS_SSL_READ:
	case TLS_SSL_READ_EX:
	case TLS_GNUTLS_RECV:
	case TLS_GO_READ:
		return SNIFF_READ;
	case TLS_SSL_WRITE:
	case TLS_SSL_WRITE_EX:
	case TLS_GNUTLS_SEND:
	case TLS_GO_WRITE:
		return SNIFF_WRITE;
	default:
		return SNIFF_HANDSHAKE;
	}
}

static __always_inline int wanted(__u32 kind)
{
	if (kind == SNIFF_READ)
		return cfg.want_read;
	if (kind == SNIFF_WRITE)
		return cfg.want_write;
	return cfg.want_handshake;
}

/* C: the thread and the address above the return address (rsp + 8 at the entry, rsp once the
 * uretprobe runs after the return); Go: the goroutine and the frame's depth. */
static __always_inline struct tls_call_key key_of(struct pt_regs *ctx, int go, int at_entry)
{
	if (go)
		return go_call_key(ctx);
	struct tls_call_key k = { .id = bpf_get_current_pid_tgid(), .frame = REG(ctx, rsp) + (at_entry ? 8 : 0) };
	return k;
}

SEC("uprobe")
int sniff_entry(struct pt_regs *ctx)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	if (!traced(&cfg.filter, tgid))
		return 0;
	__u32 fn = TLS_COOKIE_FN(bpf_get_attach_cookie(ctx));
	if (!wanted(kind_of(fn)))
		return 0;
	int go = tls_fn_is_go(fn);
	struct tls_call_key k = key_of(ctx, go, 1);
	/* A Go frame that grew its stack runs its entry again: the same call. */
	if (go && bpf_map_lookup_elem(&calls, &k))
		return 0;
	struct call c = { .ts = bpf_ktime_get_ns(), .fn = fn };
	if (go) {
		c.buf = go_keep_ptr(ctx, REG(ctx, rbx));
	} else {
		c.buf = REG(ctx, rsi);
		if (fn == TLS_SSL_READ_EX || fn == TLS_SSL_WRITE_EX)
			c.count_ptr = REG(ctx, rcx);
	}
	if (bpf_map_update_elem(&calls, &k, &c, BPF_ANY))
		drop(SNIFF_DROP_PAIRING, 1);
	return 0;
}

/* The chunk loop's state, on the return program's stack. */
struct emit {
	struct sniff_event h;  /* the header every chunk carries */
	__u64 src;
};

static long emit_chunk(__u32 i, struct emit *e)
{
	__u32 zero = 0;
	struct scratch *s = bpf_map_lookup_elem(&scratch, &zero);
	if (!s)
		return 1;
	__u64 off = (__u64)i * SNIFF_CHUNK;
	__u64 take = e->h.captured > off ? e->h.captured - off : 0;
	if (take > SNIFF_CHUNK)
		take = SNIFF_CHUNK;
	s->h = e->h;
	s->h.offset = off;
	long stop = 0;
	/* Checked on the register passed: the verifier must see the copy fits the scratch. */
	barrier_var(take);
	if (take > SNIFF_CHUNK)
		return 1;
	if (take && bpf_probe_read_user(s->data, take, (void *)(e->src + off))) {
		s->h.flags |= SNIFF_FAULT;
		take = 0;
		stop = 1;
	}
	s->h.chunk = take;
	__u64 size = sizeof(struct sniff_event) + take;
	barrier_var(size);
	if (size > sizeof(struct scratch))
		return 1;
	/* The reader polls on a timer: waking it per record would cost more than the record. */
	if (bpf_ringbuf_output(&events, s, size, BPF_RB_NO_WAKEUP)) {
		drop(SNIFF_DROP_RECORDS, 1);
		return 1;
	}
	return stop;
}

/* A record's cost in the ring besides its data: the ring's own header, ours, and padding to 8. */
#define RECORD_OVERHEAD (8 + sizeof(struct sniff_event) + 8)

/* How many of `want` bytes fit in the ring's free room now, chunk headers included. */
static __always_inline __u64 room_for(__u64 want)
{
	__u64 size = bpf_ringbuf_query(&events, BPF_RB_RING_SIZE);
	__u64 used = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA);
	__u64 room = size > used ? size - used : 0;
	__u64 records = want / SNIFF_CHUNK + 1;
	if (want + records * RECORD_OVERHEAD <= room)
		return want;
	if (room <= RECORD_OVERHEAD)
		return 0;
	room -= RECORD_OVERHEAD;
	__u64 fit = room - (room / (SNIFF_CHUNK + RECORD_OVERHEAD)) * RECORD_OVERHEAD;
	return fit < want ? fit : want;
}

SEC("uprobe")
int sniff_return(struct pt_regs *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32;
	if (!traced(&cfg.filter, tgid))
		return 0;
	__u32 cookie = bpf_get_attach_cookie(ctx);
	__u32 fn = TLS_COOKIE_FN(cookie);
	int go = tls_fn_is_go(fn);
	struct tls_call_key k = key_of(ctx, go, 0);
	struct call *cp = bpf_map_lookup_elem(&calls, &k);
	/* No entry: a call already running when the probes were attached (its buffer is unknown). */
	if (!cp)
		return 0;
	struct call c = *cp;
	bpf_map_delete_elem(&calls, &k);

	__s64 ret = REG(ctx, rax);
	__u32 kind = kind_of(fn);
	__u64 len = 0;
	if (kind != SNIFF_HANDSHAKE) {
		if (fn == TLS_SSL_READ || fn == TLS_SSL_WRITE) {
			len = (int)ret > 0 ? (int)ret : 0;
		} else if (fn == TLS_SSL_READ_EX || fn == TLS_SSL_WRITE_EX) {
			if ((int)ret == 1 && c.count_ptr)
				bpf_probe_read_user(&len, sizeof(len), (void *)c.count_ptr);
		} else {
			len = ret > 0 ? ret : 0;
		}
		/* A failed call (would block, closed) moved no data: nothing to show. */
		if (len == 0)
			return 0;
	}

	struct emit e = {};
	e.h.kind = kind;
	e.h.pid = tgid;
	e.h.tid = (__u32)id;
	e.h.cookie = cookie;
	e.h.ts = bpf_ktime_get_ns();
	e.h.latency = e.h.ts - c.ts;
	e.h.ret = ret;
	e.h.len = len;
	bpf_get_current_comm(e.h.comm, sizeof(e.h.comm));
	e.h.nspid = cfg.want_nspid ? inner_tgid() : 0;
	__u32 zero = 0;
	__u64 *n = bpf_map_lookup_elem(&seq, &zero);
	if (!n)
		return 0;
	e.h.call = ((__u64)bpf_get_smp_processor_id() << 56) | (__sync_fetch_and_add(n, 1) + 1);
	e.src = go ? go_find_ptr(ctx, c.buf) : c.buf;

	__u64 want = len;
	if (cfg.max_bytes && want > cfg.max_bytes) {
		want = cfg.max_bytes;
		e.h.flags |= SNIFF_TRUNCATED;
	}
	__u64 fit = room_for(want);
	if (fit < want) {
		drop(SNIFF_DROP_BYTES, want - fit);
		e.h.flags |= SNIFF_NO_ROOM;
		want = fit;
	}
	e.h.captured = want;
	__u32 chunks = want ? (want + SNIFF_CHUNK - 1) / SNIFF_CHUNK : 1;
	bpf_loop(chunks, emit_chunk, &e, 0);
	return 0;
}
