// Which TLS a file carries (lib/tls/detect.ts), checked against independent tools on real files:
// function addresses against `nm -D` and `go tool nm`, versions against what node, openssl and
// gnutls-cli say of themselves, NSS's as Debian's package says, RET sites against objdump. Damaged
// files give a clean error or nothing, never a crash or a hang.
import { describe, expect, test } from "bun:test";
import { closeSync, openSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ElfFile } from "../../lib/elf.ts";
import { ProbeError } from "../../lib/errors.ts";
import { detectTls } from "../../lib/tls/detect.ts";
import { findFunctions } from "../../lib/tls/symbols.ts";
import { tlsProbes } from "../../lib/tls/points.ts";
import { TLS_FUNCTIONS } from "../../lib/tls/stacks.ts";
import { opensslVersion, gnutlsVersion, nssVersion } from "../../lib/tls/version.ts";
import { TLS_FN } from "../../lib/layouts.ts";
import { WORK, sh } from "../helpers.ts";
import { goTls } from "../fixtures/tls/peers.ts";
import { objdump, isObjdumpRet } from "../fixtures/go-bins.ts";

const LIBSSL = "/usr/lib/x86_64-linux-gnu/libssl.so.3";
const LIBCRYPTO = "/usr/lib/x86_64-linux-gnu/libcrypto.so.3";
const LIBGNUTLS = "/usr/lib/x86_64-linux-gnu/libgnutls.so.30";
const NODE = "/usr/bin/node";
const LIBNSPR = "/usr/lib/x86_64-linux-gnu/libnspr4.so";
const LIBSSL3 = "/usr/lib/x86_64-linux-gnu/libssl3.so";
const LIBNSS3 = "/usr/lib/x86_64-linux-gnu/libnss3.so";

function withElf<T>(path: string, f: (elf: ElfFile) => T): T {
  const fd = openSync(path, "r");
  try {
    return f(new ElfFile(fd, path));
  } finally {
    closeSync(fd);
  }
}

/** Defined function addresses as `nm` lists them. */
function nmAddresses(path: string, dynamic: boolean): Map<string, number> {
  const out = new Map<string, number>();
  for (const m of sh(`nm ${dynamic ? "-D " : ""}--defined-only ${path}`).matchAll(/^([0-9a-f]+) [TtWi] (\S+?)(@@?\S+)?$/gm)) out.set(m[2]!, parseInt(m[1]!, 16));
  return out;
}

describe("findFunctions: the addresses nm lists", () => {
  for (const [path, names] of [
    [NODE, TLS_FUNCTIONS.openssl.map((d) => d.name)],
    [LIBSSL, TLS_FUNCTIONS.openssl.map((d) => d.name)],
    [LIBGNUTLS, TLS_FUNCTIONS.gnutls.map((d) => d.name)],
    [LIBNSPR, TLS_FUNCTIONS.nss.filter((d) => d.role !== "handshake").map((d) => d.name)],
    [LIBSSL3, ["SSL_ForceHandshake", "SSL_ImportFD"]],
  ] as const) {
    test(path, () => {
      const nm = nmAddresses(path, true);
      withElf(path, (elf) => {
        const t0 = performance.now();
        const found = findFunctions(elf, names);
        const ms = performance.now() - t0;
        for (const n of names) {
          expect(found.get(n)?.vaddr).toBe(nm.get(n));
          expect(found.get(n)!.offset).toBe(elf.vaddrToOffset(nm.get(n)!)!);
        }
        // node has ~185,000 symbols: found without decoding them all.
        expect(ms).toBeLessThan(1000);
      });
    });
  }
});

