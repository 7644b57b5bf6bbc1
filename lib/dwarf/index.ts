// The DWARF reader: a function's parameters (names, types, where each is at the entry pc) and
// results, from the debug info of an ELF file or of its separate debug file.
//
//   const r = findDebugInfo(elf, "/usr/lib/x86_64-linux-gnu/libc.so.6", { open, release });
//   r.info?.functionAt(vaddr)       // the function whose code holds vaddr (ELF address, no bias)
//   r.info?.functionByName("malloc") // through the symbol tables, else the DWARF names
//   for (const f of r.info!.functions()) formatSignature(f)   // lazily, unit by unit
//
// DWARF 2 to 5 (gcc, clang, Go), plain or compressed (SHF_COMPRESSED zlib/zstd, .zdebug_*).
// Reads through the ElfFile's fd only what a lookup needs: .debug_aranges (else the unit DIEs'
// ranges) to find the unit; a walk of that unit that steps over DIEs (DW_AT_sibling) and decodes
// only the function found; the referenced types; the location lists. zlib sections are inflated
// in pieces, as far as a lookup reaches (zlib-section.ts).
// Malformed input ends in a DwarfError (a ProbeError) naming file, section and offset; never a
// raw JS error or a hang (the fuzz test checks this).
export { DebugInfo } from "./debug-info.ts";
export { findDebugInfo, buildId, debugLink, fileCrc32, hostOpener, type DebugInfoLookup, type DebugInfoResult, type ElfOpener } from "./debug-file.ts";
export type { DebugFunction, DebugParam } from "./functions.ts";
export type { DebugType, DebugMember, TypeKind, Qualifier } from "./types.ts";
export { declareC } from "./c-names.ts";
export type { ParamLocation } from "./locations.ts";
export type { ReadStats } from "./sections.ts";
export type { Range } from "./ranges.ts";
export { formatSignature, formatLocation } from "./format.ts";
export { DwarfError } from "./errors.ts";
