// The entry/return probes behind `probe uprobe`: stream calls and returns (raw registers, or typed
// values described per function in `funcs`), or count them per process and function.
#include "common.h"
#include "filter.h"
#include "args.h"
#include "uprobe.h"

char LICENSE[] SEC("license") = "GPL";

const volatile struct uprobe_config cfg = {};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 << 20); /* set by user space before load (--buffer-size) */
} events SEC(".maps");

struct count_key {
	__u32 tgid;
	__u32 func;
};
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 65536);
	__type(key, struct count_key);
	__type(value, struct uprobe_counts);
} counts SEC(".maps");

/* A call waiting for its return: per thread (goroutine for Go), function and frame. The frame is
 * the stack address of the return address: for C it is rsp + 8 at the entry and rsp after the
 * return, for Go rsp at the entry and at each RET; recursive calls get their own entries, and a Go
 * frame that re-enters its entry after morestack is recognised as the same call. */
struct start_key {
	__u64 id;
	__u64 func;
	__u64 frame;
};
struct start_val {
	__u64 ts;
	__u64 saved[SAVED_PTRS];
};
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 65536);
	__type(key, struct start_key);
	__type(value, struct start_val);
} starts SEC(".maps");

/* Per function (attach cookie): where its typed values are. Sized by user space before load. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct func_desc);
} funcs SEC(".maps");

/* What could not be recorded, for the reader to report: DROP_* (bpf/uprobe.h). Not per-CPU:
 * reading per-CPU values needs /sys, which a container may not have. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, DROP_KINDS);
	__type(key, __u32);
	__type(value, __u64);
} dropped SEC(".maps");

/* Where a typed record is assembled before it goes to the ring buffer in one piece. */
#define SCRATCH_SIZE ((32 << 10) - 256) /* a per-CPU value holds 32 KiB at most */
#define BLOB_MAX (12 << 10)           /* one value's bytes at most */
#define BLOB_AT_MAX (SCRATCH_SIZE - BLOB_MAX - sizeof(struct blob_hdr) - 8)
struct scratch {
	__u64 regs[24];
	__u8 rec[SCRATCH_SIZE];
};
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct scratch);
} scratch SEC(".maps");

/* ---- histograms (--hist): no event per call, one bucket counted ---- */

/* Per function (attach cookie). Sized by user space before load. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct hist_row);
} hists SEC(".maps");

/* Per (process, function), with hist_per_process. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 4096);
	__type(key, struct hist_key);
	__type(value, struct hist_row);
} proc_hists SEC(".maps");

/* A zeroed row, never written: what a new process's row starts from (too big for the stack). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct hist_row);
} hist_zero SEC(".maps");

/* Per function: where the value counted by HIST_ENTRY/HIST_RETURN is (one slot, as args.h describes it). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct slot_desc);
} hist_slots SEC(".maps");

/* ---- stacks (--stack, --stacks) ---- */

/* STACK_FP_COUNT: frame-pointer stacks by id, and calls per (process, function, stack). Sized by
 * user space (1 entry when unused). */
struct {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__uint(max_entries, 1);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, STACK_FP_MAX * sizeof(__u64));
} stack_ids SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 65536);
	__type(key, struct stack_count_key);
	__type(value, struct stack_count);
} stack_counts SEC(".maps");

static __always_inline void drop(__u32 kind)
{
	__u64 *d = bpf_map_lookup_elem(&dropped, &kind);
	if (d)
		__sync_fetch_and_add(d, 1);
}

/*
 * The row of a per-process table at `key`, created zeroed with the process's command name (and
 * its PID in its own namespace) on first use; NULL when the table is full (counted as `full`:
 * user space folds exited processes out, so only more live ones than it holds end here).
 * -E2BIG is a full table; -EEXIST another CPU creating the same row first.
 */
#define process_row(map, key, type, full) ({                                      \
	type *__row = bpf_map_lookup_elem(map, key);                                   \
	if (!__row) {                                                                  \
		type __zero = {};                                                          \
		bpf_get_current_comm(__zero.comm, sizeof(__zero.comm));                    \
		if (cfg.want_nspid)                                                        \
			__zero.nspid = inner_tgid();                                           \
		if (bpf_map_update_elem(map, key, &__zero, BPF_NOEXIST) == -7)             \
			drop(full);                                                            \
		else                                                                       \
			__row = bpf_map_lookup_elem(map, key);                                 \
	}                                                                              \
	__row;                                                                         \
})

