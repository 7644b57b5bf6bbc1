// Where a Go function's entry probe goes: after its stack check. A Go function starts by comparing
// the stack pointer with the goroutine's stack limit (`cmp 0x10(%r14),%rsp; jbe more`); when the
// stack is too small it calls runtime.morestack, which copies the stack and runs the function
// again from its first instruction. A probe on that first instruction then fires twice for one
// call (a new goroutine's first calls often grow its stack: an HTTP handler seen twice per
// request). Right after the check, nothing has changed yet — the arguments are in their
// registers, the return address is at the stack top, no frame is set up — and that point runs
// once per call.
import type { ElfFile } from "./elf.ts";
import type { GoFunction } from "./go-pclntab.ts";
import { instructionLength } from "./x86/decoder.ts";

/**
 * The file offset of the instruction after `fn`'s stack check, or its entry when it has none
 * (NOSPLIT functions) or one of a shape not recognised (huge frames compare differently).
 *
 * Recognised: `[lea -N(%rsp),%r12;] cmp 0x10(%r14),%rsp|%r12; jbe|jls rel8|rel32` (the
 * register ABI's g is R14; `0x10` is g.stackguard0).
 */
export function entryAfterStackCheck(elf: ElfFile, fn: GoFunction): number {
  const code = elf.readAt(fn.offset, Math.min(32, fn.end - fn.entry));
  let pos = 0;
  const next = (): number => {
    const n = instructionLength(code, pos, code.length);
    return n > 0 ? n : -1;
  };
  let n = next();
  if (n < 0) return fn.offset;
  // lea -N(%rsp),%r12: 4c 8d 64 24 d8 / 4c 8d a4 24 d32 (a frame larger than the guard's slack).
  if (code[0] === 0x4c && code[1] === 0x8d && (code[2] === 0x64 || code[2] === 0xa4) && code[3] === 0x24) {
    pos += n;
    n = next();
    if (n < 0) return fn.offset;
  }
  // cmp 0x10(%r14),%rsp (49 3b 66 10) or cmp 0x10(%r14),%r12 (4d 3b 66 10).
  const cmp = (code[pos] === 0x49 || code[pos] === 0x4d) && code[pos + 1] === 0x3b && code[pos + 2] === 0x66 && code[pos + 3] === 0x10 && n === 4;
  if (!cmp) return fn.offset;
  pos += n;
  n = next();
  // jbe rel8 (76 xx) or jbe rel32 (0f 86 xx xx xx xx).
  const jbe = (code[pos] === 0x76 && n === 2) || (code[pos] === 0x0f && code[pos + 1] === 0x86 && n === 6);
  if (!jbe) return fn.offset;
  return fn.offset + pos + n;
}
