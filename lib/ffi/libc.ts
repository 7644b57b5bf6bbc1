// The libc symbols probe calls. Every libc function probe uses is declared here and nowhere else.
import { dlopen, ptr, read, CString, toArrayBuffer, type Pointer } from "bun:ffi";
import { ProbeError } from "../errors.ts";

// String literals, not FFIType members: TypeScript then infers each function's exact types.
// size_t is u64 on x86-64.
const i32 = "i32", u32 = "u32", i64 = "i64", u64 = "u64", p = "ptr", v = "void", cstring = "cstring";

export const libc = dlopen("libc.so.6", {
  __errno_location: { args: [], returns: p },
  strerror: { args: [i32], returns: cstring },
  // `syscall` is variadic; integer-only arguments pass in the same registers either way.
  syscall: { args: [i64, u64, u64, u64, u64, u64, u64], returns: i64 },
  setns: { args: [i32, i32], returns: i32 },
  unshare: { args: [i32], returns: i32 },
  open: { args: [p, i32, u32], returns: i32 },
  close: { args: [i32], returns: i32 },
  mmap: { args: [p, u64, i32, i32, i32, i64], returns: p },
  munmap: { args: [p, u64], returns: i32 },
  mount: { args: [p, p, p, u64, p], returns: i32 },
  clock_gettime: { args: [i32, p], returns: i32 },
  vsnprintf: { args: [p, u64, p, p], returns: i32 },
  fchdir: { args: [i32], returns: i32 },
  chroot: { args: [p], returns: i32 },
  fstatfs: { args: [i32, p], returns: i32 },
  poll: { args: [p, u64, i32], returns: i32 },
  isatty: { args: [i32], returns: i32 },
  // `fcntl` is variadic; its third argument is an integer here.
  fcntl: { args: [i32, i32, i64], returns: i32 },
});

const L = libc.symbols;

// x86-64 syscall numbers.
export const SYS = {
  bpf: 321,
  perf_event_open: 298,
  openat2: 437,
  pidfd_open: 434,
  memfd_create: 319,
} as const;

export const O = { RDONLY: 0, NOCTTY: 0o400, NONBLOCK: 0o4000, CLOEXEC: 0o2000000, PATH: 0o10000000, DIRECTORY: 0o200000 } as const;
export const CLONE = { NEWNS: 0x00020000, FS: 0x00000200, NEWPID: 0x20000000 } as const;
export const PROT = { READ: 1, WRITE: 2 } as const;
const MAP = { SHARED: 1 } as const;
const MAP_FAILED = -1;

export function errno(): number {
  return read.i32(L.__errno_location()!, 0);
}

/** An OS error with the errno and the context of what was being done. */
export class OsError extends ProbeError {
  constructor(
    readonly op: string,
    readonly errno: number,
    detail?: string,
    hint?: string,
  ) {
    super(`${op}: ${describeErrno(errno)}${detail ? ` (${detail})` : ""}`, hint);
  }
  get code(): string {
    return ERRNO_NAMES[this.errno] ?? `errno ${this.errno}`;
  }
}

const ERRNO_NAMES: Record<number, string> = {
  1: "EPERM", 2: "ENOENT", 3: "ESRCH", 4: "EINTR", 7: "E2BIG", 9: "EBADF", 12: "ENOMEM", 13: "EACCES",
  14: "EFAULT", 16: "EBUSY", 17: "EEXIST", 22: "EINVAL", 24: "EMFILE", 28: "ENOSPC", 38: "ENOSYS",
  95: "EOPNOTSUPP", 524: "ENOTSUPP",
};

export function describeErrno(e: number): string {
  const name = ERRNO_NAMES[e] ?? `errno ${e}`;
  const text = e === 524 ? "operation not supported" : String(L.strerror(e));
  return `${text} [${name}]`;
}

/** Throws OsError when a libc call returned -1; reads errno before anything else can run. */
export function check(ret: number | bigint, op: string, detail?: string): number {
  if (Number(ret) < 0) throw new OsError(op, errno(), detail);
  return Number(ret);
}

export function cstr(s: string): Uint8Array {
  return new TextEncoder().encode(s + "\0");
}

type Arg = number | bigint | Pointer | null;
function a(x: Arg | undefined): bigint {
  if (x === undefined || x === null) return 0n;
  return BigInt(x as number);
}

/** A raw syscall; returns the result or throws OsError with errno. */
export function syscall(nr: number, op: string, ...args: Arg[]): number {
  const r = L.syscall(nr, a(args[0]), a(args[1]), a(args[2]), a(args[3]), a(args[4]), a(args[5]));
  return check(r, op);
}

/** A raw syscall that returns -errno instead of throwing, for callers that branch on it. */
export function syscallErr(nr: number, ...args: Arg[]): number {
  const r = Number(L.syscall(nr, a(args[0]), a(args[1]), a(args[2]), a(args[3]), a(args[4]), a(args[5])));
  return r < 0 ? -errno() : r;
}

