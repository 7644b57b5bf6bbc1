// USDT probes of an ELF file, from its `.note.stapsdt` section: one note per probe site (owner
// "stapsdt", type 3) holding the site's address, the link-time address of `.stapsdt.base`, the
// semaphore's address, then provider, name and argument specs as NUL-terminated strings. Notes are
// not loaded, so prelink-style relocation never updates them: the difference between the actual
// `.stapsdt.base` section address and the one a note recorded is added to its addresses.
// The kernel wants both addresses as FILE offsets: the uprobe's offset, and the semaphore's
// ref_ctr_offset, which it finds through whatever writable mapping of the file covers it.
import { ProbeError } from "../errors.ts";
import { PT_LOAD, SHT, STT, SHN_UNDEF, ET, cstrAt, type ElfFile, type Section, type Segment } from "../elf.ts";
import { parseUsdtArgs, UsdtArgError, type UsdtArg } from "./args.ts";
import { closestNames } from "../closest.ts";

export const NT_STAPSDT = 3;
export const STAPSDT_OWNER = "stapsdt";
const PF_X = 1;
const PF_W = 2;

export class UsdtNoteError extends ProbeError {}

/** One place in the code where a probe fires. */
export interface UsdtSite {
  provider: string;
  name: string;
  /** Link-time address of the probe's nop, adjusted by `.stapsdt.base`. */
  pc: number;
  /** File offset of `pc`: where the uprobe goes. */
  offset: number;
  /** `.stapsdt.base` address the note recorded (0 when it recorded none). */
  base: number;
  /** Link-time address of the semaphore (adjusted like pc), 0 when the probe has none. */
  semaphore: number;
  /** File offset of the semaphore: the kernel's ref_ctr_offset. 0 when there is none. */
  semaphoreOffset: number;
  /** Section holding the semaphore (normally `.probes`), empty when there is none. */
  semaphoreSection: string;
  /** Addresses exactly as the note stores them (what `readelf -n` prints). */
  note: { pc: number; base: number; semaphore: number };
  /** The argument specs as written (`-4@%edi 8@-8(%rbp)`). */
  argsText: string;
  /** Parsed specs; a spec probe cannot fetch is an `unsupported` entry with the reason. */
  args: UsdtArg[];
  /**
   * Why this site cannot be probed (its address is in no loadable segment, its semaphore has no
   * file bytes, an argument spec is malformed...), naming the file. When set, `offset` and
   * `semaphoreOffset` are meaningless and `args` is empty.
   */
  error?: string;
}

/** All sites of one provider:name. */
export interface UsdtProbe {
  provider: string;
  name: string;
  sites: UsdtSite[];
}

/** What the note parser needs of an ELF file: ElfFile has all of it. */
export interface NoteLayout {
  path: string;
  type: number;
  sections: readonly Section[];
  segments: readonly Segment[];
  /** Link-time address of a defined symbol; only consulted for symbolic operands. */
  symbolAddress?(name: string): number | undefined;
}

/** Notes sections beyond this are not USDT notes of any real program (libjvm's is ~60 KB). */
const MAX_NOTES_SECTION = 64 << 20;
const MAX_STRING = 4096;

/** Every USDT site in `elf`, in note order. [] when the file has no `.note.stapsdt`. */
export function readUsdtSites(elf: ElfFile): UsdtSite[] {
  const sections = elf.sections.filter((s) => s.name === ".note.stapsdt");
  if (sections.length === 0) return [];
  const layout: NoteLayout = {
    path: elf.path,
    type: elf.type,
    sections: elf.sections,
    segments: elf.segments,
    symbolAddress: symbolLookup(elf),
  };
  const out: UsdtSite[] = [];
  for (const sec of sections) {
    if (sec.type !== SHT.NOTE) throw new UsdtNoteError(`${elf.path}: section .note.stapsdt is not a note section (type ${sec.type})`);
    if (sec.size > MAX_NOTES_SECTION) throw new UsdtNoteError(`${elf.path}: section .note.stapsdt is implausibly large (${sec.size} bytes)`);
    let data: Uint8Array;
    try {
      data = elf.sectionBytes(sec);
    } catch (e) {
      throw new UsdtNoteError(`${elf.path}: cannot read section .note.stapsdt: ${(e as Error).message}`, undefined, { cause: e });
    }
    if (data.length !== sec.size) throw new UsdtNoteError(`${elf.path}: section .note.stapsdt runs past the end of the file`);
    out.push(...parseStapsdtNotes(data, layout));
  }
  return out;
}

/** readUsdtSites grouped by provider:name, in order of first appearance. */
export function readUsdtProbes(elf: ElfFile): UsdtProbe[] {
  return groupUsdtSites(readUsdtSites(elf));
}

