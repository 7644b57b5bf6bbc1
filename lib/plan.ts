// The one answer to "where does a probe go?": from the functions a user names in a target to the
// file offsets of entry probes and of return probes. A C function gets an entry uprobe and a real
// uretprobe at its first instruction; a Go function gets its entry probe after its stack check
// (lib/go-entry.ts: once per call, not again after the stack grows) and its return probes as
// entry uprobes on every RET instruction (a uretprobe rewrites a return address on a stack Go
// moves). Offsets the
// user gives are checked: a return probe only at a function's first instruction, an entry probe
// only on an instruction boundary (decoded from the function's start).
import type { ElfFile, ElfSymbol } from "./elf.ts";
import { PF_X, PT_LOAD } from "./elf.ts";
import { ProbeError } from "./errors.ts";
import { resolveFunction, parseFunctionSpec } from "./symbols.ts";
import { inspectGo, requireRegisterAbi, type GoInfo } from "./go.ts";
import { goFunction } from "./go-functions.ts";
import { returnOffsets } from "./go-returns.ts";
import { entryAfterStackCheck } from "./go-entry.ts";
import { instructionStarts, DecodeError } from "./x86/decoder.ts";
import type { AttachError, ProbePoint } from "./uprobe.ts";

/** A probe that would corrupt the target or cannot be placed where asked. */
export class PlanError extends ProbeError {}

export interface PlannedFunction {
  /** As output names it: the symbol (`SSL_read`, `main.(*T).M`), with `+0x..` for offsets. */
  name: string;
  /** File offset of the entry probe. */
  entry: number;
  /** Go with returns: file offsets of the function's RET instructions. */
  rets?: number[];
}

export interface ProbePlan {
  functions: PlannedFunction[];
  /** Arguments and results in Go's register ABI; calls paired per goroutine. */
  goAbi: boolean;
  go?: GoInfo;
  /** Whether return probes are real uretprobes (C, or Go when forced) or entry probes at RETs. */
  retprobe: boolean;
  /** Lines for the user about how returns are probed. */
  notes: string[];
}

export interface PlanOptions {
  ret?: boolean;
  /** A real uretprobe on a Go function, as the user insists (it can crash the program). */
  unsafeUretprobe?: boolean;
  /** An entry probe where the decoder says no instruction starts (the user knows better). */
  forceOffset?: boolean;
  /**
   * Indexes (into `specs`) of functions the caller leaves out itself when the kernel cannot probe
   * their first instruction (a glob chose them: see unprobeableInstruction), instead of failing.
   */
  mayLeaveOut?: Set<number>;
}

/** Entry probes: one per function, its index as the cookie. */
export function entryPoints(plan: ProbePlan): ProbePoint[] {
  return plan.functions.map((f, i) => ({ offset: f.entry, cookie: BigInt(i) }));
}

/** Return probes: a uretprobe at each entry, or entry probes at each RET; the function's index as the cookie. */
export function returnPoints(plan: ProbePlan): ProbePoint[] {
  if (plan.retprobe) return entryPoints(plan);
  return plan.functions.flatMap((f, i) => (f.rets ?? []).map((offset) => ({ offset, cookie: BigInt(i) })));
}

function isAddress(spec: string): boolean {
  const s = parseFunctionSpec(spec);
  return s.rawOffset !== undefined || s.addend !== 0;
}

/** Plans probes for each of `specs` (names, `name+0x10`, offsets) in one file. */
export function planProbes(elf: ElfFile, specs: string[], o: PlanOptions = {}): ProbePlan {
  const go = inspectGo(elf);
  if (go) requireRegisterAbi(elf, go);
  const version = go?.version?.raw ?? "unknown version";
  const functions: PlannedFunction[] = [];
  let retsCount = 0;
  const retprobe = !go || !!o.unsafeUretprobe;
  for (const spec of specs) {
    if (go && !isAddress(spec)) {
      const fn = goFunction(elf, spec);
      const planned: PlannedFunction = { name: fn.name, entry: entryAfterStackCheck(elf, fn) };
      if (o.ret && !o.unsafeUretprobe) {
        planned.rets = returnOffsets(elf, fn).offsets;
        retsCount += planned.rets.length;
      }
      functions.push(planned);
      continue;
    }
    const f = resolveFunction(elf, spec);
    checkPlacement(elf, spec, f.offset, f.vaddr, o, go !== undefined);
    functions.push({ name: f.name, entry: f.offset });
  }
  functions.forEach((f, i) => o.mayLeaveOut?.has(i) || checkProbeable(elf, f));
  const notes: string[] = [];
  if (go) {
    if (!o.ret) notes.push(`Go ${version} (${go.abi} ABI)`);
    else if (o.unsafeUretprobe) notes.push(`Go ${version}: a real uretprobe, as asked: this can crash the program`);
    else notes.push(`Go ${version} (${go.abi} ABI): returns probed at ${retsCount} RET instruction${retsCount === 1 ? "" : "s"}, not with a uretprobe`);
  }
  return { functions, goAbi: go !== undefined, go, retprobe, notes };
}

