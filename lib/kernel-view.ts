// The kernel's own account of what BPF is loaded and attached (`probe list`): every program,
// map and link by id, each uprobe link's file/offset/entry-or-return, every perf-event uprobe
// held by a process (BPF_TASK_FD_QUERY), and who holds each object (a process fd or a bpffs pin).
import { readdirSync, readFileSync, readlinkSync, statSync } from "node:fs";
import { join } from "node:path";
import { libbpf } from "./ffi/libbpf.ts";
import { closeFd, cstr, ptr } from "./ffi/libc.ts";
import { objInfo, linkInfo, taskFdQuery, BPF_PERF_EVENT_TYPE } from "./bpf-syscall.ts";
import { mapInfo } from "./maps.ts";

export const PROG_TYPE: Record<number, string> = {
  0: "unspec", 1: "socket_filter", 2: "kprobe", 3: "sched_cls", 4: "sched_act", 5: "tracepoint", 6: "xdp",
  7: "perf_event", 8: "cgroup_skb", 9: "cgroup_sock", 10: "lwt_in", 11: "lwt_out", 12: "lwt_xmit", 13: "sock_ops",
  14: "sk_skb", 15: "cgroup_device", 16: "sk_msg", 17: "raw_tracepoint", 18: "cgroup_sock_addr",
  19: "lwt_seg6local", 20: "lirc_mode2", 21: "sk_reuseport", 22: "flow_dissector", 23: "cgroup_sysctl",
  24: "raw_tracepoint_writable", 25: "cgroup_sockopt", 26: "tracing", 27: "struct_ops", 28: "ext", 29: "lsm",
  30: "sk_lookup", 31: "syscall", 32: "netfilter",
};

/** A process holding an fd to a BPF object or perf event. */
export interface Holder {
  pid: number;
  comm: string;
  fd: number;
}

export interface ProgView {
  id: number;
  name: string;
  type: string;
  tag: string;
  mapIds: number[];
  btfId: number;
  holders: Holder[];
  pins: string[];
}

export interface MapView {
  id: number;
  name: string;
  type: string;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  btfId: number;
  holders: Holder[];
  pins: string[];
}

export interface LinkView {
  id: number;
  type: string;
  progId: number;
  progName?: string;
  /** uprobe_multi and perf_event uprobe links: what the kernel attached. */
  uprobe?: { kind: "uprobe" | "uretprobe"; path: string; offsets: number[]; pid: number };
  /** perf_event links on a tracepoint (or other perf event kinds): the kernel's name for it. */
  perfEvent?: { kind: string; name: string };
  holders: Holder[];
  pins: string[];
}

export interface PerfProbeView {
  pid: number;
  comm: string;
  fd: number;
  kind: string; // uprobe | uretprobe | tracepoint | kprobe | ...
  /** The probed file; for `/proc/self/fd/N` (probe attaches through an fd), the file behind it. */
  path: string;
  /** The path string the kernel keeps, when it differs from `path`. */
  kernelPath?: string;
  offset: number;
  progId: number;
  progName?: string;
}

export interface KernelView {
  programs: ProgView[];
  maps: MapView[];
  links: LinkView[];
  perfEvents: PerfProbeView[];
}

type GetNext = (start: number, next: Uint32Array) => number;

function ids(getNext: GetNext): number[] {
  const out: number[] = [];
  const next = new Uint32Array(1);
  let cur = 0;
  while (getNext(cur, next) === 0) {
    cur = next[0]!;
    out.push(cur);
  }
  return out;
}

/** Opens an object by id, runs `f`, closes it; undefined when it went away meanwhile. */
function withFd<T>(open: (id: number) => number, id: number, f: (fd: number) => T): T | undefined {
  const fd = open(id);
  if (fd < 0) return undefined;
  try {
    return f(fd);
  } catch {
    return undefined;
  } finally {
    closeFd(fd);
  }
}

