// Separate debug files: libc's from Debian's libc6-dbg through its build-id (checked against gdb,
// which finds the same file), a container-style root seen through the opener, a debug file with
// another build-id (ignored, with the reason), .gnu_debuglink with its CRC. And what one lookup
// costs (printed, not asserted).
import { afterAll, describe, expect, test, setDefaultTimeout } from "bun:test";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ElfFile } from "../../lib/elf.ts";
import { buildId, findDebugInfo, formatSignature, hostOpener, type DebugInfoLookup } from "../../lib/dwarf/index.ts";
import { buildGo, buildParams, sh, split } from "../fixtures/dwarf/build.ts";

// gdb, readelf and go builds are slow on a loaded 2-CPU machine.
setDefaultTimeout(60_000);

const LIBC = "/lib/x86_64-linux-gnu/libc.so.6";
const LIBM = "/lib/x86_64-linux-gnu/libm.so.6";
const opened: ElfFile[] = [];
const tmp = mkdtempSync(join(tmpdir(), "dwarf-debugfile-"));
afterAll(() => {
  for (const e of opened) hostOpener.release(e);
  rmSync(tmp, { recursive: true, force: true });
});

/** The host opener, remembering what it opened so every fd is closed at the end. */
const tracking: DebugInfoLookup = {
  open(path) {
    const e = hostOpener.open(path);
    if (e) opened.push(e);
    return e;
  },
};

/** An opener that resolves every path inside `root`, as probe does for a container. */
function rootOpener(root: string): DebugInfoLookup {
  return { open: (path) => tracking.open(join(root, path)) };
}

function elf(path: string): ElfFile {
  return tracking.open(path)!;
}

function needLibcDbg(): string {
  const id = buildId(elf(LIBC))!;
  const path = `/usr/lib/debug/.build-id/${id.slice(0, 2)}/${id.slice(2)}.debug`;
  if (!existsSync(path)) throw new Error(`${path} is missing: install Debian's libc6-dbg (apt-get install -y libc6-dbg)`);
  return path;
}