static __always_inline void count(__u32 tgid, __u32 func, int is_return)
{
	struct count_key k = { .tgid = tgid, .func = func };
	struct uprobe_counts *c = process_row(&counts, &k, struct uprobe_counts, DROP_COUNTS);
	if (!c)
		return;
	/* The selected container's PID namespace, kept in the row (which outlives the process: user
	 * space names the container from it); set at the process's first call. */
	if (cfg.filter.use_pidns && !c->pidns)
		c->pidns = traced_pidns();
	if (is_return)
		__sync_fetch_and_add(&c->returns, 1);
	else
		__sync_fetch_and_add(&c->calls, 1);
}

static __always_inline __u64 pairing_id(struct pt_regs *ctx)
{
	/* Go moves goroutines between threads: pair by the goroutine pointer in R14. */
	if (cfg.go_abi)
		return REG(ctx, r14);
	return bpf_get_current_pid_tgid();
}

/*
 * The frame's identity: for Go, its distance below g.stack.hi (at the entry and at every RET, RSP
 * points at the return address, and copystack keeps distances from the top; g.stack.hi is at
 * offset 8 of runtime.g in every Go version); for C, the address just above the return address
 * (rsp + 8 at the entry, rsp once a uretprobe fires after the return).
 */
static __always_inline __u64 frame_of(struct pt_regs *ctx, int at_entry)
{
	__u64 sp = REG(ctx, rsp);
	if (!cfg.go_abi)
		return at_entry ? sp + 8 : sp;
	__u64 g = REG(ctx, r14);
	__u64 hi = 0;
	if (bpf_probe_read_user(&hi, sizeof(hi), (void *)(g + 8)) || hi < sp)
		return sp;
	return hi - sp;
}

static __always_inline struct uprobe_event *reserve(__u32 kind, __u64 id, __u64 cookie)
{
	struct uprobe_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		drop(DROP_RING);
		return 0;
	}
	e->kind = kind;
	e->pid = id >> 32;
	e->tid = (__u32)id;
	e->func = cookie;
	e->ts = bpf_ktime_get_ns();
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	e->nspid = cfg.want_nspid ? inner_tgid() : 0;
	e->pad = 0;
	return e;
}

/* Remembers a call for its return. Returns 0 when this is a Go frame re-entering its own entry
 * after morestack (the same call: not counted again). */
static __always_inline int remember_call(struct pt_regs *ctx, __u64 cookie, struct start_val *val)
{
	struct start_key k = { .id = pairing_id(ctx), .func = cookie, .frame = frame_of(ctx, 1) };
	if (cfg.go_abi && bpf_map_lookup_elem(&starts, &k))
		return 0;
	val->ts = bpf_ktime_get_ns();
	if (bpf_map_update_elem(&starts, &k, val, BPF_ANY))
		drop(DROP_STARTS);
	return 1;
}

/* The call a return belongs to (removed from the table), or 0. */
static __always_inline int take_call(struct pt_regs *ctx, __u64 cookie, struct start_val *out)
{
	struct start_key k = { .id = pairing_id(ctx), .func = cookie, .frame = frame_of(ctx, 0) };
	struct start_val *v = bpf_map_lookup_elem(&starts, &k);
	if (!v)
		return 0;
	*out = *v;
	bpf_map_delete_elem(&starts, &k);
	return 1;
}

static __always_inline int wants_pairing(void)
{
	return cfg.go_abi || cfg.track_latency || cfg.typed;
}

/* The function's index, where something needs it (the verifier drops branches on .rodata
 * constants: only what needs it pays for the helper call). Histograms and stacks are set up with
 * per_function whenever several functions are probed: one function is index 0. */
static __always_inline __u64 attach_cookie(struct pt_regs *ctx)
{
	if (cfg.hist || cfg.stack)
		return cfg.per_function ? bpf_get_attach_cookie(ctx) : 0;
	return (wants_pairing() || cfg.emit_events || cfg.per_function) ? bpf_get_attach_cookie(ctx) : 0;
}

