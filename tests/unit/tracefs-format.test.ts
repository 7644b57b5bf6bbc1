// Tracepoint format files (texts captured from /sys/kernel/tracing/events on Linux 6.18) parsed
// into layouts, and records built from those layouts decoded back: every field kind (integers of
// each size and sign, syscall arguments stored wider than their type, pointers, char arrays, byte
// arrays, __data_loc strings and arrays, __rel_loc, flexible arrays). tests/kernel/
// tracefs-format.test.ts does the same against the live tracefs and real kernel records.
import { describe, expect, test } from "bun:test";
import { compileDecoder, parseTraceFormat, TraceFormatError, type TraceField, type TraceFormat, type TraceValue } from "../../lib/tracefs/format.ts";
import { randomFloats } from "../fixtures/fuzz/mutate.ts";

const COMMON = `	field:unsigned short common_type;	offset:0;	size:2;	signed:0;
	field:unsigned char common_flags;	offset:2;	size:1;	signed:0;
	field:unsigned char common_preempt_count;	offset:3;	size:1;	signed:0;
	field:int common_pid;	offset:4;	size:4;	signed:1;
`;

export const FORMATS: Record<string, string> = {
  sys_enter_openat: `name: sys_enter_openat
ID: 782
format:
${COMMON}
	field:int __syscall_nr;	offset:8;	size:4;	signed:1;
	field:int dfd;	offset:16;	size:8;	signed:0;
	field:const char * filename;	offset:24;	size:8;	signed:0;
	field:int flags;	offset:32;	size:8;	signed:0;
	field:umode_t mode;	offset:40;	size:8;	signed:0;

print fmt: "dfd: 0x%08lx, filename: 0x%08lx, flags: 0x%08lx, mode: 0x%08lx", ((unsigned long)(REC->dfd)), ((unsigned long)(REC->filename)), ((unsigned long)(REC->flags)), ((unsigned long)(REC->mode))
`,
  sys_exit_openat: `name: sys_exit_openat
ID: 781
format:
${COMMON}
	field:int __syscall_nr;	offset:8;	size:4;	signed:1;
	field:long ret;	offset:16;	size:8;	signed:1;

print fmt: "0x%lx", REC->ret
`,
  sched_process_exec: `name: sched_process_exec
ID: 365
format:
${COMMON}
	field:__data_loc char[] filename;	offset:8;	size:4;	signed:0;
	field:pid_t pid;	offset:12;	size:4;	signed:1;
	field:pid_t old_pid;	offset:16;	size:4;	signed:1;

print fmt: "filename=%s pid=%d old_pid=%d", __get_str(filename), REC->pid, REC->old_pid
`,
  sched_switch: `name: sched_switch
ID: 372
format:
${COMMON}
	field:char prev_comm[16];	offset:8;	size:16;	signed:0;
	field:pid_t prev_pid;	offset:24;	size:4;	signed:1;
	field:int prev_prio;	offset:28;	size:4;	signed:1;
	field:long prev_state;	offset:32;	size:8;	signed:1;
	field:char next_comm[16];	offset:40;	size:16;	signed:0;
	field:pid_t next_pid;	offset:56;	size:4;	signed:1;
	field:int next_prio;	offset:60;	size:4;	signed:1;

print fmt: "prev_comm=%s prev_pid=%d prev_prio=%d prev_state=%s%s ==> next_comm=%s next_pid=%d next_prio=%d", REC->prev_comm, REC->prev_pid, REC->prev_prio, REC->prev_state & 3 ? "S" : "R", "", REC->next_comm, REC->next_pid, REC->next_prio
`,
  dma_map_sg: `name: dma_map_sg
ID: 431
format:
${COMMON}
	field:__data_loc char[] device;	offset:8;	size:4;	signed:0;
	field:int full_nents;	offset:12;	size:4;	signed:1;
	field:int full_ents;	offset:16;	size:4;	signed:1;
	field:bool truncated;	offset:20;	size:1;	signed:0;
	field:__data_loc u64[] phys_addrs;	offset:24;	size:4;	signed:0;
	field:__data_loc u64[] dma_addrs;	offset:28;	size:4;	signed:0;
	field:__data_loc unsigned int[] lengths;	offset:32;	size:4;	signed:0;
	field:enum dma_data_direction dir;	offset:36;	size:4;	signed:0;
	field:unsigned long attrs;	offset:40;	size:8;	signed:0;

print fmt: "%s dir=%s", __get_str(device), __print_symbolic(REC->dir, { 0, "BIDIRECTIONAL" })
`,
  br_fdb_add: `name: br_fdb_add
ID: 2258
format:
${COMMON}
	field:u8 ndm_flags;	offset:8;	size:1;	signed:0;
	field:__data_loc char[] dev;	offset:12;	size:4;	signed:0;
	field:unsigned char addr[6];	offset:16;	size:6;	signed:0;
	field:u16 vid;	offset:22;	size:2;	signed:0;
	field:u16 nlh_flags;	offset:24;	size:2;	signed:0;

print fmt: "dev %s addr %02x:%02x:%02x:%02x:%02x:%02x vid %u", __get_str(dev), REC->addr[0], REC->addr[1], REC->addr[2], REC->addr[3], REC->addr[4], REC->addr[5], REC->vid
`,
  ipi_send_cpumask: `name: ipi_send_cpumask
ID: 353
format:
${COMMON}
	field:__data_loc cpumask_t cpumask;	offset:8;	size:4;	signed:0;
	field:void * callsite;	offset:16;	size:8;	signed:0;
	field:void * callback;	offset:24;	size:8;	signed:0;

print fmt: "cpumask=%s callsite=%pS callback=%pS", __get_cpumask(cpumask), REC->callsite, REC->callback
`,
  print: `name: print
ID: 5
format:
${COMMON}
	field:unsigned long ip;	offset:8;	size:8;	signed:0;
	field:char buf[];	offset:16;	size:0;	signed:0;

print fmt: "%ps: %s", (void *)REC->ip, REC->buf
`,
  // No event of this kernel uses __rel_loc; the layout is the kernel's (offset from the field's end).
  rel_loc_example: `name: rel_loc_example
ID: 9999
format:
${COMMON}
	field:int before;	offset:8;	size:4;	signed:1;
	field:__rel_loc char[] name;	offset:12;	size:4;	signed:0;
	field:__rel_loc u16[] ids;	offset:16;	size:4;	signed:0;
	field:s8 small[3];	offset:20;	size:3;	signed:1;
	field:char legacy_comm[TASK_COMM_LEN];	offset:24;	size:16;	signed:1;
	field:struct in6_addr saddr;	offset:40;	size:16;	signed:0;
	field:__s16 s;	offset:56;	size:2;	signed:1;

print fmt: "name=%s", __get_rel_str(name)
`,
  bprint: `name: bprint
ID: 6
format:
${COMMON}
	field:unsigned long ip;	offset:8;	size:8;	signed:0;
	field:const char * fmt;	offset:16;	size:8;	signed:0;
	field:u32 buf[];	offset:24;	size:0;	signed:0;

print fmt: "%ps: %s", (void *)REC->ip, REC->fmt
`,
};

