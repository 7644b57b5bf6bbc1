// The executable mappings processes make while probe runs, as the kernel reports them (perf's own
// approach: a dummy software event per CPU with `mmap2`, `comm_exec` and `task`, whose ring
// carries a PERF_RECORD_MMAP2 for every executable mmap: addresses, file offset, device, inode and
// path; a PERF_RECORD_COMM flagged exec when a process execs; PERF_RECORD_FORK and _EXIT). Each
// record carries its time (sample_id_all), so that those of all CPUs are applied in the order
// they happened (an exec's mappings after the exec). A process that calls a probed function and
// exits before probe reads its /proc/PID/maps still gets its stacks named.
import { cpus } from "node:os";
import { closeFd, mmapFd, munmap, ptr, syscallErr, OsError, SYS, PROT, type Mapping as MemMapping } from "../lib/ffi/libc.ts";
import { PERF_EVENT_ATTR as A, PERF_FLAG_FD_CLOEXEC, PERF_MMAP_PAGE, PERF_TYPE_SOFTWARE } from "../lib/kernel/abi.ts";
import { possibleCpus } from "../lib/maps.ts";

const PAGE = 4096;
const PERF_COUNT_SW_DUMMY = 9;
/** perf_event_attr flag bits (the u64 after wakeup's predecessor fields, at offset 40). */
const FLAGS_AT = 40;
const BIT = { mmap: 8n, comm: 9n, task: 13n, sample_id_all: 18n, mmap2: 23n, comm_exec: 24n } as const;
const PERF_SAMPLE_TIME = 1n << 2n;
const RECORD = { LOST: 2, COMM: 3, EXIT: 4, FORK: 7, MMAP2: 10 } as const;
const MISC_COMM_EXEC = 1 << 13;
const PROT_EXEC = 4;

/** An executable file mapping a process made. */
export interface MmapRecord {
  pid: number;
  start: number;
  end: number;
  offset: number;
  /** "maj:min" in hex, as /proc/PID/maps prints the device. */
  dev: string;
  inode: number;
  /** As the process saw it (relative to its root). */
  path: string;
}

interface Ring {
  fd: number;
  map: MemMapping;
  meta: DataView;
  data: Uint8Array;
}

function onlineCpuCount(): number {
  try {
    return possibleCpus();
  } catch {
    return cpus().length || 1;
  }
}

/** What the rings report, in the order it happened on each CPU. */
export interface MmapHandlers {
  mmap: (m: MmapRecord) => void;
  exec: (pid: number) => void;
  /** A new process (not a thread): `pid`, forked from `ppid`, starts with its mappings. */
  fork: (pid: number, ppid: number) => void;
  /** A process (its last thread) exited. */
  exit: (pid: number) => void;
}

export class MmapEvents {
  private readonly rings: Ring[] = [];
  private closed = false;
  /** Records the kernel could not write (a ring was full). */
  lost = 0;
  private readonly dec = new TextDecoder();