export function groupUsdtSites(sites: readonly UsdtSite[]): UsdtProbe[] {
  const byKey = new Map<string, UsdtProbe>();
  for (const s of sites) {
    const key = `${s.provider}:${s.name}`;
    let p = byKey.get(key);
    if (!p) {
      p = { provider: s.provider, name: s.name, sites: [] };
      byKey.set(key, p);
    }
    p.sites.push(s);
  }
  return [...byKey.values()];
}

/**
 * Parses the bytes of a `.note.stapsdt` section. Notes of other owners or types are skipped. A
 * note whose framing or strings are malformed is a UsdtNoteError naming the file and the note's
 * offset (nothing after it can be trusted); a well-formed note whose addresses or argument specs
 * do not fit the file gives a site with `error` set.
 */
export function parseStapsdtNotes(data: Uint8Array, layout: NoteLayout): UsdtSite[] {
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const fail = (off: number, what: string): never => {
    throw new UsdtNoteError(`${layout.path}: malformed USDT note at offset ${off} of .note.stapsdt: ${what}`);
  };
  const base = stapsdtBase(layout);
  const out: UsdtSite[] = [];
  let off = 0;
  while (off < data.length) {
    if (data.length - off < 12) fail(off, `${data.length - off} trailing bytes, too short for a note header`);
    const namesz = dv.getUint32(off, true);
    const descsz = dv.getUint32(off + 4, true);
    const type = dv.getUint32(off + 8, true);
    const nameOff = off + 12;
    const descOff = nameOff + align4(namesz);
    const end = descOff + align4(descsz);
    // Notes are 4-byte aligned; the last one may omit the padding of its descriptor.
    if (descOff > data.length || descOff + descsz > data.length) fail(off, `note sizes (name ${namesz}, descriptor ${descsz}) run past the end of the section`);
    const owner = namesz > 0 ? cstrAt(data.subarray(nameOff, nameOff + namesz), 0) : "";
    if (owner === STAPSDT_OWNER && type === NT_STAPSDT) {
      out.push(parseSite(data.subarray(descOff, descOff + descsz), off, layout, base, fail));
    }
    off = Math.min(end, data.length);
  }
  return out;
}

function parseSite(
  desc: Uint8Array,
  noteOff: number,
  layout: NoteLayout,
  base: Section | undefined,
  fail: (off: number, what: string) => never,
): UsdtSite {
  if (desc.length < 24 + 3) fail(noteOff, `descriptor of ${desc.length} bytes, too short for three addresses and three strings`);
  const dv = new DataView(desc.buffer, desc.byteOffset, desc.byteLength);
  const rawPc = dv.getBigUint64(0, true);
  const rawBase = dv.getBigUint64(8, true);
  const rawSem = dv.getBigUint64(16, true);
  let pos = 24;
  const str = (what: string): string => {
    const limit = Math.min(desc.length, pos + MAX_STRING);
    let end = pos;
    while (end < limit && desc[end] !== 0) end++;
    if (end >= limit) fail(noteOff, `${what} is not NUL-terminated inside the note`);
    const s = new TextDecoder("latin1").decode(desc.subarray(pos, end));
    pos = end + 1;
    return s;
  };
  const provider = str("provider name");
  const name = str("probe name");
  const argsText = str("argument string");
  if (!isName(provider)) fail(noteOff, `provider name '${printable(provider)}' is not an identifier`);
  if (!isName(name)) fail(noteOff, `probe name '${printable(name)}' is not an identifier`);

  // From here on a problem concerns this site only (a linker leaves notes of code it discarded
  // with address 0): the site carries the error and the file's other probes stay usable.
  const notePc = Number(rawPc);
  const noteBase = Number(rawBase);
  const noteSem = Number(rawSem);
  const site: UsdtSite = {
    provider, name, pc: notePc, offset: 0, base: noteBase, semaphore: 0, semaphoreOffset: 0, semaphoreSection: "",
    note: { pc: notePc, base: noteBase, semaphore: noteSem }, argsText, args: [],
  };
  const problem = (what: string): UsdtSite => ({
    ...site,
    error: `${layout.path}: USDT probe ${provider}:${name} (note at offset ${noteOff} of .note.stapsdt) ${what}`,
  });
  const max = BigInt(Number.MAX_SAFE_INTEGER);
  if (rawPc > max || rawBase > max || rawSem > max) return problem(`has an out-of-range address (pc 0x${rawPc.toString(16)}, base 0x${rawBase.toString(16)}, semaphore 0x${rawSem.toString(16)})`);

  // Without a .stapsdt.base section (or a base in the note) there is nothing to adjust by.
  const delta = base && noteBase ? base.addr - noteBase : 0;
  const pc = notePc + delta;
  site.pc = pc;
  const at = `at 0x${pc.toString(16)}`;
  const seg = loadSegment(layout.segments, pc);
  if (!seg) return problem(`${at} is in no loadable segment`);
  if (!(seg.flags & PF_X)) return problem(`${at} is in a segment that is not executable`);
  if (pc >= seg.vaddr + seg.filesz) return problem(`${at} has no bytes in the file`);
  site.offset = pc - seg.vaddr + seg.offset;

  if (noteSem) {
    const semaphore = noteSem + delta;
    const sat = `has its semaphore at 0x${semaphore.toString(16)}`;
    const sseg = loadSegment(layout.segments, semaphore);
    if (!sseg) return problem(`${sat}, in no loadable segment`);
    // The kernel counts through a file mapping of the semaphore: it needs bytes in the file.
    if (semaphore + 2 > sseg.vaddr + sseg.filesz) return problem(`${sat}, which has no bytes in the file`);
    if (!(sseg.flags & PF_W)) return problem(`${sat}, in a read-only segment`);
    site.semaphore = semaphore;
    site.semaphoreOffset = semaphore - sseg.vaddr + sseg.offset;
    site.semaphoreSection = sectionAt(layout.sections, semaphore)?.name ?? "";
  }

  try {
    site.args = parseUsdtArgs(argsText, { pc, symbolAddress: layout.symbolAddress, fixedAddresses: layout.type === ET.EXEC });
  } catch (e) {
    if (e instanceof UsdtArgError) return problem(`has a malformed argument: ${e.message}`);
    throw e;
  }
  return site;
}

