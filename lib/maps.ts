// Reading BPF maps from userspace by fd: iterate keys, look values up, per-CPU values included.
import { readFileSync } from "node:fs";
import { libbpf } from "./ffi/libbpf.ts";
import { OsError, errno } from "./ffi/libc.ts";
import { mapInfo, type MapInfo } from "./kernel/bpf.ts";
import { MAP_TYPE } from "./kernel/abi.ts";

const PERCPU_TYPES: Set<number> = new Set([MAP_TYPE.PERCPU_HASH, MAP_TYPE.PERCPU_ARRAY, MAP_TYPE.LRU_PERCPU_HASH, MAP_TYPE.PERCPU_CGROUP_STORAGE]);

let possible: number | undefined;
/** Number of possible CPUs: per-CPU maps hold one value slot for each. */
export function possibleCpus(): number {
  if (possible !== undefined) return possible;
  const text = readFileSync("/sys/devices/system/cpu/possible", "utf8").trim();
  let n = 0;
  for (const part of text.split(",")) {
    const [a, b] = part.split("-").map(Number);
    n += b === undefined ? 1 : b - a! + 1;
  }
  possible = n;
  return n;
}

export interface MapEntry {
  key: Uint8Array;
  /** For per-CPU maps: one slice per CPU. */
  values: Uint8Array[];
}

/** A map read by fd; the fd stays owned by whoever opened it. */
export class MapReader {
  readonly info: MapInfo;
  readonly perCpu: boolean;
  private readonly slot: number;

  constructor(readonly fd: number) {
    this.info = mapInfo(fd);
    this.perCpu = PERCPU_TYPES.has(this.info.type);
    this.slot = this.perCpu ? (this.info.valueSize + 7) & ~7 : this.info.valueSize;
  }

  private valueBuffer(): Uint8Array {
    return new Uint8Array(this.perCpu ? this.slot * possibleCpus() : Math.max(this.info.valueSize, 1));
  }

  private split(v: Uint8Array): Uint8Array[] {
    if (!this.perCpu) return [v];
    const out: Uint8Array[] = [];
    for (let c = 0; c < possibleCpus(); c++) out.push(v.subarray(c * this.slot, c * this.slot + this.info.valueSize));
    return out;
  }

  lookup(key: Uint8Array): Uint8Array[] | undefined {
    const v = this.valueBuffer();
    const r = libbpf().bpf_map_lookup_elem(this.fd, key, v);
    if (r < 0) {
      const e = -r || errno();
      if (e === 2) return undefined;
      throw new OsError(`bpf(MAP_LOOKUP_ELEM) on map ${this.info.name}`, e);
    }
    return this.split(v);
  }

  keys(limit = Infinity): Uint8Array[] {
    const keys: Uint8Array[] = [];
    let prev: Uint8Array | null = null;
    while (keys.length < limit) {
      const next = new Uint8Array(Math.max(this.info.keySize, 1));
      const r = libbpf().bpf_map_get_next_key(this.fd, prev, next);
      if (r < 0) break; // ENOENT: the end
      keys.push(next);
      prev = next;
    }
    return keys;
  }

  /** Every entry present now; keys deleted while we iterate are skipped. */
  entries(limit = Infinity): MapEntry[] {
    const out: MapEntry[] = [];
    for (const key of this.keys(limit)) {
      const values = this.lookup(key);
      if (values) out.push({ key, values });
    }
    return out;
  }

  update(key: Uint8Array, value: Uint8Array, flags = 0): void {
    const r = libbpf().bpf_map_update_elem(this.fd, key, value, BigInt(flags));
    if (r < 0) throw new OsError(`bpf(MAP_UPDATE_ELEM) on map ${this.info.name}`, -r);
  }

  delete(key: Uint8Array): void {
    libbpf().bpf_map_delete_elem(this.fd, key);
  }
}
