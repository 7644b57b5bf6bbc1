// User-space stack unwinding for probe's --stack/--stacks: the copied registers and stack of a
// probed call -> return addresses (unwind), -> function names (Symbolizer). See each module.
export { AddressSpace, mappingsFromMapsEntries, type Mapping, type ElfOpener, type Located } from "./address-space.ts";
export { unwind, type UnwindMode, type UnwindRegisters, type StackSnapshot, type UnwindOptions, type UnwindResult, type UnwindEnd, type FrameMethod } from "./unwinder.ts";
export { Symbolizer, SymbolTable, frameLabel, buildId, debugFilePaths, type SymbolizedFrame, type DebugFileOpener } from "./symbolize.ts";
export { FileCfi, type CfiLookup } from "./file-cfi.ts";
export { GoFrameTable, type GoFrame } from "./go-frames.ts";
export { CfiError } from "./errors.ts";