describe("detectTls", () => {
  test("node: OpenSSL linked into the executable, its version as node says", () => {
    const v = sh(`${NODE} -p process.versions.openssl`).trim();
    withElf(NODE, (elf) => {
      const d = detectTls(elf);
      expect(d.stacks.map((s) => [s.kind, s.name])).toEqual([["openssl", `OpenSSL ${v}`]]);
      expect(d.stacks[0]!.functions.map((f) => f.def.name)).toEqual(["SSL_read", "SSL_read_ex", "SSL_write", "SSL_write_ex", "SSL_do_handshake"]);
    });
  });

  test("a shared libssl: OpenSSL, its version from libcrypto as `openssl version` says", () => {
    const v = sh("openssl version").split(" ")[1]!;
    expect(withElf(LIBCRYPTO, opensslVersion)).toBe(`OpenSSL ${v}`);
    withElf(LIBSSL, (elf) => {
      expect(opensslVersion(elf)).toBeUndefined(); // the version string lives in libcrypto
      expect(detectTls(elf, { versionElsewhere: () => `OpenSSL ${v}` }).stacks.map((s) => s.name)).toEqual([`OpenSSL ${v}`]);
    });
  });

  test("libgnutls: GnuTLS, its version as gnutls-cli says", () => {
    const v = /gnutls-cli (\d+\.\d+\.\d+)/.exec(sh("gnutls-cli --version"))![1];
    withElf(LIBGNUTLS, (elf) => {
      expect(gnutlsVersion(elf)).toBe(`GnuTLS ${v}`);
      const d = detectTls(elf);
      expect(d.stacks.map((s) => [s.kind, s.functions.map((f) => f.def.fn)])).toEqual([["gnutls", [TLS_FN.GNUTLS_RECV, TLS_FN.GNUTLS_SEND, TLS_FN.GNUTLS_HANDSHAKE]]]);
    });
  });

  test("GnuTLS's OpenSSL wrapper: SSL_read and SSL_write only; libc and libcrypto: nothing", () => {
    withElf("/usr/lib/x86_64-linux-gnu/libgnutls-openssl.so.27", (elf) => {
      expect(detectTls(elf).stacks[0]!.functions.map((f) => f.def.name)).toEqual(["SSL_read", "SSL_write"]);
    });
    for (const p of ["/usr/lib/x86_64-linux-gnu/libc.so.6", LIBCRYPTO]) withElf(p, (elf) => expect(detectTls(elf).stacks).toEqual([]));
  });

  test("Go: crypto/tls from .symtab, and from .gopclntab when stripped, at the addresses go tool nm gives; RETs as objdump decodes them", () => {
    const plain = goTls();
    const stripped = goTls(true);
    const nm = new Map([...sh(`go tool nm ${plain}`).matchAll(/^\s*([0-9a-f]+) T (\S+)$/gm)].map((m) => [m[2]!, parseInt(m[1]!, 16)]));
    const version = sh(`go version ${plain}`).split(" ").at(-1)!.trim().replace(/^go/, "");
    const rets = objdump(plain).filter((i) => isObjdumpRet(i.text)).map((i) => i.addr);
    for (const bin of [plain, stripped]) {
      withElf(bin, (elf) => {
        const [s] = detectTls(elf).stacks;
        expect(s!.kind).toBe("go");
        expect(s!.name).toBe(`Go ${version} crypto/tls`);
        for (const f of s!.functions) expect(f.go!.entry).toBe(nm.get(f.def.name)!);
        const p = tlsProbes(elf, s!, 3, ["read"]);
        expect(p.retprobe).toBe(false);
        expect(p.entry).toEqual([{ offset: elf.vaddrToOffset(nm.get("crypto/tls.(*Conn).Read")!)!, cookie: (3n << 8n) | BigInt(TLS_FN.GO_READ) }]);
        const fn = s!.functions.find((f) => f.def.fn === TLS_FN.GO_READ)!.go!;
        const want = rets.filter((a) => a >= fn.entry && a < fn.end).map((a) => elf.vaddrToOffset(a)!);
        expect(p.returns.map((r) => r.offset)).toEqual(want);
      });
    }
  });
});

