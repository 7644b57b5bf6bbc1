// The Go version and main module a Go executable was built with: from `.go.buildinfo` (kept even in
// stripped binaries), else from the runtime.buildVersion variable when the symbol table is left.
// Untrusted bytes: every pointer and length is checked before it is followed.
import { ElfFile, SHN_UNDEF, view } from "./elf.ts";

export interface GoVersion {
  /** As the toolchain wrote it: `go1.19.8`, `go1.21rc2`, `devel go1.22-abc...`. */
  raw: string;
  major: number;
  minor: number;
}

const BUILDINFO_MAGIC = "\xff Go buildinf:";

// `.go.buildinfo` starts with "\xff Go buildinf:", pointer size, flags. Go >= 1.18
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
export function runtimeBuildVersion(elf: ElfFile): string | undefined {
  const sym = elf.symbols().find((s) => s.name === "runtime.buildVersion" && s.shndx !== SHN_UNDEF);
  return sym ? goStringAt(elf, sym.value) : undefined;
}

export function parseVersion(raw: string): GoVersion | undefined {
  const m = /go(\d+)\.(\d+)/.exec(raw);
  return m ? { raw, major: Number(m[1]), minor: Number(m[2]) } : undefined;
}

const dec = new TextDecoder("latin1");
function latin1(b: Uint8Array): string {
  return dec.decode(b);
}
