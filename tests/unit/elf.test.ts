// The ELF reader against binutils' readelf, on every FUNC symbol of real libraries and binaries.
import { describe, expect, test } from "bun:test";
import { openSync, closeSync } from "node:fs";
import { ElfFile, STT, versionedName } from "../../lib/elf.ts";
import { resolveFunction } from "../../lib/symbols.ts";
import { buildC, sh } from "../helpers.ts";

/** `readelf -Ws` FUNC/IFUNC rows as "table name value size" (undefined ones included). */
function readelfFuncs(path: string): string[] {
  const out: string[] = [];
  let table = "";
  for (const line of sh(`readelf -Ws ${path}`).split("\n")) {
    const t = /^Symbol table '\.(dynsym|symtab)'/.exec(line);
    if (t) {
      table = t[1]!;
      continue;
    }
    // Num: Value Size Type Bind Vis Ndx Name
    const m = /^\s*\d+:\s+([0-9a-f]+)\s+(\d+|0x[0-9a-f]+)\s+(FUNC|IFUNC)\s+\S+\s+\S+\s+\S+\s+(\S+)/.exec(line);
    if (m) out.push(`${table} ${m[4]} ${parseInt(m[1]!, 16)} ${Number(m[2])}`);
  }
  return out.sort();
}

function ourFuncs(path: string): string[] {
  const fd = openSync(path, "r");
  try {
    return new ElfFile(fd, path)
      .symbols()
      .filter((s) => s.type === STT.FUNC || s.type === STT.GNU_IFUNC)
      .map((s) => `${s.table} ${versionedName(s)} ${s.value} ${s.size}`)
      .sort();
  } finally {
    closeSync(fd);
  }
}

describe("ELF reader agrees with readelf -Ws on every FUNC symbol", () => {
  const targets: [string, () => string][] = [
    ["libc", () => "/lib/x86_64-linux-gnu/libc.so.6"],
    ["libssl", () => "/lib/x86_64-linux-gnu/libssl.so.3"],
    ["a PIE test binary", () => buildC("calls", "calls.c")],
    ["a non-PIE test binary", () => buildC("calls-nopie", "calls.c", ["-no-pie"])],
    ["a stripped binary (only .dynsym)", () => {
      const p = buildC("calls-stripped", "calls.c", ["-s"]);
      return p;
    }],
  ];
  for (const [what, path] of targets) {
    test(what, () => {
      const p = path();
      const expected = readelfFuncs(p);
      expect(expected.length).toBeGreaterThan(0);
      // readelf prints undefined versioned names as name@VER (N); we print name@VER.
      expect(ourFuncs(p)).toEqual(expected.map((s) => s.replace(/ \(\d+\)/, "")));
    });
  }
});

describe("function to file offset", () => {
  test("non-PIE executables convert through PT_LOAD (offset != st_value)", () => {
    const p = buildC("calls-nopie", "calls.c", ["-no-pie"]);
    const fd = openSync(p, "r");
    try {
      const elf = new ElfFile(fd, p);
      expect(elf.isPie).toBe(false);
      const f = resolveFunction(elf, "target_fn");
      expect(f.vaddr).toBeGreaterThanOrEqual(0x400000);
      const nm = sh(`objdump -d ${p} | grep '<target_fn>:'`);
      expect(parseInt(nm.split(" ")[0]!, 16)).toBe(f.vaddr);
      // The bytes at the offset are the function's first instruction: push %rbp.
      expect(elf.readAt(f.offset, 1)[0]).toBe(0x55);
    } finally {
      closeSync(fd);
    }
  });

  test("versioned names pick the right version; the default one otherwise", () => {
    const p = "/lib/x86_64-linux-gnu/libc.so.6";
    const fd = openSync(p, "r");
    try {
      const elf = new ElfFile(fd, p);
      const def = resolveFunction(elf, "memcpy");
      const old = resolveFunction(elf, "memcpy@GLIBC_2.2.5");
      expect(def.symbol!.version).toBe("GLIBC_2.14");
      expect(old.offset).not.toBe(def.offset);
      expect(resolveFunction(elf, "memcpy@@GLIBC_2.14").offset).toBe(def.offset);
    } finally {
      closeSync(fd);
    }
  });

  test("a stripped binary still resolves what .dynsym exports", () => {
    const p = "/lib/x86_64-linux-gnu/libssl.so.3";
    const fd = openSync(p, "r");
    try {
      const elf = new ElfFile(fd, p);
      expect(elf.section(".symtab")).toBeUndefined();
      const f = resolveFunction(elf, "SSL_read");
      const row = sh(`readelf -Ws ${p} | grep ' SSL_read@@'`).trim().split(/\s+/);
      expect(f.vaddr).toBe(parseInt(row[1]!, 16));
    } finally {
      closeSync(fd);
    }
  });
});
