/* Layouts shared by sslsniff.bpf.c and lib/layouts.ts. */
#ifndef PROBE_SSLSNIFF_H
#define PROBE_SSLSNIFF_H
#include "proc_filter.h"

struct sniff_config {
	struct proc_filter filter;  /* first in every program's config: the session writes it */
	__u64 max_bytes;            /* bytes copied per call at most; 0: as many as the ring buffer has room for */
	__u8 want_read;
	__u8 want_write;
	__u8 want_handshake;
	__u8 want_nspid;            /* record each process's PID inside its container */
	__u32 pad;
};

enum sniff_kind { SNIFF_READ = 1, SNIFF_WRITE = 2, SNIFF_HANDSHAKE = 3 };

/* Why a call's data is not all there (sniff_event.flags). */
#define SNIFF_TRUNCATED 1  /* cut at max_bytes */
#define SNIFF_NO_ROOM 2    /* cut: the ring buffer had no room for more (the reader fell behind) */
#define SNIFF_FAULT 4      /* the buffer could not be read at the return */

/* Slots of the `dropped` array. */
enum sniff_drop {
	SNIFF_DROP_RECORDS = 0,  /* records the ring buffer refused */
	SNIFF_DROP_BYTES = 1,    /* bytes of data not copied for lack of ring space (their calls are flagged) */
	SNIFF_DROP_PAIRING = 2,  /* calls not remembered: the table of calls in progress was full */
	SNIFF_DROP_KINDS = 4,
};

/* One record: a header and `chunk` bytes of the call's data (the record's room may be larger: its
 * size class). A call's data comes in chunks of up to SNIFF_CHUNK bytes, one record each, all with
 * the same `call`, in order; the first (offset 0) always comes, with no data when none was copied. */
struct sniff_event {
	__u32 kind;        /* SNIFF_* */
	__u32 pid;
	__u32 tid;
	__u32 cookie;      /* the attach cookie: library index << 8 | enum tls_fn */
	__u64 call;        /* the call's id: the chunks of one call share it */
	__u64 ts;          /* at the return (bpf_ktime_get_ns) */
	__u64 latency;     /* ns since the call's entry */
	__s64 ret;         /* the function's return value (RAX) */
	__u64 len;         /* bytes the call really read or wrote */
	__u64 captured;    /* bytes of data copied for the call, all chunks together (<= len) */
	__u64 offset;      /* where this chunk's data starts in the call's data */
	__u32 chunk;       /* bytes of data after this header */
	__u32 flags;       /* SNIFF_TRUNCATED, SNIFF_NO_ROOM, SNIFF_FAULT */
	char comm[16];
	__u32 nspid;       /* the process's PID in its innermost namespace (with want_nspid) */
	__u32 pad;
};

/* Data bytes per record at most: a record of the largest class is 32 KiB with the ring's own header. */
#define SNIFF_CHUNK (32768 - 128)

#endif
