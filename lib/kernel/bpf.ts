// bpf(2) commands probe makes by hand (libbpf 1.1 predates uprobe_multi links and their info),
// and the info structs of programs, maps and links decoded into plain objects.
import { syscallErr, SYS, OsError, ptr, cstr, closeFd } from "../ffi/libc.ts";
import { libbpf } from "../ffi/libbpf.ts";
import {
  BPF_ATTACH, BPF_CMD, BPF_F_UPROBE_MULTI_RETURN, BPF_PROG_TYPE, LINK_CREATE_ATTR as LC, LINK_INFO as LI, LINK_TYPE_NAME,
  MAP_INFO as MI, MAP_TYPE_NAME, OBJ_NAME_LEN, PERF_EVENT_KIND, PROG_INFO as PI, PROG_LOAD_ATTR as PL, PROG_TYPE_NAME, TASK_FD_KIND,
  RAW_TRACEPOINT_ATTR as RT,
} from "./abi.ts";

function bpf(cmd: number, attr: Uint8Array): number {
  return syscallErr(SYS.bpf, cmd, ptr(attr), attr.length);
}

const td = new TextDecoder();
function cString(b: Uint8Array): string {
  const end = b.indexOf(0);
  return td.decode(end < 0 ? b : b.subarray(0, end));
}

/** Creates a uprobe_multi link: one kernel object for every offset, entry or return. */
export function linkCreateUprobeMulti(opts: {
  progFd: number;
  path: string;
  offsets: number[];
  cookies?: bigint[];
  /** USDT semaphores: file offsets of the reference counters the kernel raises while attached. */
  refCtrOffsets?: number[];
  retprobe: boolean;
  pid?: number;
}): number {
  const n = opts.offsets.length;
  const path = cstr(opts.path);
  const offsets = new BigUint64Array(opts.offsets.map(BigInt));
  const cookies = new BigUint64Array(opts.cookies ?? opts.offsets.map((_, i) => BigInt(i)));
  const refs = opts.refCtrOffsets ? new BigUint64Array(opts.refCtrOffsets.map(BigInt)) : undefined;
  const attr = new Uint8Array(LC.size);
  const v = new DataView(attr.buffer);
  v.setUint32(LC.prog_fd, opts.progFd, true);
  v.setUint32(LC.attach_type, BPF_ATTACH.TRACE_UPROBE_MULTI, true);
  v.setBigUint64(LC.uprobe_multi.path, BigInt(ptr(path)), true);
  v.setBigUint64(LC.uprobe_multi.offsets, BigInt(ptr(offsets)), true);
  v.setBigUint64(LC.uprobe_multi.ref_ctr_offsets, refs ? BigInt(ptr(refs)) : 0n, true);
  v.setBigUint64(LC.uprobe_multi.cookies, BigInt(ptr(cookies)), true);
  v.setUint32(LC.uprobe_multi.cnt, n, true);
  v.setUint32(LC.uprobe_multi.flags, opts.retprobe ? BPF_F_UPROBE_MULTI_RETURN : 0, true);
  v.setUint32(LC.uprobe_multi.pid, opts.pid ?? 0, true);
  const fd = bpf(BPF_CMD.LINK_CREATE, attr);
  if (fd < 0) throw new OsError("bpf(LINK_CREATE uprobe_multi)", -fd, `${opts.path}, ${n} offset(s)`);
  return fd;
}

/** Attaches a program to a perf event fd through a BPF link (kernel >= 5.15). */
export function linkCreatePerfEvent(progFd: number, perfFd: number, cookie: bigint): number {
  const attr = new Uint8Array(32);
  const v = new DataView(attr.buffer);
  v.setUint32(LC.prog_fd, progFd, true);
  v.setUint32(LC.target_fd, perfFd, true);
  v.setUint32(LC.attach_type, BPF_ATTACH.PERF_EVENT, true);
  v.setBigUint64(LC.perf_event.bpf_cookie, cookie, true);
  const fd = bpf(BPF_CMD.LINK_CREATE, attr);
  if (fd < 0) throw new OsError("bpf(LINK_CREATE perf_event)", -fd);
  return fd;
}

/** Attaches a raw tracepoint program (`raw_tp/NAME`); the returned fd is the attachment. */
export function rawTracepointOpen(name: string, progFd: number): number {
  const nameBuf = cstr(name);
  const attr = new Uint8Array(RT.size);
  const v = new DataView(attr.buffer);
  v.setBigUint64(RT.name, BigInt(ptr(nameBuf)), true);
  v.setUint32(RT.prog_fd, progFd, true);
  const fd = bpf(BPF_CMD.RAW_TRACEPOINT_OPEN, attr);
  if (fd < 0) throw new OsError("bpf(RAW_TRACEPOINT_OPEN)", -fd, name);
  return fd;
}