/* The entry time of the call a return belongs to (its entry removed), or 0. */
static __always_inline __u64 take_call_time(struct pt_regs *ctx, __u64 cookie)
{
	struct start_key k = { .id = pairing_id(ctx), .func = cookie, .frame = frame_of(ctx, 0) };
	struct start_val *v = bpf_map_lookup_elem(&starts, &k);
	if (!v)
		return 0;
	__u64 ts = v->ts;
	bpf_map_delete_elem(&starts, &k);
	return ts;
}

/* ---- histogram buckets: the same arithmetic as lib/hist.ts bucketIndex() ---- */

static __always_inline __u32 log2_bucket(__u64 v)
{
	if (cfg.hist_signed && (__s64)v < 0)
		return 0;
	if (v == 0)
		return 1;
	__u32 r = 0;
	if (v >> 32) { v >>= 32; r += 32; }
	if (v >> 16) { v >>= 16; r += 16; }
	if (v >> 8) { v >>= 8; r += 8; }
	if (v >> 4) { v >>= 4; r += 4; }
	if (v >> 2) { v >>= 2; r += 2; }
	if (v >> 1) r += 1;
	return r + 2;
}

static __always_inline __u32 linear_bucket(__u64 v)
{
	__u64 start = cfg.linear_start;
	if (cfg.hist_signed ? (__s64)v < (__s64)start : v < start)
		return 0;
	__u64 i = (v - start) / (cfg.linear_step ? cfg.linear_step : 1) + 1;
	__u64 last = cfg.hist_buckets - 1;
	return i < last ? i : last;
}

/* The row to count into: per function, or per (process, function), created on first use. */
static __always_inline struct hist_row *hist_row_of(__u32 tgid, __u32 func)
{
	if (!cfg.hist_per_process)
		return bpf_map_lookup_elem(&hists, &func);
	struct hist_key k = { .pid = tgid, .func = func };
	struct hist_row *h = bpf_map_lookup_elem(&proc_hists, &k);
	if (h)
		return h;
	__u32 zero = 0;
	struct hist_row *z = bpf_map_lookup_elem(&hist_zero, &zero);
	if (!z)
		return 0;
	/* -E2BIG: the table is full (user space folds exited processes out); -EEXIST: another CPU won. */
	if (bpf_map_update_elem(&proc_hists, &k, z, BPF_NOEXIST) == -7) {
		drop(DROP_HIST);
		return 0;
	}
	h = bpf_map_lookup_elem(&proc_hists, &k);
	if (h) {
		bpf_get_current_comm(h->comm, sizeof(h->comm));
		if (cfg.want_nspid)
			h->nspid = inner_tgid();
		if (cfg.filter.use_pidns)
			h->pidns = traced_pidns();
	}
	return h;
}

/* Raises *at to v (unsigned) unless another CPU raised it further meanwhile. */
static __always_inline void raise_to(__u64 *at, __u64 v)
{
	__u64 old = *at;
	for (int i = 0; i < 4 && v > old; i++) {
		__u64 seen = __sync_val_compare_and_swap(at, old, v);
		if (seen == old)
			break;
		old = seen;
	}
}

static __always_inline void hist_add(__u32 tgid, __u32 func, __u64 v)
{
	struct hist_row *h = hist_row_of(tgid, func);
	if (!h)
		return;
	__u32 b = cfg.hist_linear ? linear_bucket(v) : log2_bucket(v);
	if (b >= HIST_BUCKETS)
		b = HIST_BUCKETS - 1;
	__sync_fetch_and_add(&h->buckets[b], 1);
	/* A 128-bit sum: the carry out of the low word, and a negative value's sign extension. */
	__u64 before = __sync_fetch_and_add(&h->sum, v);
	__u64 hi = before + v < before ? 1 : 0;
	if (cfg.hist_signed && (__s64)v < 0)
		hi -= 1;
	if (hi)
		__sync_fetch_and_add(&h->sum_hi, hi);
	__u64 order = cfg.hist_signed ? v ^ (1ULL << 63) : v;
	raise_to(&h->min_inv, ~order);
	raise_to(&h->max, order);
}

static __always_inline __u64 read_value(const __u64 *regs, const struct slot_desc *d);

