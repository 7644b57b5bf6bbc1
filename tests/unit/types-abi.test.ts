// Where arguments and results are (lib/types/abi.ts), checked against the compilers that put them
// there. Two fixtures (tests/fixtures/types: cargs.c built by gcc, goargs/main.go built by go) call
// functions with known values. gdb runs each under tests/fixtures/types/gdb_values.py, which follows
// probe's descriptor exactly as the BPF side must: at each function's first instruction it reads
// the entry slots (pt_regs registers, stack words) and copies the entry captures; at the return
// address it reads the return slots and captures. ValueFormatter then turns what gdb read into text,
// which must show the values main passed. So each comparison covers placement (register, stack
// offset, per-argument Go register assignment, results after the stack arguments), the descriptor
// (slot numbering, capture lengths from parameters and from the return value, entry words saved for
// return) and formatting together. Pointers are also followed (16 bytes behind them) to the objects
// main passed. Also: PT_REGS_INDEX against gcc's offsetof() on struct pt_regs.
import { beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, writeFileSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parsePrototype } from "../../lib/types/prototype.ts";
import { PrototypeError } from "../../lib/types/prototype-model.ts";
import { locate, unreadableValues } from "../../lib/types/abi.ts";
import { PT_REGS, PT_REGS_INDEX, locationText, PHASE_RETURN, LEN_SLOT, LEN_CONST, CAPTURE_CSTRING, CAPTURE_BYTES, type FunctionLayout, type ValueLayout } from "../../lib/types/function-layout.ts";
import { ValueFormatter, type RawValues } from "../../lib/types/format.ts";
import { goEnv, run } from "../fixtures/go.ts";

const FIXTURES = join(import.meta.dir, "..", "fixtures", "types");
const WORK = join(import.meta.dir, "..", ".work", "types");
mkdirSync(WORK, { recursive: true });

function need(cmd: string, pkg: string): void {
  if (Bun.spawnSync(["which", cmd]).exitCode !== 0) throw new Error(`'${cmd}' is needed for these tests: apt-get install ${pkg}`);
}

/** FUNC symbols of a binary by name, from readelf (the fixtures are not PIE). */
function functionAddresses(bin: string): Map<string, number> {
  const r = Bun.spawnSync(["readelf", "-Ws", "--wide", bin], { stdout: "pipe" });
  const map = new Map<string, number>();
  for (const line of r.stdout.toString().split("\n")) {
    const f = line.trim().split(/\s+/);
    if (f[3] === "FUNC" && f[7]) map.set(f[7], parseInt(f[1]!, 16));
  }
  return map;
}

interface GdbEvent {
  words: string[];
  captures: ({ hex: string; truncated: boolean; fault: boolean } | null)[];
  peeks?: string[];
}
interface GdbCall {
  name: string;
  entry: GdbEvent;
  return?: GdbEvent;
}

function raw(ev: GdbEvent): RawValues {
  const dv = new DataView(new ArrayBuffer(8 * Math.max(1, ev.words.length)));
  ev.words.forEach((w, i) => dv.setBigUint64(8 * i, BigInt(w), true));
  return { words: dv, captures: ev.captures.map((c) => (c ? { bytes: new Uint8Array(Buffer.from(c.hex, "hex")), truncated: c.truncated, fault: c.fault } : undefined)) };
}

/**
 * Runs `bin` under gdb with a breakpoint per prototype; returns each function's layout and calls.
 * A prototype may be a function of the symbol table (for names that differ between Go versions).
 */
