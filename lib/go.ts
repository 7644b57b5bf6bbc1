// Go executables: recognising them, their Go version and calling convention, and their functions
// (names as Go writes them, entry and end) from `.gopclntab`, which Go keeps even in binaries
// stripped with `-ldflags='-s -w'`. The tables are untrusted bytes: every offset and count is
// checked against the table before use, and a malformed one is a GoError naming the file.
import { ElfFile, STT, SHT, SHN_UNDEF, view } from "./elf.ts";
import { ProbeError } from "./errors.ts";
import { directBranchTargets } from "./x86/decoder.ts";

export class GoError extends ProbeError {}

export interface GoVersion {
  /** As the toolchain wrote it: `go1.19.8`, `go1.21rc2`, `devel go1.22-abc...`. */
  raw: string;
  major: number;
  minor: number;
}

export interface GoInfo {
  /** undefined when the binary does not say (no build info and no runtime.buildVersion). */
  version?: GoVersion;
  /** Where the version came from. */
  versionSource?: "buildinfo" | "runtime.buildVersion" | "pclntab";
  /** Main module path from the build info, when present. */
  modulePath?: string;
  /** The sections that identified the binary as Go. */
  evidence: string[];
  /** "register": Go >= 1.17 on amd64 (args in RAX RBX RCX RDI RSI R8 R9 R10 R11, R14 = g). */
  abi: "register" | "stack" | "unknown";
  /** No `.symtab`: function bounds come from `.gopclntab`. */
  stripped: boolean;
  /** Layout of `.gopclntab`, when the binary has one. */
  pclntabVersion?: "1.2" | "1.16" | "1.18" | "1.20";
}

export interface GoFunction {
  name: string;
  /** Entry virtual address (before load bias). */
  entry: number;
  /** First address past the function (its size is end - entry). */
  end: number;
  /** File offset of the entry: where a uprobe goes. */
  offset: number;
  /** Where the bounds came from. */
  source: "symtab" | "pclntab";
}

const BUILDINFO_MAGIC = "\xff Go buildinf:";

/** Go facts about an ELF file, or undefined when it is not a Go program. */
export function inspectGo(elf: ElfFile): GoInfo | undefined {
  const evidence = [".note.go.buildid", ".go.buildinfo", ".gopclntab"].filter((n) => elf.section(n));
  // Only look inside the data of files that already look like Go: C binaries can be huge.
  const pcln = evidence.length || elf.section(".data.rel.ro.gopclntab") ? findPclntab(elf) : undefined;
  if (pcln && !evidence.includes(pcln.sectionName)) evidence.push(pcln.sectionName === ".gopclntab" ? ".gopclntab" : `pclntab in ${pcln.sectionName}`);
  if (evidence.length === 0) return undefined;

  const info: GoInfo = { evidence, abi: "unknown", stripped: !elf.sections.some((s) => s.name === ".symtab") };
  if (pcln) info.pclntabVersion = pclntabVersion(pcln.bytes);

  const bi = readBuildInfo(elf);
  if (bi?.version) {
    info.version = parseVersion(bi.version);
    info.versionSource = "buildinfo";
    if (bi.modulePath) info.modulePath = bi.modulePath;
  }
  if (!info.version) {
    const v = runtimeBuildVersion(elf);
    if (v) {
      info.version = parseVersion(v);
      info.versionSource = "runtime.buildVersion";
    }
  }
  if (info.version) {
    const { major, minor } = info.version;
    info.abi = major > 1 || minor >= 17 ? "register" : "stack";
  } else if (info.pclntabVersion === "1.18" || info.pclntabVersion === "1.20") {
    // No version string, but this table layout only exists since Go 1.18: register ABI for sure.
    info.abi = "register";
    info.versionSource = "pclntab";
    info.version = { raw: `go${info.pclntabVersion} or later`, major: 1, minor: Number(info.pclntabVersion.split(".")[1]) };
  }
  return info;
}