/* HIST_ENTRY, HIST_RETURN: the function's described value, counted. */
static __always_inline void hist_value(struct pt_regs *ctx, __u32 tgid, __u32 func)
{
	const struct slot_desc *d = bpf_map_lookup_elem(&hist_slots, &func);
	__u64 regs[24] = {};
	if (!d || bpf_probe_read_kernel(regs, sizeof(struct pt_regs), ctx))
		return;
	hist_add(tgid, func, read_value(regs, d));
}

/* ---- the user stack of a call ---- */

/* Bytes of stack from sp that can be read, up to `size`: the whole size, else up to the first
 * page that cannot be read (the top of the stack's mapping is usually within the copy's reach). */
static __always_inline __u64 readable_stack(__u64 sp, __u64 size)
{
	__u64 page = (sp | 4095) + 1;
	for (int i = 0; i < STACK_COPY_MAX / 4096 + 1; i++) {
		if (page - sp >= size)
			return size;
		char b;
		if (bpf_probe_read_user(&b, 1, (void *)page))
			return page - sp;
		page += 4096;
	}
	return size;
}

static __always_inline void emit_stack(struct pt_regs *ctx, __u64 id, __u32 cookie)
{
	__u64 room = cfg.stack == STACK_COPY ? cfg.stack_size : 0;
	struct stack_event *e = bpf_ringbuf_reserve(&events, sizeof(*e) + room, 0);
	if (!e) {
		drop(DROP_RING);
		return;
	}
	e->kind = EV_STACK;
	e->pid = id >> 32;
	e->tid = (__u32)id;
	e->func = cookie;
	e->ts = bpf_ktime_get_ns();
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	e->nspid = cfg.want_nspid ? inner_tgid() : 0;
	__u64 sp = REG(ctx, rsp);
	e->regs[0] = REG(ctx, rip);
	e->regs[1] = sp;
	e->regs[2] = REG(ctx, rbp);
	e->regs[3] = REG(ctx, rbx);
	e->regs[4] = REG(ctx, r12);
	e->regs[5] = REG(ctx, r13);
	e->regs[6] = REG(ctx, r14);
	e->regs[7] = REG(ctx, r15);
	e->pad = 0;
	if (bpf_probe_read_user(&e->at_sp, sizeof(e->at_sp), (void *)sp))
		e->at_sp = 0;
	e->nfp = 0;
	if (cfg.fp_frames) {
		long n = bpf_get_stack(ctx, e->fp, sizeof(e->fp), BPF_F_USER_STACK);
		e->nfp = n > 0 ? (__u64)n / 8 : 0;
	}
	e->stack_len = 0;
	if (cfg.stack == STACK_COPY) {
		__u8 *dst = (void *)(e + 1);
		if (!bpf_probe_read_user(dst, cfg.stack_size, (void *)sp)) {
			e->stack_len = cfg.stack_size;
		} else {
			/* Near the top of the stack: copy what is mapped. The bound is checked on the very
			 * register passed, so that the verifier sees len <= the room reserved. */
			__u64 len = readable_stack(sp, cfg.stack_size);
			barrier_var(len);
			if (len > cfg.stack_size)
				len = cfg.stack_size;
			if (len && !bpf_probe_read_user(dst, len, (void *)sp))
				e->stack_len = len;
		}
	}
	bpf_ringbuf_submit(e, BPF_RB_NO_WAKEUP);
}

/* STACK_FP_COUNT: one more call of this frame-pointer stack. */
static __always_inline void count_stack(struct pt_regs *ctx, __u32 tgid, __u32 cookie)
{
	long sid = bpf_get_stackid(ctx, &stack_ids, BPF_F_USER_STACK);
	if (sid < 0) {
		drop(DROP_STACKS);
		return;
	}
	struct stack_count_key k = { .pid = tgid, .func = cookie, .stack_id = sid };
	if (bpf_probe_read_user(&k.at_sp, sizeof(k.at_sp), (void *)REG(ctx, rsp)))
		k.at_sp = 0;
	struct stack_count *c = process_row(&stack_counts, &k, struct stack_count, DROP_STACKS);
	if (c)
		__sync_fetch_and_add(&c->calls, 1);
}

static __always_inline void record_stack(struct pt_regs *ctx, __u64 id, __u32 cookie)
{
	if (cfg.stack == STACK_FP_COUNT)
		count_stack(ctx, id >> 32, cookie);
	else if (cfg.stack)
		emit_stack(ctx, id, cookie);
}

