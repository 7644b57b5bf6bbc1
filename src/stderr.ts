// probe's one way to write to stderr: a plain synchronous write to fd 2.
// Not process.stderr: Bun builds Node's whole stream machinery the first time process.stderr is
// touched (even by reading its property descriptor), some 30 ms of CPU at every start for the few
// lines probe writes there, and a stream whose reader is gone makes the run exit 1.
// Synchronous is what Node does for pipes, files and terminals on Linux anyway.
import { writeSync } from "node:fs";
import type * as Libc from "../lib/ffi/libc.ts";

/** Writes `text` to stderr whole: a full non-blocking pipe is waited for (5 s at most); a closed stderr drops it, the run goes on (the data goes to stdout). */
export function writeStderr(text: string): void {
  const bytes = Buffer.from(text);
  let off = 0;
  let waits = 0;
  while (off < bytes.length) {
    try {
      off += writeSync(2, bytes, off, bytes.length - off);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === "EINTR") continue;
      if (code === "EAGAIN" && waits++ < 50) {
        (require("../lib/ffi/libc.ts") as typeof Libc).writableWithin(2, 100);
        continue;
      }
      return; // EPIPE, EBADF, or a reader that does not read
    }
  }
}
