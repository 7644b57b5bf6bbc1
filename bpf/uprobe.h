/* Layouts shared by uprobe.bpf.c and lib/layouts.ts; tests/layouts.test.ts checks they agree. */
#ifndef PROBE_UPROBE_H
#define PROBE_UPROBE_H
#include "proc_filter.h"

struct uprobe_config {
	struct proc_filter filter;  /* first in every program's config: the session writes it */
	__u8 emit_events;    /* stream call/return records to the ring buffer */
	__u8 count_calls;    /* keep per-process counts in `counts` */
	__u8 track_latency;  /* remember entry time per thread for return latency */
	__u8 go_abi;         /* arguments and results in Go's register ABI; pair by goroutine */
	__u8 typed;          /* the typed programs: values described per function in `funcs` */
	__u8 per_function;   /* counts per (process, function): several functions are probed */
	__u8 want_nspid;     /* record each process's PID inside its container */
	__u8 pad;
};

/* Slots of the `dropped` array: what could not be recorded, by reason. */
enum drop_kind { DROP_RING = 0, DROP_COUNTS = 1, DROP_STARTS = 2, DROP_KINDS = 4 };

enum event_kind { EV_CALL = 1, EV_RETURN = 2 };

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
	__u32 pad;
};

#endif
