// .note.stapsdt parsing against binutils' readelf -n on the fixtures (PIE, non-PIE, -O0, -O2,
// shared library) and on real programs and libraries that ship probes (Debian's python3.11 and
// libpython3.11, libstdc++, OpenJDK's libjvm when installed); file offsets checked against the
// bytes there (every site is sdt.h's one-byte nop) and semaphores against the .probes section.
// Then malformed notes: over a thousand seeded mutations give UsdtNoteErrors, never raw errors.
import { describe, expect, test, setDefaultTimeout } from "bun:test";
import { closeSync, copyFileSync, existsSync, openSync, readSync, writeSync } from "node:fs";
import { join } from "node:path";
import { ElfFile, type Section, type Segment } from "../../lib/elf.ts";
import { assertAttachable, findUsdtProbe, groupUsdtSites, parseStapsdtNotes, readUsdtProbes, readUsdtSites, UsdtNoteError, type NoteLayout } from "../../lib/usdt/notes.ts";
import { WORK } from "../helpers.ts";
import { FIXTURE_NAMES, readelfNotes, sitesOf, usdtFixture } from "./usdt-fixture.ts";
import { Rng } from "../fixtures/fuzz/mutate.ts";

// Builds fixtures and runs readelf/bpftrace/gdb: slow on a loaded machine.
setDefaultTimeout(60000);

const SYSTEM: string[] = [
  "/usr/bin/python3.11",
  "/usr/lib/x86_64-linux-gnu/libpython3.11.so.1.0",
  "/usr/lib/x86_64-linux-gnu/libstdc++.so.6",
];
// Not part of the base system: compared when installed.
const OPTIONAL = ["/usr/lib/jvm/java-17-openjdk-amd64/lib/server/libjvm.so", "/usr/lib/jvm/temurin-25-jdk-amd64/lib/server/libjvm.so"].filter(existsSync);

function fileByte(path: string, offset: number): number {
  const fd = openSync(path, "r");
  try {
    const b = new Uint8Array(1);
    readSync(fd, b, 0, 1, offset);
    return b[0]!;
  } finally {
    closeSync(fd);
  }
}

function checkAgainstReadelf(path: string): void {
  const { elf, sites, close } = sitesOf(path);
  try {
    const ref = readelfNotes(path);
    expect(ref.length, `readelf found no stapsdt notes in ${path}`).toBeGreaterThan(0);
    expect(sites.map((s) => ({ provider: s.provider, name: s.name, location: s.note.pc, base: s.note.base, semaphore: s.note.semaphore, args: s.argsText }))).toEqual(ref);

    const base = elf.section(".stapsdt.base");
    const probes = elf.section(".probes");
    for (const s of sites) {
      expect(s.error).toBeUndefined();
      // Not prelinked: the recorded base is the section's address, so nothing moved.
      if (base) expect(s.base).toBe(base.addr);
      expect(s.pc).toBe(s.note.pc);
      expect(s.offset).toBe(elf.vaddrToOffset(s.pc)!);
      expect(fileByte(path, s.offset), `${s.provider}:${s.name} at file offset 0x${s.offset.toString(16)}`).toBe(0x90);
      if (s.semaphore) {
        expect(probes, `${path} has semaphores but no .probes`).toBeDefined();
        // The kernel's ref_ctr_offset: a file offset inside .probes, as the section headers say.
        expect(s.semaphoreOffset).toBe(s.semaphore - probes!.addr + probes!.offset);
        expect(s.semaphoreOffset).toBeGreaterThanOrEqual(probes!.offset);
        expect(s.semaphoreOffset + 2).toBeLessThanOrEqual(probes!.offset + probes!.size);
        expect(s.semaphoreSection).toBe(".probes");
      } else {
        expect(s.semaphoreOffset).toBe(0);
      }
      for (const a of s.args) expect(a.kind, `${s.provider}:${s.name} '${s.argsText}'`).not.toBe("unsupported");
    }
  } finally {
    close();
  }
}