function progView(fd: number): ProgView {
  const v = objInfo(fd, 136);
  const nMaps = v.getUint32(52, true);
  let mapIds: number[] = [];
  if (nMaps > 0) {
    const buf = new Uint32Array(nMaps);
    const w = objInfo(fd, 136, (x) => {
      x.setUint32(52, nMaps, true); // nr_map_ids
      x.setBigUint64(56, BigInt(ptr(buf)), true); // map_ids
    });
    mapIds = [...buf.subarray(0, Math.min(nMaps, w.getUint32(52, true)))];
  }
  const nameBytes = new Uint8Array(v.buffer, 64, 16);
  const end = nameBytes.indexOf(0);
  const type = v.getUint32(0, true);
  return {
    id: v.getUint32(4, true),
    type: PROG_TYPE[type] ?? `type ${type}`,
    tag: [...new Uint8Array(v.buffer, 8, 8)].map((b) => b.toString(16).padStart(2, "0")).join(""),
    name: new TextDecoder().decode(nameBytes.subarray(0, end < 0 ? 16 : end)),
    mapIds,
    btfId: v.getUint32(128, true),
    holders: [],
    pins: [],
  };
}

/** A perf_event link that is not a uprobe: what kind of event, and its name (a tracepoint's). */
function perfLinkDetail(fd: number): { kind: string; name: string } | undefined {
  const nameBuf = new Uint8Array(512);
  const v = objInfo(fd, 128, (w) => {
    w.setBigUint64(24, BigInt(ptr(nameBuf)), true); // perf_event.{tracepoint.tp_name,kprobe.func_name,...}
    w.setUint32(32, nameBuf.length, true); // .name_len
  });
  const kind = BPF_PERF_EVENT_TYPE[v.getUint32(16, true)] ?? "unknown";
  const end = nameBuf.indexOf(0);
  return { kind, name: new TextDecoder().decode(nameBuf.subarray(0, end < 0 ? 0 : end)) };
}

function linkView(fd: number): LinkView {
  const info = linkInfo(fd);
  const view: LinkView = { id: info.id, type: info.type, progId: info.progId, holders: [], pins: [] };
  if (info.uprobe) {
    view.uprobe = {
      kind: info.uprobe.retprobe ? "uretprobe" : "uprobe",
      path: info.uprobe.path,
      offsets: info.uprobe.offsets,
      pid: info.uprobe.pid,
    };
  } else if (info.type === "perf_event") {
    view.perfEvent = perfLinkDetail(fd);
  }
  return view;
}

interface FdRef {
  pid: number;
  fd: number;
  kind: "prog" | "map" | "link" | "perf";
}

function readComm(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, "utf8").trim();
  } catch {
    return "?";
  }
}

/** Every fd of every process that is a BPF object or a perf event. Processes that exit meanwhile are skipped. */
function processFds(): FdRef[] {
  const out: FdRef[] = [];
  let pids: string[];
  try {
    pids = readdirSync("/proc").filter((d) => /^\d+$/.test(d));
  } catch {
    return out;
  }
  for (const p of pids) {
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${p}/fd`);
    } catch {
      continue;
    }
    for (const f of fds) {
      let target: string;
      try {
        target = readlinkSync(`/proc/${p}/fd/${f}`);
      } catch {
        continue;
      }
      const kind = target === "anon_inode:bpf-prog" ? "prog" : target === "anon_inode:bpf-map" ? "map"
        : target === "anon_inode:bpf_link" || target === "anon_inode:bpf-link" ? "link" : target === "anon_inode:[perf_event]" ? "perf" : undefined;
      if (kind) out.push({ pid: Number(p), fd: Number(f), kind });
    }
  }
  return out;
}

/** The object id an fd refers to, from /proc/PID/fdinfo/FD (`prog_id:`, `map_id:`, `link_id:`). */
function fdinfoId(pid: number, fd: number, key: string): number | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/fdinfo/${fd}`, "utf8");
    const m = new RegExp(`^${key}:\\s*(\\d+)`, "m").exec(text);
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** Mount points of bpf filesystems, from /proc/self/mounts. */
export function bpffsMounts(): string[] {
  try {
    return readFileSync("/proc/self/mounts", "utf8")
      .split("\n")
      .map((l) => l.split(" "))
      .filter((f) => f[2] === "bpf")
      .map((f) => f[1]!.replace(/\\040/g, " "));
  } catch {
    return [];
  }
}

/** What a pinned file is: its kind and id (opened with bpf_obj_get and closed again). */
export function pinnedObject(path: string): { kind: "prog" | "map" | "link"; id: number } | undefined {
  const fd = libbpf().bpf_obj_get(cstr(path));
  if (fd < 0) return undefined;
  try {
    const target = readlinkSync(`/proc/self/fd/${fd}`);
    const kind = target === "anon_inode:bpf-prog" ? "prog" : target === "anon_inode:bpf-map" ? "map"
      : target === "anon_inode:bpf_link" || target === "anon_inode:bpf-link" ? "link" : undefined;
    if (!kind) return undefined;
    return { kind, id: objInfo(fd, 8).getUint32(4, true) };
  } catch {
    return undefined;
  } finally {
    closeFd(fd);
  }
}

/** Every pinned object under the bpf filesystems (or under `root`), by kind:id. */
export function pinnedObjects(root?: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  const walk = (dir: string, depth: number) => {
    if (depth > 8) return;
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      return;
    }
    for (const n of names) {
      const p = join(dir, n);
      let isDir = false;
      try {
        isDir = statSync(p).isDirectory();
      } catch {
        continue;
      }
      if (isDir) walk(p, depth + 1);
      else {
        const o = pinnedObject(p);
        if (o) {
          const k = `${o.kind}:${o.id}`;
          out.set(k, [...(out.get(k) ?? []), p]);
        }
      }
    }
  };
  for (const m of root ? [root] : bpffsMounts()) walk(m, 0);
  return out;
}