  /** Every process on every CPU; `pages` of ring per CPU (a power of two). */
  constructor(pages = 64) {
    const attr = new Uint8Array(A.size);
    const v = new DataView(attr.buffer);
    v.setUint32(A.type, PERF_TYPE_SOFTWARE, true);
    v.setUint32(A.attr_size, A.size, true);
    v.setBigUint64(A.config, BigInt(PERF_COUNT_SW_DUMMY), true);
    // sample_id_all with only PERF_SAMPLE_TIME: every record ends with the u64 time it was made.
    v.setBigUint64(A.sample_type, PERF_SAMPLE_TIME, true);
    v.setBigUint64(FLAGS_AT, (1n << BIT.mmap) | (1n << BIT.comm) | (1n << BIT.task) | (1n << BIT.sample_id_all) | (1n << BIT.mmap2) | (1n << BIT.comm_exec), true);
    try {
      for (let cpu = 0; cpu < onlineCpuCount(); cpu++) {
        const fd = syscallErr(SYS.perf_event_open, ptr(attr), BigInt.asUintN(64, -1n), BigInt(cpu), BigInt.asUintN(64, -1n), PERF_FLAG_FD_CLOEXEC);
        if (fd < 0) {
          if (-fd === 19 /* ENODEV: an offline CPU */) continue;
          throw new OsError(`perf_event_open(mmap events, cpu ${cpu})`, -fd);
        }
        let m: MemMapping;
        try {
          m = mmapFd(fd, PAGE * (pages + 1), PROT.READ | PROT.WRITE, 0);
        } catch (e) {
          closeFd(fd);
          throw e;
        }
        this.rings.push({ fd, map: m, meta: new DataView(m.buffer, 0, PAGE), data: new Uint8Array(m.buffer, PAGE, PAGE * pages) });
      }
    } catch (e) {
      this.close();
      throw e;
    }
  }

  /** Hands over every executable mapping, exec, fork and exit recorded since the last call, in time order. */
  consume(on: MmapHandlers): number {
    const events: { time: bigint; apply: () => void }[] = [];
    for (const r of this.rings) {
      const size = r.data.length;
      const head = Number(r.meta.getBigUint64(PERF_MMAP_PAGE.data_head, true));
      let tail = Number(r.meta.getBigUint64(PERF_MMAP_PAGE.data_tail, true));
      while (tail < head) {
        const hdr = read(r.data, tail % size, 8);
        const hv = new DataView(hdr.buffer, hdr.byteOffset, 8);
        const type = hv.getUint32(0, true);
        const misc = hv.getUint16(4, true);
        const len = hv.getUint16(6, true);
        if (len < 8) break;
        tail += len;
        if (len < 16) continue;
        const rec = read(r.data, (tail - len) % size, len);
        const rv = new DataView(rec.buffer, rec.byteOffset, len);
        const time = rv.getBigUint64(len - 8, true);
        if (type === RECORD.MMAP2 && len > 80 && rv.getUint32(64, true) & PROT_EXEC) {
          const start = Number(rv.getBigUint64(16, true));
          const name = rec.subarray(72, len - 8);
          const nul = name.indexOf(0);
          const m: MmapRecord = {
            pid: rv.getUint32(8, true),
            start,
            end: start + Number(rv.getBigUint64(24, true)),
            offset: Number(rv.getBigUint64(32, true)),
            dev: `${hex2(rv.getUint32(40, true))}:${hex2(rv.getUint32(44, true))}`,
            inode: Number(rv.getBigUint64(48, true)),
            path: this.dec.decode(nul < 0 ? name : name.subarray(0, nul)),
          };
          events.push({ time, apply: () => on.mmap(m) });
        } else if (type === RECORD.COMM && misc & MISC_COMM_EXEC && len >= 24) {
          const pid = rv.getUint32(8, true);
          events.push({ time, apply: () => on.exec(pid) });
        } else if ((type === RECORD.FORK || type === RECORD.EXIT) && len >= 32) {
          // pid, ppid, tid, ptid: a process when pid == tid.
          const pid = rv.getUint32(8, true);
          const ppid = rv.getUint32(12, true);
          if (pid === rv.getUint32(16, true)) events.push({ time, apply: () => (type === RECORD.FORK ? on.fork(pid, ppid) : on.exit(pid)) });
        } else if (type === RECORD.LOST && len >= 24) {
          this.lost += Number(rv.getBigUint64(16, true));
        }
      }
      r.meta.setBigUint64(PERF_MMAP_PAGE.data_tail, BigInt(tail), true);
    }
    events.sort((a, b) => (a.time < b.time ? -1 : a.time > b.time ? 1 : 0));
    for (const e of events) e.apply();
    return events.length;
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

function hex2(n: number): string {
  return n.toString(16).padStart(2, "0");
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
