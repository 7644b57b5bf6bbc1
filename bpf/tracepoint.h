/* Layouts shared by tracepoint.bpf.c and lib/layouts.ts; tests/unit/layouts.test.ts checks they agree. */
#ifndef PROBE_TRACEPOINT_H
#define PROBE_TRACEPOINT_H
#include "proc_filter.h"

#define TP_MAX_EVENTS 1024   /* tracepoints one run attaches (attach cookies 0..N-1) */
#define TP_RAW_MAX 4096      /* bytes of a record copied; longer ones are cut (truncated = 1) */
#define TP_STR_MAX 4096      /* bytes of one user string (PATH_MAX) */
#define TP_MAX_LOCS 8        /* __data_loc/__rel_loc fields that size a record */
#define TP_MAX_STRS 2        /* user strings read per record */
#define TP_LOC_REL 0x8000    /* in tp_info.loc: a __rel_loc field (offset from the field's end) */

struct tp_config {
	struct proc_filter filter;  /* first in every program's config: the session writes it */
	__u8 emit_events;           /* stream records to the ring buffer */
	__u8 count;                 /* count per process and tracepoint in `counts` */
	__u8 want_nspid;            /* record the PID inside the innermost PID namespace */
	__u8 pad[5];
};

/* What the program needs to know about each attached tracepoint, by attach cookie. */
struct tp_info {
	__u16 fixed_size;           /* bytes up to the end of the format's last fixed field */
	__u16 nlocs;
	__u16 loc[TP_MAX_LOCS];     /* offsets of __data_loc (| TP_LOC_REL for __rel_loc) fields */
	__u16 nstrs;
	__u16 str[TP_MAX_STRS];     /* offsets of pointer fields whose user string is read too */
	__u16 pad;
};

/* A record: this header, raw_len bytes of the tracepoint's record, then the strings. */
struct tp_event {
	__u64 ts;
	__u32 pid;                  /* host tgid */
	__u32 tid;
	__u32 cookie;               /* which tracepoint */
	__u32 nspid;                /* tgid in the innermost PID namespace; 0: not recorded */
	__u16 raw_len;
	__u16 truncated;            /* the record was longer than TP_RAW_MAX */
	__u16 str_len[TP_MAX_STRS]; /* bytes of each string, NUL included; 0: unreadable */
	char comm[16];
};

struct tp_count_key {
	__u32 pid;
	__u32 cookie;
};

struct tp_count {
	__u64 count;
	char comm[16];
};

#endif
