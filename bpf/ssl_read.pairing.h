/* Pairing a TLS call's return with its entry, for ssl_read.bpf.c and sslsniff.bpf.c. C calls
 * are keyed by thread; Go calls by goroutine (R14) and the frame's depth below the top of the
 * goroutine stack, which Go's stack copies keep (a frame that re-enters its entry after morestack
 * is the same call). A Go buffer on the goroutine stack moves with it: it is kept as a distance
 * from the stack's top and found again at the return. */
#ifndef PROBE_SSL_READ_PAIRING_H
#define PROBE_SSL_READ_PAIRING_H
#include "ssl_read.h"

static __always_inline int tls_fn_is_go(__u32 fn)
{
	return fn >= TLS_GO_READ && fn <= TLS_GO_SERVER_HANDSHAKE;
}

struct tls_call_key {
	__u64 id;     /* pid_tgid (C) or the goroutine's g (Go) */
	__u64 frame;  /* C: the address above the return address, or 0 for per-thread; Go: depth below g.stack.hi */
};

/* The current goroutine's stack bounds (runtime.g starts with stack.lo, stack.hi in every Go version). */
static __always_inline int go_stack(struct pt_regs *ctx, __u64 *lo, __u64 *hi)
{
	__u64 b[2];
	if (bpf_probe_read_user(b, sizeof(b), (void *)REG(ctx, r14)))
		return -1;
	*lo = b[0];
	*hi = b[1];
	return 0;
}

/* At a Go function's entry and at each of its RETs, RSP points at the return address: its depth
 * below g.stack.hi is the same at both, whatever copies happened between. */
static __always_inline struct tls_call_key go_call_key(struct pt_regs *ctx)
{
	struct tls_call_key k = { .id = REG(ctx, r14), .frame = REG(ctx, rsp) };
	__u64 lo, hi;
	if (go_stack(ctx, &lo, &hi) == 0 && hi >= k.frame)
		k.frame = hi - k.frame;
	return k;
}

#define GO_STACK_RELATIVE (1ULL << 63)

/* A Go buffer pointer as kept from entry to return: on the goroutine stack, as its distance from
 * the top (flagged); elsewhere, as is. */
static __always_inline __u64 go_keep_ptr(struct pt_regs *ctx, __u64 p)
{
	__u64 lo, hi;
	if (go_stack(ctx, &lo, &hi) == 0 && p >= lo && p < hi)
		return (hi - p) | GO_STACK_RELATIVE;
	return p;
}

static __always_inline __u64 go_find_ptr(struct pt_regs *ctx, __u64 kept)
{
	if (!(kept & GO_STACK_RELATIVE))
		return kept;
	__u64 lo, hi;
	if (go_stack(ctx, &lo, &hi))
		return 0;
	return hi - (kept & ~GO_STACK_RELATIVE);
}

#endif
