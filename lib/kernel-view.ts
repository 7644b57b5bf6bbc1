// The kernel's own account of what BPF is loaded and attached (`probe list`): every program,
// map and link by id, each uprobe link's file/offset/entry-or-return, every perf-event uprobe
// held by a process (BPF_TASK_FD_QUERY), and who holds each object (a process fd or a bpffs pin).
import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import { libbpf } from "./ffi/libbpf.ts";
import { closeFd } from "./ffi/libc.ts";
import { fdKind, type FdKind } from "./kernel/abi.ts";
import { linkInfo, mapInfo, progInfo, taskFdQuery, type ProgInfo } from "./kernel/bpf.ts";
import { pinnedObjects } from "./bpffs.ts";
import { processComm } from "./proc/identity.ts";
import { Btf } from "./btf.ts";

/** A process holding an fd to a BPF object or perf event. */
export interface Holder {
  pid: number;
  comm: string;
  fd: number;
}

export interface ProgView extends ProgInfo {
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
  /** Objects the kernel listed but would not let us open (EPERM without CAP_SYS_ADMIN). */
  unreadable: number;
  /** The kernel refused to enumerate programs, maps or links at all (BPF_*_GET_NEXT_ID needs CAP_SYS_ADMIN). */
  enumerationDenied: boolean;
  /** Processes whose fds could not be read (another user's, without CAP_SYS_PTRACE): their holdings are not shown. */
  hiddenProcesses: number;
}

type GetNext = (start: number, next: Uint32Array) => number;

const EPERM = 1, EACCES = 13;

/** Every id, in order; `denied` when the kernel refused to enumerate (libbpf returns -errno). */
function ids(getNext: GetNext): { ids: number[]; denied: boolean } {
  const out: number[] = [];
  const next = new Uint32Array(1);
  let cur = 0;
  let r: number;
  while ((r = getNext(cur, next)) === 0) {
    cur = next[0]!;
    out.push(cur);
  }
  return { ids: out, denied: r === -EPERM || r === -EACCES };
}

function linkView(fd: number): LinkView {
  const info = linkInfo(fd);
  const view: LinkView = { id: info.id, type: info.type, progId: info.progId, holders: [], pins: [] };
  if (info.uprobe) {
    view.uprobe = { kind: info.uprobe.retprobe ? "uretprobe" : "uprobe", path: info.uprobe.path, offsets: info.uprobe.offsets, pid: info.uprobe.pid };
  } else if (info.perfEvent) {
    view.perfEvent = info.perfEvent;
  }
  return view;
}

interface FdRef {
  pid: number;
  fd: number;
  kind: FdKind;
}

/**
 * Every fd of every process that is a BPF object or a perf event. Processes that exit meanwhile
 * are skipped; those whose fds we may not read are counted.
 */
function processFds(): { refs: FdRef[]; hidden: number } {
  const out: FdRef[] = [];
  let hidden = 0;
  let pids: string[];
  try {
    pids = readdirSync("/proc").filter((d) => /^\d+$/.test(d));
  } catch {
    return { refs: out, hidden };
  }
  for (const p of pids) {
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${p}/fd`);
    } catch (e) {
      const code = (e as { code?: string }).code;
      if (code === "EACCES" || code === "EPERM") hidden++;
      continue;
    }
    for (const f of fds) {
      let target: string;
      try {
        target = readlinkSync(`/proc/${p}/fd/${f}`);
      } catch {
        continue;
      }
      const kind = fdKind(target);
      if (kind) out.push({ pid: Number(p), fd: Number(f), kind });
    }
  }
  return { refs: out, hidden };
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

/** Snapshot of the kernel's BPF state. Objects created or removed while it runs may be missed. */
export function kernelView(): KernelView {
  const L = libbpf();
  let unreadable = 0;
  /** Opens an object by id, runs `f`, closes it; undefined when it went away meanwhile. */
  const withFd = <T>(open: (id: number) => number, id: number, f: (fd: number) => T): T | undefined => {
    const fd = open(id);
    if (fd < 0) {
      if (fd === -1 || fd === -13) unreadable++; // EPERM / EACCES: listed but not ours to open
      return undefined;
    }
    try {
      return f(fd);
    } catch {
      return undefined;
    } finally {
      closeFd(fd);
    }
  };
  const progIds = ids((s, n) => L.bpf_prog_get_next_id(s, n));
  const mapIds = ids((s, n) => L.bpf_map_get_next_id(s, n));
  const linkIds = ids((s, n) => L.bpf_link_get_next_id(s, n));
  const programs = progIds.ids
    .map((id) => withFd((i) => L.bpf_prog_get_fd_by_id(i), id, (fd): ProgView => {
      const p = progInfo(fd);
      return { ...p, name: fullProgramName(p), holders: [], pins: [] };
    }))
    .filter((x): x is ProgView => x !== undefined);
  const maps = mapIds.ids
    .map((id) => withFd((i) => L.bpf_map_get_fd_by_id(i), id, (fd): MapView => {
      const m = mapInfo(fd);
      return { id: m.id, name: m.name, type: m.typeName, keySize: m.keySize, valueSize: m.valueSize, maxEntries: m.maxEntries, btfId: m.btfId, holders: [], pins: [] };
    }))
    .filter((x): x is MapView => x !== undefined);
  const links = linkIds.ids
    .map((id) => withFd((i) => L.bpf_link_get_fd_by_id(i), id, linkView))
    .filter((x): x is LinkView => x !== undefined);

  const progById = new Map(programs.map((p) => [p.id, p]));
  const mapById = new Map(maps.map((m) => [m.id, m]));
  const linkById = new Map(links.map((l) => [l.id, l]));
  for (const l of links) l.progName = progById.get(l.progId)?.name;

  const comms = new Map<number, string>();
  const comm = (pid: number) => {
    if (!comms.has(pid)) comms.set(pid, processComm(pid));
    return comms.get(pid)!;
  };
  const perfEvents: PerfProbeView[] = [];
  const fds = processFds();
  for (const ref of fds.refs) {
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
  return { programs, maps, links, perfEvents, unreadable, enumerationDenied: progIds.denied || mapIds.denied || linkIds.denied, hiddenProcesses: fds.hidden };
}

const btfNames = new Map<number, Btf | null>();
/** A program's whole name: the kernel keeps 15 characters, its BTF the function's full name. */
function fullProgramName(p: ProgInfo): string {
  if (p.name.length < 15 || !p.btfId || !p.funcTypeId) return p.name;
  let btf = btfNames.get(p.btfId);
  if (btf === undefined) {
    try {
      btf = Btf.fromKernel(p.btfId);
    } catch {
      btf = null;
    }
    btfNames.set(p.btfId, btf);
  }
  const name = btf?.type(p.funcTypeId)?.name;
  return name && name.startsWith(p.name) ? name : p.name;
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