/**
 * Throws the first site error of `probe` (see UsdtSite.error), so that a probe is attached at all
 * of its sites or not at all.
 */
export function assertAttachable(probe: UsdtProbe): void {
  const bad = probe.sites.filter((s) => s.error);
  if (bad.length) {
    const more = bad.length > 1 ? ` (and ${bad.length - 1} more of its ${probe.sites.length} sites)` : "";
    throw new UsdtNoteError(`${bad[0]!.error}${more}`);
  }
}

/** The one `.stapsdt.base` section, if the file has it (allocated, so it has an address). */
function stapsdtBase(layout: NoteLayout): Section | undefined {
  return layout.sections.find((s) => s.name === ".stapsdt.base" && s.addr !== 0);
}

/** The PT_LOAD segment whose memory image holds `vaddr`. */
function loadSegment(segments: readonly Segment[], vaddr: number): Segment | undefined {
  return segments.find((s) => s.type === PT_LOAD && vaddr >= s.vaddr && vaddr < s.vaddr + s.memsz);
}

function sectionAt(sections: readonly Section[], vaddr: number): Section | undefined {
  return sections.find((s) => s.addr !== 0 && vaddr >= s.addr && vaddr < s.addr + s.size && s.type !== SHT.NOTE);
}

function symbolLookup(elf: ElfFile): (name: string) => number | undefined {
  let map: Map<string, number> | undefined;
  return (name) => {
    if (!map) {
      map = new Map();
      let symbols: ReturnType<ElfFile["symbols"]> = [];
      try {
        symbols = elf.symbols();
      } catch {
        // A corrupt symbol table: symbolic operands become unsupported arguments, nothing worse.
      }
      for (const s of symbols) {
        if (s.shndx === SHN_UNDEF || s.type === STT.SECTION || s.type === STT.FILE) continue;
        if (!map.has(s.name)) map.set(s.name, s.value);
      }
    }
    return map.get(name);
  };
}

function isName(s: string): boolean {
  return /^[A-Za-z_][\w.$-]{0,255}$/.test(s);
}

function printable(s: string): string {
  const t = s.length > 40 ? `${s.slice(0, 40)}...` : s;
  return t.replace(/[^\x20-\x7e]/g, "?");
}

function align4(n: number): number {
  return Math.ceil(n / 4) * 4;
}

/**
 * Finds a probe by `provider:name` or by `name` alone (which must then be unique). Unknown
 * names get up to three close ones as the hint.
 */
export function findUsdtProbe(probes: readonly UsdtProbe[], spec: string, file: string): UsdtProbe {
  const colon = spec.indexOf(":");
  const provider = colon >= 0 ? spec.slice(0, colon) : undefined;
  const name = colon >= 0 ? spec.slice(colon + 1) : spec;
  const hits = probes.filter((p) => p.name === name && (provider === undefined || p.provider === provider));
  if (hits.length === 1) return hits[0]!;
  if (hits.length > 1) {
    throw new UsdtNoteError(
      `USDT probe name ${name} is ambiguous in ${file}`,
      `name the provider: ${hits.map((p) => `${p.provider}:${p.name}`).join(", ")}`,
    );
  }
  if (probes.length === 0) throw new UsdtNoteError(`${file} has no USDT probes (no .note.stapsdt notes)`);
  const close = closestNames(spec, probes.map((p) => `${p.provider}:${p.name}`));
  throw new UsdtNoteError(`USDT probe ${spec} not found in ${file}`, close.length ? `did you mean ${close.join(", ")}?` : undefined);
}
