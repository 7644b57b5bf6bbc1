// Which TLS stacks one ELF file carries: OpenSSL/BoringSSL or GnuTLS functions defined in its
// symbol tables (a shared libssl, or a library linked into an executable like node's), Go's
// crypto/tls in a Go program (found by name in .symtab, or in .gopclntab when stripped).
import type { ElfFile } from "../elf.ts";
import { inspectGo, type GoInfo } from "../go.ts";
import { GoError } from "../go-error.ts";
import { goFunction } from "../go-functions.ts";
import { pclntabFunctions, type GoFunction } from "../go-pclntab.ts";
import { findFunctions } from "./symbols.ts";
import { opensslVersion, gnutlsVersion } from "./version.ts";
import { TLS_FUNCTIONS, STACK_NAME, type TlsFunctionDef, type TlsKind } from "./stacks.ts";

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
}

/** The TLS stacks `elf` defines (none for most files). Reads only what it needs. */
export function detectTls(elf: ElfFile, o: DetectOptions = {}): Detection {
  const stacks: TlsStack[] = [];
  const unusable: string[] = [];
  const c = findFunctions(elf, [...TLS_FUNCTIONS.openssl, ...TLS_FUNCTIONS.gnutls].map((d) => d.name));
  for (const kind of ["openssl", "gnutls"] as const) {
    const defs = TLS_FUNCTIONS[kind];
    // A stack is there when its read and write are: a lone SSL_read is no OpenSSL.
    if (!defs.every((d) => d.optional || c.has(d.name))) continue;
    const functions = defs.filter((d) => c.has(d.name)).map((def) => ({ def, offset: c.get(def.name)!.offset }));
    const version = (kind === "openssl" ? opensslVersion(elf) : gnutlsVersion(elf)) ?? o.versionElsewhere?.(kind);
    stacks.push({ kind, name: version ?? STACK_NAME[kind], functions });
  }
  const go = inspectGo(elf);
  if (go) {
    const functions = goTls(elf, go);
    if (functions.length) {
      if (go.abi !== "register") unusable.push(`${elf.path} has Go crypto/tls, but ${go.version ? `was built with ${go.version.raw}, which passes arguments on the stack` : "does not say which Go built it"}: probe reads Go registers only (Go >= 1.17)`);
      else stacks.push({ kind: "go", name: go.version ? `Go ${go.version.raw.replace(/^go/, "")} crypto/tls` : STACK_NAME.go, functions });
    }
  }
  return { stacks, unusable };
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
