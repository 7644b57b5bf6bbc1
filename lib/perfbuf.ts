// A BPF_MAP_TYPE_PERF_EVENT_ARRAY read from user space (objects written for bcc or older libbpf
// emit their events through one): one BPF-output perf event per CPU, its ring mapped, its fd put
// in the map at the CPU's index, and records parsed in JS, polled on a timer like lib/ringbuf.ts.
import { closeFd, mmapFd, munmap, PROT, type Mapping } from "./ffi/libc.ts";
import { PERF_COUNT_SW_BPF_OUTPUT, PERF_MMAP_PAGE, PERF_RECORD, PERF_SAMPLE_RAW, PERF_TYPE_SOFTWARE } from "./kernel/abi.ts";
import { perfEventOpen } from "./kernel/perf-event.ts";
import { MapReader, possibleCpus } from "./maps.ts";

const PAGE = 4096;

interface CpuRing {
  fd: number;
  map: Mapping;
  meta: DataView;
  data: Uint8Array;
}

export class PerfBuffer {
  private readonly rings: CpuRing[] = [];
  private closed = false;
  /** Records the kernel reported as lost (its PERF_RECORD_LOST counts). */
  lost = 0;

  /** `pages` of data per CPU (a power of two). */
  constructor(mapFd: number, pages = 64) {
    const map = new MapReader(mapFd);
    const cpus = Math.min(possibleCpus(), map.info.maxEntries);
    try {
      for (let cpu = 0; cpu < cpus; cpu++) {
        const fd = perfEventOpen(
          { type: PERF_TYPE_SOFTWARE, config: BigInt(PERF_COUNT_SW_BPF_OUTPUT), sampleType: BigInt(PERF_SAMPLE_RAW), wakeupEvents: 1, pid: -1, cpu },
          `bpf output, cpu ${cpu}`,
        );
        let m: Mapping;
        try {
          m = mmapFd(fd, PAGE * (pages + 1), PROT.READ | PROT.WRITE, 0);
        } catch (e) {
          closeFd(fd);
          throw e;
        }
        this.rings.push({ fd, map: m, meta: new DataView(m.buffer, 0, PAGE), data: new Uint8Array(m.buffer, PAGE, PAGE * pages) });
        map.update(new Uint8Array(new Uint32Array([cpu]).buffer), new Uint8Array(new Uint32Array([fd]).buffer));
      }
    } catch (e) {
      this.close();
      throw e;
    }
  }

  /** Hands each sample's raw bytes to `onRecord`; returns how many. */
  consume(onRecord: (data: Uint8Array) => void): number {
    let n = 0;
    for (const r of this.rings) {
      const size = r.data.length;
      // Plain reads: Atomics on a shared mapping crash once JIT-compiled (lib/ringbuf.ts).
      const head = Number(r.meta.getBigUint64(PERF_MMAP_PAGE.data_head, true));
      let tail = Number(r.meta.getBigUint64(PERF_MMAP_PAGE.data_tail, true));
      while (tail < head) {
        const at = tail % size;
        const hdr = this.read(r.data, at, 8);
        const hv = new DataView(hdr.buffer, hdr.byteOffset, 8);
        const type = hv.getUint32(0, true);
        const len = hv.getUint16(6, true);
        if (len < 8) break;
        const rec = this.read(r.data, at, len);
        const rv = new DataView(rec.buffer, rec.byteOffset, len);
        if (type === PERF_RECORD.SAMPLE && len >= 12) {
          const raw = rv.getUint32(8, true);
          onRecord(rec.subarray(12, 12 + Math.min(raw, len - 12)));
          n++;
        } else if (type === PERF_RECORD.LOST && len >= 24) {
          this.lost += Number(rv.getBigUint64(16, true));
        }
        tail += len;
      }
      r.meta.setBigUint64(PERF_MMAP_PAGE.data_tail, BigInt(tail), true);
    }
    return n;
  }

  /** `len` bytes at `at` of a ring, copied when they wrap past its end. */
  private read(data: Uint8Array, at: number, len: number): Uint8Array {
    if (at + len <= data.length) return data.subarray(at, at + len);
    const out = new Uint8Array(len);
    const first = data.length - at;
    out.set(data.subarray(at), 0);
    out.set(data.subarray(0, len - first), first);
    return out;
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
