/* Typed arguments without compiling anything at run time: user space describes, per probed
 * function (the attach cookie), where each value lives (a register, memory at base + index*scale +
 * offset, a constant) and what to copy from it (a C string, a buffer of a length given by another
 * value or the return value); this program reads that description from a map and copies what it
 * says into a variable-length ring buffer record. The same descriptions serve C prototypes, Go's
 * register ABI, debug info and USDT argument specs. Shared with lib/layouts.ts. */
#ifndef PROBE_ARGS_H
#define PROBE_ARGS_H

#define ARG_SLOTS 16        /* values read at a call (a Go string or slice takes 2-3) */
#define RET_SLOTS 4         /* values read at a return (Go returns up to 9 words; 4 are kept) */
#define SAVED_PTRS 4        /* entry values kept for the return (read(fd, buf[ret], n): buf) */

#define SLOT_NONE 0
#define SLOT_REG 1          /* pt_regs[reg] >> shift */
#define SLOT_MEM 2          /* *(pt_regs[reg] + pt_regs[index_reg] * scale + offset); reg 0xff: no base */
#define SLOT_CONST 3        /* offset */
#define SLOT_SAVED 4        /* at a return: the entry value saved in position `reg` */

#define COPY_NONE 0
#define COPY_STR 1          /* the value points to a NUL-terminated string: copy up to max bytes */
#define COPY_BUF 2          /* the value points to `len` bytes: copy up to max of them */

#define LEN_CONST 0xff      /* the buffer length is `len_const` */
#define NO_REG 0xff

struct slot_desc {
	__u8 kind;
	__u8 width;         /* bytes of the value: 1, 2, 4, 8 */
	__u8 is_signed;     /* sign-extend from `width` bytes */
	__u8 reg;           /* pt_regs index (SLOT_REG, SLOT_MEM base), saved position (SLOT_SAVED) */
	__u8 index_reg;     /* SLOT_MEM: pt_regs index of the index register, NO_REG for none */
	__u8 scale;
	__u8 shift;         /* SLOT_REG: bits to shift right first (%ah) */
	__u8 copy;          /* COPY_* */
	__u8 len_slot;      /* COPY_BUF: the slot (of the same record) holding the length, or LEN_CONST */
	__u8 pad[3];
	__u32 max;          /* bytes to copy at most */
	__s64 offset;       /* SLOT_MEM displacement; SLOT_CONST value */
	__u64 len_const;    /* COPY_BUF with LEN_CONST */
};

struct func_desc {
	__u8 nslots;        /* values read at the call */
	__u8 nrets;         /* values read at the return */
	__u8 nsaved;        /* entry slots whose values are saved for the return */
	__u8 pad[5];
	__u8 saved[SAVED_PTRS];   /* which entry slots */
	__u32 pad2;
	struct slot_desc slots[ARG_SLOTS];
	struct slot_desc rets[RET_SLOTS];
};

/* A typed record in the ring buffer: this header, `nvals` u64 values, then `nblobs` blobs, each a
 * blob_hdr and `len` bytes padded to 8. */
struct typed_event {
	__u32 kind;         /* EV_CALL, EV_RETURN */
	__u32 pid;
	__u32 tid;
	__u32 func;         /* attach cookie: the function's index */
	__u64 ts;
	char comm[16];
	__u32 nspid;        /* the process's PID in its innermost namespace (0: unknown) */
	__u16 nvals;
	__u16 nblobs;
	__u64 latency;      /* return: ns since the paired call (0: not seen) */
};

#define BLOB_FAULT 1        /* the pointer could not be read */
#define BLOB_TRUNCATED 2    /* more bytes than copied */

struct blob_hdr {
	__u8 slot;          /* the value it was copied through */
	__u8 flags;         /* BLOB_* */
	__u16 pad;
	__u32 len;          /* bytes that follow */
	__u64 want;         /* bytes the value asked for (buffers), or 0 (strings) */
};

#endif