describe("notes equal readelf -n --wide", () => {
  for (const { name } of FIXTURE_NAMES) test(`fixture ${name}`, () => checkAgainstReadelf(usdtFixture(name).path));
  for (const path of [...SYSTEM, ...OPTIONAL]) {
    test(path, () => {
      if (!existsSync(path)) throw new Error(`${path} is missing: apt-get install -y python3.11 libpython3.11 libstdc++6`);
      checkAgainstReadelf(path);
    });
  }
});

describe("probes and sites", () => {
  test("python3.11: the 8 documented probes, each with a semaphore", () => {
    const fd = openSync("/usr/bin/python3.11", "r");
    try {
      const probes = readUsdtProbes(new ElfFile(fd, "/usr/bin/python3.11"));
      expect(probes.map((p) => `${p.provider}:${p.name}`).sort()).toEqual(
        ["audit", "function__entry", "function__return", "gc__done", "gc__start", "import__find__load__done", "import__find__load__start", "line"].map((n) => `python:${n}`),
      );
      for (const p of probes) for (const s of p.sites) expect(s.semaphore).not.toBe(0);
      const entry = findUsdtProbe(probes, "python:function__entry", "python3.11");
      expect(entry.sites[0]!.args.map((a) => (a.kind === "register" ? a.reg.full : a.kind))).toEqual(["rbp", "r12", "rax"]);
    } finally {
      closeSync(fd);
    }
  });

  test("sites grouped by provider:name; lookup by full or bare name, with suggestions", () => {
    const { sites, close } = sitesOf(usdtFixture("usdt-O2").path);
    close();
    const probes = groupUsdtSites(sites);
    expect(probes.find((p) => p.name === "two_sites")!.sites.length).toBe(2);
    expect(probes.find((p) => p.name === "sem_enabled")!.sites.length).toBe(2);
    // Both sites of one probe share its semaphore.
    const sem = probes.find((p) => p.name === "sem_enabled")!.sites;
    expect(sem[0]!.semaphoreOffset).toBe(sem[1]!.semaphoreOffset);
    expect(findUsdtProbe(probes, "fx:two_sites", "fx").sites.length).toBe(2);
    expect(findUsdtProbe(probes, "asm_forms", "fx").name).toBe("asm_forms");
    let err: UsdtNoteError | undefined;
    try {
      findUsdtProbe(probes, "fx:two_site", "fx");
    } catch (e) {
      err = e as UsdtNoteError;
    }
    expect(err).toBeInstanceOf(UsdtNoteError);
    expect(err!.message).toContain("fx:two_site not found in fx");
    expect(err!.hint).toContain("fx:two_sites");
    const dup = groupUsdtSites([...sites, { ...sites[0]!, provider: "other" }]);
    expect(() => findUsdtProbe(dup, sites[0]!.name, "fx")).toThrow(/ambiguous/);
    expect(() => findUsdtProbe([], "x", "libc.so.6")).toThrow(/no USDT probes/);
  });

  test("a file without probes has none", () => {
    const fd = openSync("/lib/x86_64-linux-gnu/libc.so.6", "r");
    try {
      expect(readUsdtSites(new ElfFile(fd, "libc.so.6"))).toEqual([]);
    } finally {
      closeSync(fd);
    }
  });

  test("a prelink-style move: addresses follow .stapsdt.base, file offsets stay", () => {
    const { elf, sites, close } = sitesOf(usdtFixture("usdt-O2").path);
    try {
      const note = elf.section(".note.stapsdt")!;
      const data = elf.sectionBytes(note);
      const D = 0x20000;
      // Everything allocated moves by D; the notes (not allocated) keep their link-time addresses.
      const moved: NoteLayout = {
        path: "moved",
        type: elf.type,
        sections: elf.sections.map((s) => (s.addr ? { ...s, addr: s.addr + D } : s)),
        segments: elf.segments.map((s) => ({ ...s, vaddr: s.vaddr + D })),
        symbolAddress: (n) => {
          const sym = elf.symbols().find((s) => s.name === n);
          return sym ? sym.value + D : undefined;
        },
      };
      const after = parseStapsdtNotes(data, moved);
      expect(after.length).toBe(sites.length);
      for (let i = 0; i < sites.length; i++) {
        expect(after[i]!.pc).toBe(sites[i]!.pc + D);
        expect(after[i]!.offset).toBe(sites[i]!.offset);
        expect(after[i]!.semaphore).toBe(sites[i]!.semaphore ? sites[i]!.semaphore + D : 0);
        expect(after[i]!.semaphoreOffset).toBe(sites[i]!.semaphoreOffset);
        // rip-relative arguments keep their distance from the probe.
        expect(after[i]!.args).toEqual(sites[i]!.args.map((a) => (a.kind === "rip" ? { ...a, address: a.address + D } : a)));
      }
    } finally {
      close();
    }
  });
});

