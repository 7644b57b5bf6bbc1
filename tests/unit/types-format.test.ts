// Formatting recorded values (lib/types/format.ts, lib/types/bytes-text.ts): integers at every width
// from words with garbage above them, 64-bit extremes in text and JSON, strings at and over the
// copy limit, escapes (round-tripped through a C-escape decoder), UTF-8 and terminal-control code
// points, NULL and faults, Go strings/slices/interfaces, hexdump lines against `hexdump -C -v`, and
// the cost per event on the hot path.
import { describe, expect, test } from "bun:test";
import { parsePrototype } from "../../lib/types/prototype.ts";
import { locate } from "../../lib/types/abi.ts";
import type { LocateOptions } from "../../lib/types/function-layout.ts";
import { ValueFormatter, type Captured, type FormatOptions, type RawValues } from "../../lib/types/format.ts";
import { escapeC, hexdump, jsonString, jsonText } from "../../lib/types/bytes-text.ts";

const enc = new TextEncoder();

function formatter(text: string, opts: FormatOptions = {}, loc: LocateOptions = {}): ValueFormatter {
  return new ValueFormatter(locate(parsePrototype(text), loc), opts);
}

/** An event: slot i holds words[i]. */
function ev(words: (bigint | number)[], captures: (Captured | undefined)[] = []): RawValues {
  const dv = new DataView(new ArrayBuffer(8 * Math.max(1, words.length)));
  words.forEach((w, i) => dv.setBigUint64(8 * i, BigInt.asUintN(64, BigInt(w)), true));
  return { words: dv, captures };
}

function cap(bytes: string | Uint8Array | number[], truncated = false, fault = false): Captured {
  const b = typeof bytes === "string" ? enc.encode(bytes) : bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  return { bytes: b, truncated, fault };
}

const PTR = 0x7ffd12345678n;

