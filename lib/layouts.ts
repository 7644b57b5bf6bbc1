// Byte layouts of the structs shared with bpf/*.h. tests/layouts.test.ts checks every offset here
// against the BTF that clang wrote into the compiled objects.

/** struct proc_filter: the first member of every program's config (bpf/proc_filter.h). */
export const PROC_FILTER = { size: 8, tgid: 0, use_tgids: 4, use_pidns: 5, follow_forks: 6 } as const;

export const UPROBE_CONFIG = { size: 16, filter: 0, emit_events: 8, count_calls: 9, track_latency: 10, go_abi: 11 } as const;

export const UPROBE_EVENT = { size: 88, kind: 0, pid: 4, tid: 8, func: 12, ts: 16, comm: 24, a: 40 } as const;
export const EV_CALL = 1;
export const EV_RETURN = 2;

export const UPROBE_COUNTS = { size: 32, calls: 0, returns: 8, comm: 16 } as const;

export const SSL_CONFIG = { size: 8, filter: 0 } as const;
export const SSL_STATS = { size: 64, calls: 0, returns: 8, bytes: 16, errors: 24, orphan_returns: 32, lost_entries: 40, comm: 48 } as const;
export const SSL_FN = { READ: 0, READ_EX: 1 } as const;

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
