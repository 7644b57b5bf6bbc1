// Where a binary's DWARF is: in the binary itself, or in a separate debug file found the way gdb
// finds it: /usr/lib/debug/.build-id/xx/rest.debug from the GNU build-id note, then the
// .gnu_debuglink name (checked by CRC32) next to the binary, in its .debug/ directory and under
// /usr/lib/debug/<its directory>. Every path goes through the caller's opener, so a container's
// files are looked up inside its root. A candidate that does not belong to the binary (another
// build-id, another CRC) is ignored, and the reason is reported.
import { openSync, closeSync } from "node:fs";
import { ElfFile, SHT } from "../elf.ts";
import { DebugInfo } from "./debug-info.ts";
import { DwarfError } from "./errors.ts";

/** Opens an ELF file at a path as the target sees it; undefined when there is none. */
export type ElfOpener = (path: string) => ElfFile | undefined;

export interface DebugInfoLookup {
  /** Opens candidate files (resolving paths in the target's root). */
  open: ElfOpener;
  /** Called for every file `open` returned that is not kept (close its fd here). */
  release?: (elf: ElfFile) => void;
  /** Root of the separate debug files; `/usr/lib/debug` by default. */
  debugDir?: string;
}

export interface DebugInfoResult {
  /** The DWARF reader, undefined when no debug info was found. */
  info?: DebugInfo;
  /** Where the types came from: the binary's path or the debug file's (as opened). */
  path?: string;
  /** "binary", "build-id" or "debuglink". */
  source?: "binary" | "build-id" | "debuglink";
  /** The ELF file holding the DWARF (the caller's binary, or one `open` returned and now owned by the caller). */
  elf?: ElfFile;
  /** The binary's GNU build-id, hex. */
  buildId?: string;
  /** What was tried and why it was not used, one sentence each. */
  notes: string[];
}

const NT_GNU_BUILD_ID = 3;
const MAX_NOTES_BYTES = 1 << 20;

/** The GNU build-id of an ELF file (hex), from .note.gnu.build-id or any SHT_NOTE section. */
export function buildId(elf: ElfFile): string | undefined {
  const notes = elf.sections.filter((s) => s.type === SHT.NOTE);
  notes.sort((a, b) => (a.name === ".note.gnu.build-id" ? -1 : b.name === ".note.gnu.build-id" ? 1 : 0));
  for (const s of notes) {
    if (s.size > MAX_NOTES_BYTES || s.offset + s.size > elf.size) continue;
    const b = elf.readAt(s.offset, s.size);
    const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
    for (let off = 0; off + 12 <= b.length; ) {
      const namesz = v.getUint32(off, true);
      const descsz = v.getUint32(off + 4, true);
      const type = v.getUint32(off + 8, true);
      const nameOff = off + 12;
      const descOff = nameOff + align4(namesz);
      const next = descOff + align4(descsz);
      if (next > b.length || next <= off) break;
      const name = String.fromCharCode(...b.subarray(nameOff, nameOff + Math.max(0, namesz - 1)));
      if (type === NT_GNU_BUILD_ID && name === "GNU" && descsz > 0 && descsz <= 64) return hex(b.subarray(descOff, descOff + descsz));
      off = next;
    }
  }
  return undefined;
}

/** The .gnu_debuglink of an ELF file: the debug file's name and the CRC32 of its contents. */
export function debugLink(elf: ElfFile): { name: string; crc: number } | undefined {
  const s = elf.section(".gnu_debuglink");
  if (!s || s.size < 5 || s.size > 4096 || s.offset + s.size > elf.size) return undefined;
  const b = elf.readAt(s.offset, s.size);
  const end = b.indexOf(0);
  if (end <= 0) return undefined;
  const crcOff = align4(end + 1);
  if (crcOff + 4 > b.length) return undefined;
  const name = new TextDecoder().decode(b.subarray(0, end));
  // A link is a file name, never a path: anything else would let a binary point outside the dirs.
  if (name.includes("/") || name === "." || name === "..") return undefined;
  return { name, crc: new DataView(b.buffer, b.byteOffset).getUint32(crcOff, true) };
}

function align4(n: number): number {
  return (n + 3) & ~3;
}

