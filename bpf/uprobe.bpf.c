// Generic entry/return probe behind `probe uprobe`: streams calls and returns, or counts them.
#include "common.h"
#include "filter.h"
#include "uprobe.h"

char LICENSE[] SEC("license") = "GPL";

const volatile struct uprobe_config cfg = {};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 << 20); /* 87k events: ~65 ms of a full-speed stream, for a reader behind a slow pipe */
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, struct uprobe_counts);
} counts SEC(".maps");

/* Entry time per thread and function, for return latency. For Go: per goroutine, function and
 * frame (depth below the top of the goroutine stack), which also tells a frame that re-enters its
 * entry after morestack from a new call. */
struct start_key {
	__u64 id;
	__u64 func;
	__u64 depth;
};
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 65536);
	__type(key, struct start_key);
	__type(value, __u64);
} starts SEC(".maps");

/* Events the ring buffer had no room for: the reader reports them as lost. */
struct {
	/* Not per-CPU: reading per-CPU values needs /sys, which a container may not have. */
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} dropped SEC(".maps");

static __always_inline void count(__u32 tgid, int is_return)
{
	struct uprobe_counts *c = bpf_map_lookup_elem(&counts, &tgid);
	if (!c) {
		struct uprobe_counts zero = {};
		bpf_get_current_comm(zero.comm, sizeof(zero.comm));
		bpf_map_update_elem(&counts, &tgid, &zero, BPF_NOEXIST);
		c = bpf_map_lookup_elem(&counts, &tgid);
		if (!c)
			return;
	}
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
 * A Go frame's identity that survives stack copies: its distance below g.stack.hi. At the entry
 * and at every RET, RSP points at the return address, so both probes compute the same value, and
 * copystack keeps distances from the top. Recursive frames of one goroutine get distinct keys.
 * g.stack.hi is at offset 8 of runtime.g in every Go version (struct stack {lo, hi} comes first).
 */
static __always_inline __u64 go_frame_depth(struct pt_regs *ctx)
{
	__u64 g = REG(ctx, r14);
	__u64 sp = REG(ctx, rsp);
	__u64 hi = 0;
	if (bpf_probe_read_user(&hi, sizeof(hi), (void *)(g + 8)) || hi < sp)
		return sp;
	return hi - sp;
}

static __always_inline struct uprobe_event *reserve(__u32 kind, __u64 id, __u64 cookie)
{
	struct uprobe_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		__u32 zero = 0;
		__u64 *d = bpf_map_lookup_elem(&dropped, &zero);
		if (d)
			__sync_fetch_and_add(d, 1);
		return 0;
	}
	e->kind = kind;
	e->pid = id >> 32;
	e->tid = (__u32)id;
	e->func = cookie;
	e->ts = bpf_ktime_get_ns();
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	return e;
}

SEC("uprobe")
int probe_entry(struct pt_regs *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32;
	if (!traced(&cfg.filter, tgid))
		return 0;
	/* Only what needs it pays for the helper call: counting alone does not (the verifier drops
	 * branches on .rodata constants). */
	__u64 cookie = (cfg.go_abi || cfg.track_latency || cfg.emit_events) ? bpf_get_attach_cookie(ctx) : 0;
	if (cfg.go_abi) {
		/*
		 * A Go prologue that finds the stack too small (or a preemption request) calls morestack
		 * and jumps back to the entry: the same call hits this probe again, on the same goroutine
		 * and frame depth, with no return in between. Count it once. Always tracked for Go.
		 */
		struct start_key k = { .id = REG(ctx, r14), .func = cookie, .depth = go_frame_depth(ctx) };
		if (bpf_map_lookup_elem(&starts, &k))
			return 0;
		__u64 now = bpf_ktime_get_ns();
		bpf_map_update_elem(&starts, &k, &now, BPF_NOEXIST);
	} else if (cfg.track_latency) {
		struct start_key k = { .id = pairing_id(ctx), .func = cookie };
		__u64 now = bpf_ktime_get_ns();
		bpf_map_update_elem(&starts, &k, &now, BPF_ANY);
	}
	if (cfg.count_calls)
		count(tgid, 0);
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
	/* Only what needs it pays for the helper call: counting alone does not (the verifier drops
	 * branches on .rodata constants). */
	__u64 cookie = (cfg.go_abi || cfg.track_latency || cfg.emit_events) ? bpf_get_attach_cookie(ctx) : 0;
	if (cfg.count_calls)
		count(tgid, 1);
	__u64 latency = 0;
	__u64 depth = 0;
	if (cfg.go_abi)
		depth = go_frame_depth(ctx);
	if (cfg.track_latency || cfg.go_abi) {
		struct start_key k = { .id = pairing_id(ctx), .func = cookie, .depth = depth };
		__u64 *start = bpf_map_lookup_elem(&starts, &k);
		if (start) {
			latency = bpf_ktime_get_ns() - *start;
			bpf_map_delete_elem(&starts, &k);
		}
	}
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
			/* Second and third results; then the goroutine and frame depth that paired it. */
			e->a[2] = REG(ctx, rbx);
			e->a[3] = REG(ctx, rcx);
			e->a[4] = REG(ctx, r14);
			e->a[5] = depth;
		}
		bpf_ringbuf_submit(e, BPF_RB_NO_WAKEUP);
	}
	return 0;
}

/* The benchmark's baseline: the cost of the uprobe itself with a program that does nothing. */
SEC("uprobe")
int probe_empty(struct pt_regs *ctx)
{
	return 0;
}