/** Snapshot of the kernel's BPF state. Objects created or removed while it runs may be missed. */
export function kernelView(): KernelView {
  const L = libbpf();
  const programs = ids((s, n) => L.bpf_prog_get_next_id(s, n))
    .map((id) => withFd((i) => L.bpf_prog_get_fd_by_id(i), id, progView))
    .filter((x): x is ProgView => x !== undefined);
  const maps = ids((s, n) => L.bpf_map_get_next_id(s, n))
    .map((id) => withFd((i) => L.bpf_map_get_fd_by_id(i), id, (fd): MapView => {
      const m = mapInfo(fd);
      return { id: m.id, name: m.name, type: m.typeName, keySize: m.keySize, valueSize: m.valueSize, maxEntries: m.maxEntries, btfId: m.btfId, holders: [], pins: [] };
    }))
    .filter((x): x is MapView => x !== undefined);
  const links = ids((s, n) => L.bpf_link_get_next_id(s, n))
    .map((id) => withFd((i) => L.bpf_link_get_fd_by_id(i), id, linkView))
    .filter((x): x is LinkView => x !== undefined);

  const progById = new Map(programs.map((p) => [p.id, p]));
  const mapById = new Map(maps.map((m) => [m.id, m]));
  const linkById = new Map(links.map((l) => [l.id, l]));
  for (const l of links) l.progName = progById.get(l.progId)?.name;

  const comms = new Map<number, string>();
  const comm = (pid: number) => {
    if (!comms.has(pid)) comms.set(pid, readComm(pid));
    return comms.get(pid)!;
  };
  const perfEvents: PerfProbeView[] = [];
  for (const ref of processFds()) {
    if (ref.kind === "perf") {
      const q = taskFdQuery(ref.pid, ref.fd);
      if (!q) continue; // a perf event without a BPF program (perf record, ...)
      const path = holderPath(q.path, ref.pid);
      perfEvents.push({ pid: ref.pid, comm: comm(ref.pid), fd: ref.fd, kind: q.kind, path, ...(path !== q.path ? { kernelPath: q.path } : {}), offset: q.offset, progId: q.progId, progName: progById.get(q.progId)?.name });
      continue;
    }
    const id = fdinfoId(ref.pid, ref.fd, `${ref.kind}_id`);
    if (id === undefined) continue;
    const holder = { pid: ref.pid, comm: comm(ref.pid), fd: ref.fd };
    const obj = ref.kind === "prog" ? progById.get(id) : ref.kind === "map" ? mapById.get(id) : linkById.get(id);
    obj?.holders.push(holder);
  }
  for (const [key, paths] of pinnedObjects()) {
    const [kind, idText] = key.split(":");
    const id = Number(idText);
    const obj = kind === "prog" ? progById.get(id) : kind === "map" ? mapById.get(id) : linkById.get(id);
    obj?.pins.push(...paths);
  }
  for (const l of links) {
    const holder = l.holders[0];
    if (l.uprobe && holder) l.uprobe.path = holderPath(l.uprobe.path, holder.pid);
  }
  return { programs, maps, links, perfEvents };
}

/**
 * A perf-event uprobe keeps the path string it was opened with; `/proc/self/fd/N` means fd N of
 * the process that opened it, which still holds it: its fd table names the file.
 */
function holderPath(path: string, pid: number): string {
  const m = /^\/proc\/self\/fd\/(\d+)$/.exec(path);
  if (!m) return path;
  try {
    return readlinkSync(`/proc/${pid}/fd/${m[1]}`);
  } catch {
    return path;
  }
}
