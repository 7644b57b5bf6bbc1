// Where a process's TLS is, in ITS view: among the files it has mapped executable, a shared
// OpenSSL libssl or GnuTLS libgnutls, TLS functions linked into its executable or another library
// (node carries OpenSSL in /usr/bin/node and maps no libssl), Go's crypto/tls in its executable,
// NSS when it maps both NSS's SSL library and NSPR (whose I/O functions carry the plaintext).
// Each file is examined once (keyed by what maps says about it) and each inode is kept open once,
// so looking again (waiting for a process to load its TLS) costs a read of its maps.
import { basename, dirname } from "node:path";
import { ProcessError, processComm } from "../proc/identity.ts";
import { mappedFiles, executablePath, openMappedFile, type MappedFile } from "../proc/maps.ts";
import { hostLibraryCandidates } from "../proc/loader.ts";
import { OpenTarget, openHostFile } from "../proc/target.ts";
import { inodeKey } from "../proc/overlay.ts";
import { libraryNameMatches } from "../libname.ts";
import { ProbeError } from "../errors.ts";
import type { Closable } from "../scope.ts";
import { detectTls, type NssParts, type StackFunction, type TlsStack } from "./detect.ts";
import { opensslVersion } from "./version.ts";
import { STACK_NAME, type TlsKind } from "./stacks.ts";
import { allPids } from "./processes.ts";
import { closeFd } from "../ffi/libc.ts";

export interface TlsLibrary {
  /** The file, opened once: parsed and probed through the same fd. */
  target: OpenTarget;
  stacks: TlsStack[];
  /** "shared": a TLS library by its own name (libssl.so.3, libgnutls.so.30); "linked": TLS built into an executable or another library. */
  linkage: "shared" | "linked";
  /** Processes seen using it: PID -> command name. */
  users: Map<number, string>;
}

/** What was looked at in a process, for a message when nothing was found. */
export interface LookedAt {
  pid: number;
  comm: string;
  executable: string;
  /** Files mapped executable, the executable included. */
  files: number;
  /** Files that could not be opened or parsed, with why. */
  skipped: string[];
  /** TLS found but not probeable (old Go ABI). */
  unusable: string[];
}

interface Examined {
  lib?: TlsLibrary;
  unusable: string[];
  /** A file with pieces of NSS, kept open: probed only for processes that have both pieces. */
  nss?: NssFile;
}

interface NssFile {
  target: OpenTarget;
  parts: NssParts;
  /** What it became, paired: its I/O library (NSPR) and its handshake library (libssl3). */
  io?: TlsLibrary;
  handshake?: TlsLibrary | null;
}

/** The shared TLS libraries by name, as the loader would find them. */
const SHARED_NAMES = ["libssl", "libgnutls"];

function isSharedTls(path: string): boolean {
  return SHARED_NAMES.some((n) => libraryNameMatches(n, path));
}

/** Files without TLS remembered at most (then forgotten all at once: they are only parsed again). */
const PLAIN_INODES_MAX = 65536;

export class TlsFinder implements Closable {
  private readonly byMapping = new Map<string, Examined>();
  private readonly byInode = new Map<string, TlsLibrary>();
  /**
   * Files examined that hold no TLS, by real inode: the containers of one image map the same
   * files under another device each (an overlay mount per container), which the mapping key
   * tells apart; the real inode does not, so each file is parsed once however many containers map it.
   */
  private readonly plainInodes = new Map<string, Examined>();
  /**
   * Files holding a piece of NSS, by real inode: kept apart from `byInode`, so that a process
   * mapping NSPR without NSS's SSL library is not taken for a TLS user.
   */
  private readonly nssInodes = new Map<string, Examined>();
  private closed = false;

  /** Every library found so far, in the order found (NSS's after the others). */
  get libraries(): TlsLibrary[] {
    const nss = [...this.nssInodes.values()].flatMap((e) => [e.nss!.io, e.nss!.handshake]).filter((l): l is TlsLibrary => !!l);
    return [...this.byInode.values(), ...new Set(nss)];
  }

