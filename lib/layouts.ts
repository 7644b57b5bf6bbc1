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

const latin1 = new TextDecoder("latin1");
/** A NUL-terminated char[16] (task comm) at `off`. */
export function commAt(v: DataView, off: number): string {
  let end = off;
  while (end < off + 16 && v.getUint8(end) !== 0) end++;
  return latin1.decode(new Uint8Array(v.buffer, v.byteOffset + off, end - off));
}