/**
 * Throws unless arguments and results can be read in Go's register ABI (amd64, Go >= 1.17):
 * older Go passes everything on the stack and probe does not decode that.
 */
export function requireRegisterAbi(elf: ElfFile, info: GoInfo): void {
  if (info.abi === "register") return;
  if (info.abi === "stack") {
    throw new GoError(
      `${elf.path} was built with ${info.version!.raw}, which passes Go arguments on the stack; probe reads them only in the register ABI of Go 1.17 and later`,
      "rebuild the program with Go >= 1.17",
    );
  }
  throw new GoError(
    `cannot tell which Go version built ${elf.path} (no build info, no runtime.buildVersion), so not which calling convention it uses`,
    "rebuild it with Go >= 1.17, or probe it without --ret and without arguments",
  );
}

// ---------------------------------------------------------------------------------------------
// Build info: `.go.buildinfo` starts with "\xff Go buildinf:", pointer size, flags. Go >= 1.18
// (flag bit 1) stores the version and module info inline as varint-prefixed strings after a
// 32-byte header; older Go stores two pointers to Go string headers at offset 16.

export interface BuildInfo {
  version?: string;
  modulePath?: string;
  format: "inline" | "pointer";
}

export function readBuildInfo(elf: ElfFile): BuildInfo | undefined {
  const sec = elf.section(".go.buildinfo");
  if (!sec) return undefined;
  const b = elf.readAt(sec.offset, Math.min(sec.size, 64 * 1024));
  if (b.length < 32 || latin1(b.subarray(0, 14)) !== BUILDINFO_MAGIC) return undefined;
  const ptrSize = b[14]!;
  const flags = b[15]!;
  if (flags & 1) return undefined; // big-endian: not an x86-64 binary
  if (flags & 2) {
    let pos = 32;
    const version = varintString(b, pos);
    if (!version) return { format: "inline" };
    pos = version.next;
    const mod = varintString(b, pos);
    return { format: "inline", version: version.s, modulePath: mod ? modulePathOf(mod.s) : undefined };
  }
  if (ptrSize !== 8) return { format: "pointer" };
  const v = view(b);
  const version = goStringAt(elf, Number(v.getBigUint64(16, true)));
  const mod = goStringAt(elf, Number(v.getBigUint64(24, true)));
  return { format: "pointer", version, modulePath: mod ? modulePathOf(mod) : undefined };
}

/** A Go string header {ptr, len} at vaddr, dereferenced. */
function goStringAt(elf: ElfFile, vaddr: number): string | undefined {
  const off = vaddr ? elf.vaddrToOffset(vaddr) : undefined;
  if (off === undefined) return undefined;
  const h = view(elf.readAt(off, 16));
  if (h.byteLength < 16) return undefined;
  const p = elf.vaddrToOffset(Number(h.getBigUint64(0, true)));
  const len = Number(h.getBigUint64(8, true));
  if (p === undefined || len > 1 << 20) return undefined;
  return latin1(elf.readAt(p, len));
}

function varintString(b: Uint8Array, pos: number): { s: string; next: number } | undefined {
  let n = 0;
  let shift = 0;
  while (pos < b.length) {
    const c = b[pos++]!;
    n += (c & 0x7f) * 2 ** shift;
    shift += 7;
    if (!(c & 0x80)) break;
    if (shift > 35) return undefined;
  }
  if (n === 0 || pos + n > b.length) return undefined;
  return { s: latin1(b.subarray(pos, pos + n)), next: pos + n };
}

/** Module info is framed by 16 marker bytes; its "path\t<module>" line names the main package. */
function modulePathOf(modinfo: string): string | undefined {
  return /^path\t(.+)$/m.exec(modinfo)?.[1];
}

/** runtime.buildVersion (a Go string variable) when the binary still has its symbol table. */
function runtimeBuildVersion(elf: ElfFile): string | undefined {
  const sym = elf.symbols().find((s) => s.name === "runtime.buildVersion" && s.shndx !== SHN_UNDEF);
  return sym ? goStringAt(elf, sym.value) : undefined;
}

