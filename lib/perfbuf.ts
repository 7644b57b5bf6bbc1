// A BPF_MAP_TYPE_PERF_EVENT_ARRAY read from user space (objects written for bcc or older libbpf
// emit their events through one): one BPF-output perf event per CPU (lib/kernel/perf-ring.ts),
// its fd put in the map at the CPU's index, and the samples' raw bytes handed over.
import { PERF_COUNT_SW_BPF_OUTPUT, PERF_RECORD, PERF_SAMPLE_RAW, PERF_TYPE_SOFTWARE } from "./kernel/abi.ts";
import { perfEventOpen } from "./kernel/perf-event.ts";
import { PerfRings } from "./kernel/perf-ring.ts";
import { MapReader, possibleCpus } from "./maps.ts";

export class PerfBuffer {
  private readonly rings: PerfRings;

  /** `pages` of data per CPU (a power of two). */
  constructor(mapFd: number, pages = 64) {
    const map = new MapReader(mapFd);
    const cpus = Math.min(possibleCpus(), map.info.maxEntries);
    this.rings = new PerfRings(cpus, pages, (cpu) =>
      perfEventOpen(
        { type: PERF_TYPE_SOFTWARE, config: BigInt(PERF_COUNT_SW_BPF_OUTPUT), sampleType: BigInt(PERF_SAMPLE_RAW), wakeupEvents: 1, pid: -1, cpu },
        `bpf output, cpu ${cpu}`,
      ),
    );
    try {
      for (const { cpu, fd } of this.rings.events()) map.update(new Uint8Array(new Uint32Array([cpu]).buffer), new Uint8Array(new Uint32Array([fd]).buffer));
    } catch (e) {
      this.close();
      throw e;
    }
  }

  /** Records the kernel reported as lost (its PERF_RECORD_LOST counts). */
  get lost(): number {
    return this.rings.lost;
  }

  /** Hands each sample's raw bytes to `onRecord`; returns how many. */
  consume(onRecord: (data: Uint8Array) => void): number {
    let n = 0;
    this.rings.consume((type, _misc, rec, rv) => {
      // PERF_SAMPLE_RAW alone: the header, then u32 size and the bytes.
      if (type !== PERF_RECORD.SAMPLE || rec.length < 12) return;
      const raw = rv.getUint32(8, true);
      onRecord(rec.subarray(12, 12 + Math.min(raw, rec.length - 12)));
      n++;
    });
    return n;
  }

  close(): void {
    this.rings.close();
  }
}
