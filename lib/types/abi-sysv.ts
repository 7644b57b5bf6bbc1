// Where a C function's arguments and results are at the probe point, for locate() (abi.ts).
//
// C follows the System V x86-64 psABI: integer class arguments in rdi, rsi, rdx, rcx, r8, r9, then
// eightbyte stack slots at rsp+8, rsp+16... (at function entry [rsp] is the return address);
// results in rax. Floating-point values go to xmm registers, which a uprobe does not see: they are
// placed (so later arguments are right) but marked unreadable.
import { elementSize, paramName, resultName, type Param, type Prototype, type Type } from "./prototype-model.ts";
import { align, refuse, type Part, type PtReg, type ValueKind, type ValueLayout } from "./function-layout.ts";

export const SYSV_INT_ARGS: readonly PtReg[] = ["rdi", "rsi", "rdx", "rcx", "r8", "r9"];
const SYSV_SSE_REGS = 8;

/** A pointer's kind: a C string, a counted buffer, or just an address. */
function pointerKind(t: Extract<Type, { kind: "pointer" }>, p: Param): ValueKind {
  if (p.count) return { kind: "buffer", elemSize: elementSize(t.to) ?? 1, count: p.count };
  if (t.to.kind === "int" && t.to.char) return { kind: "cstring" };
  return { kind: "pointer" };
}

type SysvClass = "int" | "int2" | "sse" | "memory";

function sysvValue(proto: Prototype, p: Param, what: string): { value: ValueKind; cls: SysvClass; size: number; align: number } {
  const t = p.type;
  switch (t.kind) {
    case "int":
      if (t.size === 16) return { value: { kind: "unreadable", reason: "128-bit integers are not shown" }, cls: "int2", size: 16, align: 16 };
      return { value: { kind: "int", size: t.size, signed: t.signed }, cls: "int", size: t.size, align: 8 };
    case "bool":
      return { value: { kind: "bool" }, cls: "int", size: 1, align: 8 };
    case "enum":
      return { value: { kind: "enum", tag: t.tag }, cls: "int", size: 4, align: 8 };
    case "pointer":
      return { value: pointerKind(t, p), cls: "int", size: 8, align: 8 };
    case "float":
      if (t.size === 16) return { value: { kind: "unreadable", reason: "long double values are not shown" }, cls: "memory", size: 16, align: 16 };
      return { value: { kind: "unreadable", reason: "" }, cls: "sse", size: 8, align: 8 };
    case "record":
      refuse(proto, p, `${what} is a ${t.text} passed by value, which probe cannot place or show`, "pass a pointer to it instead ('struct X *') if that is what the function takes");
    case "named":
      refuse(
        proto,
        p,
        `${what} has type ${t.text}, which probe does not know: by value its size and where it is passed are unknown`,
        `behind a pointer it is fine (${t.text} *); for a typedef of an integer or a pointer, write that type instead (e.g. 'unsigned long', 'void *')`,
      );
    default:
      refuse(proto, p, `${what} has type ${t.text}, which cannot be passed by value`);
  }
}

export function locateSysv(proto: Prototype): { args: Omit<ValueLayout, "slots">[]; results: Omit<ValueLayout, "slots">[] } {
  let gp = 0;
  let sse = 0;
  let stack = 0; // bytes used in the argument area, which starts at rsp+8 and is 16-aligned
  const args = proto.params.map((p, i) => {
    const name = paramName(p, i);
    const { value, cls, size, align: a } = sysvValue(proto, p, `parameter '${name}'`);
    const onStack = (): Part[] => {
      stack = align(stack, a);
      const parts: Part[] = [];
      for (let o = 0; o < size; o += 8) parts.push({ loc: { stack: 8 + stack + o }, size: Math.min(8, size - o) });
      stack += align(size, 8);
      return parts;
    };
    let parts: Part[];
    let v = value;
    if (cls === "int" && gp < SYSV_INT_ARGS.length) parts = [{ loc: { reg: SYSV_INT_ARGS[gp++]! }, size }];
    else if (cls === "int2" && gp + 2 <= SYSV_INT_ARGS.length) parts = [SYSV_INT_ARGS[gp++]!, SYSV_INT_ARGS[gp++]!].map((reg) => ({ loc: { reg }, size: 8 }));
    else if (cls === "sse" && sse < SYSV_SSE_REGS) {
      v = { kind: "unreadable", reason: `${p.type.text} is passed in xmm${sse++}, which a uprobe does not record` };
      parts = [];
    } else {
      parts = onStack();
      if (cls === "sse") v = { kind: "unreadable", reason: "floating-point values are not shown" };
    }
    return { name, typeText: p.type.text, role: "arg" as const, index: i, value: v, parts };
  });
  const results = proto.results.map((p, i) => {
    const name = resultName(p, i, proto.results.length);
    const t = p.type;
    if (t.kind === "record" || t.kind === "named") {
      refuse(
        proto,
        p,
        `returning ${t.text} by value is not supported: probe cannot tell where it is, and a large one is returned through a hidden pointer that moves every argument`,
        t.kind === "named" ? "if it is a typedef of an integer or a pointer, write that type instead (e.g. 'long', 'void *')" : undefined,
      );
    }
    let value: ValueKind;
    let parts: Part[];
    if (t.kind === "float") {
      value = { kind: "unreadable", reason: `${t.text} is returned in ${t.size === 16 ? "st(0)" : "xmm0"}, which a uprobe does not record` };
      parts = [];
    } else if (t.kind === "int" && t.size === 16) {
      value = { kind: "unreadable", reason: "128-bit results (rax:rdx) are not shown" };
      parts = [
        { loc: { reg: "rax" }, size: 8 },
        { loc: { reg: "rdx" }, size: 8 },
      ];
    } else {
      value = sysvValue(proto, p, `the result`).value;
      parts = [{ loc: { reg: "rax" }, size: t.kind === "int" ? t.size : t.kind === "bool" ? 1 : t.kind === "enum" ? 4 : 8 }];
    }
    return { name, typeText: t.text, role: "result" as const, index: i, value, parts };
  });
  return { args, results };
}
