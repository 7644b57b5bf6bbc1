// Reading BPF maps from userspace by fd: iterate keys, look values up, per-CPU values included.
import { readFileSync } from "node:fs";
import { libbpf } from "./ffi/libbpf.ts";
import { OsError, errno } from "./ffi/libc.ts";
import { objInfo } from "./bpf-syscall.ts";

export const MAP_TYPE: Record<number, string> = {
  1: "hash", 2: "array", 3: "prog_array", 4: "perf_event_array", 5: "percpu_hash", 6: "percpu_array",
  7: "stack_trace", 8: "cgroup_array", 9: "lru_hash", 10: "lru_percpu_hash", 11: "lpm_trie",
  12: "array_of_maps", 13: "hash_of_maps", 14: "devmap", 15: "sockmap", 16: "cpumap", 17: "xskmap",
  18: "sockhash", 19: "cgroup_storage", 20: "reuseport_sockarray", 21: "percpu_cgroup_storage",
  22: "queue", 23: "stack", 24: "sk_storage", 25: "devmap_hash", 26: "struct_ops", 27: "ringbuf",
  28: "inode_storage", 29: "task_storage", 30: "bloom_filter", 31: "user_ringbuf", 32: "cgrp_storage", 33: "arena",
};

const PERCPU = new Set([5, 6, 10, 21]);

export interface MapInfo {
  id: number;
  type: number;
  typeName: string;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  flags: number;
  name: string;
  btfId: number;
  btfKeyTypeId: number;
  btfValueTypeId: number;
}

export function mapInfo(fd: number): MapInfo {
  const v = objInfo(fd, 88);
  const type = v.getUint32(0, true);
  const nameBytes = new Uint8Array(v.buffer, 24, 16);
  const end = nameBytes.indexOf(0);
  return {
    type,
    typeName: MAP_TYPE[type] ?? `type ${type}`,
    id: v.getUint32(4, true),
    keySize: v.getUint32(8, true),
    valueSize: v.getUint32(12, true),
    maxEntries: v.getUint32(16, true),
    flags: v.getUint32(20, true),
    name: new TextDecoder().decode(nameBytes.subarray(0, end < 0 ? 16 : end)),
    // struct bpf_map_info: ifindex@40, btf_vmlinux_value_type_id@44, netns_dev@48, netns_ino@56, then:
    btfId: v.getUint32(64, true),
    btfKeyTypeId: v.getUint32(68, true),
    btfValueTypeId: v.getUint32(72, true),
  };
}

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
    this.perCpu = PERCPU.has(this.info.type);
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