export function parseVersion(raw: string): GoVersion | undefined {
  const m = /go(\d+)\.(\d+)/.exec(raw);
  return m ? { raw, major: Number(m[1]), minor: Number(m[2]) } : undefined;
}

// ---------------------------------------------------------------------------------------------
// .gopclntab: a header, a table of (entry, _func offset) sorted by entry with one extra entry
// for the end of the text, and the function names. Layouts by magic:
//   0xfffffffb Go 1.2-1.15   0xfffffffa Go 1.16-1.17   0xfffffff0 Go 1.18-1.19   0xfffffff1 Go 1.20+

interface Pclntab {
  /** The section it is (or lies in, for external-linked PIEs that fold it into .data.rel.ro). */
  sectionName: string;
  vaddr: number;
  bytes: Uint8Array;
}

const pclntabCache = new WeakMap<ElfFile, Pclntab | null>();

function findPclntab(elf: ElfFile): Pclntab | undefined {
  const cached = pclntabCache.get(elf);
  if (cached !== undefined) return cached ?? undefined;
  let found: Pclntab | undefined;
  const named = elf.section(".gopclntab") ?? elf.section(".data.rel.ro.gopclntab");
  if (named && named.size >= 16) {
    found = { sectionName: named.name, vaddr: named.addr, bytes: elf.sectionBytes(named) };
  } else {
    // gcc-linked stripped PIEs keep no section for it: look for a valid header in the read-only data.
    for (const name of [".data.rel.ro", ".rodata", ".noptrdata"]) {
      const sec = elf.section(name);
      if (!sec || sec.type === SHT.NOBITS) continue;
      const data = elf.sectionBytes(sec);
      const at = scanForPclntab(data);
      if (at >= 0) {
        found = { sectionName: name, vaddr: sec.addr + at, bytes: data.subarray(at) };
        break;
      }
    }
  }
  pclntabCache.set(elf, found ?? null);
  return found;
}

/** Index of a plausible .gopclntab header in `data`, or -1. */
function scanForPclntab(data: Uint8Array): number {
  const v = view(data);
  for (let i = 0; i + 72 <= data.length; i += 8) {
    if (data[i + 3] !== 0xff || data[i + 4] !== 0 || data[i + 5] !== 0 || data[i + 6] !== 1 || data[i + 7] !== 8) continue;
    const version = pclntabVersion(data.subarray(i));
    if (!version) continue;
    const nfunc = Number(v.getBigUint64(i + 8, true));
    if (nfunc === 0 || nfunc > 10_000_000) continue;
    // The header's table offsets must all fall inside what follows.
    const offs = version === "1.2" ? [] : version === "1.16" ? [24, 32, 40, 48, 56] : [32, 40, 48, 56, 64];
    if (offs.every((o) => Number(v.getBigUint64(i + o, true)) < data.length - i)) return i;
  }
  return -1;
}

function pclntabVersion(b: Uint8Array): GoInfo["pclntabVersion"] {
  if (b.length < 8) return undefined;
  const magic = view(b).getUint32(0, true);
  switch (magic) {
    case 0xfffffffb:
      return "1.2";
    case 0xfffffffa:
      return "1.16";
    case 0xfffffff0:
      return "1.18";
    case 0xfffffff1:
      return "1.20";
  }
  return undefined;
}

const functionsCache = new WeakMap<ElfFile, GoFunction[]>();

/** Every function `.gopclntab` lists, in address order, with end = next function's entry. */
export function pclntabFunctions(elf: ElfFile): GoFunction[] {
  let fns = functionsCache.get(elf);
  if (!fns) {
    fns = readPclntabFunctions(elf);
    functionsCache.set(elf, fns);
  }
  return fns;
}

