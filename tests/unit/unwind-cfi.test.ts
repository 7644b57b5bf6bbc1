// The CFI reader against binutils: every row `readelf --debug-dump=frames-interp` prints for
// libc, ld.so, a gcc -O2 fixture and a Go binary (compressed .debug_frame) must be the row our
// tables give at that address, column by column. Also: .eh_frame_hdr lookups agree with a walk of
// .eh_frame, and glibc's PLT CFA expression evaluates as the psABI says.
import { describe, expect, test } from "bun:test";
import { openSync, closeSync } from "node:fs";
import { ElfFile } from "../../lib/elf.ts";
import { RULE, REG, type CfaRow } from "../../lib/unwind/cfa-row.ts";
import { FileCfi } from "../../lib/unwind/file-cfi.ts";
import { FrameSection } from "../../lib/unwind/frame-section.ts";
import { evaluate } from "../../lib/unwind/dwarf-expr.ts";
import { buildChain, buildGoChain } from "./unwind-fixtures.ts";

const LIBC = "/lib/x86_64-linux-gnu/libc.so.6";
const LDSO = "/lib64/ld-linux-x86-64.so.2";
const LIBSTDCXX = "/usr/lib/x86_64-linux-gnu/libstdc++.so.6";

// binutils' names for DWARF registers 0-16 (dwarf_regnames_x86_64).
const READELF_NAMES = ["rax", "rdx", "rcx", "rbx", "rsi", "rdi", "rbp", "rsp", "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15", "rip"];

interface ReadelfFde {
  pcStart: number;
  pcEnd: number;
  columns: string[];
  rows: { loc: number; cells: string[] }[];
}

function readelfFdes(path: string): ReadelfFde[] {
  const r = Bun.spawnSync(["readelf", "--debug-dump=frames-interp", path], { stdout: "pipe", stderr: "pipe" });
  // readelf exits 1 on Debian's libc without saying why; its table is complete all the same.
  if (!/Contents of the \.(eh|debug)_frame section/.test(r.stdout.toString())) throw new Error(`readelf failed on ${path} (exit ${r.exitCode}): ${r.stderr}`);
  const fdes: ReadelfFde[] = [];
  let cur: ReadelfFde | undefined;
  for (const line of r.stdout.toString().split("\n")) {
    const h = /FDE cie=[0-9a-f]+ pc=([0-9a-f]+)\.\.([0-9a-f]+)/.exec(line);
    if (h) {
      cur = { pcStart: parseInt(h[1]!, 16), pcEnd: parseInt(h[2]!, 16), columns: [], rows: [] };
      fdes.push(cur);
      continue;
    }
    if (/ CIE /.test(line)) cur = undefined;
    if (!cur) continue;
    if (/^\s+LOC\s+CFA/.test(line)) cur.columns = line.trim().split(/\s+/).slice(1);
    else if (/^[0-9a-f]{16} /.test(line)) {
      // Cells are separated by spaces, but a register rule prints as "r9 (r9)".
      const cells = line.slice(17).match(/r\d+ \(\w+\)|\S+/g) ?? [];
      cur.rows.push({ loc: parseInt(line.slice(0, 16), 16), cells });
    }
  }
  return fdes;
}

function cell(row: CfaRow, column: string): string | undefined {
  if (column === "CFA") return row.cfaReg < 0 ? "exp" : `${READELF_NAMES[row.cfaReg] ?? `r${row.cfaReg}`}${row.cfaOffset >= 0 ? "+" : ""}${row.cfaOffset}`;
  const reg = column === "ra" ? REG.RA : READELF_NAMES.indexOf(column);
  if (reg < 0) return undefined; // vector registers: not kept
  const v = row.value[reg]!;
  const sign = v >= 0 ? "+" : "";
  switch (row.rule[reg]) {
    case RULE.unspecified: case RULE.undefined: return "u";
    case RULE.sameValue: return "s";
    case RULE.offset: return `c${sign}${v}`;
    case RULE.valOffset: return `v${sign}${v}`;
    case RULE.register: return `r${v} (${READELF_NAMES[v] ?? "?"})`;
    case RULE.expression: return "exp";
    case RULE.valExpression: return "vexp";
  }
  return "?";
}

