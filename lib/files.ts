// Opening files that someone else may control (a container's root, a user's path): never block,
// never follow into something that is not a regular file, never read more than a cap.
// A FIFO opened for reading blocks until a writer comes; a device may act on open. So a path is
// first opened with O_PATH (no side effects), checked with fstat, and only a regular file is
// reopened for reading, through /proc/self/fd/N: the same inode, whatever the path points at now.
import { fstatSync, readSync, type Stats } from "node:fs";
import { closeFd, openPath, O, OsError } from "./ffi/libc.ts";
import { ProbeError } from "./errors.ts";

export class NotRegularFile extends ProbeError {}
export class FileNotFound extends ProbeError {}

function kindOf(st: Stats): string {
  if (st.isFIFO()) return "a FIFO";
  if (st.isDirectory()) return "a directory";
  if (st.isSocket()) return "a socket";
  if (st.isCharacterDevice()) return "a character device";
  if (st.isBlockDevice()) return "a block device";
  return "not a regular file";
}

/**
 * Turns an O_PATH fd into a readable fd of the same regular file (closing the O_PATH one), or
 * throws NotRegularFile naming `display`.
 */
export function reopenRegular(pathFd: number, display: string): number {
  try {
    const st = fstatSync(pathFd);
    if (!st.isFile()) throw new NotRegularFile(`${display}: not a regular file (${kindOf(st)})`, "give the path of an executable or library file");
    return openPath(`/proc/self/fd/${pathFd}`, O.RDONLY | O.CLOEXEC | O.NONBLOCK | O.NOCTTY);
  } finally {
    closeFd(pathFd);
  }
}

/** Opens a regular file for reading without blocking on whatever the path turns out to be. */
export function openRegular(path: string, display = path): number {
  let fd: number;
  try {
    fd = openPath(path, O.PATH | O.CLOEXEC);
  } catch (e) {
    const err = e as OsError;
    if (err.errno === 2) throw new FileNotFound(`${display}: file not found`, "give an existing path, or a library name like 'libc'");
    throw new ProbeError(`${display}: ${err.message.replace(/^open: /, "")}`, undefined, { cause: e });
  }
  return reopenRegular(fd, display);
}

/** Reads a whole regular file by fd, refusing one larger than `maxBytes` (a real ld.so.cache is ~100 KB). */
export function readFdCapped(fd: number, maxBytes: number, display: string): Uint8Array {
  const size = fstatSync(fd).size;
  if (size > maxBytes) throw new ProbeError(`${display}: ${size} bytes, more than the ${maxBytes} probe reads of such a file`, "a file this large is not what it claims to be");
  const buf = new Uint8Array(size);
  let off = 0;
  while (off < size) {
    const n = readSync(fd, buf, off, size - off, off);
    if (n <= 0) break;
    off += n;
  }
  return buf.subarray(0, off);
}

/** Reads a whole regular file by path, capped (see readFdCapped); undefined when it does not exist. */
export function readRegularCapped(path: string, maxBytes: number, display = path): Uint8Array | undefined {
  let fd: number;
  try {
    fd = openRegular(path, display);
  } catch (e) {
    if (e instanceof FileNotFound) return undefined;
    throw e;
  }
  try {
    return readFdCapped(fd, maxBytes, display);
  } finally {
    closeFd(fd);
  }
}