describe("detectTls: NSS, in two pieces", () => {
  /** NSS's upstream version as Debian's package says it ("2:3.87.1-1+deb12u4" -> "3.87.1"). */
  const packaged = () => /^(?:\d+:)?(\d+(?:\.\d+)+)/.exec(sh("dpkg-query -W -f '${Version}' libnss3"))![1];

  test("libnspr4.so: NSPR's PR_Read, PR_Recv, PR_Write, PR_Send at the addresses nm -D gives; no stack by itself", () => {
    const nm = nmAddresses(LIBNSPR, true);
    withElf(LIBNSPR, (elf) => {
      const d = detectTls(elf);
      expect(d.stacks).toEqual([]);
      expect(d.nss?.ssl).toBeUndefined();
      expect(d.nss!.io!.map((f) => [f.def.name, f.def.fn, f.def.role, f.offset])).toEqual([
        ["PR_Read", TLS_FN.NSS_READ, "read", elf.vaddrToOffset(nm.get("PR_Read")!)!],
        ["PR_Recv", TLS_FN.NSS_RECV, "read", elf.vaddrToOffset(nm.get("PR_Recv")!)!],
        ["PR_Write", TLS_FN.NSS_WRITE, "write", elf.vaddrToOffset(nm.get("PR_Write")!)!],
        ["PR_Send", TLS_FN.NSS_SEND, "write", elf.vaddrToOffset(nm.get("PR_Send")!)!],
      ]);
    });
  });

  test("libssl3.so: NSS's SSL library (SSL_ImportFD), its version as dpkg says, SSL_ForceHandshake at nm -D's address", () => {
    const nm = nmAddresses(LIBSSL3, true);
    expect(nm.has("SSL_ImportFD")).toBe(true);
    withElf(LIBSSL3, (elf) => {
      expect(nssVersion(elf)).toBe(`NSS ${packaged()}`);
      const d = detectTls(elf);
      expect(d.stacks).toEqual([]);
      expect(d.nss?.io).toBeUndefined();
      expect(d.nss!.ssl!.version).toBe(`NSS ${packaged()}`);
      expect(d.nss!.ssl!.handshake.map((f) => [f.def.name, f.def.fn, f.offset])).toEqual([["SSL_ForceHandshake", TLS_FN.NSS_HANDSHAKE, elf.vaddrToOffset(nm.get("SSL_ForceHandshake")!)!]]);
    });
  });

  test("libnss3.so (the same version string, no SSL or I/O functions) and libplc4.so: no NSS piece", () => {
    withElf(LIBNSS3, (elf) => {
      expect(nssVersion(elf)).toBe(`NSS ${packaged()}`);
      expect(detectTls(elf)).toEqual({ stacks: [], unusable: [] });
    });
    withElf("/usr/lib/x86_64-linux-gnu/libplc4.so", (elf) => expect(detectTls(elf)).toEqual({ stacks: [], unusable: [] }));
  });

  test("NSS's probe points: entry and uretprobe at each function, cookies with the NSS codes", () => {
    withElf(LIBNSPR, (elf) => {
      const io = detectTls(elf).nss!.io!;
      const p = tlsProbes(elf, { kind: "nss", name: "NSS", functions: io }, 2, ["read"]);
      expect(p.retprobe).toBe(true);
      expect(p.functions).toEqual(["PR_Read", "PR_Recv"]);
      expect(p.entry).toEqual(io.slice(0, 2).map((f) => ({ offset: f.offset, cookie: (2n << 8n) | BigInt(f.def.fn) })));
      expect(p.returns).toEqual(p.entry);
    });
  });
});

describe("damaged files", () => {
  // The sections detection reads (symbol tables, their strings, versions, .rodata) filled with
  // garbage in places; the ELF headers are left alone (lib/elf.ts's own tests cover those).
  test("100 corrupted copies each of libssl, libgnutls and NSS's libssl3: a result or a ProbeError, quickly", () => {
    let seed = 42;
    const rand = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
    for (const src of [LIBSSL, LIBGNUTLS, LIBSSL3]) {
      const orig = readFileSync(src);
      const targets = withElf(src, (e) => e.sections.filter((s) => [".dynsym", ".dynstr", ".symtab", ".strtab", ".rodata", ".gnu.version", ".gnu.version_d", ".gnu.version_r"].includes(s.name)).map((s) => [s.offset, s.size] as const));
      expect(targets.length).toBeGreaterThanOrEqual(4);
      for (let i = 0; i < 100; i++) {
        const b = Buffer.from(orig);
        for (let k = 0; k < 64; k++) {
          const [off, size] = targets[Math.floor(rand() * targets.length)]!;
          b[off + Math.floor(rand() * size)] = Math.floor(rand() * 256);
        }
        const f = join(WORK, "tls-damaged.so");
        writeFileSync(f, b);
        const t0 = performance.now();
        try {
          withElf(f, (elf) => detectTls(elf));
        } catch (e) {
          if (!(e instanceof ProbeError)) throw new Error(`${src} damaged copy ${i}: ${(e as Error).stack}`);
        }
        expect(performance.now() - t0).toBeLessThan(5000);
      }
    }
  });
});
