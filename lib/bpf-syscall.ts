// bpf(2) commands that libbpf 1.1 cannot make (uprobe_multi links, their link info), done by hand.
// Layouts follow include/uapi/linux/bpf.h of kernel 6.6+; offsets are spelled out beside each field.
import { syscallErr, SYS, OsError, ptr, cstr, closeFd } from "./ffi/libc.ts";
import { libbpf } from "./ffi/libbpf.ts";

export const BPF_CMD = { PROG_LOAD: 5, OBJ_GET_INFO_BY_FD: 15, LINK_CREATE: 28 } as const;
export const BPF_PROG_TYPE = { KPROBE: 2, TRACEPOINT: 5, PERF_EVENT: 7, RAW_TRACEPOINT: 17 } as const;
export const BPF_ATTACH = { PERF_EVENT: 41, TRACE_KPROBE_MULTI: 42, TRACE_UPROBE_MULTI: 48 } as const;
export const BPF_LINK_TYPE = {
  1: "raw_tracepoint", 2: "tracing", 3: "cgroup", 4: "iter", 5: "netns", 6: "xdp", 7: "perf_event",
  8: "kprobe_multi", 9: "struct_ops", 10: "netfilter", 11: "tcx", 12: "uprobe_multi", 13: "netkit",
} as Record<number, string>;
export const BPF_F_UPROBE_MULTI_RETURN = 1;
/** bpf_link_info.perf_event.type */
export const BPF_PERF_EVENT_TYPE = { 1: "uprobe", 2: "uretprobe", 3: "kprobe", 4: "kretprobe", 5: "tracepoint", 6: "event" } as Record<number, string>;

function bpf(cmd: number, attr: Uint8Array): number {
  return syscallErr(SYS.bpf, cmd, ptr(attr), attr.length);
}

/** Creates a uprobe_multi link: one kernel object for every offset, entry or return. */
export function linkCreateUprobeMulti(opts: {
  progFd: number;
  path: string;
  offsets: number[];
  cookies?: bigint[];
  retprobe: boolean;
  pid?: number;
}): number {
  const n = opts.offsets.length;
  const path = cstr(opts.path);
  const offsets = new BigUint64Array(opts.offsets.map(BigInt));
  const cookies = new BigUint64Array(opts.cookies ?? opts.offsets.map((_, i) => BigInt(i)));
  const attr = new Uint8Array(64);
  const v = new DataView(attr.buffer);
  v.setUint32(0, opts.progFd, true); // prog_fd
  v.setUint32(4, 0, true); // target_fd
  v.setUint32(8, BPF_ATTACH.TRACE_UPROBE_MULTI, true); // attach_type
  v.setUint32(12, 0, true); // flags
  v.setBigUint64(16, BigInt(ptr(path)), true); // uprobe_multi.path
  v.setBigUint64(24, BigInt(ptr(offsets)), true); // uprobe_multi.offsets
  v.setBigUint64(32, 0n, true); // uprobe_multi.ref_ctr_offsets
  v.setBigUint64(40, BigInt(ptr(cookies)), true); // uprobe_multi.cookies
  v.setUint32(48, n, true); // uprobe_multi.cnt
  v.setUint32(52, opts.retprobe ? BPF_F_UPROBE_MULTI_RETURN : 0, true); // uprobe_multi.flags
  v.setUint32(56, opts.pid ?? 0, true); // uprobe_multi.pid
  const fd = bpf(BPF_CMD.LINK_CREATE, attr);
  if (fd < 0) throw new OsError("bpf(LINK_CREATE uprobe_multi)", -fd, `${opts.path}, ${n} offset(s)`);
  return fd;
}

/** Attaches a program to a perf event fd through a BPF link (kernel >= 5.15). */
export function linkCreatePerfEvent(progFd: number, perfFd: number, cookie: bigint): number {
  const attr = new Uint8Array(32);
  const v = new DataView(attr.buffer);
  v.setUint32(0, progFd, true);
  v.setUint32(4, perfFd, true);
  v.setUint32(8, BPF_ATTACH.PERF_EVENT, true);
  v.setBigUint64(16, cookie, true); // perf_event.bpf_cookie
  const fd = bpf(BPF_CMD.LINK_CREATE, attr);
  if (fd < 0) throw new OsError("bpf(LINK_CREATE perf_event)", -fd);
  return fd;
}

let multiSupported: boolean | undefined;
/**
 * Whether the kernel takes BPF_TRACE_UPROBE_MULTI programs (6.6+): loads a two-instruction
 * program with that expected attach type and closes it.
 */
