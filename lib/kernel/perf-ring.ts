// Per-CPU perf event rings read from user space: one perf event per CPU, each with its ring mapped
// (a metadata page, then 2^n data pages) and its records handed over whole, in the order the
// kernel wrote them on that CPU. Polled on a timer like lib/ringbuf.ts. Serves BPF output events
// (lib/perfbuf.ts) and the mmap/comm/fork/exit records of lib/proc/mmap-events.ts.
import { closeFd, mmapFd, munmap, PROT, type Mapping } from "../ffi/libc.ts";
import { PERF_MMAP_PAGE, PERF_RECORD } from "./abi.ts";

const PAGE = 4096;
/** struct perf_event_header: u32 type, u16 misc, u16 size. */
const HEADER = 8;

interface Ring {
  cpu: number;
  fd: number;
  map: Mapping;
  meta: DataView;
  data: Uint8Array;
}

/**
 * A record: its type and misc bits, and its bytes from the header on (copied when it wraps past
 * the ring's end, else a view into the ring valid until the callback returns).
 */
export type PerfRecordHandler = (type: number, misc: number, rec: Uint8Array, view: DataView) => void;

export class PerfRings {
  private readonly rings: Ring[] = [];
  private closed = false;
  /** Records the kernel could not write (a ring was full): the sum of its PERF_RECORD_LOST counts. */
  lost = 0;

  /**
   * Opens and maps CPUs 0 to `cpus`-1: `open(cpu)` returns the event's fd, or undefined to leave
   * the CPU out. `pages` of data per CPU (a power of two). On failure, what was opened is closed.
   */
  constructor(cpus: number, pages: number, open: (cpu: number) => number | undefined) {
    try {
      for (let cpu = 0; cpu < cpus; cpu++) {
        const fd = open(cpu);
        if (fd === undefined) continue;
        let map: Mapping;
        try {
          map = mmapFd(fd, PAGE * (pages + 1), PROT.READ | PROT.WRITE, 0);
        } catch (e) {
          closeFd(fd);
          throw e;
        }
        this.rings.push({ cpu, fd, map, meta: new DataView(map.buffer, 0, PAGE), data: new Uint8Array(map.buffer, PAGE, PAGE * pages) });
      }
    } catch (e) {
      this.close();
      throw e;
    }
  }

  /** Each opened CPU and its event's fd. */
  events(): { cpu: number; fd: number }[] {
    return this.rings.map((r) => ({ cpu: r.cpu, fd: r.fd }));
  }

  /** Hands every record written since the last call to `onRecord`, ring by ring (PERF_RECORD_LOST counted in `lost` instead). */
  consume(onRecord: PerfRecordHandler): void {
    for (const r of this.rings) {
      const size = r.data.length;
      // Plain reads: Atomics on a shared mapping crash once JIT-compiled (lib/ringbuf.ts).
      const head = Number(r.meta.getBigUint64(PERF_MMAP_PAGE.data_head, true));
      let tail = Number(r.meta.getBigUint64(PERF_MMAP_PAGE.data_tail, true));
      while (tail < head) {
        const at = tail % size;
        const hdr = read(r.data, at, HEADER);
        const hv = new DataView(hdr.buffer, hdr.byteOffset, HEADER);
        const type = hv.getUint32(0, true);
        const misc = hv.getUint16(4, true);
        const len = hv.getUint16(6, true);
        if (len < HEADER) break;
        const rec = read(r.data, at, len);
        const rv = new DataView(rec.buffer, rec.byteOffset, len);
        if (type === PERF_RECORD.LOST) {
          if (len >= 24) this.lost += Number(rv.getBigUint64(16, true));
        } else {
          onRecord(type, misc, rec, rv);
        }
        tail += len;
      }
      r.meta.setBigUint64(PERF_MMAP_PAGE.data_tail, BigInt(tail), true);
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const r of this.rings) {
      munmap(r.map);
      closeFd(r.fd);
    }
  }
}

/** `len` bytes at `at` of a ring, copied when they wrap past its end. */
function read(data: Uint8Array, at: number, len: number): Uint8Array {
  if (at + len <= data.length) return data.subarray(at, at + len);
  const out = new Uint8Array(len);
  const first = data.length - at;
  out.set(data.subarray(at), 0);
  out.set(data.subarray(0, len - first), first);
  return out;
}