describe("libc with libc6-dbg", () => {
  test("malloc: found through the build-id; bytes, a size_t, in rdi at the entry, as gdb says", () => {
    const debugPath = needLibcDbg();
    const r = findDebugInfo(elf(LIBC), LIBC, tracking);
    expect([r.source, r.path]).toEqual(["build-id", debugPath]);
    expect(r.notes).toEqual([`${LIBC} has no debug info of its own`]);
    const f = r.info!.functionByName("malloc")!;
    expect([f.name, f.linkageName, f.language]).toEqual(["__libc_malloc", "__GI___libc_malloc", "c"]);
    expect(f.params.map((p) => [p.name, p.type.name, p.type.resolved.name, p.type.resolved.size, p.type.resolved.kind])).toEqual([["bytes", "size_t", "unsigned long", 8, "uint"]]);
    expect(f.lowPc).toBe(elf(LIBC).functions().find((s) => s.name === "malloc")!.value);

    const gdb = sh(["gdb", "-batch", "-nx", "-ex", "ptype __libc_malloc", "-ex", "info scope __libc_malloc", "-ex", "info functions ^__GI___libc_malloc$", LIBC]);
    expect(gdb).toContain(`type = ${formatSignature(f, { names: false }).replace("__libc_malloc", "")}`); // void *(size_t)
    const scope = /Symbol (\w+) is multi-location:\n\s+Range 0x([0-9a-f]+)-0x[0-9a-f]+: a variable in \$(\w+)/.exec(gdb)!;
    expect([scope[1], parseInt(scope[2]!, 16), scope[3]]).toEqual([f.params[0]!.name, f.lowPc, (f.params[0]!.location as { name: string }).name]);
    expect(gdb).toMatch(new RegExp(`File ${f.declFile!.replace(/[.]/g, "\\.")}:\\n${f.declLine}:\\s+void \\*__GI___libc_malloc\\(size_t\\);`));
  });

  test("prototypes of exported libc functions equal gdb's whatis", () => {
    needLibcDbg();
    const info = findDebugInfo(elf(LIBC), LIBC, tracking).info!;
    const names = ["free", "calloc", "realloc", "fopen", "fclose", "fread", "printf", "snprintf", "strtol", "qsort", "getaddrinfo", "pthread_create", "setlocale", "open", "read", "write", "strdup", "bsearch", "signal", "pthread_mutex_lock"];
    const ours = names.map((n) => info.functionByName(n)!);
    expect(ours.every(Boolean)).toBe(true);
    const gdb = sh(["gdb", "-batch", "-nx", ...ours.flatMap((f) => ["-ex", `whatis '${f.name}'`]), LIBC]).split("\n").filter((l) => l.startsWith("type = "));
    expect(gdb.length).toBe(names.length);
    // gdb's "type = int (const char *, int, ...)" is our prototype without the function's name
    // (whatis keeps typedefs; ptype would expand the return type's).
    expect(ours.map((f) => `type = ${formatSignature(f, { names: false }).replace(`${f.name}(`, "(")}`)).toEqual(gdb);
  });

  test("every prototype gdb's info functions lists for libc, at its line, is one the reader gives", () => {
    needLibcDbg();
    const info = findDebugInfo(elf(LIBC), LIBC, tracking).info!;
    const gdb = new Set<string>();
    for (const line of sh(["gdb", "-batch", "-nx", "-ex", "info functions", LIBC]).split("\n")) {
      if (line.startsWith("Non-debugging symbols:")) break;
      const m = /^(\d+):\t(?:static )?(.*);$/.exec(line);
      if (m) gdb.add(`${m[1]}: ${m[2]}`);
    }
    expect(gdb.size).toBeGreaterThan(3000);
    const ours = new Set<string>();
    let asm = 0;
    for (const f of info.functions()) {
      if (f.language === "asm") asm++;
      // gdb names a function by its linkage name when DWARF has one (__GI___libc_malloc).
      ours.add(`${f.declLine}: ${formatSignature({ ...f, name: f.linkageName ?? f.name }, { names: false })}`);
    }
    expect(info.warnings).toEqual([]);
    expect([...gdb].filter((p) => !ours.has(p))).toEqual([]);
    expect(asm).toBeGreaterThan(100); // assembler functions: located, no signature (gdb lists none)
  }, 60_000);

  test("a debug file with another build-id is ignored, and the note says why", () => {
    const libcId = buildId(elf(LIBC))!;
    const libmDebug = (() => {
      const id = buildId(elf(LIBM))!;
      return `/usr/lib/debug/.build-id/${id.slice(0, 2)}/${id.slice(2)}.debug`;
    })();
    const root = join(tmp, "mismatch");
    const inRoot = `/usr/lib/debug/.build-id/${libcId.slice(0, 2)}/${libcId.slice(2)}.debug`;
    mkdirSync(join(root, inRoot, ".."), { recursive: true });
    copyFileSync(libmDebug, join(root, inRoot));
    const r = findDebugInfo(elf(LIBC), LIBC, rootOpener(root));
    expect(r.info).toBeUndefined();
    expect(r.notes).toContain(`${inRoot} ignored: its build-id ${buildId(elf(libmDebug))} is not the binary's ${libcId}`);
  });

  test("inside a container-like root, the debug file is found there and reported by its path in the root", () => {
    const debugPath = needLibcDbg();
    const root = join(tmp, "root");
    mkdirSync(join(root, debugPath, ".."), { recursive: true });
    copyFileSync(debugPath, join(root, debugPath));
    const r = findDebugInfo(elf(LIBC), LIBC, rootOpener(root));
    expect([r.source, r.path, r.elf!.path]).toEqual(["build-id", debugPath, join(root, debugPath)]);
    expect(r.info!.functionByName("free")!.params.map((p) => `${p.type.name} ${p.name}`)).toEqual(["void * mem"]);
  });
});

describe(".gnu_debuglink", () => {
  test("without a build-id: found next to the binary, accepted by CRC32; a changed copy is refused by CRC", () => {
    const bin = buildParams("params-nobuildid", ["-O2", "-Wl,--build-id=none"]);
    const dir = join(tmp, "link");
    const { stripped, debug } = split(bin, dir);
    const strippedElf = elf(stripped);
    expect(buildId(strippedElf)).toBeUndefined();
    const r = findDebugInfo(strippedElf, stripped, tracking);
    expect([r.source, r.path]).toEqual(["debuglink", debug]);
    expect(r.notes).toEqual([`${stripped} has no debug info of its own`, `${stripped} has no GNU build-id`]);
    expect(formatSignature(r.info!.functionByName("f_many")!)).toBe("long f_many(int a, long b, short c, char d, unsigned char e, int64_t f, uint16_t g, void *h, signed char i)");

    // The same name in .debug/ but one byte different, and the good one gone.
    const bad = join(dir, ".debug", debug.split("/").pop()!);
    mkdirSync(join(dir, ".debug"), { recursive: true });
    const bytes = readFileSync(debug);
    const str = elf(debug).section(".debug_str")!;
    bytes[str.offset + 1] ^= 0x20; // a name changes case: still a valid ELF file, another CRC
    writeFileSync(bad, bytes);
    const moved = `${debug}.moved`;
    copyFileSync(debug, moved);
    rmSync(debug);
    try {
      const r2 = findDebugInfo(strippedElf, stripped, tracking);
      expect(r2.info).toBeUndefined();
      expect(r2.notes.filter((n) => n.startsWith(`${bad} ignored: CRC32 `))).toEqual([expect.any(String)]);
    } finally {
      copyFileSync(moved, debug);
    }
  });

  test("with a build-id: the build-id decides between the binary and its linked file", () => {
    const bin = buildParams("params-O2", ["-O2"]);
    const { stripped, debug } = split(bin, join(tmp, "link-id"));
    const r = findDebugInfo(elf(stripped), stripped, { ...tracking, debugDir: join(tmp, "empty-debug-dir") });
    expect([r.source, r.path, r.buildId]).toEqual(["debuglink", debug, buildId(elf(bin))]);
  });
});

test("cost of one lookup in a fresh process (printed; the target is < 50 ms, reading only what is needed)", () => {
  const debugPath = needLibcDbg();
  const malloc = elf(LIBC).functions().find((s) => s.name === "malloc")!.value.toString(16);
  const runs: string[] = [];
  const measure = (file: string, ...lookups: string[]) => {
    const out = sh(["bun", join(import.meta.dir, "..", "fixtures", "dwarf", "measure.ts"), file, ...lookups]);
    for (const line of out.trim().split("\n")) {
      const m = JSON.parse(line);
      expect(m.found).toBeDefined();
      runs.push(
        `${file.split("/").pop()} ${m.lookup} -> ${m.found}: cold ${m.ms} ms (${m.cpuMs} ms CPU), warm ${m.warmMs} ms (${m.warmCpuMs} ms CPU); ` +
          `${m.bytesRead} bytes read (${Object.entries(m.bytesReadBySection).map(([k, v]) => `${k} ${v}`).join(", ")}), ${m.bytesInflated} inflated, ${m.unitsParsed} unit(s) parsed`,
      );
    }
  };
  measure(debugPath, "addr", malloc, "name", "malloc");
  const basic = elf(buildGo("plain")).functions().find((s) => s.name === "main.Basic")!.value.toString(16);
  measure(buildGo("plain"), "addr", basic, "name", "main.Basic");
  measure(buildGo("uncompressed"), "name", "main.Basic");
  measure(buildParams("params-O2", ["-O2"]), "name", "f_many");
  console.log(`DWARF lookup cost (machine load: ${readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ")}):\n  ${runs.join("\n  ")}`);
});