function traceUnderGdb(bin: string, prototypes: (string | ((names: string[]) => string))[]): Map<string, { layout: FunctionLayout; calls: GdbCall[] }> {
  const addrs = functionAddresses(bin);
  const out = new Map<string, { layout: FunctionLayout; calls: GdbCall[] }>();
  const functions = prototypes.map((proto) => {
    const text = typeof proto === "string" ? proto : proto([...addrs.keys()]);
    const layout = locate(parsePrototype(text), { stringMax: 64, bufferMax: 64 });
    const addr = addrs.get(layout.proto.name);
    if (addr === undefined) throw new Error(`${layout.proto.name} is not in ${bin}`);
    out.set(layout.proto.name, { layout, calls: [] });
    return { name: layout.proto.name, addr, descriptor: layout.descriptor };
  });
  const specPath = join(WORK, `${bin.split("/").pop()}.gdb-spec.json`);
  const resultPath = join(WORK, `${bin.split("/").pop()}.gdb-calls.json`);
  writeFileSync(specPath, JSON.stringify({ out: resultPath, functions }));
  writeFileSync(resultPath, "[]");
  const r = Bun.spawnSync(["gdb", "-nx", "-batch", "-ex", `python SPEC_PATH='${specPath}'`, "-x", join(FIXTURES, "gdb_values.py"), bin], {
    stdout: "pipe",
    stderr: "pipe",
    timeout: 120_000,
  });
  const calls = JSON.parse(readFileSync(resultPath, "utf8")) as GdbCall[];
  if (!calls.length) throw new Error(`gdb recorded no calls (exit ${r.exitCode}):\n${r.stderr}\n${r.stdout}`);
  for (const c of calls) out.get(c.name)!.calls.push(c);
  return out;
}

/** `expected` with `0x*` standing for any address. */
function like(actual: string, expected: string): void {
  const re = new RegExp(`^${expected.replace(/[.*+?^${}()|[\]\\]/g, "\\$&").replace(/0x\\\*/g, "0x[0-9a-f]+")}$`);
  if (!re.test(actual)) expect(actual).toBe(expected);
}

function firstCall(traced: Map<string, { layout: FunctionLayout; calls: GdbCall[] }>, name: string) {
  const t = traced.get(name)!;
  expect(t.calls.length).toBeGreaterThanOrEqual(1);
  const call = t.calls[0]!;
  expect(call.return).toBeDefined();
  const f = new ValueFormatter(t.layout);
  return { layout: t.layout, call, callText: f.callText(raw(call.entry)), returnText: f.returnText(raw(call.return!)), f };
}

/** The little-endian u64 at byte `at` of the 16 bytes gdb read behind `v`'s slot `part`. */
function peekWord(call: GdbCall, v: ValueLayout, part: number, at: number): bigint {
  const hex = call.entry.peeks![v.slots[part]!]!;
  expect(hex.length).toBe(32);
  return Buffer.from(hex, "hex").readBigUInt64LE(at);
}

const parts = (v: ValueLayout) => v.parts.map((p) => `${locationText(p.loc)}:${p.size}`).join(" ");

// ---------------------------------------------------------------------------------------------

describe("pt_regs", () => {
  test("PT_REGS_INDEX matches offsetof() in linux-libc-dev's struct pt_regs", () => {
    const bin = join(WORK, "ptregs");
    run(["gcc", "-o", bin, join(FIXTURES, "ptregs.c")], process.env, WORK);
    const lines = Bun.spawnSync([bin], { stdout: "pipe" }).stdout.toString().trim().split("\n");
    const fields = lines.filter((l) => !l.startsWith("size ")).map((l) => l.split(" "));
    expect(fields.map(([n]) => n)).toEqual([...PT_REGS]);
    for (const [name, off] of fields) expect(PT_REGS_INDEX[name as keyof typeof PT_REGS_INDEX] * 8).toBe(Number(off));
    expect(lines.at(-1)).toBe(`size ${PT_REGS.length * 8}`);
  });
});