function readPclntabFunctions(elf: ElfFile): GoFunction[] {
  const pcln = findPclntab(elf);
  if (!pcln) throw new GoError(`${elf.path} has no .gopclntab: not a Go program, or one whose function table is gone`);
  const b = pcln.bytes;
  const v = view(b);
  const table = pcln.sectionName === ".gopclntab" ? ".gopclntab" : `the .gopclntab in ${pcln.sectionName}`;
  const version = pclntabVersion(b);
  if (!version) throw new GoError(`${elf.path}: ${table} has ${b.length >= 4 ? `an unknown magic 0x${v.getUint32(0, true).toString(16)}` : `only ${b.length} bytes`}`);
  const ptrSize = b[7]!;
  if (ptrSize !== 8 || b[4] !== 0 || b[5] !== 0) throw new GoError(`${elf.path}: ${table} is not for a 64-bit target`);
  const outside = (what: string, off: number) =>
    new GoError(`${elf.path}: ${table} is malformed: ${what} at offset 0x${off.toString(16)} is past its end (${b.length} bytes)`);
  const word = (off: number, what: string): number => {
    if (!(off >= 0 && off + 8 <= b.length)) throw outside(what, off);
    return Number(v.getBigUint64(off, true));
  };
  const u32 = (off: number, what: string): number => {
    if (!(off >= 0 && off + 4 <= b.length)) throw outside(what, off);
    return v.getUint32(off, true);
  };
  const nfunc = word(8, "the function count");
  // Each function has at least one functab entry (8 bytes from Go 1.18, 16 before): a count the
  // table cannot hold is corrupt, and must not size the arrays below.
  const entrySize = version === "1.18" || version === "1.20" ? 8 : 16;
  if (nfunc > b.length / entrySize) {
    throw new GoError(`${elf.path}: ${table} is malformed: it claims ${nfunc} functions, more than its ${b.length} bytes can hold`);
  }

  const entries: number[] = [];
  const nameOffs: number[] = [];
  let names = 0;
  if (version === "1.18" || version === "1.20") {
    // magic, pad, quantum, ptrSize, nfunc, nfiles, textStart, funcname, cu, filetab, pctab, pcln offsets
    const textStart = word(24, "the text start") || textStartFallback(elf, pcln.vaddr);
    names = word(32, "the name table offset");
    const functab = word(64, "the function table offset");
    for (let i = 0; i <= nfunc; i++) {
      entries.push(textStart + u32(functab + i * 8, `function table entry ${i}`));
      if (i < nfunc) nameOffs.push(u32(functab + u32(functab + i * 8 + 4, `function table entry ${i}`) + 4, `the record of function ${i}`));
    }
  } else if (version === "1.16") {
    names = word(24, "the name table offset");
    const functab = word(56, "the function table offset");
    for (let i = 0; i <= nfunc; i++) {
      entries.push(word(functab + i * 16, `function table entry ${i}`));
      if (i < nfunc) nameOffs.push(u32(functab + word(functab + i * 16 + 8, `function table entry ${i}`) + 8, `the record of function ${i}`));
    }
  } else {
    const functab = 16;
    for (let i = 0; i <= nfunc; i++) {
      entries.push(word(functab + i * 16, `function table entry ${i}`));
      if (i < nfunc) nameOffs.push(u32(word(functab + i * 16 + 8, `function table entry ${i}`) + 8, `the record of function ${i}`));
    }
  }

  const out: GoFunction[] = [];
  for (let i = 0; i < nfunc; i++) {
    const entry = entries[i]!;
    const offset = elf.vaddrToOffset(entry);
    if (offset === undefined) continue;
    const nameAt = names + nameOffs[i]!;
    if (!(nameAt < b.length)) throw outside(`the name of function ${i}`, nameAt);
    out.push({ name: cstr(b, nameAt), entry, end: entries[i + 1]!, offset, source: "pclntab" });
  }
  return out;
}

