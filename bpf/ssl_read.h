/* Layouts shared by ssl_read.bpf.c and lib/layouts.ts. */
#ifndef PROBE_SSL_READ_H
#define PROBE_SSL_READ_H
#include "proc_filter.h"

struct ssl_config {
	struct proc_filter filter;  /* first in every program's config: the session writes it */
};

enum ssl_func { SSL_FN_READ = 0, SSL_FN_READ_EX = 1 };

struct ssl_stats {
	__u64 calls;
	__u64 returns;
	__u64 bytes;
	__u64 errors;
	__u64 orphan_returns;  /* a return with no entry before it, or run at function entry: reversed probes */
	__u64 lost_entries;    /* an entry on a thread that still had one pending */
	char comm[16];
};

#endif