describe("integers", () => {
  const f = formatter("int f(signed char a, short b, int c, long d, unsigned char e, unsigned short g, unsigned h, unsigned long i)");

  test("sign extension from each width, whatever is above it in the word", () => {
    const ones = 0xffffffffffffffffn;
    expect(f.callText(ev(Array(8).fill(ones)))).toBe("a=-1, b=-1, c=-1, d=-1, e=255, g=65535, h=4294967295, i=18446744073709551615");
    const low32 = 0x00000000ffffffffn; // an int -1 as a 32-bit mov leaves it in a 64-bit register
    expect(f.callText(ev(Array(8).fill(low32)))).toBe("a=-1, b=-1, c=-1, d=4294967295, e=255, g=65535, h=4294967295, i=4294967295");
    const garbage = 0xdeadbeefcafe0080n;
    expect(f.callText(ev(Array(8).fill(garbage)))).toBe(
      `a=-128, b=128, c=-889323392, d=${BigInt.asIntN(64, garbage)}, e=128, g=128, h=3405643904, i=${garbage}`,
    );
  });

  test("the smallest value of each width", () => {
    expect(f.callText(ev([0x80n, 0x8000n, 0x80000000n, 1n << 63n, 0, 0, 0, 0]))).toBe(
      "a=-128, b=-32768, c=-2147483648, d=-9223372036854775808, e=0, g=0, h=0, i=0",
    );
  });

  test("JSON: numbers while they are safe integers, strings past 2^53", () => {
    const g = formatter("void f(long a, unsigned long b)");
    const json = (a: bigint, b: bigint) => g.callJson(ev([a, b]));
    expect(json(2n ** 53n - 1n, 2n ** 53n - 1n)).toBe('[{"name":"a","type":"long","value":9007199254740991},{"name":"b","type":"unsigned long","value":9007199254740991}]');
    expect(JSON.parse(json(2n ** 53n, 2n ** 53n)).map((x: { value: unknown }) => x.value)).toEqual(["9007199254740992", "9007199254740992"]);
    expect(JSON.parse(json(-(2n ** 53n) + 1n, 2n ** 64n - 1n)).map((x: { value: unknown }) => x.value)).toEqual([-9007199254740991, "18446744073709551615"]);
    expect(JSON.parse(json(-(2n ** 53n), -1n)).map((x: { value: unknown }) => x.value)).toEqual(["-9007199254740992", "18446744073709551615"]);
    expect(JSON.parse(json(-(2n ** 63n), 0n))[0].value).toBe("-9223372036854775808");
  });

  test("Go widths, bool, pointers and nil", () => {
    const g = formatter("func main.f(a int8, b int16, c int32, d int64, e uint8, f uint16, g uint32, h uint64, i bool) int");
    expect(g.callText(ev([...Array(8).fill(-1n), 0x100n]))).toBe("a=-1, b=-1, c=-1, d=-1, e=255, f=65535, g=4294967295, h=18446744073709551615, i=false");
    expect(g.callText(ev([...Array(8).fill(0n), 0xff01n]))).toBe("a=0, b=0, c=0, d=0, e=0, f=0, g=0, h=0, i=true");
    const p = formatter("func main.f(p *int, m map[string]int, u unsafe.Pointer)");
    expect(p.callText(ev([0, PTR, 0xc000012345n]))).toBe("p=nil, m=0x7ffd12345678, u=0xc000012345");
    expect(formatter("void f(void *p, int *q)").callText(ev([0, 0xffffffffffffffffn]))).toBe("p=NULL, q=0xffffffffffffffff");
    expect(formatter("void f(void *p, int *q)").callJson(ev([0, 0x10n]))).toBe('[{"name":"p","type":"void *","value":null},{"name":"q","type":"int *","value":"0x10"}]');
  });

  test("enums by name when names are known", () => {
    const names = new Map([
      [0, "SHUT_RD"],
      [2, "SHUT_RDWR"],
    ]);
    const f = formatter("int f(enum how h, enum other o)", { enumNames: (tag) => (tag === "how" ? names : undefined) });
    expect(f.callText(ev([2, 2]))).toBe("h=SHUT_RDWR, o=2");
    expect(f.callText(ev([7, 0xffffffffn]))).toBe("h=7, o=-1");
    expect(JSON.parse(f.callJson(ev([2, 2])))).toEqual([
      { name: "h", type: "enum how", value: 2, enum: "SHUT_RDWR" },
      { name: "o", type: "enum other", value: 2 },
    ]);
  });

  test("unreadable values show as ? and say so in JSON", () => {
    const f = formatter("double f(double x, int a)");
    // x has no slot: a is slot 0.
    expect(f.callText(ev([5]))).toBe("x=?, a=5");
    expect(f.returnText(ev([5]))).toBe("ret=?");
    expect(JSON.parse(f.callJson(ev([5])))[0]).toEqual({ name: "x", type: "double", value: null, unreadable: true });
  });
});