  /** The TLS libraries process `pid` uses, and what was looked at. A process that is gone has none. */
  inProcess(pid: number): { libraries: TlsLibrary[]; looked: LookedAt } {
    const comm = processComm(pid);
    const exe = executablePath(pid);
    const looked: LookedAt = { pid, comm, executable: exe, files: 0, skipped: [], unusable: [] };
    const out: TlsLibrary[] = [];
    let files: MappedFile[];
    try {
      files = mappedFiles(pid).filter((f) => f.executable);
    } catch (e) {
      if (e instanceof ProcessError) {
        looked.skipped.push(`/proc/${pid}/maps: ${e.message}`);
        return { libraries: out, looked };
      }
      throw e;
    }
    looked.files = files.length;
    let nssIo: NssFile | undefined;
    let nssSsl: NssFile | undefined;
    for (const f of files) {
      const key = `${f.dev}/${f.inode}/${f.path}`;
      let r = this.byMapping.get(key);
      if (!r) {
        try {
          r = this.examine(pid, f, files);
        } catch (e) {
          // One unreadable or malformed file (a container's files are anyone's) must not hide the rest.
          looked.skipped.push(`${f.path}: ${e instanceof ProbeError ? e.message : `cannot be parsed (${(e as Error).message})`}`);
          continue;
        }
        this.byMapping.set(key, r);
      }
      looked.unusable.push(...r.unusable);
      if (r.lib && !out.includes(r.lib)) out.push(r.lib);
      if (r.nss?.parts.io) nssIo ??= r.nss;
      if (r.nss?.parts.ssl) nssSsl ??= r.nss;
    }
    if (nssIo && nssSsl) for (const l of nssLibraries(nssIo, nssSsl)) if (!out.includes(l)) out.push(l);
    // GnuTLS's OpenSSL compatibility layer calls GnuTLS: with libgnutls probed too, each call would count twice.
    const gnutls = out.some((l) => l.stacks.some((st) => st.kind === "gnutls"));
    const kept = out.filter((l) => !(gnutls && libraryNameMatches("libgnutls-openssl", l.target.display)));
    for (const l of kept) l.users.set(pid, comm);
    return { libraries: kept, looked };
  }

  /** The TLS libraries of several processes, each once. */
  inProcesses(pids: number[]): { libraries: TlsLibrary[]; looked: LookedAt[] } {
    const libs = new Set<TlsLibrary>();
    const looked: LookedAt[] = [];
    for (const pid of pids) {
      const r = this.inProcess(pid);
      for (const l of r.libraries) libs.add(l);
      looked.push(r.looked);
    }
    return { libraries: [...libs], looked };
  }

  /**
   * Host-wide: every OpenSSL libssl and GnuTLS libgnutls the host's loader would find, and the TLS
   * of every running process (its own libraries, containers' included, and TLS linked into its
   * executable). `skip`: PIDs not to look at (probe itself).
   */
  onHost(skip: number[] = []): TlsLibrary[] {
    const libs = new Set<TlsLibrary>();
    for (const name of SHARED_NAMES) {
      for (const c of hostLibraryCandidates(name)) {
        try {
          const l = this.addTarget(openHostFile(c.path), (kind) => (kind === "openssl" ? hostLibcryptoVersion(c.path) : undefined));
          if (l) libs.add(l);
        } catch (e) {
          if (!(e instanceof ProbeError)) throw e;
        }
      }
    }
    for (const pid of allPids()) {
      if (skip.includes(pid)) continue;
      for (const l of this.inProcess(pid).libraries) libs.add(l);
    }
    return [...libs];
  }

  /** A file the user named: its stacks, or undefined when it has none (closed then). */
  addTarget(t: OpenTarget, versionElsewhere?: (kind: TlsKind) => string | undefined): TlsLibrary | undefined {
    const known = this.byInode.get(t.inodeKey);
    if (known) {
      if (known.target !== t) t.close();
      return known;
    }
    let stacks: TlsStack[];
    try {
      const det = detectTls(t.elf, { versionElsewhere });
      stacks = det.stacks;
      // A file named on its own is taken for what it holds: NSPR's I/O (whatever its descriptors are).
      if (!stacks.length && det.nss?.io) stacks = [{ kind: "nss", name: det.nss.ssl?.version ?? STACK_NAME.nss, functions: [...det.nss.io, ...(det.nss.ssl?.handshake ?? [])] }];
      else if (!stacks.length && det.nss?.ssl) {
        throw new ProbeError(`${t.display} is NSS's SSL library: the data of its connections is read and written through NSPR's PR_Read, PR_Write, PR_Recv and PR_Send, in libnspr4.so`, "name libnspr4.so instead, or give only the process and let probe find NSS in it");
      }
    } catch (e) {
      t.close();
      throw e;
    }
    if (!stacks.length) {
      t.close();
      return undefined;
    }
    const lib: TlsLibrary = { target: t, stacks, linkage: isSharedTls(t.display) ? "shared" : "linked", users: new Map() };
    this.byInode.set(t.inodeKey, lib);
    return lib;
  }

