/* Typed arguments without compiling anything at run time: user space describes, per probed
 * function (the attach cookie), where each value lives (a register, memory at base + index*scale +
 * offset, a constant) and what to copy from it (a C string, a buffer of a length given by another
 * value or the return value); this program reads that description from a map and copies what it
 * says into a variable-length ring buffer record. The same descriptions serve C prototypes, Go's
 * register ABI, debug info and USDT argument specs. Shared with lib/layouts.ts. */
#ifndef PROBE_ARGS_H
#define PROBE_ARGS_H

#define ENTRY_SLOTS 16      /* values read at a call (a Go string or slice takes 2-3) */
#define RET_SLOTS 8         /* values read at a return (Go results) */
#define ALL_SLOTS (ENTRY_SLOTS + RET_SLOTS)
#define CAPTURES 8          /* memory copied through values, at the call or the return */
#define SAVED_PTRS 4        /* entry values kept for the return (read(fd, buf[ret], n): buf) */

#define SLOT_NONE 0
#define SLOT_REG 1          /* pt_regs[reg] >> shift */
#define SLOT_MEM 2          /* `width` bytes at pt_regs[reg] + pt_regs[index_reg] * scale + offset; reg NO_REG: no base */
#define SLOT_CONST 3        /* offset */

#define COPY_STR 1          /* the value points to a NUL-terminated string: copy up to max bytes */
#define COPY_BUF 2          /* the value points to n bytes: copy up to max of them */

#define LEN_NONE 0
#define LEN_CONST 1         /* n = len_const * scale */
#define LEN_SLOT 2          /* n = value[len_slot] (* value[len2_slot]) * scale; negative: nothing */

#define NO_REG 0xff

/* Slots are numbered entry first (0 .. nentry), then return (nentry .. nentry + nret). */
struct slot_desc {
	__u8 kind;
	__u8 width;         /* bytes of the value: 1, 2, 4, 8 */
	__u8 is_signed;     /* sign-extend from `width` bytes */
	__u8 reg;           /* pt_regs index (SLOT_REG, SLOT_MEM base) */
	__u8 index_reg;     /* SLOT_MEM: pt_regs index of the index register, NO_REG for none */
	__u8 scale;
	__u8 shift;         /* SLOT_REG: bits to shift right first (%ah) */
	__u8 pad;
	__s64 offset;       /* SLOT_MEM displacement; SLOT_CONST value */
};

struct capture_desc {
	__u8 kind;          /* COPY_* */
	__u8 ptr_slot;      /* the slot holding the pointer */
	__u8 len_from;      /* LEN_* */
	__u8 len_slot;
	__u8 len2_slot;     /* a second length slot multiplied in, or NO_REG */
	__u8 pad[3];
	__u32 scale;
	__u32 max;          /* bytes to copy at most */
	__u64 len_const;
};

struct func_desc {
	__u8 nentry;        /* entry slots */
	__u8 nret;          /* return slots, numbered after the entry ones */
	__u8 ncap_entry;    /* captures copied at the call: caps[0 .. ncap_entry) */
	__u8 ncap_ret;      /* then those copied at the return */
	__u8 nsaved;        /* entry slots kept for the return */
	__u8 pad[3];
	__u8 saved[SAVED_PTRS];
	__u32 pad2;
	struct slot_desc slots[ALL_SLOTS];
	struct capture_desc caps[CAPTURES];
};

/* A typed record in the ring buffer: this header, room for ALL_SLOTS u64 values (slot i at 8*i;
 * a return record carries its return slots and the saved entry slots), then `nblobs` blobs, each a
 * blob_hdr and `len` bytes padded to 8. */
struct typed_event {
	__u32 kind;         /* EV_CALL, EV_RETURN */
	__u32 pid;
	__u32 tid;
	__u32 func;         /* attach cookie: the function's index */
	__u64 ts;
	char comm[16];
	__u32 nspid;        /* the process's PID in its innermost namespace (0: unknown) */
	__u16 nvals;        /* slots in the record (entry: nentry; return: nentry + nret) */
	__u16 nblobs;
	__u64 latency;      /* return: ns since the paired call (0: not seen) */
};

#define BLOB_FAULT 1        /* the pointer could not be read */
#define BLOB_TRUNCATED 2    /* more bytes than copied */

struct blob_hdr {
	__u8 capture;       /* which capture of the function's description */
	__u8 flags;         /* BLOB_* */
	__u16 pad;
	__u32 len;          /* bytes that follow */
	__u64 want;         /* bytes the buffer had (its length), or 0 (strings) */
};

#endif
