// The executable mappings processes make, as the kernel reports them (perf's own approach: a
// dummy software event per CPU with `mmap2`, `comm_exec` and `task`, whose ring carries a
// PERF_RECORD_MMAP2 for every executable mmap: addresses, file offset, device, inode and path; a
// PERF_RECORD_COMM flagged exec when a process execs; PERF_RECORD_FORK and _EXIT). Each record
// carries its time (sample_id_all), so that those of all CPUs are applied in the order they
// happened (an exec's mappings after the exec). A process that exits before its /proc/PID/maps is
// read can still be known this way.
import { cpus } from "node:os";
import { OsError } from "../ffi/libc.ts";
import { PERF_ATTR_FLAG, PERF_COUNT_SW_DUMMY, PERF_RECORD, PERF_RECORD_MISC_COMM_EXEC, PERF_SAMPLE_TIME, PERF_TYPE_SOFTWARE } from "../kernel/abi.ts";
import { perfEventOpen } from "../kernel/perf-event.ts";
import { PerfRings } from "../kernel/perf-ring.ts";
import { possibleCpus } from "../maps.ts";

const PROT_EXEC = 4;
const ENODEV = 19;
const bit = (name: keyof typeof PERF_ATTR_FLAG) => 1n << BigInt(PERF_ATTR_FLAG[name]);
const FLAGS = bit("mmap") | bit("comm") | bit("task") | bit("sample_id_all") | bit("mmap2") | bit("comm_exec");

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
  private readonly rings: PerfRings;
  private readonly dec = new TextDecoder();

  /** Every process on every CPU; `pages` of ring per CPU (a power of two). */
  constructor(pages = 64) {
    this.rings = new PerfRings(onlineCpuCount(), pages, (cpu) => {
      try {
        // sample_id_all with only PERF_SAMPLE_TIME: every record ends with the u64 time it was made.
        return perfEventOpen({ type: PERF_TYPE_SOFTWARE, config: BigInt(PERF_COUNT_SW_DUMMY), sampleType: BigInt(PERF_SAMPLE_TIME), flags: FLAGS, pid: -1, cpu }, `mmap events, cpu ${cpu}`);
      } catch (e) {
        if (e instanceof OsError && e.errno === ENODEV) return undefined; // an offline CPU
        throw e;
      }
    });
  }

  /** Records the kernel could not write (a ring was full). */
  get lost(): number {
    return this.rings.lost;
  }

  /** Hands over every executable mapping, exec, fork and exit recorded since the last call, in time order. */
  consume(on: MmapHandlers): number {
    const events: { time: bigint; apply: () => void }[] = [];
    this.rings.consume((type, misc, rec, rv) => {
      const len = rec.length;
      if (len < 16) return;
      const time = rv.getBigUint64(len - 8, true);
      // struct perf_record_mmap2: pid, tid, addr, len, pgoff, maj, min, ino, ino_generation, prot, flags, filename.
      if (type === PERF_RECORD.MMAP2 && len > 80 && rv.getUint32(64, true) & PROT_EXEC) {
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
      } else if (type === PERF_RECORD.COMM && misc & PERF_RECORD_MISC_COMM_EXEC && len >= 24) {
        const pid = rv.getUint32(8, true);
        events.push({ time, apply: () => on.exec(pid) });
      } else if ((type === PERF_RECORD.FORK || type === PERF_RECORD.EXIT) && len >= 32) {
        // pid, ppid, tid, ptid: a process when pid == tid.
        const pid = rv.getUint32(8, true);
        const ppid = rv.getUint32(12, true);
        if (pid === rv.getUint32(16, true)) events.push({ time, apply: () => (type === PERF_RECORD.FORK ? on.fork(pid, ppid) : on.exit(pid)) });
      }
    });
    events.sort((a, b) => (a.time < b.time ? -1 : a.time > b.time ? 1 : 0));
    for (const e of events) e.apply();
    return events.length;
  }

  close(): void {
    this.rings.close();
  }
}

function hex2(n: number): string {
  return n.toString(16).padStart(2, "0");
}