function hex(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

let crcTable: Uint32Array | undefined;

/** CRC-32 (IEEE, as .gnu_debuglink uses) of a whole file, read in 1 MiB chunks. */
export function fileCrc32(elf: ElfFile): number {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  const t = crcTable;
  let crc = 0xffffffff;
  for (let off = 0; off < elf.size; off += 1 << 20) {
    const b = elf.readAt(off, Math.min(1 << 20, elf.size - off));
    for (let i = 0; i < b.length; i++) crc = t[(crc ^ b[i]!) & 0xff]! ^ (crc >>> 8);
  }
  return (crc ^ 0xffffffff) >>> 0;
}

function dirname(p: string): string {
  const i = p.lastIndexOf("/");
  return i <= 0 ? "/" : p.slice(0, i);
}

function hasDwarf(elf: ElfFile): boolean {
  return Boolean((elf.section(".debug_info") ?? elf.section(".zdebug_info")) && (elf.section(".debug_abbrev") ?? elf.section(".zdebug_abbrev")));
}

/**
 * The DWARF for `binary`, whose path as the target sees it is `binaryPath`: the binary's own
 * debug info, else a separate debug file that provably belongs to it.
 */
export function findDebugInfo(binary: ElfFile, binaryPath: string, lookup: DebugInfoLookup): DebugInfoResult {
  const notes: string[] = [];
  const id = safeBuildId(binary);
  const result: DebugInfoResult = { notes };
  if (id) result.buildId = id;
  if (hasDwarf(binary)) {
    const info = DebugInfo.fromElf(binary);
    if (info) return { ...result, info, path: binaryPath, source: "binary", elf: binary };
  }
  notes.push(`${binaryPath} has no debug info of its own`);
  const debugDir = (lookup.debugDir ?? "/usr/lib/debug").replace(/\/+$/, "");
  const release = (e: ElfFile) => lookup.release?.(e);

  const tryOpen = (path: string): ElfFile | undefined => {
    try {
      return lookup.open(path);
    } catch (e) {
      notes.push(`${path}: ${(e as Error).message}`);
      return undefined;
    }
  };

  const accept = (elf: ElfFile, path: string, source: "build-id" | "debuglink"): DebugInfoResult | undefined => {
    if (!hasDwarf(elf)) {
      notes.push(`${path} ignored: it has no debug info`);
      release(elf);
      return undefined;
    }
    const info = DebugInfo.fromElf(elf);
    if (!info) {
      release(elf);
      return undefined;
    }
    info.addSymbolSource(binary);
    return { ...result, info, path, source, elf };
  };

  if (id) {
    if (id.length < 3) {
      notes.push(`build-id ${id} is too short for a .build-id path`);
    } else {
      const path = `${debugDir}/.build-id/${id.slice(0, 2)}/${id.slice(2)}.debug`;
      const elf = tryOpen(path);
      if (!elf) {
        notes.push(`no ${path}`);
      } else {
        const other = safeBuildId(elf);
        if (other !== id) {
          notes.push(`${path} ignored: its build-id ${other ?? "(none)"} is not the binary's ${id}`);
          release(elf);
        } else {
          const r = accept(elf, path, "build-id");
          if (r) return r;
        }
      }
    }
  } else {
    notes.push(`${binaryPath} has no GNU build-id`);
  }

  const link = safe(() => debugLink(binary));
  if (!link) {
    notes.push(`${binaryPath} has no .gnu_debuglink`);
    return result;
  }
  const dir = dirname(binaryPath);
  const candidates = [`${dir}/${link.name}`, `${dir}/.debug/${link.name}`, `${debugDir}${dir === "/" ? "" : dir}/${link.name}`];
  for (const path of candidates) {
    if (path === binaryPath) continue;
    const elf = tryOpen(path);
    if (!elf) continue;
    // When both carry a build-id it decides; otherwise the CRC of the whole file does.
    const other = safeBuildId(elf);
    if (id && other) {
      if (other !== id) {
        notes.push(`${path} ignored: its build-id ${other} is not the binary's ${id}`);
        release(elf);
        continue;
      }
    } else {
      const crc = safe(() => fileCrc32(elf));
      if (crc !== link.crc) {
        notes.push(`${path} ignored: CRC32 ${crc?.toString(16) ?? "unreadable"} is not the ${link.crc.toString(16)} .gnu_debuglink expects`);
        release(elf);
        continue;
      }
    }
    const r = accept(elf, path, "debuglink");
    if (r) return r;
  }
  notes.push(`no debug file named ${link.name} in ${candidates.map(dirname).join(", ")}`);
  return result;
}

function safe<T>(f: () => T): T | undefined {
  try {
    return f();
  } catch {
    return undefined;
  }
}

function safeBuildId(elf: ElfFile): string | undefined {
  return safe(() => buildId(elf));
}

/** An opener for host paths: the fd is closed by `release` (or when the caller closes it). */
export const hostOpener: Required<Pick<DebugInfoLookup, "open" | "release">> = {
  open(path: string): ElfFile | undefined {
    let fd: number;
    try {
      fd = openSync(path, "r");
    } catch {
      return undefined;
    }
    try {
      return new ElfFile(fd, path);
    } catch (e) {
      closeSync(fd);
      throw new DwarfError(`${path} is not a usable ELF file: ${(e as Error).message}`);
    }
  },
  release(elf: ElfFile): void {
    try {
      closeSync(elf.fd);
    } catch {
      // already closed
    }
  },
};