describe("parsing", () => {
  test("sys_enter_openat: header, fields, syscall arguments narrowed to their declared type", () => {
    const f = parseTraceFormat(FORMATS.sys_enter_openat!, "sys_enter_openat/format");
    expect(f.name).toBe("sys_enter_openat");
    expect(f.id).toBe(782);
    expect(f.fixedSize).toBe(48);
    expect(f.printFmt.startsWith('"dfd: 0x%08lx')).toBe(true);
    expect(f.fields.map((x) => [x.name, x.type, x.offset, x.size, x.signed, x.common, x.kind, x.valueSize, x.valueSigned])).toEqual([
      ["common_type", "unsigned short", 0, 2, false, true, "int", 2, false],
      ["common_flags", "unsigned char", 2, 1, false, true, "int", 1, false],
      ["common_preempt_count", "unsigned char", 3, 1, false, true, "int", 1, false],
      ["common_pid", "int", 4, 4, true, true, "int", 4, true],
      ["__syscall_nr", "int", 8, 4, true, false, "int", 4, true],
      ["dfd", "int", 16, 8, false, false, "int", 4, true],
      ["filename", "const char *", 24, 8, false, false, "pointer", 8, false],
      ["flags", "int", 32, 8, false, false, "int", 4, true],
      ["mode", "umode_t", 40, 8, false, false, "int", 2, false],
    ]);
  });

  test("every field kind", () => {
    const kinds = (name: string) => parseTraceFormat(FORMATS[name]!, name).fields.filter((f) => !f.common).map((f) => [f.name, f.kind, f.elementType, f.elementSize, f.length]);
    expect(kinds("sched_process_exec")).toEqual([["filename", "data_loc", "char", 1, undefined], ["pid", "int", undefined, undefined, undefined], ["old_pid", "int", undefined, undefined, undefined]]);
    expect(kinds("sched_switch")[0]).toEqual(["prev_comm", "string", "char", 1, 16]);
    expect(kinds("dma_map_sg").filter((x) => x[1] === "data_loc")).toEqual([
      ["device", "data_loc", "char", 1, undefined],
      ["phys_addrs", "data_loc", "u64", 8, undefined],
      ["dma_addrs", "data_loc", "u64", 8, undefined],
      ["lengths", "data_loc", "unsigned int", 4, undefined],
    ]);
    expect(kinds("br_fdb_add")[2]).toEqual(["addr", "array", "unsigned char", 1, 6]);
    expect(kinds("ipi_send_cpumask")).toEqual([["cpumask", "data_loc", "cpumask_t", 1, undefined], ["callsite", "pointer", undefined, undefined, undefined], ["callback", "pointer", undefined, undefined, undefined]]);
    expect(kinds("print")[1]).toEqual(["buf", "string", "char", 1, 0]);
    expect(kinds("rel_loc_example")).toEqual([
      ["before", "int", undefined, undefined, undefined],
      ["name", "rel_loc", "char", 1, undefined],
      ["ids", "rel_loc", "u16", 2, undefined],
      ["small", "array", "s8", 1, 3],
      ["legacy_comm", "string", "char", 1, 16],
      ["saddr", "bytes", undefined, undefined, undefined],
      ["s", "int", undefined, undefined, undefined],
    ]);
    expect(kinds("bprint")[2]).toEqual(["buf", "array", "u32", 4, 0]);
  });

  test("header_page (the ring buffer's page header) parses with the same parser", () => {
    const text = `name: header_page\nID: 0\nformat:\n\tfield: u64 timestamp;\toffset:0;\tsize:8;\tsigned:0;\n\tfield: local_t commit;\toffset:8;\tsize:8;\tsigned:1;\n\tfield: int overwrite;\toffset:8;\tsize:1;\tsigned:1;\n\tfield: char data;\toffset:16;\tsize:4080;\tsigned:0;\n`;
    const f = parseTraceFormat(text, "header_page");
    expect(f.fields.map((x) => [x.name, x.offset, x.size])).toEqual([["timestamp", 0, 8], ["commit", 8, 8], ["overwrite", 8, 1], ["data", 16, 4080]]);
  });

  test("malformed formats are TraceFormatErrors naming the file and line", () => {
    const good = FORMATS.sched_process_exec!;
    const cases: [string, RegExp][] = [
      ["", /no 'name:' line/],
      [good.replace("ID: 365", "ID: x"), /format:2: malformed ID/],
      [good.replace("ID: 365\n", ""), /no 'ID:' line/],
      [good.replace("format:\n", ""), /no 'format:' section/],
      [good.replace("offset:12;", "offset:-1;"), /format:10: malformed offset/],
      [good.replace("offset:12;", ""), /format:10: field has no offset/],
      [good.replace("size:4;\tsigned:1;\n\tfield:pid_t old_pid", "size:4;\tsigned:1;\n\tbogus line\n\tfield:pid_t old_pid"), /expected a field line/],
      [good.replace("__data_loc char[] filename;\toffset:8;\tsize:4;", "__data_loc char[] filename;\toffset:8;\tsize:8;"), /data_loc field filename has size 8/],
      [good.replace("field:pid_t pid;", "field:pid_t;"), /malformed field declaration/],
      [good.replace("field:pid_t pid;", "field:pid_t pid[3];"), /array pid\[3\] of 4 bytes/],
      [good.replace("field:pid_t pid;\toffset:12;\tsize:4;", "field:struct x *p;\toffset:12;\tsize:3;"), /pointer field p has size 3/],
    ];
    for (const [text, re] of cases) {
      let err: unknown;
      try {
        parseTraceFormat(text, "sched_process_exec/format");
      } catch (e) {
        err = e;
      }
      expect(err, String(re)).toBeInstanceOf(TraceFormatError);
      expect((err as Error).message).toMatch(re);
      expect((err as Error).message.startsWith("sched_process_exec/format")).toBe(true);
    }
  });

  test("seeded mutations of every format: a layout or a TraceFormatError", () => {
    let x = 424242;
    const r = () => ((x = (x * 1103515245 + 12345) >>> 0), x >>> 8);
    const alphabet = "field:offset;size:signed:0123456789 \t\n[]_*abc";
    let errors = 0;
    for (let i = 0; i < 1200; i++) {
      const src = Object.values(FORMATS)[i % Object.keys(FORMATS).length]!;
      const chars = src.split("");
      for (let k = 0, n = 1 + (r() % 5); k < n; k++) {
        const at = r() % chars.length;
        const op = r() % 3;
        if (op === 0) chars[at] = alphabet[r() % alphabet.length]!;
        else if (op === 1) chars.splice(at, 1 + (r() % 10));
        else chars.splice(at, 0, alphabet[r() % alphabet.length]!);
      }
      try {
        const f = parseTraceFormat(chars.join(""), "m");
        // Whatever parses must compile and decode a zero record of its own fixed size.
        compileDecoder(f, { common: true })(new Uint8Array(f.fixedSize));
      } catch (e) {
        if (!(e instanceof TraceFormatError)) throw new Error(`mutation ${i}: raw ${(e as Error).constructor.name}: ${(e as Error).message}\n${chars.join("")}`);
        errors++;
      }
    }
    expect(errors).toBeGreaterThan(100);
  });
});

