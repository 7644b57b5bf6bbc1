// Which TLS stacks one ELF file carries: OpenSSL/BoringSSL or GnuTLS functions defined in its
// symbol tables (a shared libssl, or a library linked into an executable like node's), Go's
// crypto/tls in a Go program (found by name in .symtab, or in .gopclntab when stripped). NSS is
// two pieces, each said apart (`nss`): NSPR's I/O functions (libnspr4) and NSS's SSL library
// (libssl3); only a process that has both uses NSS (lib/tls/find.ts).
import type { ElfFile } from "../elf.ts";
import { inspectGo, type GoInfo } from "../go.ts";
import { GoError } from "../go-error.ts";
import { goFunction } from "../go-functions.ts";
import { pclntabFunctions, type GoFunction } from "../go-pclntab.ts";
import { findFunctions } from "./symbols.ts";
import { opensslVersion, gnutlsVersion, nssVersion } from "./version.ts";
import { TLS_FUNCTIONS, STACK_NAME, NSS_SSL_MARKER, type TlsFunctionDef, type TlsKind } from "./stacks.ts";

export interface StackFunction {
  def: TlsFunctionDef;
  /** File offset of the entry. */
  offset: number;
  /** Go: the function's bounds, to find its RET instructions. */
  go?: GoFunction;
}

export interface TlsStack {
  kind: TlsKind;
  /** "OpenSSL 3.0.19", "BoringSSL", "GnuTLS 3.7.9", "Go 1.19.8 crypto/tls"; the stack's bare name when the file does not say. */
  name: string;
  functions: StackFunction[];
  /** NSS: the files of its two pieces (display paths): the SSL library, and NSPR whose I/O carries the data. */
  nss?: { ssl: string; io: string };
}

/** The NSS pieces one file holds (a Mozilla build may fold both into one libnss3.so). */
export interface NssParts {
  /** NSPR's PR_Read and PR_Write (PR_Recv, PR_Send when there): where the plaintext passes. */
  io?: StackFunction[];
  /** NSS's SSL library (it defines SSL_ImportFD): its version, and SSL_ForceHandshake when exported. */
  ssl?: { version?: string; handshake: StackFunction[] };
}

export interface DetectOptions {
  /** The version when the file itself does not say (a shared libssl: its libcrypto does). */
  versionElsewhere?: (kind: TlsKind) => string | undefined;
}

/** The result for one file: its stacks, and why a stack it has cannot be probed. */
export interface Detection {
  stacks: TlsStack[];
  /** "… was built with go1.16, which passes arguments on the stack" */
  unusable: string[];
  /** NSS's pieces, not stacks by themselves: NSPR alone is no TLS. */
  nss?: NssParts;
}

/** The TLS stacks `elf` defines (none for most files). Reads only what it needs. */
export function detectTls(elf: ElfFile, o: DetectOptions = {}): Detection {
  const stacks: TlsStack[] = [];
  const unusable: string[] = [];
  const c = findFunctions(elf, [...[...TLS_FUNCTIONS.openssl, ...TLS_FUNCTIONS.gnutls, ...TLS_FUNCTIONS.nss].map((d) => d.name), NSS_SSL_MARKER]);
  for (const kind of ["openssl", "gnutls"] as const) {
    const defs = TLS_FUNCTIONS[kind];
    // A stack is there when its read and write are: a lone SSL_read is no OpenSSL.
    if (!defs.every((d) => d.optional || c.has(d.name))) continue;
    const functions = defs.filter((d) => c.has(d.name)).map((def) => ({ def, offset: c.get(def.name)!.offset }));
    const version = (kind === "openssl" ? opensslVersion(elf) : gnutlsVersion(elf)) ?? o.versionElsewhere?.(kind);
    stacks.push({ kind, name: version ?? STACK_NAME[kind], functions });
  }
  const nss = nssParts(elf, c);
  const go = inspectGo(elf);
  if (go) {
    const functions = goTls(elf, go);
    if (functions.length) {
      if (go.abi !== "register") unusable.push(`${elf.path} has Go crypto/tls, but ${go.version ? `was built with ${go.version.raw}, which passes arguments on the stack` : "does not say which Go built it"}: probe reads Go registers only (Go >= 1.17)`);
      else stacks.push({ kind: "go", name: go.version ? `Go ${go.version.raw.replace(/^go/, "")} crypto/tls` : STACK_NAME.go, functions });
    }
  }
  return nss ? { stacks, unusable, nss } : { stacks, unusable };
}

function nssParts(elf: ElfFile, c: Map<string, { offset: number }>): NssParts | undefined {
  const out: NssParts = {};
  const of = (role: "io" | "ssl") => TLS_FUNCTIONS.nss.filter((d) => (d.role === "handshake") === (role === "ssl") && c.has(d.name)).map((def) => ({ def, offset: c.get(def.name)!.offset }));
  if (TLS_FUNCTIONS.nss.every((d) => d.optional || d.role === "handshake" || c.has(d.name))) out.io = of("io");
  if (c.has(NSS_SSL_MARKER)) out.ssl = { version: nssVersion(elf), handshake: of("ssl") };
  return out.io || out.ssl ? out : undefined;
}

/** Go's crypto/tls functions in the binary: from .symtab by exact name, else from .gopclntab. */
function goTls(elf: ElfFile, info: GoInfo): StackFunction[] {
  const defs = TLS_FUNCTIONS.go;
  const names = defs.map((d) => d.name);
  const bySym = info.stripped ? new Map() : findFunctions(elf, names);
  let table: Map<string, GoFunction[]> | undefined;
  const out: StackFunction[] = [];
  for (const def of defs) {
    const s = bySym.get(def.name);
    let fn: GoFunction | undefined;
    if (s && s.size > 0) {
      fn = { name: def.name, entry: s.vaddr, end: s.vaddr + s.size, offset: s.offset, source: "symtab" };
    } else {
      table ??= pclntabByName(elf, names);
      const same = table.get(def.name) ?? [];
      if (same.length === 1) fn = same[0];
      else if (same.length > 1) {
        // An ABI wrapper shares the name: goFunction tells them apart.
        try {
          fn = goFunction(elf, def.name);
        } catch (e) {
          if (!(e instanceof GoError)) throw e;
        }
      }
    }
    if (fn) out.push({ def, offset: fn.offset, go: fn });
    else if (!def.optional) return [];
  }
  return out;
}

function pclntabByName(elf: ElfFile, names: string[]): Map<string, GoFunction[]> {
  const want = new Set(names);
  const out = new Map<string, GoFunction[]>();
  try {
    for (const f of pclntabFunctions(elf)) {
      if (!want.has(f.name)) continue;
      out.set(f.name, [...(out.get(f.name) ?? []), f]);
    }
  } catch (e) {
    if (!(e instanceof GoError)) throw e;
  }
  return out;
}
