// A name's symbols found through .gnu.hash (a few small reads) are the ones the full symbol table
// read has: every exported function of libc, libssl, libcrypto and node, each with its versions.
import { describe, expect, test } from "bun:test";
import { existsSync, openSync } from "node:fs";
import { ElfFile, SHN_UNDEF, STT } from "../../lib/elf.ts";
import { gnuHash } from "../../lib/elf-gnu-hash.ts";

const FILES = ["/lib/x86_64-linux-gnu/libc.so.6", "/lib/x86_64-linux-gnu/libssl.so.3", "/lib/x86_64-linux-gnu/libcrypto.so.3", "/usr/bin/node"];

describe(".gnu.hash lookups", () => {
  test("the hash is glibc's dl_new_hash (h * 33 + c from 5381)", () => {
    expect(gnuHash("")).toBe(5381);
    expect(gnuHash("printf")).toBe(0x156b2bb8);
    expect(gnuHash("exit")).toBe(0x7c967e3f);
  });

  for (const path of FILES) {
    test(`every exported function of ${path}: the same entries as the whole table`, () => {
      if (!existsSync(path)) throw new Error(`${path} is missing: install it (libc6, libssl3, nodejs)`);
      const full = new ElfFile(openSync(path, "r"), path);
      const byName = new Map<string, string[]>();
      for (const s of full.symbols()) {
        if (s.table !== "dynsym") continue;
        const list = byName.get(s.name) ?? [];
        list.push(`${s.value}/${s.version}${s.versionSep}/${s.shndx}/${s.type}`);
        byName.set(s.name, list);
      }
      const defined = new Set(full.symbols().filter((s) => s.table === "dynsym" && s.shndx !== SHN_UNDEF && (s.type === STT.FUNC || s.type === STT.GNU_IFUNC)).map((s) => s.name));
      const names = [...byName.keys()].filter((n) => defined.has(n));
      expect(names.length).toBeGreaterThan(100);
      const fresh = new ElfFile(openSync(path, "r"), path);
      const wrong: string[] = [];
      for (const n of names) {
        const got = fresh.symbolsNamed(n).filter((s) => s.table === "dynsym").map((s) => `${s.value}/${s.version}${s.versionSep}/${s.shndx}/${s.type}`).sort();
        const want = byName.get(n)!.sort();
        if (JSON.stringify(got) !== JSON.stringify(want)) wrong.push(`${n}: ${got.join(" ")} != ${want.join(" ")}`);
      }
      expect(wrong.slice(0, 10)).toEqual([]);
    }, 60_000);
  }
});
