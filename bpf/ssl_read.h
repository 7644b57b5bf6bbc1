/* Layouts shared by ssl_read.bpf.c, sslsniff.bpf.c and lib/layouts.ts: the TLS functions probe
 * knows (one code each, carried in the attach cookie), and ssl-read's counters. */
#ifndef PROBE_SSL_READ_H
#define PROBE_SSL_READ_H
#include "proc_filter.h"

struct ssl_config {
	struct proc_filter filter;  /* first in every program's config: the session writes it */
};

/* What a probed function is, and so where its buffer, length and result are. */
enum tls_fn {
	TLS_SSL_READ = 0,          /* int SSL_read(SSL *, void *buf, int num): the count */
	TLS_SSL_READ_EX = 1,       /* int SSL_read_ex(SSL *, void *buf, size_t num, size_t *readbytes): 1/0 */
	TLS_SSL_WRITE = 2,         /* int SSL_write(SSL *, const void *buf, int num) */
	TLS_SSL_WRITE_EX = 3,      /* int SSL_write_ex(SSL *, const void *buf, size_t num, size_t *written) */
	TLS_SSL_HANDSHAKE = 4,     /* int SSL_do_handshake(SSL *): 1 done */
	TLS_GNUTLS_RECV = 5,       /* ssize_t gnutls_record_recv(gnutls_session_t, void *data, size_t size) */
	TLS_GNUTLS_SEND = 6,       /* ssize_t gnutls_record_send(gnutls_session_t, const void *data, size_t size) */
	TLS_GNUTLS_HANDSHAKE = 7,  /* int gnutls_handshake(gnutls_session_t): 0 done */
	TLS_GO_READ = 8,           /* (c *tls.Conn) Read(b []byte) (n int, err error): RAX=c RBX,RCX=b; RAX=n RBX=err */
	TLS_GO_WRITE = 9,          /* (c *tls.Conn) Write(b []byte) (int, error) */
	TLS_GO_CLIENT_HANDSHAKE = 10, /* (c *tls.Conn) clientHandshake(ctx) error: RAX=err's type, nil when done */
	TLS_GO_SERVER_HANDSHAKE = 11, /* (c *tls.Conn) serverHandshake(ctx) error */
	/* NSS: NSPR's I/O entry points carry the plaintext of NSS's SSL sockets (and of any other NSPR
	 * descriptor); each returns PRInt32 bytes or -1, its buffer second: SSL_read/SSL_write's shape. */
	TLS_NSS_READ = 12,         /* PRInt32 PR_Read(PRFileDesc *, void *buf, PRInt32 amount) */
	TLS_NSS_RECV = 13,         /* PRInt32 PR_Recv(PRFileDesc *, void *buf, PRInt32 amount, PRIntn flags, PRIntervalTime) */
	TLS_NSS_WRITE = 14,        /* PRInt32 PR_Write(PRFileDesc *, const void *buf, PRInt32 amount) */
	TLS_NSS_SEND = 15,         /* PRInt32 PR_Send(PRFileDesc *, const void *buf, PRInt32 amount, PRIntn, PRIntervalTime) */
	TLS_NSS_HANDSHAKE = 16,    /* SECStatus SSL_ForceHandshake(PRFileDesc *): 0 (SECSuccess) done */
	TLS_FN_COUNT = 17,
};

/* The attach cookie: the function's code in the low 8 bits, the library's index above them (which
 * file, as user space numbered them). */
#define TLS_COOKIE_FN(c) ((__u32)(c) & 0xff)
#define TLS_COOKIE_LIB(c) ((__u32)((c) >> 8))

/* Slots of ssl-read's `dropped` array (the indexes of bpf/uprobe.h's drop_kind): what could not
 * be counted. */
enum ssl_drop { SSL_DROP_COUNTS = 1, SSL_DROP_PAIRING = 2, SSL_DROP_KINDS = 4 };

/* ssl-read's counters are per process and library. */
struct ssl_key {
	__u32 tgid;
	__u32 lib;
};

struct ssl_stats {
	__u64 calls;
	__u64 returns;
	__u64 bytes;
	__u64 errors;
	__u64 orphan_returns;   /* a return with no entry before it, or run at function entry: reversed probes */
	__u64 lost_entries;     /* an entry on a thread that still had one pending */
	__u64 inflight_returns; /* Go: returns of calls already running when the probes were attached (not counted) */
	char comm[16];
	__u32 pidns;            /* the traced PID namespace the process is in (filter use_pidns): its container */
	__u32 pad;
};

#endif