/**
 * Go 1.18+ records runtime.text in the table header, but a PIE's copy is filled in by a dynamic
 * relocation and reads as 0 in the file. Go's text then starts at runtime.text, which is the
 * start of .text unless C code (cgo, external linking) comes first.
 */
function textStartFallback(elf: ElfFile, pclntabVaddr: number): number {
  const rel = relativeRelocationAt(elf, pclntabVaddr + 24);
  if (rel !== undefined) return rel;
  const sym = elf.symbols().find((s) => s.name === "runtime.text" && s.shndx !== SHN_UNDEF);
  if (sym) return sym.value;
  const text = elf.section(".text");
  if (!text) throw new GoError(`${elf.path} has no .text section`);
  return text.addr;
}

/** The addend of an R_X86_64_RELATIVE relocation that patches `base + delta`, if there is one. */
function relativeRelocationAt(elf: ElfFile, where: number): number | undefined {
  const R_X86_64_RELATIVE = 8;
  for (const s of elf.sections) {
    if (s.name !== ".rela.dyn") continue;
    const d = elf.sectionBytes(s);
    const dv = view(d);
    for (let o = 0; o + 24 <= d.length; o += 24) {
      if (Number(dv.getBigUint64(o, true)) === where && Number(dv.getBigUint64(o + 8, true) & 0xffffffffn) === R_X86_64_RELATIVE) {
        return Number(dv.getBigInt64(o + 16, true));
      }
    }
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// Function lookup by Go name.

/** Go function by its full name (`main.(*T).M`, `net/http.(*conn).serve`). */
export function goFunction(elf: ElfFile, name: string): GoFunction {
  // .symtab gives exact sizes (without the alignment padding); pclntab still works when stripped.
  const sym = elf.symbols().find((s) => s.name === name && s.shndx !== SHN_UNDEF && s.type === STT.FUNC && s.size > 0);
  if (sym) {
    const offset = elf.vaddrToOffset(sym.value);
    if (offset === undefined) throw new GoError(`${name} at 0x${sym.value.toString(16)} is in no loadable segment of ${elf.path}`);
    return { name, entry: sym.value, end: sym.value + sym.size, offset, source: "symtab" };
  }
  const all = pclntabFunctions(elf);
  const same = all.filter((f) => sameGoName(f.name, name));
  if (same.length === 1) return same[0]!;
  if (same.length > 1) return abiInternalOf(elf, same);
  // `name.abi0` as --list-functions shows it in a stripped binary: the wrapper among `name`s.
  if (name.endsWith(".abi0")) {
    const base = all.filter((f) => sameGoName(f.name, name.slice(0, -".abi0".length)));
    const wrappers = base.length > 1 ? base.filter((f) => wrapperEntries(elf, base).has(f.entry)) : [];
    if (wrappers.length === 1) return { ...wrappers[0]!, name };
  }
  const close = suggestGo(all, name);
  throw new GoError(
    `Go function ${name} not found in ${elf.path}`,
    close.length ? `did you mean ${close.join(", ")}?` : "list them with --list-functions PATTERN (Go names look like main.(*T).M)",
  );
}

/** Larger "functions" are corrupt bounds, not code worth reading to tell wrappers apart. */
const MAX_DECODED_FUNCTION = 16 << 20;

/**
 * .gopclntab names an ABI wrapper like the function it wraps (the symbol table calls one of them
 * `name.abi0`). The wrapper is the one that calls or jumps to the other; the register-ABI
 * function is the one left.
 */
function abiInternalOf(elf: ElfFile, same: GoFunction[]): GoFunction {
  const wrappers = wrapperEntries(elf, same);
  const left = same.filter((f) => !wrappers.has(f.entry));
  if (left.length === 1) return left[0]!;
  throw new GoError(
    `${same.length} functions are named ${same[0]!.name} in ${elf.path} (at ${same.map((f) => `0x${f.entry.toString(16)}`).join(", ")}) and probe cannot tell which is the Go one`,
    "give its address instead of its name",
  );
}

/** Entries of the ABI wrappers among functions .gopclntab names alike: those that call or jump to another of them. */
function wrapperEntries(elf: ElfFile, same: GoFunction[]): Set<number> {
  const entries = new Set(same.map((f) => f.entry));
  const wrappers = new Set<number>();
  for (const f of same) {
    if (!(f.end - f.entry > 0 && f.end - f.entry <= MAX_DECODED_FUNCTION)) continue;
    try {
      const targets = directBranchTargets(elf.readAt(f.offset, f.end - f.entry), 0, f.end - f.entry, f.entry);
      if (targets.some((t) => t !== f.entry && entries.has(t))) wrappers.add(f.entry);
    } catch (e) {
      // Not decodable (or not in the file): cannot be told apart this way.
      if (!(e instanceof ProbeError)) throw e;
    }
  }
  return wrappers;
}

/**
 * The `name.abi0` of functions .gopclntab names like a register-ABI function: from the symbol
 * table when there is one, else the wrappers among same-named functions (stripped binaries).
 */
function abi0Names(elf: ElfFile, all: GoFunction[]): Map<number, string> {
  const out = new Map<number, string>();
  for (const s of elf.symbols()) {
    if (s.name.endsWith(".abi0") && s.type === STT.FUNC && s.shndx !== SHN_UNDEF) out.set(s.value, s.name);
  }
  if (out.size) return out;
  const byName = new Map<string, GoFunction[]>();
  for (const f of all) byName.set(f.name, [...(byName.get(f.name) ?? []), f]);
  for (const [name, same] of byName) {
    if (same.length < 2) continue;
    for (const e of wrapperEntries(elf, same)) out.set(e, `${name}.abi0`);
  }
  return out;
}

/**
 * Go functions whose name matches `pattern`, sorted by name: a whole-name glob when it has a `*`
 * or `?` wildcard, else a substring. `(*` is Go's pointer-receiver spelling, never a wildcard:
 * `(*conn).serve` is a substring, `main.(*T).*` a glob. ABI0 functions and wrappers are listed
 * by their own name (`runtime.args.abi0`), as the symbol table has them, never as a second line
 * with the register-ABI function's name.
 */
export function listGoFunctions(elf: ElfFile, pattern = ""): GoFunction[] {
  const match = matcher(pattern);
  const all = pclntabFunctions(elf);
  const abi0 = abi0Names(elf, all);
  return all
    .map((f) => (abi0.has(f.entry) ? { ...f, name: abi0.get(f.entry)! } : f))
    .filter((f) => match(f.name))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : a.entry - b.entry));
}