export function openPath(path: string, flags: number = O.RDONLY | O.CLOEXEC): number {
  const s = cstr(path);
  return check(L.open(s, flags, 0), "open", path);
}

export function closeFd(fd: number): void {
  if (fd >= 0) L.close(fd);
}

export interface Mapping {
  addr: number;
  length: number;
  buffer: ArrayBuffer;
}

export function mmapFd(fd: number, length: number, prot: number, offset: number): Mapping {
  const addr = L.mmap(null, length, prot, MAP.SHARED, fd, offset) as unknown as number;
  if (addr === MAP_FAILED || addr === 0 || addr === null || Number(addr) === 2 ** 64 - 1) {
    throw new OsError("mmap", errno(), `fd ${fd}, ${length} bytes`);
  }
  return { addr, length, buffer: toArrayBuffer(addr as unknown as Pointer, 0, length) };
}

export function munmap(m: Mapping): void {
  L.munmap(m.addr as unknown as Pointer, m.length);
}

export function setns(fd: number, nstype: number, detail?: string): void {
  check(L.setns(fd, nstype), "setns", detail);
}

export function unshare(flags: number): void {
  check(L.unshare(flags), "unshare");
}

export function fchdir(fd: number): void {
  check(L.fchdir(fd), "fchdir");
}

export function chroot(path: string): void {
  check(L.chroot(cstr(path)), "chroot", path);
}

export function mount(source: string, target: string, fstype: string, flags = 0): void {
  check(L.mount(cstr(source), cstr(target), cstr(fstype), BigInt(flags), null), "mount", `${fstype} on ${target}`);
}

const tsBuf = new BigInt64Array(2);
/** clock_gettime in ns; CLOCK_MONOTONIC is what bpf_ktime_get_ns reports. */
export function clockNs(clock: number): bigint {
  L.clock_gettime(clock, tsBuf);
  return tsBuf[0]! * 1_000_000_000n + tsBuf[1]!;
}
export const CLOCK = { REALTIME: 0, MONOTONIC: 1 } as const;

/** Formats a C printf with a va_list pointer (libbpf's print callback hands us one). */
// A va_list can be consumed once, so there is no sizing call: one buffer as large as a verifier log.
let fmtBuf: Uint8Array | undefined;
export function vformat(fmt: Pointer, ap: Pointer): string {
  const buf = (fmtBuf ??= new Uint8Array(1 << 20));
  const n = L.vsnprintf(buf, BigInt(buf.length), fmt, ap);
  return new TextDecoder().decode(buf.subarray(0, Math.max(0, Math.min(n, buf.length - 1))));
}

const statfsBuf = new BigInt64Array(15); // struct statfs is 120 bytes; f_type comes first
/** The filesystem magic of an open file (statfs.f_type): tells overlayfs without reading mountinfo. */
export function fsType(fd: number): number {
  check(L.fstatfs(fd, statfsBuf), "fstatfs");
  return Number(statfsBuf[0]!);
}
export const FS_MAGIC = { OVERLAYFS: 0x794c7630 } as const;

/** Whether `fd` is a terminal (libc's isatty; node:tty would cost a start-up its streams). */
export function isTerminal(fd: number): boolean {
  return L.isatty(fd) === 1;
}

const pollBuf = new ArrayBuffer(8);
/** Whether `fd` is readable now (poll with a zero timeout): a pidfd becomes readable when its process exits. */
export function readableNow(fd: number): boolean {
  const v = new DataView(pollBuf);
  v.setInt32(0, fd, true);
  v.setInt16(4, 1, true); // POLLIN
  v.setInt16(6, 0, true);
  const r = L.poll(ptr(pollBuf), 1n, 0);
  return r > 0 && (v.getInt16(6, true) & 1) !== 0;
}

const F_GETFL = 3;
const F_SETFL = 4;

/**
 * Makes writes to `fd` non-blocking (O_NONBLOCK on its open file description, which a shell or a
 * pipe's other writers share); returns what puts the flags back. A no-op where fcntl fails.
 */
export function setNonBlocking(fd: number): () => void {
  const flags = L.fcntl(fd, F_GETFL, 0n);
  if (flags < 0 || flags & O.NONBLOCK) return () => {};
  if (L.fcntl(fd, F_SETFL, BigInt(flags | O.NONBLOCK)) < 0) return () => {};
  return () => void L.fcntl(fd, F_SETFL, BigInt(flags));
}

/** Waits up to `ms` (-1: without a limit) for `fd` to take more bytes (poll POLLOUT); false on a timeout. */
export function writableWithin(fd: number, ms: number): boolean {
  const v = new DataView(pollBuf);
  v.setInt32(0, fd, true);
  v.setInt16(4, 4, true); // POLLOUT
  v.setInt16(6, 0, true);
  const r = L.poll(ptr(pollBuf), 1n, ms < 0 ? -1 : Math.floor(ms));
  // r < 0 (EINTR: a signal): not a timeout, the caller tries again.
  return r !== 0;
}

export { ptr, read, CString, toArrayBuffer };
