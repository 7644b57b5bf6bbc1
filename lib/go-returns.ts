// Return probes for Go functions without uretprobes: a uretprobe rewrites the return address on
// the goroutine stack, which Go copies when the stack grows and walks for GC and panics, so the
// target dies ("unexpected return pc"). Instead, an entry uprobe goes on every return instruction,
// found by decoding the function from its first byte (lib/x86/decoder.ts).
import type { ElfFile } from "./elf.ts";
import { GoError } from "./go-error.ts";
import type { GoFunction } from "./go-pclntab.ts";
import { decodeRange, DecodeError } from "./x86/decoder.ts";

export interface ReturnSites {
  fn: GoFunction;
  /** File offsets of the return instructions, ascending: where the return probes go. */
  offsets: number[];
  /** Instructions decoded between entry and end. */
  instructions: number;
}

/** Functions larger than this are not decoded (Go's largest real functions are ~1 MB of code). */
const MAX_FUNCTION_BYTES = 16 << 20;

/**
 * The RET instructions of `fn`, as file offsets. Throws GoError when decoding does not land
 * exactly on the function's end, meets a byte that is not an instruction, finds a far return
 * (data in the text, never Go-compiled code), or finds no return at all (the function only
 * tail-calls or never returns): in all of those cases nothing may be attached.
 */
export function returnOffsets(elf: ElfFile, fn: GoFunction): ReturnSites {
  const size = fn.end - fn.entry;
  if (size <= 0 || size > MAX_FUNCTION_BYTES) throw new GoError(`${fn.name} in ${elf.path} has implausible bounds 0x${fn.entry.toString(16)}-0x${fn.end.toString(16)}`);
  const code = elf.readAt(fn.offset, size);
  if (code.length !== size) throw new GoError(`${fn.name} in ${elf.path} ends past the end of the file`);
  const offsets: number[] = [];
  let instructions = 0;
  try {
    for (const insn of decodeRange(code, 0, size, fn.offset)) {
      instructions++;
      if (!insn.ret) continue;
      if (insn.ret === "far-ret") {
        throw new GoError(
          `${fn.name} in ${elf.path} decodes to a far return at file offset 0x${insn.offset.toString(16)}: this is data inside the function, not code probe can put return probes in`,
        );
      }
      offsets.push(insn.offset);
    }
  } catch (e) {
    if (e instanceof DecodeError) {
      throw new GoError(`cannot find the returns of ${fn.name} in ${elf.path}: ${e.message}; refusing to attach return probes`, "probe its callers instead, or only its entry");
    }
    throw e;
  }
  if (offsets.length === 0) {
    throw new GoError(
      `${fn.name} in ${elf.path} has no RET instruction (it only tail-calls or never returns): there is no return to probe`,
      "probe the function it jumps to, or only its entry",
    );
  }
  return { fn, offsets, instructions };
}