SEC("uprobe")
int probe_entry(struct pt_regs *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32;
	if (!traced(&cfg.filter, tgid))
		return 0;
	__u64 cookie = attach_cookie(ctx);
	if (cfg.hist == HIST_ENTRY) {
		hist_value(ctx, tgid, cookie);
		return 0;
	}
	/* Only with return probes: an entry never taken by a return would, for Go, hide the next call
	 * of that goroutine's frame as a "re-entry after morestack". */
	if (cfg.track_latency) {
		struct start_val v = {};
		if (!remember_call(ctx, cookie, &v))
			return 0;
	}
	if (cfg.hist)
		return 0;
	if (cfg.count_calls)
		count(tgid, cookie, 0);
	if (cfg.emit_events) {
		struct uprobe_event *e = reserve(EV_CALL, id, cookie);
		if (!e)
			return 0;
		if (cfg.go_abi) {
			e->a[0] = REG(ctx, rax);
			e->a[1] = REG(ctx, rbx);
			e->a[2] = REG(ctx, rcx);
			e->a[3] = REG(ctx, rdi);
			e->a[4] = REG(ctx, rsi);
			e->a[5] = REG(ctx, r8);
		} else {
			e->a[0] = REG(ctx, rdi);
			e->a[1] = REG(ctx, rsi);
			e->a[2] = REG(ctx, rdx);
			e->a[3] = REG(ctx, rcx);
			e->a[4] = REG(ctx, r8);
			e->a[5] = REG(ctx, r9);
		}
		/* The reader polls on a timer: waking it per event would cost more than the event. */
		bpf_ringbuf_submit(e, BPF_RB_NO_WAKEUP);
	}
	record_stack(ctx, id, cookie);
	return 0;
}

SEC("uprobe")
int probe_return(struct pt_regs *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32;
	/* The kernel's return path ignores the perf PID filter: filter here as well. */
	if (!traced(&cfg.filter, tgid))
		return 0;
	__u64 cookie = attach_cookie(ctx);
	if (cfg.hist == HIST_RETURN) {
		hist_value(ctx, tgid, cookie);
		return 0;
	}
	if (cfg.count_calls)
		count(tgid, cookie, 1);
	__u64 latency = 0;
	if (cfg.track_latency) {
		__u64 ts = take_call_time(ctx, cookie);
		if (ts) {
			latency = bpf_ktime_get_ns() - ts;
			if (cfg.hist == HIST_LATENCY)
				hist_add(tgid, cookie, latency);
		}
	}
	if (cfg.hist)
		return 0;
	if (cfg.emit_events) {
		struct uprobe_event *e = reserve(EV_RETURN, id, cookie);
		if (!e)
			return 0;
		e->a[0] = REG(ctx, rax);
		e->a[1] = latency;
		e->a[2] = 0;
		e->a[3] = 0;
		e->a[4] = 0;
		e->a[5] = 0;
		if (cfg.go_abi) {
			/* Second and third results; then the goroutine and frame that paired it. */
			e->a[2] = REG(ctx, rbx);
			e->a[3] = REG(ctx, rcx);
			e->a[4] = REG(ctx, r14);
			e->a[5] = frame_of(ctx, 0);
		}
		bpf_ringbuf_submit(e, BPF_RB_NO_WAKEUP);
	}
	return 0;
}

/* ---- typed values ---- */

static __always_inline __u64 fit(__u64 v, __u8 width, __u8 is_signed)
{
	if (width >= 8)
		return v;
	__u32 bits = (__u32)width * 8;
	v &= (1ULL << bits) - 1;
	if (is_signed && (v >> (bits - 1)) & 1)
		v |= ~((1ULL << bits) - 1);
	return v;
}

