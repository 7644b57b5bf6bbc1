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