describe("strings", () => {
  const f = formatter("int f(const char *s)", {}, { stringMax: 8 });

  test("at the limit, over it, NULL, fault, not copied", () => {
    expect(f.callText(ev([PTR], [cap("abcdefgh")]))).toBe('s="abcdefgh"');
    expect(f.callText(ev([PTR], [cap("abcdefgh", true)]))).toBe('s="abcdefgh"...');
    expect(f.callText(ev([0], [cap("")]))).toBe("s=NULL");
    expect(f.callText(ev([PTR], [cap("", false, true)]))).toBe("s=<fault 0x7ffd12345678>");
    expect(f.callText(ev([PTR], []))).toBe("s=0x7ffd12345678");
    expect(f.callText(ev([PTR], [cap("")]))).toBe('s=""');
    expect(JSON.parse(f.callJson(ev([PTR], [cap("abcdefgh", true)])))).toEqual([{ name: "s", type: "const char *", value: "abcdefgh", truncated: true }]);
    expect(JSON.parse(f.callJson(ev([PTR], [cap("", false, true)])))).toEqual([{ name: "s", type: "const char *", value: null, fault: "0x7ffd12345678" }]);
    expect(JSON.parse(f.callJson(ev([0])))).toEqual([{ name: "s", type: "const char *", value: null }]);
    expect(JSON.parse(f.callJson(ev([PTR])))).toEqual([{ name: "s", type: "const char *", value: null, ptr: "0x7ffd12345678" }]);
  });

  test("escapes: C's named ones, \\xNN for other controls and bytes that are not UTF-8", () => {
    const all = (s: number[]) => escapeC(new Uint8Array(s));
    expect(all([0x61, 0x0a, 0x01])).toBe("a\\n\\x01");
    expect(all([0, 7, 8, 9, 10, 11, 12, 13, 0x22, 0x5c, 0x1b, 0x7f])).toBe('\\0\\a\\b\\t\\n\\v\\f\\r\\"\\\\\\x1b\\x7f');
    expect(escapeC(enc.encode("héllo wörld 😀 日本"))).toBe("héllo wörld 😀 日本");
    expect(all([0xff, 0xc0, 0xaf, 0xed, 0xa0, 0x80, 0xf4, 0x90, 0x80, 0x80])).toBe("\\xff\\xc0\\xaf\\xed\\xa0\\x80\\xf4\\x90\\x80\\x80"); // invalid, overlong, surrogate, > U+10FFFF
    expect(all([0x68, 0xc3])).toBe("h\\xc3"); // cut short
    // Code points that steer a terminal instead of showing: C1 CSI, RLO, zero-width space, BOM.
    expect(escapeC(enc.encode("a\u009b31mb\u202eevil\u200b\ufeff"))).toBe("a\\xc2\\x9b31mb\\xe2\\x80\\xaeevil\\xe2\\x80\\x8b\\xef\\xbb\\xbf");
    // Code points no text uses (private use, noncharacters): binary data shows as bytes.
    expect(escapeC(enc.encode("\u{f9f60}\ue000\uffff\u{1fffe}é"))).toBe("\\xf3\\xb9\\xbd\\xa0\\xee\\x80\\x80\\xef\\xbf\\xbf\\xf0\\x9f\\xbf\\xbeé");
  });

  test("escaping round-trips: decoding the C escapes gives back every byte", () => {
    const decode = (s: string): number[] => {
      const out: number[] = [];
      const named: Record<string, number> = { "0": 0, a: 7, b: 8, t: 9, n: 10, v: 11, f: 12, r: 13, '"': 34, "\\": 92 };
      for (let i = 0; i < s.length; i++) {
        if (s[i] !== "\\") {
          const cp = s.codePointAt(i)!;
          if (cp > 0xffff) i++;
          out.push(...enc.encode(String.fromCodePoint(cp)));
        } else if (s[i + 1] === "x") {
          out.push(parseInt(s.slice(i + 2, i + 4), 16));
          i += 3;
        } else out.push(named[s[++i]!]!);
      }
      return out;
    };
    let seed = 12345;
    const rand = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff);
    for (let n = 0; n < 300; n++) {
      const len = rand() % 64;
      // Mix random bytes with valid UTF-8 so both paths are taken.
      const parts: number[] = [];
      while (parts.length < len) parts.push(...(rand() % 4 === 0 ? enc.encode(String.fromCodePoint(0x80 + (rand() % 0x3000))) : [rand() & 0xff]));
      const b = new Uint8Array(parts);
      expect(decode(escapeC(b))).toEqual([...b]);
    }
  });

  test("JSON strings are ASCII-only and exact for UTF-8; other bytes are marked lossy", () => {
    const s = "héllo \"q\" \\ \n\t\u0000\u007f 😀 \u2028";
    const t = jsonText(enc.encode(s));
    expect(t.lossy).toBe(false);
    expect(/^[\x20-\x7e]*$/.test(t.json)).toBe(true);
    expect(JSON.parse(t.json)).toBe(s);
    const bad = jsonText(new Uint8Array([0x61, 0xff, 0x62]));
    expect(bad).toEqual({ json: '"a\\ufffdb"', lossy: true });
    expect(jsonText(new Uint8Array([0x61, 0xe6, 0x97]), 3, true)).toEqual({ json: '"a"', lossy: false }); // cut by truncation
    expect(JSON.parse(jsonString("x\u0001é"))).toBe("x\u0001é");
    const g = formatter("int f(const char *s)");
    expect(JSON.parse(g.callJson(ev([PTR], [cap([0x61, 0xff])])))[0]).toEqual({ name: "s", type: "const char *", value: "a\ufffd", base64: "Yf8=" });
  });
});