/* One value as a slot describes it, from a copy of the registers (24 words: pt_regs and room). */
static __always_inline __u64 read_value(const __u64 *regs, const struct slot_desc *d)
{
	__u64 v = 0;
	switch (d->kind) {
	case SLOT_REG:
		if (d->reg < 24)
			v = regs[d->reg] >> (d->shift & 63);
		break;
	case SLOT_MEM: {
		__u64 addr = d->offset;
		if (d->reg < 24)
			addr += regs[d->reg];
		if (d->index_reg < 24)
			addr += regs[d->index_reg] * d->scale;
		__u32 w = d->width;
		if (w > 8)
			w = 8;
		/* Exactly the value's bytes: a 4-byte value at the end of a mapping must not fault. */
		if (w == 0 || bpf_probe_read_user(&v, w, (void *)addr))
			v = 0;
		break;
	}
	case SLOT_CONST:
		v = d->offset;
		break;
	}
	return fit(v, d->width, d->is_signed);
}

/* A slot's value from the registers copied into the scratch. */
static __always_inline __u64 read_slot(struct scratch *s, const struct slot_desc *d)
{
	return read_value(s->regs, d);
}

/* A slot number the verifier can see is inside the values (ALL_SLOTS is no power of two). */
static __always_inline __u32 slot_index(__u32 i)
{
	return i < ALL_SLOTS ? i : 0;
}

/* A length from the values: negative means nothing to copy. */
static __always_inline __u64 length_of(const struct capture_desc *c, const __u64 *vals)
{
	__u64 n;
	if (c->len_from == LEN_CONST) {
		n = c->len_const;
	} else if (c->len_from == LEN_SLOT) {
		n = vals[slot_index(c->len_slot)];
		if ((__s64)n < 0)
			return 0;
		if (c->len2_slot != NO_REG) {
			__u64 m = vals[slot_index(c->len2_slot)];
			if ((__s64)m < 0)
				return 0;
			n *= m;
		}
	} else {
		return 0;
	}
	return n * (c->scale ? c->scale : 1);
}

/*
 * Builds a typed record in the per-CPU scratch: the values (already in place), then the blobs of
 * captures [first, first + count), and hands it to the ring buffer in one piece.
 */
static __always_inline void emit_typed(struct scratch *s, __u32 kind, __u64 id, __u32 cookie, const struct func_desc *f,
				       __u32 nvals, __u32 first, __u32 count, __u64 latency)
{
	struct typed_event *h = (void *)s->rec;
	h->kind = kind;
	h->pid = id >> 32;
	h->tid = (__u32)id;
	h->func = cookie;
	h->ts = bpf_ktime_get_ns();
	bpf_get_current_comm(h->comm, sizeof(h->comm));
	h->nspid = cfg.want_nspid ? inner_tgid() : 0;
	h->nvals = nvals;
	h->latency = latency;
	__u64 *vals = (void *)(s->rec + sizeof(struct typed_event));
	__u32 at = sizeof(struct typed_event) + ALL_SLOTS * 8;
	__u32 nblobs = 0;
	for (__u32 i = 0; i < CAPTURES; i++) {
		if (i >= count)
			break;
		__u64 ci = first + i;
		barrier_var(ci);
		if (ci >= CAPTURES)
			break;
		const struct capture_desc *c = &f->caps[ci];
		/* Checked on the register used: the verifier must see room for a whole blob. */
		__u64 pos = at;
		barrier_var(pos);
		if (pos > BLOB_AT_MAX)
			break;
		struct blob_hdr *b = (void *)(s->rec + pos);
		__u8 *dst = s->rec + pos + sizeof(struct blob_hdr);
		void *src = (void *)vals[slot_index(c->ptr_slot)];
		b->capture = ci;
		b->flags = 0;
		b->want = 0;
		__u32 max = c->max;
		if (max > BLOB_MAX - 2)
			max = BLOB_MAX - 2;
		long got = 0;
		if (c->kind == COPY_STR) {
			/* Room for one character more than shown, and the NUL: a string of exactly `max`
			 * characters is whole, one of max + 1 or more is truncated. */
			got = bpf_probe_read_user_str(dst, max + 2, src);
			if (got < 0) {
				b->flags = BLOB_FAULT;
				got = 0;
			} else {
				got -= 1; /* without the NUL */
				if (got > max) {
					got = max;
					b->flags = BLOB_TRUNCATED;
				}
			}
		} else {
			__u64 want = length_of(c, vals);
			b->want = want;
			__u64 take = want < max ? want : max;
			if (take > BLOB_MAX - 1)
				take = BLOB_MAX - 1;
			if (take && bpf_probe_read_user(dst, take, src)) {
				b->flags = BLOB_FAULT;
				take = 0;
			}
			if (want > take && !(b->flags & BLOB_FAULT))
				b->flags |= BLOB_TRUNCATED;
			got = take;
		}
		b->len = got;
		at += sizeof(struct blob_hdr) + ((got + 7) & ~7);
		nblobs++;
	}
	h->nblobs = nblobs;
	/* The bound is checked on the very register passed: the verifier must see len <= the scratch. */
	__u64 len = at;
	barrier_var(len);
	if (len > SCRATCH_SIZE)
		return;
	if (bpf_ringbuf_output(&events, s->rec, len, BPF_RB_NO_WAKEUP))
		drop(DROP_RING);
}