describe("malformed notes", () => {
  function layoutOf(path: string): { layout: NoteLayout; data: Uint8Array; close(): void } {
    const fd = openSync(path, "r");
    const elf = new ElfFile(fd, path);
    const data = elf.sectionBytes(elf.section(".note.stapsdt")!);
    const layout: NoteLayout = { path, type: elf.type, sections: elf.sections, segments: elf.segments, symbolAddress: () => 0x4000 };
    return { layout, data, close: () => closeSync(fd) };
  }

  function mutate(data: Uint8Array, r: () => number): Uint8Array {
    const d = data.slice();
    const kind = r() % 7;
    const at = d.length ? r() % d.length : 0;
    const notes = [];
    // Offsets of note headers, so that many mutations hit the fields that steer the parser.
    for (let o = 0; o + 12 <= d.length; ) {
      notes.push(o);
      const v = new DataView(d.buffer);
      o += 12 + Math.ceil(v.getUint32(o, true) / 4) * 4 + Math.ceil(v.getUint32(o + 4, true) / 4) * 4;
    }
    const note = notes[r() % notes.length] ?? 0;
    const v = new DataView(d.buffer);
    switch (kind) {
      case 0: // random bytes
        for (let i = 0, n = 1 + (r() % 8); i < n; i++) d[r() % d.length] = r() & 0xff;
        return d;
      case 1: // a note header field
        v.setUint32(note + 4 * (r() % 3), [0, 1, 3, 7, 0xffffffff, 0x7fffffff, r(), r() % 256][r() % 8]!, true);
        return d;
      case 2: // truncation
        return d.subarray(0, at);
      case 3: { // a descriptor address (pc, base, semaphore)
        const desc = note + 12 + 8;
        if (desc + 24 <= d.length) v.setBigUint64(desc + 8 * (r() % 3), [0n, 1n, 0xffffffffffffffffn, 1n << 60n, BigInt(r())][r() % 5]!, true);
        return d;
      }
      case 4: { // strings: remove every NUL after the addresses of one note
        const end = Math.min(d.length, note + 12 + 8 + v.getUint32(note + 4, true));
        for (let i = note + 44; i < end; i++) if (d[i] === 0) d[i] = 0x41;
        return d;
      }
      case 5: { // garbage in the argument string
        const chars = "%$@(),-+0123456789abcdrxspil:fmz ";
        for (let i = note + 44, n = 0; i < d.length && n < 6; i++) {
          if (d[i] !== 0 && r() % 3 === 0) {
            d[i] = chars.charCodeAt(r() % chars.length);
            n++;
          }
        }
        return d;
      }
      default: { // bytes inserted
        const ins = new Uint8Array(1 + (r() % 16)).map(() => r() & 0xff);
        const out = new Uint8Array(d.length + ins.length);
        out.set(d.subarray(0, at));
        out.set(ins, at);
        out.set(d.subarray(at), at + ins.length);
        return out;
      }
    }
  }

  test("1,500 seeded mutations of real notes: results or UsdtNoteErrors naming the file", () => {
    const sources = [layoutOf(usdtFixture("usdt-O2").path), layoutOf("/usr/bin/python3.11"), layoutOf("/usr/lib/x86_64-linux-gnu/libstdc++.so.6")];
    const rng = new Rng(20260501);
    const r = () => rng.u32();
    let errors = 0;
    let parsed = 0;
    let siteErrors = 0;
    const t0 = performance.now();
    try {
      for (let i = 0; i < 1500; i++) {
        const src = sources[i % sources.length]!;
        const d = mutate(src.data, r);
        try {
          const sites = parseStapsdtNotes(d, src.layout);
          parsed++;
          for (const s of sites) {
            if (s.error) {
              expect(s.error.startsWith(`${src.layout.path}: `)).toBe(true);
              siteErrors++;
              continue;
            }
            expect(Number.isSafeInteger(s.offset)).toBe(true);
            expect(s.offset).toBeGreaterThanOrEqual(0);
          }
        } catch (e) {
          if (!(e instanceof UsdtNoteError)) throw new Error(`mutation ${i} gave a raw ${(e as Error).constructor.name}: ${(e as Error).message}`);
          expect(e.message.startsWith(`${src.layout.path}: `)).toBe(true);
          errors++;
        }
      }
    } finally {
      for (const s of sources) s.close();
    }
    expect(errors).toBeGreaterThan(300);
    expect(parsed).toBeGreaterThan(100);
    expect(siteErrors).toBeGreaterThan(50);
    expect(performance.now() - t0).toBeLessThan(20000);
  });

  test("layouts that contradict the notes: the sites carry the error, the probe refuses to attach", () => {
    const src = layoutOf(usdtFixture("usdt-O2").path);
    try {
      const bad = (what: Partial<NoteLayout>, re: RegExp) => {
        const sites = parseStapsdtNotes(src.data, { ...src.layout, ...what });
        const broken = sites.filter((s) => s.error);
        expect(broken.length, String(re)).toBeGreaterThan(0);
        for (const s of broken) {
          expect(s.error!).toMatch(re);
          expect(s.error!.startsWith(`${src.layout.path}: USDT probe ${s.provider}:${s.name} `)).toBe(true);
        }
        const probe = groupUsdtSites(sites).find((p) => p.sites.some((s) => s.error))!;
        expect(() => assertAttachable(probe)).toThrow(UsdtNoteError);
      };
      // Code in no segment, in a non-executable one, semaphore in a read-only one or past the file.
      bad({ segments: [] }, /no loadable segment/);
      bad({ segments: src.layout.segments.map((s) => ({ ...s, flags: s.flags & ~1 })) }, /not executable/);
      bad({ segments: src.layout.segments.map((s) => ({ ...s, flags: s.flags & ~2 })) }, /semaphore at 0x[0-9a-f]+, in a read-only segment/);
      bad({ segments: src.layout.segments.map((s): Segment => (s.flags & 2 ? { ...s, filesz: 0 } : s)) }, /no bytes in the file/);
      // A .stapsdt.base moved far away: every pc leaves the code.
      bad({ sections: src.layout.sections.map((s): Section => (s.name === ".stapsdt.base" ? { ...s, addr: s.addr + 0x7000_0000 } : s)) }, /no loadable segment/);
      // A note of discarded code (address 0, as linkers leave them): only that site is unusable.
      const d = src.data.slice();
      new DataView(d.buffer).setBigUint64(20, 0n, true);
      const sites = parseStapsdtNotes(d, src.layout);
      expect(sites[0]!.error).toMatch(/at 0x0 is in (no loadable segment|a segment that is not executable)/);
      expect(sites.slice(1).every((s) => !s.error)).toBe(true);
    } finally {
      src.close();
    }
  });

  test("section headers pointing past the end of the file", () => {
    const path = join(WORK, "usdt-bad-section");
    for (const [field, value, re] of [
      [24, 1n << 40n, /past the end of the file|cannot read/],
      [32, 1n << 30n, /past the end of the file|implausibly large/],
    ] as const) {
      copyFileSync(usdtFixture("usdt-O2").path, path);
      const fd = openSync(path, "r+");
      try {
        const elf = new ElfFile(fd, path);
        const sec = elf.section(".note.stapsdt")!;
        const shoff = Number(new DataView(elf.readAt(40, 8).buffer).getBigUint64(0, true));
        const b = new Uint8Array(8);
        new DataView(b.buffer).setBigUint64(0, value, true);
        writeSync(fd, b, 0, 8, shoff + sec.index * 64 + field);
        expect(() => readUsdtSites(new ElfFile(fd, path))).toThrow(re);
        try {
          readUsdtSites(new ElfFile(fd, path));
        } catch (e) {
          expect(e).toBeInstanceOf(UsdtNoteError);
          expect((e as Error).message).toContain(path);
        }
      } finally {
        closeSync(fd);
      }
    }
  });
});
