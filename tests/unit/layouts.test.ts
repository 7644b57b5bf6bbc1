// The struct layouts lib/layouts.ts assumes, checked against the C headers the BPF programs are
// compiled from: a C program prints sizeof/offsetof of every field the TypeScript side names.
import { describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT, WORK, sh } from "../helpers.ts";
import * as L from "../../lib/layouts.ts";

const STRUCTS: [header: string, struct: string, layout: Record<string, number>][] = [
  ["proc_filter.h", "proc_filter", L.PROC_FILTER],
  ["uprobe.h", "uprobe_config", L.UPROBE_CONFIG],
  ["uprobe.h", "uprobe_event", L.UPROBE_EVENT],
  ["uprobe.h", "uprobe_counts", L.UPROBE_COUNTS],
  ["uprobe.h", "hist_row", L.HIST_ROW],
  ["uprobe.h", "hist_key", L.HIST_KEY],
  ["uprobe.h", "stack_event", L.STACK_EVENT],
  ["uprobe.h", "stack_count_key", L.STACK_COUNT_KEY],
  ["uprobe.h", "stack_count", L.STACK_COUNT],
  ["args.h", "slot_desc", L.SLOT_DESC],
  ["args.h", "capture_desc", L.CAPTURE_DESC],
  ["args.h", "func_desc", L.FUNC_DESC],
  ["args.h", "typed_event", L.TYPED_EVENT],
  ["args.h", "blob_hdr", L.BLOB_HDR],
  ["ssl_read.h", "ssl_config", L.SSL_CONFIG],
  ["ssl_read.h", "ssl_key", L.SSL_KEY],
  ["ssl_read.h", "ssl_stats", L.SSL_STATS],
  ["sslsniff.h", "sniff_config", L.SNIFF_CONFIG],
  ["sslsniff.h", "sniff_event", L.SNIFF_EVENT],
  ["opensnoop.h", "opensnoop_config", L.OPENSNOOP_CONFIG],
  ["opensnoop.h", "open_event", L.OPEN_EVENT],
  ["tracepoint.h", "tp_config", L.TP_CONFIG],
  ["tracepoint.h", "tp_info", L.TP_INFO],
  ["tracepoint.h", "tp_event", L.TP_EVENT],
  ["tracepoint.h", "tp_count_key", L.TP_COUNT_KEY],
  ["tracepoint.h", "tp_count", L.TP_COUNT],
];

function cLayouts(): Record<string, Record<string, number>> {
  const headers = [...new Set(STRUCTS.map(([h]) => h))];
  const body = STRUCTS.map(([, s, layout]) => {
    const fields = Object.keys(layout).filter((f) => f !== "size");
    const parts = [`"\\"size\\":%zu"`, ...fields.map((f) => `"\\"${f}\\":%zu"`)].join(` "," `);
    const args = [`sizeof(struct ${s})`, ...fields.map((f) => `offsetof(struct ${s}, ${f})`)].join(", ");
    return `  printf("\\"${s}\\":{" ${parts} "},", ${args});`;
  }).join("\n");
  const src = `#include <stdio.h>\n#include <stddef.h>\n#include <linux/types.h>\n${headers.map((h) => `#include "${h}"`).join("\n")}\nint main(void) {\n  printf("{");\n${body}\n  printf("\\"end\\":{}}");\n  return 0;\n}\n`;
  const c = join(WORK, "layouts.c");
  writeFileSync(c, src);
  sh(`gcc -I${join(ROOT, "bpf")} -o ${join(WORK, "layouts")} ${c}`);
  return JSON.parse(sh(join(WORK, "layouts")));
}

describe("shared struct layouts match bpf/*.h", () => {
  const c = cLayouts();
  for (const [header, struct, layout] of STRUCTS) {
    test(`${header}: struct ${struct}`, () => {
      expect(c[struct]).toEqual({ ...layout });
    });
  }
});

describe("limits shared with bpf/*.h", () => {
  test("tracepoint.h and opensnoop.h #defines equal lib/layouts.ts", () => {
    const src = `#include <stdio.h>\n#include <linux/types.h>\n#include "tracepoint.h"\n#include "opensnoop.h"\nint main(void){printf("{\\"maxEvents\\":%d,\\"rawMax\\":%d,\\"strMax\\":%d,\\"maxLocs\\":%d,\\"maxStrs\\":%d,\\"locRel\\":%d,\\"openNameMax\\":%d}", TP_MAX_EVENTS, TP_RAW_MAX, TP_STR_MAX, TP_MAX_LOCS, TP_MAX_STRS, TP_LOC_REL, OPEN_NAME_MAX);return 0;}\n`;
    const c = join(WORK, "limits.c");
    writeFileSync(c, src);
    sh(`gcc -I${join(ROOT, "bpf")} -o ${join(WORK, "limits")} ${c}`);
    expect(JSON.parse(sh(join(WORK, "limits")))).toEqual({ ...L.TP_LIMITS, openNameMax: L.OPEN_NAME_MAX });
  });
});

// Constants the TypeScript side repeats: enum values and sizes of the TLS programs.
const CONSTANTS: [header: string, cExpr: string, value: number][] = [
  ...Object.entries(L.TLS_FN).map(([k, v]) => ["ssl_read.h", `TLS_${k}`, v] as [string, string, number]),
  ...Object.entries(L.SNIFF_KIND).map(([k, v]) => ["sslsniff.h", `SNIFF_${k}`, v] as [string, string, number]),
  ...Object.entries(L.SNIFF_FLAG).map(([k, v]) => ["sslsniff.h", `SNIFF_${k}`, v] as [string, string, number]),
  ...Object.entries(L.SNIFF_DROP).map(([k, v]) => ["sslsniff.h", `SNIFF_DROP_${k}`, v] as [string, string, number]),
  ["sslsniff.h", "SNIFF_CHUNK", L.SNIFF_CHUNK],
  ["ssl_read.h", "TLS_COOKIE_FN(0x1234567)", Number(L.tlsCookie(0x12345, 0x67) & 0xffn)],
  ["ssl_read.h", "TLS_COOKIE_LIB(0x1234567)", 0x12345],
];

test("TLS constants match bpf/ssl_read.h and bpf/sslsniff.h", () => {
  const headers = [...new Set(CONSTANTS.map(([h]) => h))];
  const src = `#include <stdio.h>\n#include <linux/types.h>\n${headers.map((h) => `#include "${h}"`).join("\n")}\nint main(void) {\n${CONSTANTS.map(([, e]) => `  printf("%lld\\n", (long long)(${e}));`).join("\n")}\n  return 0;\n}\n`;
  const c = join(WORK, "tls-constants.c");
  writeFileSync(c, src);
  sh(`gcc -I${join(ROOT, "bpf")} -o ${join(WORK, "tls-constants")} ${c}`);
  const got = sh(join(WORK, "tls-constants")).trim().split("\n").map(Number);
  expect(Object.fromEntries(CONSTANTS.map(([, e], i) => [e, got[i]]))).toEqual(Object.fromEntries(CONSTANTS.map(([, e, v]) => [e, v])));
});