let multiSupported: boolean | undefined;
/**
 * Whether the kernel takes BPF_TRACE_UPROBE_MULTI programs (6.6+): loads a two-instruction
 * program with that expected attach type and closes it. Asked once per process.
 */
export function kernelHasUprobeMulti(): boolean {
  if (multiSupported !== undefined) return multiSupported;
  const insns = new Uint8Array([0xb7, 0, 0, 0, 0, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0]); // r0 = 0; exit
  const license = cstr("GPL");
  const attr = new Uint8Array(PL.size);
  const v = new DataView(attr.buffer);
  v.setUint32(PL.prog_type, BPF_PROG_TYPE.KPROBE, true);
  v.setUint32(PL.insn_cnt, 2, true);
  v.setBigUint64(PL.insns, BigInt(ptr(insns)), true);
  v.setBigUint64(PL.license, BigInt(ptr(license)), true);
  v.setUint32(PL.expected_attach_type, BPF_ATTACH.TRACE_UPROBE_MULTI, true);
  const fd = bpf(BPF_CMD.PROG_LOAD, attr);
  multiSupported = fd >= 0;
  if (fd >= 0) closeFd(fd);
  return multiSupported;
}

/** Raw bpf_obj_get_info_by_fd into a buffer of `size` bytes (`fill` sets pointers to output arrays first). */
export function objInfo(fd: number, size: number, fill?: (v: DataView) => void): DataView {
  const buf = new Uint8Array(size);
  const v = new DataView(buf.buffer);
  fill?.(v);
  const len = new Uint32Array([size]);
  const r = libbpf().bpf_obj_get_info_by_fd(fd, buf, len);
  if (r < 0) throw new OsError("bpf(OBJ_GET_INFO_BY_FD)", -r, `fd ${fd}`);
  return v;
}

/** The id of any BPF object (program, map, link: all keep it at offset 4 of their info). */
export function objectId(fd: number): number {
  return objInfo(fd, 8).getUint32(4, true);
}

export interface ProgInfo {
  id: number;
  type: string;
  tag: string;
  /** As the kernel keeps it: at most 15 characters. */
  name: string;
  mapIds: number[];
  btfId: number;
  /** The BTF type of the program's main function (its full name), 0 without BTF. */
  funcTypeId: number;
}

export function progInfo(fd: number): ProgInfo {
  const v = objInfo(fd, PI.size);
  const nMaps = v.getUint32(PI.nr_map_ids, true);
  let mapIds: number[] = [];
  if (nMaps > 0) {
    const buf = new Uint32Array(nMaps);
    const w = objInfo(fd, PI.size, (x) => {
      x.setUint32(PI.nr_map_ids, nMaps, true);
      x.setBigUint64(PI.map_ids, BigInt(ptr(buf)), true);
    });
    mapIds = [...buf.subarray(0, Math.min(nMaps, w.getUint32(PI.nr_map_ids, true)))];
  }
  const type = v.getUint32(PI.type, true);
  // The kernel keeps 15 characters of a name; the program's BTF has its first function's type id.
  let funcTypeId = 0;
  const nFunc = v.getUint32(PI.nr_func_info, true);
  const recSize = v.getUint32(PI.func_info_rec_size, true);
  if (nFunc > 0 && recSize >= 8 && v.getUint32(PI.btf_id, true)) {
    const buf = new Uint8Array(recSize * nFunc);
    objInfo(fd, PI.size, (x) => {
      x.setUint32(PI.nr_func_info, nFunc, true);
      x.setUint32(PI.func_info_rec_size, recSize, true);
      x.setBigUint64(PI.func_info, BigInt(ptr(buf)), true);
    });
    funcTypeId = new DataView(buf.buffer).getUint32(4, true); // struct bpf_func_info { insn_off; type_id; }
  }
  return {
    id: v.getUint32(PI.id, true),
    type: PROG_TYPE_NAME[type] ?? `type ${type}`,
    tag: [...new Uint8Array(v.buffer, PI.tag, 8)].map((b) => b.toString(16).padStart(2, "0")).join(""),
    name: cString(new Uint8Array(v.buffer, PI.name, OBJ_NAME_LEN)),
    mapIds,
    btfId: v.getUint32(PI.btf_id, true),
    funcTypeId,
  };
}

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
  const v = objInfo(fd, MI.size);
  const type = v.getUint32(MI.type, true);
  return {
    type,
    typeName: MAP_TYPE_NAME[type] ?? `type ${type}`,
    id: v.getUint32(MI.id, true),
    keySize: v.getUint32(MI.key_size, true),
    valueSize: v.getUint32(MI.value_size, true),
    maxEntries: v.getUint32(MI.max_entries, true),
    flags: v.getUint32(MI.map_flags, true),
    name: cString(new Uint8Array(v.buffer, MI.name, OBJ_NAME_LEN)),
    btfId: v.getUint32(MI.btf_id, true),
    btfKeyTypeId: v.getUint32(MI.btf_key_type_id, true),
    btfValueTypeId: v.getUint32(MI.btf_value_type_id, true),
  };
}