describe("buffers", () => {
  const write = formatter("ssize_t write(int fd, const void *buf[count], size_t count)", {}, { bufferMax: 8 });

  test("text with embedded NULs, truncation past the limit, NULL, fault", () => {
    expect(write.callText(ev([1, PTR, 5], [cap("a\0b\nc")]))).toBe('fd=1, buf="a\\0b\\nc", count=5');
    expect(write.callText(ev([1, PTR, 12], [cap("hello wo", true)]))).toBe('fd=1, buf="hello wo"..., count=12');
    expect(write.callText(ev([1, PTR, 8], [cap("hello wo")]))).toBe('fd=1, buf="hello wo", count=8');
    expect(write.callText(ev([1, 0, 8], [cap("")]))).toBe("fd=1, buf=NULL, count=8");
    expect(write.callText(ev([1, PTR, 8], [cap("", false, true)]))).toBe("fd=1, buf=<fault 0x7ffd12345678>, count=8");
  });

  test("JSON: text when UTF-8, base64 otherwise; len is what the length said", () => {
    expect(JSON.parse(write.callJson(ev([1, PTR, 12], [cap("hello wo", true)])))[1]).toEqual({ name: "buf", type: "const void *", value: { len: 12, truncated: true, text: "hello wo" } });
    expect(JSON.parse(write.callJson(ev([1, PTR, 3], [cap([0, 0xff, 0x10])])))[1].value).toEqual({ len: 3, truncated: false, base64: "AP8Q" });
  });

  test("[ret]: a pointer at the call, the bytes at the return; a negative return copies nothing", () => {
    const read = formatter("ssize_t read(int fd, void *buf[ret], size_t count)");
    const d = read.layout.descriptor;
    expect(d.saveAtEntry).toEqual([1]);
    expect(read.callText(ev([3, PTR, 100]))).toBe("fd=3, buf=0x7ffd12345678, count=100");
    // Return event: words of the saved entry slots and of the return slots (slot 3 = rax).
    expect(read.returnText(ev([0, PTR, 0, 5], [cap("hello")]))).toBe('ret=5, buf="hello"');
    expect(read.returnText(ev([0, PTR, 0, -1], [cap("")]))).toBe('ret=-1, buf=""');
    expect(JSON.parse(read.returnJson(ev([0, PTR, 0, -1], [cap("")])))).toEqual([
      { name: "ret", type: "ssize_t", value: -1 },
      { name: "buf", type: "void *", value: { len: 0, truncated: false, text: "" } },
    ]);
  });

  test("hexdump mode: a size on the line, hexdump -C lines after it", () => {
    const h = formatter("ssize_t write(int fd, const void *buf[count], size_t count)", { hexdump: true });
    expect(h.callText(ev([1, PTR, 18], [cap("0123456789abcdef\n\0")]))).toBe(
      "fd=1, buf=<18 bytes>, count=18\n  buf:\n    00000000  30 31 32 33 34 35 36 37  38 39 61 62 63 64 65 66  |0123456789abcdef|\n    00000010  0a 00                                             |..|",
    );
    expect(h.callText(ev([1, PTR, 300], [cap("abc", true)])).split("\n")[0]).toBe("fd=1, buf=<300 bytes, 3 shown>, count=300");
  });

  test("element sizes and products scale the length", () => {
    const f = formatter("int f(const int *v[n], int n, void *p[ret * size], size_t size)");
    expect(f.layout.descriptor.captures.map((c) => [c.phase, c.lenFrom, c.len, c.len2, c.scale])).toEqual([
      [0, 2, 1, -1, 4],
      [1, 2, 4, 3, 1], // ret (slot 4, at return) times size (slot 3, saved at entry)
    ]);
    expect(f.layout.descriptor.saveAtEntry).toEqual([2, 3]);
    expect(JSON.parse(f.callJson(ev([PTR, 3, 0, 0], [cap([1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0])])))[0].value.len).toBe(12);
    expect(JSON.parse(f.returnJson(ev([0, 0, PTR, 2, 4], [undefined, cap("abcdefgh")])))[1].value).toEqual({ len: 8, truncated: false, text: "abcdefgh" });
  });
});