export function kernelHasUprobeMulti(): boolean {
  if (multiSupported !== undefined) return multiSupported;
  const insns = new Uint8Array([0xb7, 0, 0, 0, 0, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0]); // r0 = 0; exit
  const license = cstr("GPL");
  const attr = new Uint8Array(128);
  const v = new DataView(attr.buffer);
  v.setUint32(0, BPF_PROG_TYPE.KPROBE, true); // prog_type
  v.setUint32(4, 2, true); // insn_cnt
  v.setBigUint64(8, BigInt(ptr(insns)), true); // insns
  v.setBigUint64(16, BigInt(ptr(license)), true); // license
  v.setUint32(68, BPF_ATTACH.TRACE_UPROBE_MULTI, true); // expected_attach_type
  const fd = bpf(BPF_CMD.PROG_LOAD, attr);
  multiSupported = fd >= 0;
  if (fd >= 0) closeFd(fd);
  return multiSupported;
}

/** Raw bpf_obj_get_info_by_fd into a buffer of `size` bytes; returns the buffer. */
export function objInfo(fd: number, size: number, fill?: (v: DataView) => void): DataView {
  const buf = new Uint8Array(size);
  const v = new DataView(buf.buffer);
  fill?.(v);
  const len = new Uint32Array([size]);
  const r = libbpf().bpf_obj_get_info_by_fd(fd, buf, len);
  if (r < 0) throw new OsError("bpf(OBJ_GET_INFO_BY_FD)", -r, `fd ${fd}`);
  return v;
}

export interface LinkInfo {
  id: number;
  progId: number;
  type: string;
  /** For uprobe links: what the kernel says it attached. */
  uprobe?: { path: string; offsets: number[]; cookies: bigint[]; retprobe: boolean; pid: number };
}

/** The kernel's own description of a link; for uprobes, whether it is an entry or return probe. */
export function linkInfo(fd: number): LinkInfo {
  const head = objInfo(fd, 128);
  const typeId = head.getUint32(0, true);
  const info: LinkInfo = { id: head.getUint32(4, true), progId: head.getUint32(8, true), type: BPF_LINK_TYPE[typeId] ?? `type ${typeId}` };
  if (info.type === "uprobe_multi") {
    const count = head.getUint32(52, true);
    const pathBuf = new Uint8Array(4096);
    const offsets = new BigUint64Array(Math.max(count, 1));
    const cookies = new BigUint64Array(Math.max(count, 1));
    const v = objInfo(fd, 128, (w) => {
      w.setBigUint64(16, BigInt(ptr(pathBuf)), true); // uprobe_multi.path
      w.setBigUint64(24, BigInt(ptr(offsets)), true); // .offsets
      w.setBigUint64(40, BigInt(ptr(cookies)), true); // .cookies
      w.setUint32(48, pathBuf.length, true); // .path_size
      w.setUint32(52, count, true); // .count
    });
    const pathLen = v.getUint32(48, true);
    info.uprobe = {
      path: new TextDecoder().decode(pathBuf.subarray(0, Math.max(0, pathLen - 1))),
      offsets: [...offsets.subarray(0, count)].map(Number),
      cookies: [...cookies.subarray(0, count)],
      retprobe: (v.getUint32(56, true) & BPF_F_UPROBE_MULTI_RETURN) !== 0,
      pid: v.getUint32(60, true),
    };
  } else if (info.type === "perf_event") {
    const nameBuf = new Uint8Array(4096);
    const v = objInfo(fd, 128, (w) => {
      w.setBigUint64(24, BigInt(ptr(nameBuf)), true); // perf_event.uprobe.file_name
      w.setUint32(32, nameBuf.length, true); // perf_event.uprobe.name_len
    });
    const kind = BPF_PERF_EVENT_TYPE[v.getUint32(16, true)] ?? "unknown";
    if (kind === "uprobe" || kind === "uretprobe") {
      const len = v.getUint32(32, true);
      info.uprobe = {
        path: new TextDecoder().decode(nameBuf.subarray(0, Math.max(0, len - 1))),
        offsets: [v.getUint32(36, true)],
        cookies: [v.getBigUint64(40, true)],
        retprobe: kind === "uretprobe",
        pid: 0,
      };
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
  const kinds: Record<number, string> = { 0: "raw_tracepoint", 1: "tracepoint", 2: "kprobe", 3: "kretprobe", 4: "uprobe", 5: "uretprobe" };
  return {
    progId: progId[0]!,
    kind: kinds[fdType[0]!] ?? `type ${fdType[0]}`,
    path: new TextDecoder().decode(buf.subarray(0, len[0]!)).replace(/\0.*$/, ""),
    offset: Number(off[0]!),
  };
}