  private examine(pid: number, f: MappedFile, all: MappedFile[]): Examined {
    const o = openMappedFile(pid, f);
    const real = inodeKey(o.realInode);
    const seen = this.byInode.get(real) ?? this.plainInodes.get(real) ?? this.nssInodes.get(real);
    if (seen) {
      closeFd(o.fd);
      return "target" in seen ? { lib: seen, unusable: [] } : seen;
    }
    if (this.plainInodes.size >= PLAIN_INODES_MAX) this.plainInodes.clear();
    let t: OpenTarget;
    try {
      t = new OpenTarget(o.fd, o.path, real);
    } catch (e) {
      // OpenTarget closed the fd: not an ELF file of this machine (a font, a cache) has no TLS.
      if (e instanceof ProbeError) {
        this.plainInodes.set(real, { unusable: [] });
        return { unusable: [] };
      }
      throw e;
    }
    const known = this.byInode.get(t.inodeKey);
    if (known) {
      t.close();
      return { lib: known, unusable: [] };
    }
    let det;
    try {
      det = detectTls(t.elf, { versionElsewhere: (kind) => (kind === "openssl" ? mappedLibcryptoVersion(pid, all) : undefined) });
    } catch (e) {
      t.close();
      throw e;
    }
    if (!det.stacks.length) {
      if (det.nss) {
        const e: Examined = { unusable: det.unusable, nss: { target: t, parts: det.nss } };
        this.nssInodes.set(real, e);
        return e;
      }
      t.close();
      this.plainInodes.set(real, { unusable: det.unusable });
      return { unusable: det.unusable };
    }
    const lib: TlsLibrary = { target: t, stacks: det.stacks, linkage: isSharedTls(f.path) ? "shared" : "linked", users: new Map() };
    this.byInode.set(t.inodeKey, lib);
    return { lib, unusable: det.unusable };
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const l of this.byInode.values()) l.target.close();
    for (const e of this.nssInodes.values()) e.nss!.target.close();
  }
}

/**
 * NSS as a process uses it: NSPR's I/O functions in `io`'s file, SSL_ForceHandshake (when
 * exported) in `ssl`'s, named after the version `ssl` says. Made once per file: the first pairing
 * names them (two NSS versions sharing one NSPR file is not a case worth more).
 */
function nssLibraries(io: NssFile, ssl: NssFile): TlsLibrary[] {
  const name = ssl.parts.ssl!.version ?? STACK_NAME.nss;
  const files = { ssl: ssl.target.display, io: io.target.display };
  const handshake = ssl.parts.ssl!.handshake;
  const lib = (target: OpenTarget, functions: StackFunction[]): TlsLibrary => ({ target, stacks: [{ kind: "nss", name, functions, nss: files }], linkage: "shared", users: new Map() });
  if (io === ssl) {
    io.io ??= lib(io.target, [...io.parts.io!, ...handshake]);
    return [io.io];
  }
  io.io ??= lib(io.target, io.parts.io!);
  if (ssl.handshake === undefined) ssl.handshake = handshake.length ? lib(ssl.target, handshake) : null;
  return ssl.handshake ? [io.io, ssl.handshake] : [io.io];
}

/** A shared libssl says no version; the libcrypto the process maps does ("OpenSSL 3.0.19"). */
function mappedLibcryptoVersion(pid: number, files: MappedFile[]): string | undefined {
  const f = files.find((m) => libraryNameMatches("libcrypto", m.path));
  if (!f) return undefined;
  return libcryptoVersion(() => {
    const o = openMappedFile(pid, f);
    return new OpenTarget(o.fd, o.path);
  });
}

/** The version of the libcrypto next to a host libssl (libssl.so.3 -> libcrypto.so.3). */
function hostLibcryptoVersion(libssl: string): string | undefined {
  const m = /^libssl(\.so.*)$/.exec(basename(libssl));
  if (!m) return undefined;
  return libcryptoVersion(() => openHostFile(`${dirname(libssl)}/libcrypto${m[1]}`));
}

/** The OpenSSL version a libcrypto says; undefined when it cannot be opened or says none. */
function libcryptoVersion(open: () => OpenTarget): string | undefined {
  try {
    const t = open();
    try {
      return opensslVersion(t.elf);
    } finally {
      t.close();
    }
  } catch (e) {
    if (e instanceof ProbeError) return undefined;
    throw e;
  }
}