/* The registers and the function's description, for a typed program. */
static __always_inline struct scratch *typed_setup(struct pt_regs *ctx, __u32 cookie, const struct func_desc **f)
{
	__u32 zero = 0;
	struct scratch *s = bpf_map_lookup_elem(&scratch, &zero);
	*f = bpf_map_lookup_elem(&funcs, &cookie);
	if (!s || !*f || bpf_probe_read_kernel(s->regs, sizeof(struct pt_regs), ctx))
		return 0;
	return s;
}

SEC("uprobe")
int probe_entry_typed(struct pt_regs *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32;
	if (!traced(&cfg.filter, tgid))
		return 0;
	__u32 cookie = bpf_get_attach_cookie(ctx);
	const struct func_desc *f;
	struct scratch *s = typed_setup(ctx, cookie, &f);
	if (!s)
		return 0;
	__u64 *vals = (void *)(s->rec + sizeof(struct typed_event));
	__u32 n = 0;
	for (__u32 i = 0; i < ENTRY_SLOTS; i++) {
		if (i >= f->nentry)
			break;
		vals[i] = read_slot(s, &f->slots[i]);
		n = i + 1;
	}
	if (cfg.track_latency || f->nsaved) {
		struct start_val v = {};
		for (__u32 i = 0; i < SAVED_PTRS; i++) {
			if (i >= f->nsaved)
				break;
			v.saved[i] = vals[f->saved[i] & (ENTRY_SLOTS - 1)];
		}
		if (!remember_call(ctx, cookie, &v))
			return 0;
	}
	if (cfg.count_calls)
		count(tgid, cookie, 0);
	if (cfg.emit_events)
		emit_typed(s, EV_CALL, id, cookie, f, n, 0, f->ncap_entry, 0);
	record_stack(ctx, id, cookie);
	return 0;
}

SEC("uprobe")
int probe_return_typed(struct pt_regs *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32;
	if (!traced(&cfg.filter, tgid))
		return 0;
	__u32 cookie = bpf_get_attach_cookie(ctx);
	const struct func_desc *f;
	struct scratch *s = typed_setup(ctx, cookie, &f);
	if (!s)
		return 0;
	if (cfg.count_calls)
		count(tgid, cookie, 1);
	struct start_val v = {};
	__u64 latency = 0;
	if (take_call(ctx, cookie, &v))
		latency = bpf_ktime_get_ns() - v.ts;
	if (!cfg.emit_events)
		return 0;
	__u64 *vals = (void *)(s->rec + sizeof(struct typed_event));
	/* Entry slots the return needs come back from the call; the others stay 0. */
	for (__u32 i = 0; i < ENTRY_SLOTS; i++)
		vals[i] = 0;
	for (__u32 i = 0; i < SAVED_PTRS; i++) {
		if (i >= f->nsaved)
			break;
		vals[f->saved[i] & (ENTRY_SLOTS - 1)] = v.saved[i];
	}
	__u32 n = f->nentry;
	for (__u32 i = 0; i < RET_SLOTS; i++) {
		if (i >= f->nret)
			break;
		__u64 idx = f->nentry + i;
		barrier_var(idx);
		if (idx >= ALL_SLOTS)
			break;
		vals[idx] = read_slot(s, &f->slots[idx]);
		n = idx + 1;
	}
	emit_typed(s, EV_RETURN, id, cookie, f, n, f->ncap_entry, f->ncap_ret, latency);
	return 0;
}

/* The benchmark's baseline: the cost of the uprobe itself with a program that does nothing. */
SEC("uprobe")
int probe_empty(struct pt_regs *ctx)
{
	return 0;
}