describe("Go values", () => {
  const f = formatter("func main.f(s string, b []byte, xs []int, e error, a any, arr [3]int16, z struct{}) (string, error)", {}, { stringMax: 4, bufferMax: 4 });
  // Slots: s 0-1, b 2-4, xs 5-7, e 8-9, a 10-11, arr 12-14; results 15-16 and 17-18.
  const words = [PTR, 5, PTR, 4, 8, 0xc000100000n, 3, 4, 0x4b2a20n, 0xc000010000n, 0, 0, -1, 2, 0x7fff];

  test("strings and []byte like C strings and buffers, truncated by their own length", () => {
    expect(f.callText(ev(words, [cap("hell"), cap([1, 2, 3, 4])]))).toBe(
      's="hell"..., b="\\x01\\x02\\x03\\x04", xs=[]int(0xc000100000, len 3, cap 4), e=(itab 0x4b2a20, data 0xc000010000), a=nil, arr=[-1 2 32767], z={}',
    );
    const empty = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    expect(f.callText(ev(empty, [undefined, undefined]))).toBe('s="", b=nil, xs=nil, e=nil, a=nil, arr=[0 0 0], z={}');
  });

  test("JSON", () => {
    expect(JSON.parse(f.callJson(ev(words, [cap("hell"), cap([1, 2, 3, 4])])))).toEqual([
      { name: "s", type: "string", value: "hell", truncated: true, len: 5 },
      { name: "b", type: "[]byte", value: { len: 4, cap: 8, truncated: false, text: "\u0001\u0002\u0003\u0004" } },
      { name: "xs", type: "[]int", value: { ptr: "0xc000100000", len: 3, cap: 4 } },
      { name: "e", type: "error", value: { itab: "0x4b2a20", data: "0xc000010000" } },
      { name: "a", type: "any", value: null },
      { name: "arr", type: "[3]int16", value: [-1, 2, 32767] },
      { name: "z", type: "struct{}", value: {} },
    ]);
    const ret = ev([...Array(15).fill(0), PTR, 2, 0, 0], [undefined, undefined, cap("ok")]);
    expect(f.returnText(ret)).toBe('ret0="ok", ret1=nil');
    expect(JSON.parse(f.returnJson(ret))).toEqual([
      { name: "ret0", type: "string", value: "ok" },
      { name: "ret1", type: "error", value: null },
    ]);
  });

  test("an empty interface's first word is its type", () => {
    const g = formatter("func main.f(a any)");
    expect(g.callText(ev([0x4b2a20n, 0xc000010000n]))).toBe("a=(type 0x4b2a20, data 0xc000010000)");
  });
});

describe("hexdump against hexdump -C -v", () => {
  test("same lines for lengths around the 8- and 16-byte boundaries and every byte value", () => {
    const cases = [1, 7, 8, 9, 15, 16, 17, 31, 32, 33, 255, 256].map((n) => Uint8Array.from({ length: n }, (_, i) => (i * 37 + n) & 0xff));
    cases.push(Uint8Array.from({ length: 256 }, (_, i) => i));
    for (const b of cases) {
      const r = Bun.spawnSync(["hexdump", "-C", "-v"], { stdin: b, stdout: "pipe" });
      if (r.exitCode !== 0) throw new Error("hexdump is needed: apt-get install bsdextrautils");
      const ref = r.stdout.toString().split("\n").filter(Boolean);
      expect(ref.pop()).toBe(b.length.toString(16).padStart(8, "0")); // hexdump's closing offset line
      expect(hexdump(b)).toEqual(ref);
    }
    expect(hexdump(new Uint8Array(0))).toEqual([]);
  });

  test("the hex columns agree with xxd", () => {
    const b = Uint8Array.from({ length: 40 }, (_, i) => (i * 91) & 0xff);
    const xxd = Bun.spawnSync(["xxd", "-c", "16", "-g", "1"], { stdin: b, stdout: "pipe" }).stdout.toString().trim().split("\n");
    const hex = (line: string) => line.match(/\b[0-9a-f]{2}\b/g)!.join(" ");
    expect(hexdump(b).map((l) => hex(l.slice(10, 59)))).toEqual(xxd.map((l) => hex(l.slice(10, 57))));
  });
});
