// What users type for numbers and options: validated with one clear line, said back as typed.
import { describe, expect, test } from "bun:test";
import { parseSeconds, parsePid, parseCount, parseBytes, normalizeArgv } from "../../src/options.ts";
import { UsageError } from "../../src/errors.ts";

const cmd = { options: [{ rawName: "-d, --duration <seconds>" }, { rawName: "-p, --pid <pid>" }, { rawName: "--json" }, { rawName: "-r, --ret" }, { rawName: "-s, --summary" }] };
const global = { options: [{ rawName: "-h, --help" }, { rawName: "-v, --version" }] };

describe("numbers", () => {
  test("seconds: finite, in range, not empty; long durations are numbers like any other", () => {
    expect(parseSeconds("duration", undefined, 0)).toBe(0);
    expect(parseSeconds("duration", "2.5", 0)).toBe(2.5);
    expect(parseSeconds("duration", 1e9, 0)).toBe(1e9);
    for (const bad of ["", " ", "-1", "abc", "Infinity", "NaN", "1e13", true]) {
      expect(() => parseSeconds("duration", bad, 0)).toThrow(UsageError);
    }
    expect(() => parseSeconds("duration", "", 0)).toThrow("--duration takes a number of seconds from 0 to 1000000000000, not ''");
    expect(() => parseSeconds("interval", "0", 1, 0.01)).toThrow(/from 0.01/);
  });

  test("pids: whole numbers above 0, refused as typed", () => {
    expect(parsePid("42")).toBe(42);
    expect(parsePid(42)).toBe(42);
    expect(parsePid(undefined)).toBeUndefined();
    for (const bad of ["", "0", "-1", "1.5", "0x10", "12abc", "99999999"]) expect(() => parsePid(bad)).toThrow(`--pid takes a process id, not '${bad}'`);
  });

  test("counts and sizes", () => {
    expect(parseCount("requests", "5", 1, 1, 10)).toBe(5);
    expect(() => parseCount("requests", "11", 1, 1, 10)).toThrow(/from 1 to 10/);
    expect(parseBytes("max-bytes", "64K", 0)).toBe(65536);
    expect(parseBytes("max-bytes", "1M", 0)).toBe(1 << 20);
    expect(parseBytes("max-bytes", "0", 5)).toBe(0);
    expect(() => parseBytes("max-bytes", "lots", 0)).toThrow(/size in bytes/);
  });
});

describe("command lines", () => {
  const argv = (...a: string[]) => ["bun", "probe", "uprobe", ...a];
  test("unknown options are named as typed", () => {
    expect(() => normalizeArgv(argv("libc", "malloc", "--bogus-opt"), cmd, global)).toThrow("Unknown option '--bogus-opt'");
    expect(() => normalizeArgv(argv("--bogus=1"), cmd, global)).toThrow("Unknown option '--bogus'");
  });
  test("a negative number or an empty string after an option is its value, not another option", () => {
    expect(normalizeArgv(argv("-d", "-1", "libc"), cmd, global)).toEqual(argv("-d=-1", "libc"));
    expect(normalizeArgv(argv("--pid", "", "libc"), cmd, global)).toEqual(argv("--pid=", "libc"));
    expect(normalizeArgv(argv("-rs", "--json", "--", "-x"), cmd, global)).toEqual(argv("-rs", "--json", "--", "-x"));
  });
});
