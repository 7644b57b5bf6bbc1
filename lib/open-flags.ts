// open(2) flags, openat2(2) resolve flags and AT_FDCWD as the kernel's x86-64 ABI defines them
// (asm-generic/fcntl.h, linux/openat2.h): decoded to `O_WRONLY|O_CREAT|O_TRUNC` for people.

export const AT_FDCWD = -100;

/** Single-bit flags, in the order they are printed (after the access mode). */
const OPEN_BITS: readonly [name: string, value: number][] = [
  ["O_CREAT", 0o100],
  ["O_EXCL", 0o200],
  ["O_NOCTTY", 0o400],
  ["O_TRUNC", 0o1000],
  ["O_APPEND", 0o2000],
  ["O_NONBLOCK", 0o4000],
  ["O_DSYNC", 0o10000],
  ["O_ASYNC", 0o20000],
  ["O_DIRECT", 0o40000],
  ["O_LARGEFILE", 0o100000],
  ["O_DIRECTORY", 0o200000],
  ["O_NOFOLLOW", 0o400000],
  ["O_NOATIME", 0o1000000],
  ["O_CLOEXEC", 0o2000000],
  ["O_PATH", 0o10000000],
];

/** Two-bit flags the kernel builds from single bits: O_SYNC = __O_SYNC|O_DSYNC, O_TMPFILE = __O_TMPFILE|O_DIRECTORY. */
const O_SYNC = 0o4010000;
const O___SYNC = 0o4000000;
const O_TMPFILE = 0o20200000;
const O___TMPFILE = 0o20000000;
export const O_CREAT = 0o100;

export const OPEN_FLAG_VALUES: Readonly<Record<string, number>> = Object.fromEntries([
  ["O_RDONLY", 0], ["O_WRONLY", 1], ["O_RDWR", 2], ...OPEN_BITS, ["O_SYNC", O_SYNC], ["O_TMPFILE", O_TMPFILE],
]);

const ACCESS = ["O_RDONLY", "O_WRONLY", "O_RDWR", "O_ACCMODE"];

/** `O_RDONLY|O_CLOEXEC`; bits with no name are added in octal (`O_RDONLY|0o40000000`). */
export function openFlagsText(flags: number | bigint): string {
  const big = BigInt(flags);
  let f = Number(big & 0xffffffffn);
  const parts = [ACCESS[f & 3]!];
  f &= ~3;
  // O_SYNC before its O_DSYNC bit, O_TMPFILE before its O_DIRECTORY bit.
  const sync = (f & O_SYNC) === O_SYNC;
  const tmpfile = (f & O_TMPFILE) === O_TMPFILE;
  if (sync) f &= ~O_SYNC;
  if (tmpfile) f &= ~O_TMPFILE;
  for (const [name, v] of OPEN_BITS) {
    if (f & v) {
      parts.push(name);
      f &= ~v;
    }
  }
  if (sync) parts.push("O_SYNC");
  if (tmpfile) parts.push("O_TMPFILE");
  if (f & O___SYNC) {
    parts.push("__O_SYNC");
    f &= ~O___SYNC;
  }
  if (f & O___TMPFILE) {
    parts.push("__O_TMPFILE");
    f &= ~O___TMPFILE;
  }
  const rest = BigInt(f >>> 0) | (big >> 32n << 32n);
  if (rest) parts.push(`0o${rest.toString(8)}`);
  return parts.join("|");
}

/** Whether the open takes a mode (it creates a file). */
export function openTakesMode(flags: number | bigint): boolean {
  const f = Number(BigInt(flags) & 0xffffffffn);
  return (f & O_CREAT) !== 0 || (f & O___TMPFILE) !== 0;
}

const RESOLVE_BITS: readonly [name: string, value: number][] = [
  ["RESOLVE_NO_XDEV", 0x01],
  ["RESOLVE_NO_MAGICLINKS", 0x02],
  ["RESOLVE_NO_SYMLINKS", 0x04],
  ["RESOLVE_BENEATH", 0x08],
  ["RESOLVE_IN_ROOT", 0x10],
  ["RESOLVE_CACHED", 0x20],
];

export const RESOLVE_FLAG_VALUES: Readonly<Record<string, number>> = Object.fromEntries(RESOLVE_BITS);

/** `RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS`; "" for 0. */
export function resolveFlagsText(resolve: number | bigint): string {
  let r = BigInt(resolve);
  const parts: string[] = [];
  for (const [name, v] of RESOLVE_BITS) {
    if (r & BigInt(v)) {
      parts.push(name);
      r &= ~BigInt(v);
    }
  }
  if (r) parts.push(`0x${r.toString(16)}`);
  return parts.join("|");
}
