// The DWARF reader's public surface. See README-level notes in debug-info.ts (lookups),
// debug-file.ts (separate debug files), types.ts (DebugType) and locations.ts (ParamLocation).
export { DebugInfo } from "./debug-info.ts";
export { findDebugInfo, buildId, debugLink, fileCrc32, hostOpener, type DebugInfoLookup, type DebugInfoResult, type ElfOpener } from "./debug-file.ts";
export type { DebugFunction, DebugParam } from "./functions.ts";
export type { DebugType, DebugMember, TypeKind, Qualifier } from "./types.ts";
export { declareC } from "./types.ts";
export type { ParamLocation } from "./locations.ts";
export type { ReadStats } from "./sections.ts";
export type { Range } from "./ranges.ts";
export { formatSignature, formatLocation } from "./format.ts";
export { DwarfError } from "./errors.ts";
