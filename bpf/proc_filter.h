/* The process filter every program's config starts with (see filter.h); shared with lib/layouts.ts. */
#ifndef PROBE_PROC_FILTER_H
#define PROBE_PROC_FILTER_H

struct proc_filter {
	__u32 tgid;          /* one process by host tgid; 0: not this kind */
	__u8 use_tgids;      /* processes whose tgid is in `filter_tgids` */
	__u8 use_pidns;      /* processes in (or below) a PID namespace in `filter_pidns` */
	__u8 follow_forks;   /* children of a traced process join `filter_tgids` (the fork program) */
	__u8 pad;
};

#endif
