// Byte layouts of the structs shared with bpf/*.h. tests/layouts.test.ts checks every offset here
// against the BTF that clang wrote into the compiled objects.

/** struct proc_filter: the first member of every program's config (bpf/proc_filter.h). */
export const PROC_FILTER = { size: 8, tgid: 0, use_tgids: 4, use_pidns: 5, follow_forks: 6 } as const;

export const UPROBE_CONFIG = {
  size: 48, filter: 0, emit_events: 8, count_calls: 9, track_latency: 10, go_abi: 11, typed: 12, per_function: 13, want_nspid: 14,
  hist: 15, hist_linear: 16, hist_per_process: 17, hist_signed: 18, stack: 19, stack_size: 20, hist_buckets: 24, fp_frames: 28, linear_start: 32, linear_step: 40,
} as const;
/** Slots of the `dropped` array (enum drop_kind). */
export const DROP = { RING: 0, COUNTS: 1, STARTS: 2, HIST: 3, STACKS: 4, KINDS: 8 } as const;

/** What a histogram counts (enum hist_kind). */
export const HIST = { NONE: 0, LATENCY: 1, ENTRY: 2, RETURN: 3 } as const;
/** Buckets in a histogram row; log2 rows use the first HIST_LOG2_BUCKETS. */
export const HIST_BUCKETS = 256;
export const HIST_LOG2_BUCKETS = 66;
export const HIST_ROW = { size: 56 + HIST_BUCKETS * 8, sum: 0, sum_hi: 8, min_inv: 16, max: 24, comm: 32, nspid: 48, pidns: 52, buckets: 56 } as const;
export const HIST_KEY = { size: 8, pid: 0, func: 4 } as const;

/** How a call's stack is recorded (enum stack_kind). */
export const STACK = { NONE: 0, COPY: 1, FP: 2, FP_COUNT: 3 } as const;
export const STACK_FP_MAX = 64;
export const STACK_COPY_MAX = 64 << 10;
export const STACK_EVENT = { size: 128 + STACK_FP_MAX * 8, kind: 0, pid: 4, tid: 8, func: 12, ts: 16, comm: 24, nspid: 40, stack_len: 44, regs: 48, at_sp: 112, nfp: 120, fp: 128 } as const;
export const STACK_COUNT_KEY = { size: 24, pid: 0, func: 4, stack_id: 8, at_sp: 16 } as const;
export const STACK_COUNT = { size: 32, calls: 0, comm: 8, nspid: 24 } as const;

/** Typed values (bpf/args.h). */
export const ENTRY_SLOTS = 16;
export const RET_SLOTS = 8;
export const ALL_SLOTS = ENTRY_SLOTS + RET_SLOTS;
export const CAPTURES = 8;
export const SAVED_PTRS = 4;
export const SLOT = { NONE: 0, REG: 1, MEM: 2, CONST: 3 } as const;
export const COPY = { STR: 1, BUF: 2 } as const;
export const LEN = { NONE: 0, CONST: 1, SLOT: 2 } as const;
export const NO_REG = 0xff;
export const SLOT_DESC = { size: 16, kind: 0, width: 1, is_signed: 2, reg: 3, index_reg: 4, scale: 5, shift: 6, offset: 8 } as const;
export const CAPTURE_DESC = { size: 24, kind: 0, ptr_slot: 1, len_from: 2, len_slot: 3, len2_slot: 4, scale: 8, max: 12, len_const: 16 } as const;
export const FUNC_DESC = { size: 16 + ALL_SLOTS * 16 + CAPTURES * 24, nentry: 0, nret: 1, ncap_entry: 2, ncap_ret: 3, nsaved: 4, saved: 8, slots: 16, caps: 16 + ALL_SLOTS * 16 } as const;
export const TYPED_EVENT = { size: 56, kind: 0, pid: 4, tid: 8, func: 12, ts: 16, comm: 24, nspid: 40, nvals: 44, nblobs: 46, latency: 48 } as const;
/** Where a typed record's blobs start: after room for every slot's value. */
export const TYPED_BLOBS_AT = TYPED_EVENT.size + ALL_SLOTS * 8;
export const BLOB_HDR = { size: 16, capture: 0, flags: 1, len: 4, want: 8 } as const;
export const BLOB_FAULT = 1;
export const BLOB_TRUNCATED = 2;

export const UPROBE_EVENT = { size: 96, kind: 0, pid: 4, tid: 8, func: 12, ts: 16, comm: 24, nspid: 40, a: 48 } as const;
export const EV_CALL = 1;
export const EV_RETURN = 2;
export const EV_STACK = 3;

