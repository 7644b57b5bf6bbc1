/* Layouts shared by uprobe.bpf.c and lib/layouts.ts; tests/layouts.test.ts checks they agree. */
#ifndef PROBE_UPROBE_H
#define PROBE_UPROBE_H
#include "proc_filter.h"

struct uprobe_config {
	struct proc_filter filter;  /* first in every program's config: the session writes it */
	__u8 emit_events;    /* stream call/return records to the ring buffer */
	__u8 count_calls;    /* keep per-process counts in `counts` */
	__u8 track_latency;  /* pair calls with returns (entry time per thread, or goroutine and frame, for Go) */
	__u8 go_abi;         /* arguments and results in Go's register ABI; pair by goroutine */
	__u8 typed;          /* the typed programs: values described per function in `funcs` */
	__u8 per_function;   /* counts per (process, function): several functions are probed */
	__u8 want_nspid;     /* record each process's PID inside its container */
	__u8 hist;           /* HIST_*: count values into `hists` / `proc_hists` instead of sending events */
	__u8 hist_linear;    /* linear buckets (hist_buckets of them), else log2 (HIST_LOG2_BUCKETS) */
	__u8 hist_per_process; /* one histogram per (process, function) in `proc_hists` */
	__u8 hist_signed;    /* values are signed: negatives get their own bucket, min/max compare signed */
	__u8 stack;          /* STACK_*: what a call carries of its user stack */
	__u32 stack_size;    /* STACK_COPY: bytes of stack copied from rsp upward (a multiple of 8) */
	__u32 hist_buckets;  /* linear: below start, (end - start) / step steps, at or above end */
	__u32 fp_frames;     /* return addresses bpf_get_stack walks by frame pointers (0: none) */
	__s64 linear_start;
	__u64 linear_step;
};

/* What a histogram counts. */
enum hist_kind { HIST_NONE = 0, HIST_LATENCY = 1, HIST_ENTRY = 2, HIST_RETURN = 3 };

/* Buckets of one histogram row. log2: [0] negative, [1] zero, [2 + k] 2^k .. 2^(k+1) - 1. */
#define HIST_BUCKETS 256
#define HIST_LOG2_BUCKETS 66

/* One histogram: per function in `hists`, per (process, function) in `proc_hists`. min and max
 * are kept in an order-preserving unsigned form (signed values with the sign bit flipped), min
 * as its complement, so that a zeroed row means "nothing seen yet" for both. */
struct hist_row {
	__u64 sum;           /* of the values: low 64 bits */
	__u64 sum_hi;        /* high 64 bits (two's complement for signed values): no sum overflows */
	__u64 min_inv;       /* ~order(smallest value) */
	__u64 max;           /* order(largest value) */
	char comm[16];       /* per-process rows: the process's name when its row was made */
	__u32 nspid;         /* per-process rows: its PID in its innermost namespace (with want_nspid) */
	__u32 pidns;         /* per-process rows: the traced PID namespace it is in (filter use_pidns) */
	__u64 buckets[HIST_BUCKETS];
};

struct hist_key {
	__u32 pid;
	__u32 func;
};

/* How a call's stack is recorded. */
enum stack_kind {
	STACK_NONE = 0,
	STACK_COPY = 1,      /* a stack record per call: registers, the stack's top bytes (and fp addresses) */
	STACK_FP = 2,        /* a stack record per call with the frame-pointer walk only */
	STACK_FP_COUNT = 3,  /* no records: calls counted per (process, function, stack id) in BPF */
};

#define STACK_FP_MAX 64      /* frame-pointer return addresses kept */
#define STACK_COPY_MAX (64 << 10)

/* A call's user stack, sent after its call event (same thread) or alone (--stacks). Followed by
 * room for cfg.stack_size bytes, of which stack_len were copied. */
struct stack_event {
	__u32 kind;          /* EV_STACK */
	__u32 pid;
	__u32 tid;
	__u32 func;
	__u64 ts;
	char comm[16];
	__u32 nspid;
	__u32 stack_len;     /* bytes copied from regs[1] (rsp) upward */
	__u64 regs[8];       /* rip, rsp, rbp, rbx, r12, r13, r14, r15 at the probe */
	__u64 at_sp;         /* the 8 bytes at rsp: the return address when probed at a function's entry */
	__u32 nfp;           /* frame-pointer return addresses in fp (fp[0] is rip) */
	__u32 pad;
	__u64 fp[STACK_FP_MAX];
};

/* STACK_FP_COUNT: calls per process, function and stack. */
struct stack_count_key {
	__u32 pid;
	__u32 func;
	__s32 stack_id;      /* in `stack_ids` */
	__u32 pad;
	__u64 at_sp;         /* the caller's return address, which a frame-pointer walk from a function's entry skips */
};

struct stack_count {
	__u64 calls;
	char comm[16];
	__u32 nspid;
	__u32 pad;
};

/* Slots of the `dropped` array: what could not be recorded, by reason. */
enum drop_kind { DROP_RING = 0, DROP_COUNTS = 1, DROP_STARTS = 2, DROP_HIST = 3, DROP_STACKS = 4, DROP_KINDS = 8 };

enum event_kind { EV_CALL = 1, EV_RETURN = 2, EV_STACK = 3 };

struct uprobe_event {
	__u32 kind;
	__u32 pid;
	__u32 tid;
	__u32 func;          /* attach cookie: index of the function in probe's list */
	__u64 ts;            /* bpf_ktime_get_ns */
	char comm[16];
	__u32 nspid;         /* the process's PID in its innermost namespace (with want_nspid) */
	__u32 pad;
	__u64 a[6];          /* call: arguments; return: a[0] = value, a[1] = latency ns (0: entry not seen);
	                      * Go return: a[2], a[3] = 2nd/3rd results, a[4] = goroutine (g), a[5] = frame depth */
};

struct uprobe_counts {
	__u64 calls;
	__u64 returns;
	char comm[16];
	__u32 nspid;         /* the process's PID in its innermost namespace (with want_nspid) */
	__u32 pidns;         /* the traced PID namespace it is in (filter use_pidns) */
};

#endif