function matcher(pattern: string): (name: string) => boolean {
  const parts = pattern.split("(*");
  if (!parts.some((p) => /[*?]/.test(p))) return (n) => n.includes(pattern);
  const glob = (p: string) => p.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".");
  const re = new RegExp(`^${parts.map(glob).join("\\(\\*")}$`);
  return (n) => re.test(n);
}

function suggestGo(all: GoFunction[], name: string): string[] {
  // Users often type the method without the package or the receiver decoration.
  const tail = name.replace(/^.*\./, "");
  const hits = all.filter((f) => f.name.endsWith(`.${tail}`) || f.name.endsWith(`.${tail}-fm`));
  return hits.slice(0, 3).map((f) => f.name);
}

const dec = new TextDecoder("latin1");
const utf8 = new TextDecoder("utf-8");
function latin1(b: Uint8Array): string {
  return dec.decode(b);
}
/** Go function names are UTF-8. */
function cstr(b: Uint8Array, off: number): string {
  let end = off;
  while (end < b.length && b[end] !== 0) end++;
  return utf8.decode(b.subarray(off, end));
}

/** The linker writes `·` (in compiler-generated names) as `.` in the symbol table: accept both. */
function sameGoName(a: string, b: string): boolean {
  return a === b || a.replaceAll("·", ".") === b.replaceAll("·", ".");
}
