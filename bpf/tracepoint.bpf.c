// `probe tracepoint`: one program for any tracepoint. It copies the raw record (the context is the
// record, laid out as the event's tracefs format says) to the ring buffer, and user space decodes
// it by that format: nothing is compiled at run time. Attached to several tracepoints at once, the
// attach cookie says which one fired and indexes `infos` (the record's size is known from it).
#include "common.h"
#include "filter.h"
#include "tracepoint.h"

char LICENSE[] SEC("license") = "GPL";

const volatile struct tp_config cfg = {};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, TP_MAX_EVENTS);
	__type(key, __u32);
	__type(value, struct tp_info);
} infos SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 << 20);
} events SEC(".maps");

/* What a record can hold is sizeof(struct tp_event) + TP_RAW_MAX + TP_MAX_STRS * TP_STR_MAX; the
 * buffer is larger so that every offset the verifier sees (masked to 16383, see BOUND) plus a
 * string's TP_STR_MAX stays inside it. */
#define TP_BUF_SIZE (16384 + TP_STR_MAX)
struct tp_buf {
	char b[TP_BUF_SIZE];
};

/* The record is assembled here and sent with only the bytes it has. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct tp_buf);
} scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 65536);
	__type(key, struct tp_count_key);
	__type(value, struct tp_count);
} counts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} dropped SEC(".maps");

#define HDR sizeof(struct tp_event)

/* `v & mask` done in the BPF code itself: after a clamp to a smaller maximum, clang drops a plain
 * `&` as redundant, and the verifier, which does not follow clang's reasoning across the copies it
 * makes, then sees an unbounded size. */
#define BOUND(v, mask) ({ __u64 __b = (v); asm volatile("%0 &= %1" : "+r"(__b) : "i"(mask)); __b; })

static __always_inline void count(__u32 tgid, __u32 cookie)
{
	struct tp_count_key k = { .pid = tgid, .cookie = cookie };
	struct tp_count *c = bpf_map_lookup_elem(&counts, &k);
	if (!c) {
		struct tp_count zero = {};
		bpf_get_current_comm(zero.comm, sizeof(zero.comm));
		bpf_map_update_elem(&counts, &k, &zero, BPF_NOEXIST);
		c = bpf_map_lookup_elem(&counts, &k);
		if (!c)
			return;
	}
	__sync_fetch_and_add(&c->count, 1);
}

static __always_inline void lost(void)
{
	__u32 zero = 0;
	__u64 *d = bpf_map_lookup_elem(&dropped, &zero);
	if (d)
		__sync_fetch_and_add(d, 1);
}

SEC("tracepoint")
int tp_record(void *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32;
	if (!traced(&cfg.filter, tgid))
		return 0;
	__u32 cookie = bpf_get_attach_cookie(ctx);
	if (cfg.count)
		count(tgid, cookie);
	if (!cfg.emit_events)
		return 0;
	struct tp_info *info = bpf_map_lookup_elem(&infos, &cookie);
	__u32 zero = 0;
	struct tp_buf *buf = bpf_map_lookup_elem(&scratch, &zero);
	if (!info || !buf)
		return 0;
	struct tp_event *e = (void *)buf->b;
	char *raw = buf->b + HDR;

	/* The fixed part first: the __data_loc words in it say where the record ends. */
	__u32 size = info->fixed_size;
	if (size > TP_RAW_MAX)
		size = TP_RAW_MAX;
	if (size == 0 || bpf_probe_read_kernel(raw, BOUND(size, 2 * TP_RAW_MAX - 1), ctx))
		return 0;
	__u32 want = size;
	for (int i = 0; i < TP_MAX_LOCS; i++) {
		if (i >= info->nlocs)
			break;
		__u32 at = info->loc[i] & ~TP_LOC_REL;
		if (at + 4 > size)
			continue;
		__u32 loc = *(__u32 *)(raw + (at & (TP_RAW_MAX - 1)));
		__u32 end = (loc & 0xffff) + (loc >> 16) + ((info->loc[i] & TP_LOC_REL) ? at + 4 : 0);
		if (end > want)
			want = end;
	}
	e->truncated = want > TP_RAW_MAX;
	if (want > TP_RAW_MAX)
		want = TP_RAW_MAX;
	if (want > size) {
		if (bpf_probe_read_kernel(raw, BOUND(want, 2 * TP_RAW_MAX - 1), ctx))
			return 0;
		size = want;
	}

	__u32 total = HDR + size;
	for (int i = 0; i < TP_MAX_STRS; i++) {
		e->str_len[i] = 0;
		if (i >= info->nstrs)
			continue;
		__u32 at = info->str[i];
		if (at + 8 > size)
			continue;
		__u64 uptr = *(__u64 *)(raw + (at & (TP_RAW_MAX - 1)));
		/* Bounded for the verifier: total stays below HDR + TP_RAW_MAX + i * TP_STR_MAX. */
		__u32 pos = total;
		if (pos > HDR + TP_RAW_MAX + TP_STR_MAX)
			break;
		long n = bpf_probe_read_user_str(buf->b + BOUND(pos, 16383), TP_STR_MAX, (void *)uptr);
		if (n <= 0)
			continue;
		e->str_len[i] = n;
		total = pos + (__u32)n;
	}

	e->ts = bpf_ktime_get_ns();
	e->pid = tgid;
	e->tid = (__u32)id;
	e->cookie = cookie;
	e->nspid = cfg.want_nspid ? inner_tgid() : 0;
	e->raw_len = size;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	if (total > TP_BUF_SIZE)
		return 0;
	/* The reader polls on a timer: waking it per record would cost more than the record. */
	if (bpf_ringbuf_output(&events, buf, BOUND(total, 16383), BPF_RB_NO_WAKEUP))
		lost();
	return 0;
}