export interface LinkInfo {
  id: number;
  progId: number;
  type: string;
  /** For uprobe links: what the kernel says it attached. */
  uprobe?: { path: string; offsets: number[]; cookies: bigint[]; retprobe: boolean; pid: number };
  /** perf_event links that are not uprobes: the event kind and the kernel's name for it (a tracepoint's). */
  perfEvent?: { kind: string; name: string };
}

/** The kernel's own description of a link; for uprobes, whether it is an entry or return probe. */
export function linkInfo(fd: number): LinkInfo {
  const head = objInfo(fd, LI.size);
  const typeId = head.getUint32(LI.type, true);
  const info: LinkInfo = { id: head.getUint32(LI.id, true), progId: head.getUint32(LI.prog_id, true), type: LINK_TYPE_NAME[typeId] ?? `type ${typeId}` };
  const M = LI.uprobe_multi;
  const P = LI.perf_event;
  if (info.type === "uprobe_multi") {
    const count = head.getUint32(M.count, true);
    const pathBuf = new Uint8Array(4096);
    const offsets = new BigUint64Array(Math.max(count, 1));
    const cookies = new BigUint64Array(Math.max(count, 1));
    const v = objInfo(fd, LI.size, (w) => {
      w.setBigUint64(M.path, BigInt(ptr(pathBuf)), true);
      w.setBigUint64(M.offsets, BigInt(ptr(offsets)), true);
      w.setBigUint64(M.cookies, BigInt(ptr(cookies)), true);
      w.setUint32(M.path_size, pathBuf.length, true);
      w.setUint32(M.count, count, true);
    });
    const pathLen = v.getUint32(M.path_size, true);
    info.uprobe = {
      path: td.decode(pathBuf.subarray(0, Math.max(0, pathLen - 1))),
      offsets: [...offsets.subarray(0, count)].map(Number),
      cookies: [...cookies.subarray(0, count)],
      retprobe: (v.getUint32(M.flags, true) & BPF_F_UPROBE_MULTI_RETURN) !== 0,
      pid: v.getUint32(M.pid, true),
    };
  } else if (info.type === "perf_event") {
    const nameBuf = new Uint8Array(4096);
    const v = objInfo(fd, LI.size, (w) => {
      w.setBigUint64(P.name, BigInt(ptr(nameBuf)), true);
      w.setUint32(P.name_len, nameBuf.length, true);
    });
    const kind = PERF_EVENT_KIND[v.getUint32(P.type, true)] ?? "unknown";
    if (kind === "uprobe" || kind === "uretprobe") {
      const len = v.getUint32(P.name_len, true);
      info.uprobe = {
        path: td.decode(nameBuf.subarray(0, Math.max(0, len - 1))),
        offsets: [v.getUint32(P.offset, true)],
        cookies: [v.getBigUint64(P.cookie, true)],
        retprobe: kind === "uretprobe",
        pid: 0,
      };
    } else {
      info.perfEvent = { kind, name: cString(nameBuf) };
    }
  }
  return info;
}

/** BPF_TASK_FD_QUERY: what a perf event fd held by `pid` probes (the view `bpftool perf` shows). */
export function taskFdQuery(pid: number, fd: number): { progId: number; kind: string; path: string; offset: number } | undefined {
  const buf = new Uint8Array(4096);
  const len = new Uint32Array([buf.length]);
  const progId = new Uint32Array(1);
  const fdType = new Uint32Array(1);
  const off = new BigUint64Array(1);
  const addr = new BigUint64Array(1);
  const r = libbpf().bpf_task_fd_query(pid, fd, 0, buf, len, progId, fdType, off, addr);
  if (r < 0) return undefined;
  return {
    progId: progId[0]!,
    kind: TASK_FD_KIND[fdType[0]!] ?? `type ${fdType[0]}`,
    path: cString(buf.subarray(0, len[0]!)),
    offset: Number(off[0]!),
  };
}