/**
 * Builds a record for `format` the way the kernel lays it out, with random contents, and the values
 * a decoder must return: the test's own statement of the semantics, written field kind by kind.
 */
function buildRecord(format: TraceFormat, rand: () => number): { record: Uint8Array; expected: Record<string, TraceValue> } {
  const randInt = (bytes: number, signed: boolean): bigint => {
    let v = 0n;
    for (let i = 0; i < bytes; i++) v = (v << 8n) | BigInt(Math.floor(rand() * 256));
    return signed ? BigInt.asIntN(bytes * 8, v) : v;
  };
  const randText = (max: number): string => {
    const n = Math.floor(rand() * (max + 1));
    let s = "";
    for (let i = 0; i < n; i++) s += String.fromCharCode(0x21 + Math.floor(rand() * 94));
    return s;
  };
  const fixed = new Uint8Array(format.fixedSize).map(() => Math.floor(rand() * 256));
  const dyn: number[] = [];
  const dynBase = Math.ceil(format.fixedSize / 4) * 4;
  const expected: Record<string, TraceValue> = {};
  const fv = new DataView(fixed.buffer);
  const put = (buf: Uint8Array | number[], at: number, v: bigint, bytes: number) => {
    for (let i = 0; i < bytes; i++) buf[at + i] = Number((BigInt.asUintN(64, v) >> BigInt(8 * i)) & 0xffn);
  };
  const num = (v: bigint, bytes: number): number | bigint => (bytes === 8 ? v : Number(v));
  const flexible: [TraceField, number[]][] = [];
  for (const f of format.fields) {
    switch (f.kind) {
      case "int": {
        const v = randInt(f.valueSize, f.valueSigned);
        put(fixed, f.offset, v, f.valueSize); // the bytes above valueSize stay random: ignored
        expected[f.name] = num(v, f.valueSize);
        break;
      }
      case "pointer": {
        const v = randInt(8, false);
        put(fixed, f.offset, v, 8);
        expected[f.name] = `0x${v.toString(16)}`;
        break;
      }
      case "string": {
        if (f.size === 0) {
          const s = randText(40);
          flexible.push([f, [...Buffer.from(`${s}\0`)]]);
          expected[f.name] = s;
          break;
        }
        const s = randText(f.size - 1);
        fixed.set(Buffer.from(`${s}\0`), f.offset);
        expected[f.name] = s;
        break;
      }
      case "array": {
        const es = f.elementSize!;
        if (f.size === 0) {
          const n = 1 + Math.floor(rand() * 5);
          const vals = Array.from({ length: n }, () => randInt(es, f.valueSigned));
          const bytes: number[] = [];
          vals.forEach((v, i) => put(bytes, i * es, v, es));
          flexible.push([f, bytes]);
          expected[f.name] = vals.map((v) => num(v, es));
          break;
        }
        const vals = Array.from({ length: f.length! }, () => randInt(es, f.valueSigned));
        vals.forEach((v, i) => put(fixed, f.offset + i * es, v, es));
        expected[f.name] = vals.map((v) => num(v, es));
        break;
      }
      case "data_loc":
      case "rel_loc": {
        const es = f.elementSize!;
        let bytes: number[];
        if (f.elementType === "char") {
          const s = randText(30);
          bytes = [...Buffer.from(`${s}\0`)];
          expected[f.name] = s;
        } else if (f.type.endsWith("[]")) {
          const vals = Array.from({ length: Math.floor(rand() * 4) }, () => randInt(es, f.valueSigned));
          bytes = [];
          vals.forEach((v, i) => put(bytes, i * es, v, es));
          expected[f.name] = vals.map((v) => num(v, es));
        } else {
          bytes = Array.from({ length: 8 }, () => Math.floor(rand() * 256));
          expected[f.name] = `0x${bytes.map((b) => b.toString(16).padStart(2, "0")).join("")}`;
        }
        const at = dynBase + dyn.length;
        dyn.push(...bytes);
        while (dyn.length % 4) dyn.push(0);
        const off = f.kind === "rel_loc" ? at - (f.offset + f.size) : at;
        fv.setUint32(f.offset, (bytes.length << 16) | off, true);
        break;
      }
      case "bytes": {
        const slice = fixed.subarray(f.offset, f.offset + f.size);
        expected[f.name] = `0x${[...slice].map((b) => b.toString(16).padStart(2, "0")).join("")}`;
        break;
      }
    }
  }
  // A flexible array is the record's tail (the kernel's `print` event: `char buf[]` at the end).
  if (flexible.length) {
    const [f, bytes] = flexible[0]!;
    const out = new Uint8Array(f.offset + bytes.length);
    out.set(fixed.subarray(0, f.offset));
    out.set(bytes, f.offset);
    return { record: out, expected };
  }
  const out = new Uint8Array(dynBase + dyn.length);
  out.set(fixed);
  out.set(dyn, dynBase);
  return { record: out, expected };
}