describe("placement without a compiler", () => {
  test("C: six integer registers, then 8-byte stack slots from rsp+8", () => {
    const l = locate(parsePrototype("long f(int a, char *b, short c, unsigned long d, void *e, long f, int g, char h)"));
    expect(l.args.map(parts)).toEqual(["rdi:4", "rsi:8", "rdx:2", "rcx:8", "r8:8", "r9:8", "rsp+8:4", "rsp+16:1"]);
    expect(l.results.map(parts)).toEqual(["rax:8"]);
    expect(l.descriptor.slots.map((s) => s.reg)).toEqual([14, 13, 12, 11, 9, 8, -1, -1, 10]);
    expect(l.descriptor.entrySlots).toBe(8);
  });

  test("C: descriptor for write's buf[count] and read's buf[ret]", () => {
    const w = locate(parsePrototype("ssize_t write(int fd, const void *buf[count], size_t count)"), { bufferMax: 100 });
    expect(w.descriptor.captures).toEqual([{ phase: 0, kind: CAPTURE_BYTES, ptrSlot: 1, lenFrom: LEN_SLOT, len: 2, len2: -1, scale: 1, max: 100 }]);
    expect(w.descriptor.saveAtEntry).toEqual([]);
    const r = locate(parsePrototype("ssize_t read(int fd, void *buf[ret], size_t count)"));
    expect(r.descriptor.captures).toEqual([{ phase: PHASE_RETURN, kind: CAPTURE_BYTES, ptrSlot: 1, lenFrom: LEN_SLOT, len: 3, len2: -1, scale: 1, max: 256 }]);
    expect(r.descriptor.slots[3]).toEqual({ phase: PHASE_RETURN, reg: PT_REGS_INDEX.rax, off: 0, size: 8, signed: 1 });
    expect(r.descriptor.saveAtEntry).toEqual([1]);
    expect(r.descriptor.entryCaptures).toBe(0);
    const s = locate(parsePrototype("int f(const char *s, int v[4], char *ret)"), { stringMax: 10 });
    expect(s.descriptor.captures).toEqual([
      { phase: 0, kind: CAPTURE_CSTRING, ptrSlot: 0, lenFrom: 0, len: 0, len2: -1, scale: 1, max: 10 },
      { phase: 0, kind: CAPTURE_BYTES, ptrSlot: 1, lenFrom: LEN_CONST, len: 4, len2: -1, scale: 4, max: 256 },
      { phase: 0, kind: CAPTURE_CSTRING, ptrSlot: 2, lenFrom: 0, len: 0, len2: -1, scale: 1, max: 10 },
    ]);
    const ret = locate(parsePrototype("char *readline(const char *prompt)"));
    expect(ret.descriptor.captures.map((c) => [c.phase, c.ptrSlot])).toEqual([
      [0, 0],
      [1, 1],
    ]);
  });

  test("C: floats keep the integer registers; 128-bit and long double take 16-aligned stack slots", () => {
    const l = locate(parsePrototype("int f(double x, int a, float y, long b, __int128 c, long double q, int d, int e, int g)"));
    expect(l.args.map(parts)).toEqual(["", "rdi:4", "", "rsi:8", "rdx:8 rcx:8", "rsp+8:8 rsp+16:8", "r8:4", "r9:4", "rsp+24:4"]);
    expect(unreadableValues(l)).toEqual([
      "x: double is passed in xmm0, which a uprobe does not record",
      "y: float is passed in xmm1, which a uprobe does not record",
      "c: 128-bit integers are not shown",
      "q: long double values are not shown",
    ]);
  });

  test("Go: whole arguments in registers or on the stack, results from RAX again", () => {
    const l = locate(parsePrototype("func main.mix(a int8, b string, c []byte, d bool, e error, f *main.T, g uint16) (int, error)"));
    expect(l.args.map(parts)).toEqual(["rax:1", "rbx:8 rcx:8", "rdi:8 rsi:8 r8:8", "r9:1", "r10:8 r11:8", "rsp+8:8", "rsp+16:2"]);
    expect(l.results.map(parts)).toEqual(["rax:8", "rbx:8 rcx:8"]);
    const s = locate(parsePrototype("func main.split(a, b, c, d, e, f, g int, s []byte, h int, x int) int"));
    expect(s.args.slice(7).map(parts)).toEqual(["rsp+8:8 rsp+16:8 rsp+24:8", "r10:8", "r11:8"]);
    const r = locate(parsePrototype("func main.results(x [2]int8, y int) (a, b, c, d, e, f, g, h, i, j int, s string, ok bool)"));
    expect(r.args.map(parts)).toEqual(["rsp+8:1 rsp+9:1", "rax:8"]);
    expect(r.results.slice(8).map(parts)).toEqual(["r11:8", "rsp+16:8", "rsp+24:8 rsp+32:8", "rsp+40:1"]);
  });

  test("Go: refusals name the parameter and point at it", () => {
    const cases: [string, RegExp, number][] = [
      ["func main.f(c main.Config) int", /parameter 'c' has type main.Config, which probe does not know/, 13],
      ["func main.T.M(x int) int", /the receiver of main.T.M is a T passed by value/, 11],
      ["func main.f(s struct{ a int }) int", /struct passed by value/, 13],
    ];
    for (const [text, re, column] of cases) {
      let err: unknown;
      try {
        locate(parsePrototype(text));
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(PrototypeError);
      expect((err as PrototypeError).message).toMatch(re);
      expect((err as PrototypeError).column).toBe(column);
    }
    // An explicit receiver clause gives the receiver's type.
    expect(locate(parsePrototype("func (c int) main.Celsius.String() string")).args.map(parts)).toEqual(["rax:8"]);
  });

  test("capture limits are checked; Go lengths are signed slots (a garbage negative copies nothing)", () => {
    expect(() => locate(parsePrototype("int f(const char *s)"), { stringMax: 0 })).toThrow("the string limit must be a whole number of bytes from 1 to 1048576, not 0");
    expect(() => locate(parsePrototype("int f(const char *s)"), { bufferMax: 1.5 })).toThrow(/the buffer limit must be/);
    const g = locate(parsePrototype("func main.f(s string, b []byte, n int8, u uint)"));
    expect(g.descriptor.slots.map((s) => s.signed)).toEqual([0, 1, 0, 1, 1, 1, 0]);
  });

  test("C: structs and unknown typedefs by value are refused with the reason", () => {
    expect(() => locate(parsePrototype("int f(struct timeval tv)"))).toThrow(/parameter 'tv' is a struct timeval passed by value/);
    expect(() => locate(parsePrototype("int SSL_read(SSL ssl, void *buf, int num)"))).toThrow(/parameter 'ssl' has type SSL, which probe does not know/);
    expect(() => locate(parsePrototype("struct tm f(int x)"))).toThrow(/returning struct tm by value is not supported/);
    expect(() => locate(parsePrototype("SSL *SSL_new(SSL_CTX *ctx)"))).not.toThrow();
  });
});

// ---------------------------------------------------------------------------------------------

describe("C (System V x86-64) against gcc, under gdb", () => {
  let traced: ReturnType<typeof traceUnderGdb>;
  beforeAll(() => {
    need("gcc", "gcc");
    need("gdb", "gdb");
    const bin = join(WORK, "cargs");
    run(["gcc", "-O0", "-g", "-no-pie", "-o", bin, join(FIXTURES, "cargs.c")], process.env, WORK);
    traced = traceUnderGdb(bin, [
      "long c8(int a, long b, char c, short d, unsigned e, const char *f, long g, int h)",
      "int cmixed(double x, int a, float y, long b, double z, const char *s)",
      "long cdoubles(double a, double b, double c, double d, double e, double f, double g, double h, double i, int x, double j, long y, long p1, long p2, long p3, long p4, long p5)",
      "long cld(long double q, int a, int b, int c, int d, int e, int f, int g)",
      "long c128(long a, __int128 b, long c)",
      "long c128s(long a, long b, long c, long d, long e, __int128 x, long f)",
      "int cneg(signed char a, short b, int c, long d, unsigned long e, unsigned char f)",
      "unsigned long cmax(void)",
      "int cminus(void)",
      "ssize_t cwrite(int fd, const void *buf[count], size_t count)",
      "ssize_t cread(int fd, void *buf[ret], size_t count)",
      "char *cstr(const char *prompt)",
      "bool cbool(bool x, int *p, const char *s, void *q)",
      "int cstack(long a, long b, long c, long d, long e, long f, const char *s7, const void *buf8[n9], int n9)",
      "size_t cfwrite(const void ptr[restrict .size * .nmemb], size_t size, size_t nmemb, FILE *restrict stream)",
      "size_t cfread(void ptr[ret * size], size_t size, size_t nmemb, FILE *stream)",
    ]);
  }, 180_000);

  const cases: [string, string, string][] = [
    ["c8", 'a=-1, b=2, c=99, d=-4, e=4000000000, f="six", g=7, h=-8', "ret=4000000098"],
    ["cmixed", 'x=?, a=11, y=?, b=-12, z=?, s="mixed"', "ret=11"],
    ["cdoubles", "a=?, b=?, c=?, d=?, e=?, f=?, g=?, h=?, i=?, x=21, j=?, y=22, p1=23, p2=24, p3=25, p4=26, p5=27", "ret=223"],
    ["cld", "q=?, a=1, b=2, c=3, d=4, e=5, f=6, g=7", "ret=29"],
    ["c128", "a=1, b=?, c=4", "ret=8"],
    ["c128s", "a=1, b=2, c=3, d=4, e=5, x=?, f=8", "ret=30"],
    ["cneg", "a=-1, b=-2, c=-3, d=-4, e=18446744073709551615, f=255", "ret=260"],
    ["cmax", "", "ret=18446744073709551615"],
    ["cminus", "", "ret=-1"],
    ["cwrite", 'fd=1, buf="hello\\n\\0world", count=12', "ret=12"],
    ["cread", "fd=3, buf=0x*, count=32", 'ret=10, buf="read\\ndata\\x01"'],
    ["cstr", 'prompt="> "', 'ret="answer"'],
    ["cbool", "x=true, p=0x*, s=NULL, q=NULL", "ret=true"],
    ["cstack", 'a=1, b=2, c=3, d=4, e=5, f=6, s7="seventh", buf8="", n9=-9', "ret=20"],
    ["cfwrite", 'ptr="abcdef", size=2, nmemb=3, stream=0x*', "ret=3"],
    ["cfread", "ptr=0x*, size=2, nmemb=8, stream=NULL", 'ret=3, ptr="xyz123"'],
  ];
  for (const [name, call, ret] of cases) {
    test(`${name}: ${call || "(no arguments)"} -> ${ret}`, () => {
      const c = firstCall(traced, name);
      like(c.callText, call);
      like(c.returnText, ret);
    });
  }

  test("stack words: the 128-bit value and the long double are where the layout says", () => {
    // Unreadable values have no slots; their other neighbours being right (above) is the check,
    // plus the parts' offsets agree with the psABI's 16-byte alignment.
    const { layout } = firstCall(traced, "c128s");
    expect(parts(layout.args[5]!)).toBe("rsp+8:8 rsp+16:8");
    expect(parts(layout.args[6]!)).toBe("r9:8");
    const cld = firstCall(traced, "cld").layout;
    expect(parts(cld.args[0]!)).toBe("rsp+8:8 rsp+16:8");
    expect(parts(cld.args[7]!)).toBe("rsp+24:4");
  });

  test("pointers reach what main passed: cbool's p points at the int 5", () => {
    const c = firstCall(traced, "cbool");
    expect(peekWord(c.call, c.layout.args[1]!, 0, 0) & 0xffffffffn).toBe(5n);
  });

  test("JSON of the same events", () => {
    const w = firstCall(traced, "cwrite");
    expect(JSON.parse(w.f.callJson(raw(w.call.entry)))).toEqual([
      { name: "fd", type: "int", value: 1 },
      { name: "buf", type: "const void *", value: { len: 12, truncated: false, text: "hello\n\u0000world" } },
      { name: "count", type: "size_t", value: 12 },
    ]);
    const m = firstCall(traced, "cmax");
    expect(JSON.parse(m.f.returnJson(raw(m.call.return!)))).toEqual([{ name: "ret", type: "unsigned long", value: "18446744073709551615" }]);
  });
});

describe("Go (ABIInternal, amd64) against the Go compiler, under gdb", () => {
  let traced: ReturnType<typeof traceUnderGdb>;
  beforeAll(() => {
    need("go", "golang-go");
    need("gdb", "gdb");
    const bin = join(WORK, "goargs");
    run(["go", "build", "-o", bin, "main.go"], { ...goEnv, CGO_ENABLED: "0" }, join(FIXTURES, "goargs"));
    traced = traceUnderGdb(bin, [
      "func main.demo(n int, seed int) int",
      "func main.mix(a int8, b string, c []byte, d bool, e error, f *main.T, g uint16) (int, error)",
      "func main.many(a, b, c, d, e, f, g, h, i, j, k int) (int, string)",
      "func main.arr(a [3]int32, b int, c [1]uint64, s string, z [0]int, u uint8) int",
      "func main.split(a, b, c, d, e, f, g int, s []byte, h int, x int) int",
      "func main.results(x [2]int8, y int) (a, b, c, d, e, f, g, h, i, j int, s string, ok bool)",
      "func main.(*T).M(b []byte, ok bool) (int, error)",
      "func main.handle(w io.Writer, name string) error",
      "func main.vari(prefix string, xs ...int) int",
      "func main.refs(m map[string]int, ch chan int, fn func(int) int, u uintptr, r rune, by byte, i16 int16, i32 int32, i64 int64, u32 uint32) int",
      "func (c int) main.Celsius.String() string",
      "func main.floats(x float64, a int, y float32, s string) (float64, int)",
      "func main.negs(a int8, b int16, c int32, d int64, e uint64, f bool) int64",
      // main.Sum[go.shape.int_0] before Go 1.21, main.Sum[go.shape.int] after.
      (names) => `func ${names.find((n) => n.startsWith("main.Sum[go.shape.int"))}(xs []int, k int) int`,
      (names) => `func ${names.find((n) => n.startsWith("main.(*List[go.shape.string"))}(v string, n int) int`,
    ]);
  }, 300_000);

  const cases: [string, string, string][] = [
    ["main.demo", "n=7, seed=42", "ret=259"],
    ["main.mix", 'a=-5, b="héllo", c="ab\\0c", d=true, e=(itab 0x*, data 0x*), f=0x*, g=65535', "ret0=65582, ret1=(itab 0x*, data 0x*)"],
    ["main.many", "a=1, b=2, c=3, d=4, e=5, f=6, g=7, h=8, i=9, j=10, k=11", 'ret0=66, ret1="many"'],
    ["main.arr", 'a=[-1 2 3], b=4, c=[5], s="six", z=[], u=7', "ret=23"],
    ["main.split", 'a=1, b=2, c=3, d=4, e=5, f=6, g=7, s="stack", h=8, x=9', "ret=50"],
    ["main.results", "x=[-1 1], y=100", 'a=101, b=102, c=103, d=104, e=105, f=106, g=107, h=108, i=109, j=110, s="results", ok=true'],
    ["main.(*T).M", 'recv=0x*, b="method", ok=true', "ret0=48, ret1=nil"],
    ["main.handle", 'w=(itab 0x*, data 0x*), name="gopher"', "ret=nil"],
    ["main.vari", 'prefix="pre", xs=[]int(0x*, len 3, cap 3)', "ret=6"],
    ["main.refs", "m=0x*, ch=0x*, fn=0x*, u=57005, r=233, by=255, i16=-300, i32=-70000, i64=-1099511627776, u32=4000000000", "ret=-1095511640577"],
    ["main.Celsius.String", "c=21", 'ret="21C"'],
    ["main.floats", 'x=?, a=12, y=?, s="fl"', "ret0=?, ret1=14"],
    ["main.negs", "a=-1, b=-2, c=-3, d=-4, e=9223372036854775813, f=true", "ret=-2"],
    ["main.Sum[", "xs=[]int(0x*, len 3, cap 3), k=7", "ret=13"],
    ["main.(*List[", 'recv=0x*, v="pushed", n=9', "ret=10"],
  ];
  for (const [name, call, ret] of cases) {
    test(`${name}: ${call} -> ${ret}`, () => {
      const c = firstCall(traced, [...traced.keys()].find((k) => k === name || (name.endsWith("[") && k.startsWith(name)))!);
      like(c.callText, call);
      like(c.returnText, ret);
    });
  }

  test("pointers reach what main passed: *T holds 42, the error's data is errors.errorString{\"boom\"}", () => {
    const mix = firstCall(traced, "main.mix");
    expect(peekWord(mix.call, mix.layout.args[5]!, 0, 0)).toBe(42n); // f.n
    expect(peekWord(mix.call, mix.layout.args[4]!, 1, 8)).toBe(4n); // len("boom")
    const m = firstCall(traced, "main.(*T).M");
    expect(peekWord(m.call, m.layout.args[0]!, 0, 0)).toBe(42n);
  });

  test("the placements the gdb checks went through", () => {
    // Registers and stack offsets read above, spelled out: per-argument assignment (split),
    // stack-assigned results after the arguments (results), arrays on the stack (arr).
    expect(firstCall(traced, "main.split").layout.args.slice(7).map(parts)).toEqual(["rsp+8:8 rsp+16:8 rsp+24:8", "r10:8", "r11:8"]);
    expect(firstCall(traced, "main.arr").layout.args.map(parts)).toEqual(["rsp+8:4 rsp+12:4 rsp+16:4", "rax:8", "rbx:8", "rcx:8 rdi:8", "", "rsi:1"]);
    expect(firstCall(traced, "main.refs").layout.args.at(-1)!.parts.map((p) => locationText(p.loc))).toEqual(["rsp+8"]);
    expect(firstCall(traced, "main.floats").layout.args.map(parts)).toEqual(["", "rax:8", "", "rbx:8 rcx:8"]);
  });
});
