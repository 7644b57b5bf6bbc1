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
	case TLS_NSS_READ:
	case TLS_NSS_RECV:
		return SNIFF_READ;
	case TLS_SSL_WRITE:
	case TLS_SSL_WRITE_EX:
	case TLS_GNUTLS_SEND:
	case TLS_GO_WRITE:
	case TLS_NSS_WRITE:
	case TLS_NSS_SEND:
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

/*
 * A record is reserved in the ring buffer and the data read straight into it: one copy. A
 * reservation's size must be a constant, so records come in size classes (data room 0, 256, 512,
 * ... 16 KiB, SNIFF_CHUNK), a chunk in the smallest that holds it: the ring holds at most twice
 * the data, and the header's `chunk` says how much of the room is data.
 */
static __always_inline long fill(struct sniff_event *r, struct emit *e, __u64 off, __u64 take, __u32 room)
{
	*r = e->h;
	r->offset = off;
	long stop = 0;
	/* Bounded on the register passed: the verifier must see the copy fits the reservation. */
	barrier_var(take);
	if (take > room)
		take = room;
	if (take && bpf_probe_read_user((void *)(r + 1), take, (void *)(e->src + off))) {
		r->flags |= SNIFF_FAULT;
		take = 0;
		stop = 1;
	}
	r->chunk = take;
	/* The reader polls on a timer: waking it per record would cost more than the record. */
	bpf_ringbuf_submit(r, BPF_RB_NO_WAKEUP);
	return stop;
}

#define EMIT_IN(n)                                                                                  \
	if (take <= (n)) {                                                                          \
		struct sniff_event *r = bpf_ringbuf_reserve(&events, sizeof(struct sniff_event) + (n), 0); \
		if (!r) {                                                                           \
			drop(SNIFF_DROP_RECORDS, 1);                                                \
			return 1;                                                                   \
		}                                                                                   \
		return fill(r, e, off, take, (n));                                                  \
	}

static long emit_chunk(__u32 i, struct emit *e)
{
	__u64 off = (__u64)i * SNIFF_CHUNK;
	__u64 take = e->h.captured > off ? e->h.captured - off : 0;
	if (take > SNIFF_CHUNK)
		take = SNIFF_CHUNK;
	EMIT_IN(0)
	EMIT_IN(256)
	EMIT_IN(512)
	EMIT_IN(1024)
	EMIT_IN(2048)
	EMIT_IN(4096)
	EMIT_IN(8192)
	EMIT_IN(16384)
	EMIT_IN(SNIFF_CHUNK)
	return 1;
}

/* A record's cost in the ring: the ring's own 8-byte header, ours, and the data room of its class
 * (all multiples of 8: no padding). */
#define RECORD(n) (8 + sizeof(struct sniff_event) + (n))

static __always_inline __u64 class_of(__u64 n)
{
	return n == 0 ? 0 : n <= 256 ? 256 : n <= 512 ? 512 : n <= 1024 ? 1024 : n <= 2048 ? 2048 : n <= 4096 ? 4096 : n <= 8192 ? 8192 : n <= 16384 ? 16384 : SNIFF_CHUNK;
}

/* The largest class whose record fits in `room` bytes; -1 when not even a header does. */
static __always_inline __s64 class_within(__u64 room)
{
	if (room < RECORD(0))
		return -1;
	__u64 d = room - RECORD(0);
	return d >= SNIFF_CHUNK ? SNIFF_CHUNK : d >= 16384 ? 16384 : d >= 8192 ? 8192 : d >= 4096 ? 4096 : d >= 2048 ? 2048 : d >= 1024 ? 1024 : d >= 512 ? 512 : d >= 256 ? 256 : 0;
}

/* How many of `want` bytes fit in the ring's free room now, in records of their classes. */
static __always_inline __s64 room_for(__u64 want)
{
	__u64 size = bpf_ringbuf_query(&events, BPF_RB_RING_SIZE);
	__u64 used = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA);
	__u64 room = size > used ? size - used : 0;
	__u64 full = want / SNIFF_CHUNK;
	__u64 rest = want - full * SNIFF_CHUNK;
	__u64 needed = full * RECORD(SNIFF_CHUNK) + (rest || !want ? RECORD(class_of(rest)) : 0);
	if (needed <= room)
		return want;
	full = room / RECORD(SNIFF_CHUNK);
	__s64 last = class_within(room - full * RECORD(SNIFF_CHUNK));
	if (last < 0) {
		if (!full)
			return -1;
		/* The last full chunk's room goes to a header-only record of what is left. */
		full--;
		last = 0;
	}
	__u64 fit = full * SNIFF_CHUNK + last;
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
		if (fn == TLS_SSL_READ || fn == TLS_SSL_WRITE || (fn >= TLS_NSS_READ && fn <= TLS_NSS_SEND)) {
			/* int and PRInt32 counts: the upper half of RAX is not part of them. */
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
	__s64 fit = room_for(want);
	if (fit < 0) {
		/* Not even the call's header fits: the record is lost, and counted. */
		drop(SNIFF_DROP_RECORDS, 1);
		drop(SNIFF_DROP_BYTES, want);
		return 0;
	}
	if ((__u64)fit < want) {
		drop(SNIFF_DROP_BYTES, want - fit);
		e.h.flags |= SNIFF_NO_ROOM;
		want = fit;
	}
	e.h.captured = want;
	__u32 chunks = want ? (want + SNIFF_CHUNK - 1) / SNIFF_CHUNK : 1;
	bpf_loop(chunks, emit_chunk, &e, 0);
	return 0;
}