function compareWithReadelf(path: string): { fdes: number; rows: number; cells: number } {
  const fd = openSync(path, "r");
  try {
    const elf = new ElfFile(fd, path);
    const cfi = FileCfi.of(elf);
    const fdes = readelfFdes(path);
    expect(fdes.length).toBeGreaterThan(0);
    let rows = 0;
    let cells = 0;
    const mismatches: string[] = [];
    for (const f of fdes) {
      if (f.pcEnd <= f.pcStart) continue;
      // An FDE without instructions: readelf prints no row, the CIE's initial row holds.
      const probe = f.rows.length ? f.rows : [{ loc: f.pcStart, cells: [] }];
      const last = new Map<number, string[]>();
      for (const r of probe) last.set(r.loc, r.cells);
      for (const [loc, expected] of last) {
        if (loc >= f.pcEnd) continue;
        const found = cfi.lookup(loc);
        if (!found) {
          mismatches.push(`${path}: no row at 0x${loc.toString(16)} (FDE 0x${f.pcStart.toString(16)}..0x${f.pcEnd.toString(16)})`);
          continue;
        }
        expect(found.rows.locs[0]).toBe(f.pcStart);
        expect(found.rows.end).toBe(f.pcEnd);
        rows++;
        f.columns.forEach((col, i) => {
          const mine = cell(found.row, col);
          if (mine === undefined || expected[i] === undefined) return;
          cells++;
          if (mine !== expected[i]) mismatches.push(`${path} 0x${loc.toString(16)} ${col}: readelf ${expected[i]}, ours ${mine}`);
        });
      }
    }
    expect(mismatches.slice(0, 20)).toEqual([]);
    expect(cfi.problems).toEqual([]);
    return { fdes: fdes.length, rows, cells };
  } finally {
    closeSync(fd);
  }
}

describe("call-frame tables equal readelf --debug-dump=frames-interp", () => {
  // libstdc++: "zPLR" CIEs (indirect personality pointer, LSDA pointers in the FDEs).
  for (const [name, path] of [["libc", LIBC], ["ld.so", LDSO], ["libstdc++", LIBSTDCXX]] as const) {
    test(name, () => {
      const n = compareWithReadelf(path);
      console.log(`${path}: ${n.fdes} FDEs, ${n.rows} rows, ${n.cells} cells equal`);
      expect(n.rows).toBeGreaterThan(1000);
    });
  }
  test("gcc -O2 -fomit-frame-pointer fixture", () => {
    const n = compareWithReadelf(buildChain());
    expect(n.rows).toBeGreaterThan(10);
  });
  test("Go binary: zlib-compressed .debug_frame", () => {
    const bin = buildGoChain(false);
    const fd = openSync(bin, "r");
    const elf = new ElfFile(fd, bin);
    expect(elf.section(".debug_frame")!.flags & 0x800).toBe(0x800);
    expect(elf.section(".eh_frame")).toBeUndefined();
    closeSync(fd);
    const n = compareWithReadelf(bin);
    expect(n.rows).toBeGreaterThan(1000);
  });
});

test(".eh_frame_hdr binary search finds the same FDE as a walk of .eh_frame, for every FDE start and end-1 in libc", () => {
  const fd = openSync(LIBC, "r");
  try {
    const elf = new ElfFile(fd, LIBC);
    const sec = elf.section(".eh_frame")!;
    const walk = new FrameSection(elf.sectionBytes(sec), sec.addr, "eh_frame").scan();
    expect(walk.problem).toBeUndefined();
    expect(walk.starts.length).toBeGreaterThan(3000);
    const cfi = FileCfi.of(elf);
    for (let i = 0; i < walk.starts.length; i++) {
      for (const pc of [walk.starts[i]!, walk.ends[i]! - 1]) {
        const found = cfi.lookup(pc)!;
        expect(found.rows.locs[0]).toBe(walk.starts[i]!);
        expect(found.rows.end).toBe(walk.ends[i]!);
      }
    }
    // Between FDEs (padding after a function): nothing.
    const gap = walk.ends.findIndex((e, i) => i + 1 < walk.starts.length && e < walk.starts[i + 1]!);
    expect(cfi.lookup(walk.ends[gap]!)).toBeUndefined();
  } finally {
    closeSync(fd);
  }
});

test("glibc-style PLT CFA expression: rsp + 8, plus 8 once the entry has pushed (pc & 15 >= 11)", () => {
  const path = buildChain();
  const fd = openSync(path, "r");
  try {
    const elf = new ElfFile(fd, path);
    const plt = elf.section(".plt")!;
    const found = FileCfi.of(elf).lookup(plt.addr + 16)!;
    expect(found.row.cfaReg).toBe(-1);
    const rsp = 0x7ffc0000;
    for (let pc = plt.addr + 16; pc < plt.addr + 48; pc++) {
      const row = FileCfi.of(elf).lookup(pc)!.row;
      const cfa = evaluate(row.cfaExpr!, { reg: (n) => (n === REG.RSP ? rsp : n === REG.RA ? pc : NaN), read: () => undefined });
      expect(cfa).toBe(rsp + 8 + ((pc & 15) >= 11 ? 8 : 0));
    }
  } finally {
    closeSync(fd);
  }
});