/** The defined function symbol whose bytes hold `vaddr`, if any. */
export function functionContaining(elf: ElfFile, vaddr: number): ElfSymbol | undefined {
  let best: ElfSymbol | undefined;
  for (const s of elf.functions()) {
    if (vaddr >= s.value && vaddr < s.value + Math.max(s.size, 1) && (!best || s.size > 0)) best = s;
  }
  return best;
}

function executableSegment(elf: ElfFile, offset: number): boolean {
  return elf.segments.some((s) => s.type === PT_LOAD && (s.flags & PF_X) !== 0 && offset >= s.offset && offset < s.offset + s.filesz);
}

/** Instruction starts of a function, as file offsets. */
export function functionBoundaries(elf: ElfFile, sym: ElfSymbol): number[] {
  const start = elf.vaddrToOffset(sym.value);
  if (start === undefined || sym.size <= 0 || sym.size > 16 << 20) return [];
  const code = elf.readAt(start, sym.size);
  return instructionStarts(code, 0, code.length, start);
}

/**
 * Refuses probes that would corrupt the target: outside code, a return probe anywhere but a
 * function's first instruction (a uretprobe replaces what is at the stack top, which is the
 * return address only there), an entry probe inside an instruction (the kernel would emulate a
 * different instruction).
 */
function checkPlacement(elf: ElfFile, spec: string, offset: number, vaddr: number, o: PlanOptions, isGo: boolean): void {
  if (!executableSegment(elf, offset)) {
    throw new PlanError(`${spec} (file offset 0x${offset.toString(16)}) is not in an executable segment of ${elf.path}`, "give a function name, or an offset inside its code");
  }
  if (!isAddress(spec)) return;
  const sym = functionContaining(elf, vaddr);
  const atStart = sym !== undefined && sym.value === vaddr;
  if (o.ret && !atStart) {
    const where = sym ? `${sym.name}+0x${(vaddr - sym.value).toString(16)}` : `0x${offset.toString(16)}`;
    if (isGo && !o.unsafeUretprobe) {
      throw new PlanError(`${elf.path} is a Go program: return probes need a function name, not an address (${where})`, "give the function's name so probe can find its RET instructions");
    }
    throw new PlanError(
      `a return probe at ${where} would overwrite what is on the stack there, which is not the return address: only a function's first instruction takes one`,
      sym ? `give the function's name (${sym.name}), or drop the return probe` : "give a function's name, or drop the return probe",
    );
  }
  if (atStart || o.forceOffset) return;
  if (!sym) {
    throw new PlanError(`0x${offset.toString(16)} is in no function symbol of ${elf.path}: probe cannot check it starts an instruction`, "give a function name, or force the offset if you know it is an instruction boundary");
  }
  let starts: number[];
  try {
    starts = functionBoundaries(elf, sym);
  } catch (e) {
    if (e instanceof DecodeError) throw new PlanError(`cannot decode ${sym.name} in ${elf.path} to check the offset: ${e.message}`, "force the offset if you know it is an instruction boundary");
    throw e;
  }
  if (starts.includes(offset)) return;
  const symOff = offset - (vaddr - sym.value);
  const near = nearest(starts, offset).map((s) => `${sym.name}+0x${(s - symOff).toString(16)}`);
  throw new PlanError(
    `${spec} is inside an instruction of ${sym.name}: a probe there would make the program compute wrong results`,
    `instructions start at ${near.join(", ")}`,
  );
}

