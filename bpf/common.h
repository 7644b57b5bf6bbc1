/* Included by every probe program: kernel types, libbpf helpers, and the x86-64 pt_regs. */
#ifndef PROBE_COMMON_H
#define PROBE_COMMON_H
#include <linux/types.h>
#include <linux/bpf.h>
#include <asm/ptrace.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#define COMM_LEN 16

/* A pt_regs field read as one `ctx + constant` load. Plain `ctx->r9` lets clang keep a
 * `ctx + 64` pointer around for later, which the verifier rejects ("modified ctx ptr"). */
#define REG(ctx, field) ({ \
	__u64 __v; \
	asm volatile("%0 = *(u64 *)(%1 + %2)" : "=r"(__v) : "r"(ctx), "i"(__builtin_offsetof(struct pt_regs, field))); \
	__v; })

static __always_inline __u32 current_tgid(void) { return bpf_get_current_pid_tgid() >> 32; }

#endif