export const UPROBE_COUNTS = { size: 40, calls: 0, returns: 8, comm: 16, nspid: 32, pidns: 36 } as const;

export const SSL_CONFIG = { size: 8, filter: 0 } as const;
export const SSL_KEY = { size: 8, tgid: 0, lib: 4 } as const;
export const SSL_STATS = { size: 80, calls: 0, returns: 8, bytes: 16, errors: 24, orphan_returns: 32, lost_entries: 40, inflight_returns: 48, comm: 56, pidns: 72 } as const;
/** enum tls_fn (bpf/ssl_read.h): what a probed TLS function is; the low 8 bits of its attach cookie. */
export const TLS_FN = {
  SSL_READ: 0, SSL_READ_EX: 1, SSL_WRITE: 2, SSL_WRITE_EX: 3, SSL_HANDSHAKE: 4,
  GNUTLS_RECV: 5, GNUTLS_SEND: 6, GNUTLS_HANDSHAKE: 7,
  GO_READ: 8, GO_WRITE: 9, GO_CLIENT_HANDSHAKE: 10, GO_SERVER_HANDSHAKE: 11,
  NSS_READ: 12, NSS_RECV: 13, NSS_WRITE: 14, NSS_SEND: 15, NSS_HANDSHAKE: 16,
} as const;
/** The attach cookie of a TLS probe: the library's index above the function's code. */
export function tlsCookie(lib: number, fn: number): bigint {
  return (BigInt(lib) << 8n) | BigInt(fn);
}

/** sslsniff (bpf/sslsniff.h). */
export const SNIFF_CONFIG = { size: 24, filter: 0, max_bytes: 8, want_read: 16, want_write: 17, want_handshake: 18, want_nspid: 19 } as const;
export const SNIFF_EVENT = { size: 104, kind: 0, pid: 4, tid: 8, cookie: 12, call: 16, ts: 24, latency: 32, ret: 40, len: 48, captured: 56, offset: 64, chunk: 72, flags: 76, comm: 80, nspid: 96 } as const;
export const SNIFF_KIND = { READ: 1, WRITE: 2, HANDSHAKE: 3 } as const;
export const SNIFF_FLAG = { TRUNCATED: 1, NO_ROOM: 2, FAULT: 4 } as const;
export const SNIFF_DROP = { RECORDS: 0, BYTES: 1, PAIRING: 2, KINDS: 4 } as const;
/** Data bytes per record at most (SNIFF_CHUNK). */
export const SNIFF_CHUNK = 32768 - 128;

export const OPENSNOOP_CONFIG = { size: 36, filter: 0, tid: 8, uid: 12, filter_uid: 16, failed_only: 17, want_nspid: 18, name_len: 19, name: 20 } as const;
export const OPEN_NAME_MAX = 16;
export const OPEN_EVENT = { size: 4176, ts: 0, flags: 8, mode: 16, resolve: 24, ret: 32, pid: 40, tid: 44, uid: 48, nspid: 52, dfd: 56, syscall: 60, path_len: 62, comm: 64, path: 80 } as const;
/** enum open_syscall, by value. */
export const OPEN_SYSCALLS = ["openat", "openat2", "open"] as const;

export const TP_CONFIG = { size: 16, filter: 0, emit_events: 8, count: 9, want_nspid: 10 } as const;
export const TP_INFO = { size: 28, fixed_size: 0, nlocs: 2, loc: 4, nstrs: 20, str: 22 } as const;
export const TP_EVENT = { size: 48, ts: 0, pid: 8, tid: 12, cookie: 16, nspid: 20, raw_len: 24, truncated: 26, str_len: 28, comm: 32 } as const;
export const TP_COUNT_KEY = { size: 8, pid: 0, cookie: 4 } as const;
export const TP_COUNT = { size: 24, count: 0, comm: 8 } as const;
/** bpf/tracepoint.h's limits. */
export const TP_LIMITS = { maxEvents: 1024, rawMax: 4096, strMax: 4096, maxLocs: 8, maxStrs: 2, locRel: 0x8000 } as const;

const latin1 = new TextDecoder("latin1");
/** A NUL-terminated char[16] (task comm) at `off`. */
export function commAt(v: DataView, off: number): string {
  let end = off;
  while (end < off + 16 && v.getUint8(end) !== 0) end++;
  return latin1.decode(new Uint8Array(v.buffer, v.byteOffset + off, end - off));
}