describe("decoding records built from the formats", () => {
  for (const name of Object.keys(FORMATS)) {
    test(`${name}: 500 random records round-trip`, () => {
      const format = parseTraceFormat(FORMATS[name]!, name);
      const decode = compileDecoder(format, { common: true });
      const rand = randomFloats(name.length * 7919);
      for (let i = 0; i < 500; i++) {
        const { record, expected } = buildRecord(format, rand);
        expect(decode(record)).toEqual(expected);
      }
    });
  }

  test("common fields only on request; short records refused; data_loc out of the record is null", () => {
    const format = parseTraceFormat(FORMATS.sched_process_exec!, "sched_process_exec");
    const { record } = buildRecord(format, randomFloats(1));
    expect(Object.keys(compileDecoder(format)(record))).toEqual(["filename", "pid", "old_pid"]);
    expect(Object.keys(compileDecoder(format, { common: true })(record))).toEqual(["common_type", "common_flags", "common_preempt_count", "common_pid", "filename", "pid", "old_pid"]);
    expect(() => compileDecoder(format)(record.subarray(0, 12))).toThrow(/shorter than its format's 20/);
    const bad = record.slice();
    new DataView(bad.buffer).setUint32(8, (200 << 16) | 20, true);
    expect(compileDecoder(format)(bad).filename).toBeNull();
  });

  test("the syscall example: AT_FDCWD and O_ flags read as ints from 8-byte slots", () => {
    const format = parseTraceFormat(FORMATS.sys_enter_openat!, "sys_enter_openat");
    const rec = new Uint8Array(48);
    const v = new DataView(rec.buffer);
    v.setUint16(0, 782, true);
    v.setInt32(4, 4321, true);
    v.setInt32(8, 257, true);
    v.setBigUint64(16, 0xffffffffffffff9cn, true); // AT_FDCWD as the register held it
    v.setBigUint64(24, 0x7ffd12345678n, true);
    v.setBigUint64(32, 0x80000n, true); // O_CLOEXEC
    v.setBigUint64(40, 0o644n, true);
    expect(compileDecoder(format)(rec)).toEqual({ __syscall_nr: 257, dfd: -100, filename: "0x7ffd12345678", flags: 0x80000, mode: 0o644 });
  });

  test("speed: sched_switch records per second", () => {
    const format = parseTraceFormat(FORMATS.sched_switch!, "sched_switch");
    const decode = compileDecoder(format);
    const { record } = buildRecord(format, randomFloats(3));
    const n = 200_000;
    const t0 = performance.now();
    let sink = 0;
    for (let i = 0; i < n; i++) sink += (decode(record).prev_pid as number) & 1;
    const ms = performance.now() - t0;
    console.log(`sched_switch decode: ${Math.round((n / ms) * 1000).toLocaleString()} records/s (${((ms * 1e6) / n).toFixed(0)} ns each)`);
    expect(sink).toBeGreaterThanOrEqual(0);
    expect(ms).toBeLessThan(5000);
  });
});
