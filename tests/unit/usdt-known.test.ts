// The built-in table of documented probe arguments against the notes of the real binaries that
// carry those probes: same argument count, and sizes that fit the documented types (pointers and
// strings 8 bytes, lengths and ints at most 8, booleans of any size).
import { describe, expect, test, setDefaultTimeout } from "bun:test";
import { closeSync, existsSync, openSync } from "node:fs";
import { ElfFile } from "../../lib/elf.ts";
import { argNames, KNOWN_PROBES, knownProbe } from "../../lib/usdt/known.ts";
import { readUsdtProbes, type UsdtProbe } from "../../lib/usdt/notes.ts";

// Builds fixtures and runs readelf/bpftrace/gdb: slow on a loaded machine.
setDefaultTimeout(60000);

function probesOf(path: string): UsdtProbe[] {
  const fd = openSync(path, "r");
  try {
    return readUsdtProbes(new ElfFile(fd, path));
  } finally {
    closeSync(fd);
  }
}

function checkTable(provider: string, probes: UsdtProbe[], mustCover: number): void {
  let covered = 0;
  for (const k of KNOWN_PROBES.filter((p) => p.provider === provider)) {
    const p = probes.find((x) => x.provider === k.provider && x.name === k.name);
    if (!p) continue;
    covered++;
    for (const site of p.sites) {
      expect(site.args.length, `${k.provider}:${k.name} '${site.argsText}'`).toBe(k.args.length);
      site.args.forEach((a, i) => {
        if (a.kind === "unsupported") throw new Error(`${k.provider}:${k.name} arg ${i}: ${a.reason}`);
        const want = k.args[i]!;
        if (want.type === "str" || want.type === "ptr") expect(a.size, `${k.name}.${want.name}`).toBe(8);
        if (want.type === "str" && want.lengthArg !== undefined) {
          expect(want.lengthArg).toBe(i + 1);
          expect(k.args[want.lengthArg]!.name).toBe(`${want.name}_len`);
        }
      });
    }
  }
  expect(covered).toBeGreaterThanOrEqual(mustCover);
}

describe("documented arguments match the notes", () => {
  test("python (python3.11 and libpython3.11)", () => {
    for (const path of ["/usr/bin/python3.11", "/usr/lib/x86_64-linux-gnu/libpython3.11.so.1.0"]) {
      if (!existsSync(path)) throw new Error(`${path} is missing: apt-get install -y python3.11 libpython3.11`);
      const probes = probesOf(path);
      checkTable("python", probes, 8);
      // Every python probe in the file is in the table.
      for (const p of probes) expect(knownProbe(p.provider, p.name), `${p.provider}:${p.name}`).toBeDefined();
    }
  });

  test("libstdcxx (libstdc++.so.6)", () => {
    const probes = probesOf("/usr/lib/x86_64-linux-gnu/libstdc++.so.6");
    checkTable("libstdcxx", probes, 3);
    for (const p of probes) expect(knownProbe(p.provider, p.name), `${p.provider}:${p.name}`).toBeDefined();
  });

  const jvms = ["/usr/lib/jvm/java-17-openjdk-amd64/lib/server/libjvm.so", "/usr/lib/jvm/temurin-25-jdk-amd64/lib/server/libjvm.so"].filter(existsSync);
  for (const path of jvms) {
    test(`hotspot (${path})`, () => {
      checkTable("hotspot", probesOf(path), 15);
    });
  }

  test("argument names: documented, else argN", () => {
    expect(argNames("python", "function__entry", 3)).toEqual(["filename", "funcname", "lineno"]);
    expect(argNames("hotspot", "class__loaded", 4)).toEqual(["class", "class_len", "class_loader_id", "shared"]);
    expect(argNames("python", "function__entry", 2)).toEqual(["arg0", "arg1"]); // a different build: do not guess
    expect(argNames("myapp", "start", 2)).toEqual(["arg0", "arg1"]);
  });
});
