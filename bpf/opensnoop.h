/* Layouts shared by opensnoop.bpf.c and lib/layouts.ts; tests/unit/layouts.test.ts checks they agree. */
#ifndef PROBE_OPENSNOOP_H
#define PROBE_OPENSNOOP_H
#include "proc_filter.h"

#define OPEN_PATH_MAX 4096   /* PATH_MAX: the kernel refuses longer paths (ENAMETOOLONG) */
#define OPEN_NAME_MAX 16     /* a task's comm, NUL included */

struct opensnoop_config {
	struct proc_filter filter;  /* first in every program's config: the session writes it */
	__u32 tid;                  /* only this thread (host tid); 0: every thread */
	__u32 uid;                  /* with filter_uid: only this uid (as the host sees it) */
	__u8 filter_uid;
	__u8 failed_only;           /* only opens that return an error */
	__u8 want_nspid;            /* record the PID inside the process's innermost PID namespace */
	__u8 name_len;              /* nonzero: only tasks whose comm contains name[0..name_len) */
	char name[OPEN_NAME_MAX];
};

enum open_syscall { OPEN_SYS_OPENAT = 0, OPEN_SYS_OPENAT2 = 1, OPEN_SYS_OPEN = 2 };

/* One open, sent with only path_len bytes of path. */
struct open_event {
	__u64 ts;          /* bpf_ktime_get_ns at return */
	__u64 flags;       /* open flags (openat2: how.flags) */
	__u64 mode;        /* mode (openat2: how.mode) */
	__u64 resolve;     /* openat2: how.resolve (RESOLVE_*); 0 otherwise */
	__s64 ret;         /* the fd, or -errno */
	__u32 pid;         /* host tgid */
	__u32 tid;
	__u32 uid;
	__u32 nspid;       /* tgid in the innermost PID namespace; 0: not recorded */
	__s32 dfd;         /* openat/openat2 directory fd (AT_FDCWD: -100) */
	__u16 syscall;     /* enum open_syscall */
	__u16 path_len;    /* bytes of path, NUL included; 0: unreadable */
	char comm[16];
	char path[OPEN_PATH_MAX];
};

#endif