/** Legacy prefixes uprobes refuse on x86-64 (the kernel's is_prefix_bad): lock, and the es/cs/ss/ds overrides (ds is also CET's notrack). */
const REFUSED_PREFIXES = new Map([[0xf0, "lock"], [0x26, "es"], [0x2e, "cs"], [0x36, "ss"], [0x3e, "ds (notrack)"]]);
const LEGACY_PREFIXES = new Set([0xf0, 0xf2, 0xf3, 0x26, 0x2e, 0x36, 0x3e, 0x64, 0x65, 0x66, 0x67]);

/**
 * Refuses an entry probe on an instruction the kernel will not probe. The kernel checks only when
 * it writes the breakpoint into a process that maps the file: attaching to a file nobody runs yet
 * succeeds, and the probe then silently never fires. Checked here, it is refused the same way
 * whether the file is mapped or not.
 */
function checkProbeable(elf: ElfFile, f: PlannedFunction): void {
  let code: Uint8Array;
  try {
    code = elf.readAt(f.entry, 15);
  } catch {
    return; // past the end: the kernel's own refusal will say so
  }
  for (const b of code) {
    if (!LEGACY_PREFIXES.has(b)) return;
    const prefix = REFUSED_PREFIXES.get(b);
    if (!prefix) continue;
    const next = nextInstruction(elf, f.entry);
    throw new PlanError(
      `the kernel cannot probe the instruction at ${f.name} (offset 0x${f.entry.toString(16)} of ${elf.path}): uprobes refuse instructions with a ${prefix} prefix`,
      next ? `probe the next instruction instead: ${next}` : "probe a caller of it instead",
    );
  }
}

function nearest(starts: number[], offset: number): number[] {
  const i = starts.findIndex((s) => s > offset);
  const at = i < 0 ? starts.length : i;
  return starts.slice(Math.max(0, at - 2), at + 2);
}

/**
 * Why the kernel will refuse a uprobe on the instruction at `offset`, for the refusals known in
 * advance (arch/x86/kernel/uprobes.c: a LOCK or ES/CS/DS/SS prefix, a breakpoint already there),
 * or undefined. The kernel stays the judge: this only saves trying what it always refuses.
 */
export function unprobeableInstruction(elf: ElfFile, offset: number): string | undefined {
  let code: Uint8Array;
  try {
    code = elf.readAt(offset, 15);
  } catch {
    return undefined;
  }
  for (const b of code) {
    if (b === 0xf0) return "a lock-prefixed instruction";
    if (b === 0x26 || b === 0x2e || b === 0x36 || b === 0x3e) return "a segment-prefixed instruction";
    if (b === 0xcc) return "a breakpoint (int3)";
    // Other legacy prefixes (operand/address size, rep, FS/GS) and REX come before the opcode.
    if (b === 0x66 || b === 0x67 || b === 0xf2 || b === 0xf3 || b === 0x64 || b === 0x65 || (b >= 0x40 && b <= 0x4f)) continue;
    return undefined;
  }
  return undefined;
}

/** Names an attach error's culprit (`names` by cookie) and where its next instruction is, while the file is open. */
export function nameCulprit(e: AttachError, elf: ElfFile, display: string, names?: string[]): AttachError {
  const c = e.culprit;
  e.display = display;
  if (c) {
    e.culpritName = names?.[Number(c.cookie)] ?? `0x${c.offset.toString(16)}`;
    e.nextInstruction = nextInstruction(elf, c.offset);
  }
  return e;
}

/** The instruction after the one at `offset` in its function, as `name+0x..` (for unprobeable instructions). */
export function nextInstruction(elf: ElfFile, offset: number): string | undefined {
  const vaddr = elf.offsetToVaddr(offset);
  if (vaddr === undefined) return undefined;
  const sym = functionContaining(elf, vaddr);
  if (!sym) return undefined;
  try {
    const starts = functionBoundaries(elf, sym);
    const next = starts.find((s) => s > offset);
    if (next === undefined) return undefined;
    return `${sym.name}+0x${(next - offset + (vaddr - sym.value)).toString(16)}`;
  } catch {
    return undefined;
  }
}
