// Where a Go function's arguments and results are at the probe point, for locate() (abi.ts).
//
// Go follows ABIInternal (Go >= 1.17, amd64; src/cmd/compile/abi-internal.md): integer registers
// RAX, RBX, RCX, RDI, RSI, R8, R9, R10, R11; each argument goes entirely into registers if all its
// parts fit in the registers left, else entirely onto the stack, and later arguments may still take
// registers. Results restart at RAX and are read at the RET instruction, where rsp points at the
// return address just as at entry, so stack results are also at rsp+8+offset. Shape-instantiated
// generic functions take a dictionary pointer first (RAX), which the prototype does not name.
import { elementSize, paramName, resultName, type Param, type Prototype, type Type } from "./prototype-model.ts";
import { align, refuse, type Part, type PtReg, type ScalarKind, type ValueKind, type ValueLayout } from "./function-layout.ts";

export const GO_INT_REGS: readonly PtReg[] = ["rax", "rbx", "rcx", "rdi", "rsi", "r8", "r9", "r10", "r11"];
const GO_FP_REGS = 15;

interface GoShape {
  size: number;
  align: number;
  /** Integer and floating-point registers the value needs when register-assigned. */
  ints: number;
  fps: number;
  /** False for arrays of more than one element: always on the stack. */
  regOk: boolean;
  value: ValueKind;
  /** The value's words in memory order: [offset, size]; in registers, one register each. */
  words: [number, number][];
}

const MAX_GO_ARRAY = 32;

function goScalar(t: Type): ScalarKind | undefined {
  if (t.kind === "int" && t.size <= 8) return { kind: "int", size: t.size as 1 | 2 | 4 | 8, signed: t.signed };
  if (t.kind === "bool") return { kind: "bool" };
  if (t.kind === "pointer" || t.kind === "ref") return { kind: "pointer" };
  return undefined;
}

function goShape(proto: Prototype, p: Param, what: string, t: Type = p.type): GoShape {
  const scalar = goScalar(t);
  if (scalar) {
    const size = t.kind === "int" ? t.size : t.kind === "bool" ? 1 : 8;
    return { size, align: size, ints: 1, fps: 0, regOk: true, value: scalar, words: [[0, size]] };
  }
  switch (t.kind) {
    case "string":
      return { size: 16, align: 8, ints: 2, fps: 0, regOk: true, value: { kind: "gostring" }, words: [[0, 8], [8, 8]] };
    case "slice": {
      const elem = elementSize(t.elem) ?? 0;
      const bytes = t.elem.kind === "int" && t.elem.size === 1;
      return { size: 24, align: 8, ints: 3, fps: 0, regOk: true, value: { kind: "goslice", elemSize: elem, bytes }, words: [[0, 8], [8, 8], [16, 8]] };
    }
    case "interface":
      return { size: 16, align: 8, ints: 2, fps: 0, regOk: true, value: { kind: "interface", empty: t.empty }, words: [[0, 8], [8, 8]] };
    case "float":
      return {
        size: t.size,
        align: t.align,
        ints: 0,
        fps: t.complex ? 2 : 1,
        regOk: true,
        value: { kind: "unreadable", reason: "floating-point values are not shown" },
        words: [[0, t.size]],
      };
    case "record":
      if (t.empty) return { size: 0, align: 1, ints: 0, fps: 0, regOk: true, value: { kind: "empty" }, words: [] };
      refuse(proto, p, `${what} is a struct passed by value, which probe cannot show`, "take a pointer to it in the function instead, or probe where a pointer is passed");
    case "array": {
      const elem = goShape(proto, p, what, t.elem);
      const es = goScalar(t.elem);
      if (t.len === 0) return { size: 0, align: elem.align, ints: 0, fps: 0, regOk: true, value: es ? { kind: "array", len: 0, elem: es } : { kind: "empty" }, words: [] };
      if (t.len === 1) return es ? { ...elem, value: { kind: "array", len: 1, elem: es } } : elem; // registers as its element
      const size = elem.size * t.len;
      if (!es || t.len > MAX_GO_ARRAY) {
        const reason = es ? `arrays longer than ${MAX_GO_ARRAY} elements are not shown` : `arrays of ${t.elem.text} are not shown`;
        return { size, align: elem.align, ints: 0, fps: 0, regOk: false, value: { kind: "unreadable", reason }, words: [] };
      }
      const words: [number, number][] = [];
      for (let i = 0; i < t.len; i++) words.push([i * elem.size, elem.size]);
      return { size, align: elem.align, ints: 0, fps: 0, regOk: false, value: { kind: "array", len: t.len, elem: es }, words };
    }
    case "named":
      if (p.receiver && t === p.type) {
        refuse(
          proto,
          p,
          `the receiver of ${proto.name} is a ${t.text} passed by value, whose layout probe does not know`,
          `give its underlying type in a receiver clause, e.g. 'func (r int) ${proto.name}(...)', or probe a method with a pointer receiver`,
        );
      }
      refuse(
        proto,
        p,
        `${what} has type ${t.text}, which probe does not know: by value it may be a struct whose fields cannot be placed`,
        `write *${t.text} if it is a pointer, 'any' if it is an interface, or its underlying type (int, string...)`,
      );
    default:
      refuse(proto, p, `${what} has type ${t.text}, which cannot be passed by value`);
  }
}

export function locateGo(proto: Prototype): { args: Omit<ValueLayout, "slots">[]; results: Omit<ValueLayout, "slots">[] } {
  let stack = 0; // offset in the stack sequence S, which starts at rsp+8
  const assign = (p: Param, name: string, role: ValueLayout["role"], index: number, regs: { i: number; fp: number }): Omit<ValueLayout, "slots"> => {
    const s = goShape(proto, p, role === "result" ? `result '${name}'` : `parameter '${name}'`);
    let parts: Part[];
    let value = s.value;
    if (s.size === 0) {
      stack = align(stack, s.align); // zero-size values go to the stack (ABI step 2)
      parts = [];
    } else if (s.regOk && regs.i + s.ints <= GO_INT_REGS.length && regs.fp + s.fps <= GO_FP_REGS) {
      if (s.fps) {
        // Floating-point values are never mixed with integer words (structs are refused).
        value = { kind: "unreadable", reason: `${p.type.text} is ${role === "result" ? "returned" : "passed"} in X${regs.fp}, which a uprobe does not record` };
        parts = [];
        regs.fp += s.fps;
      } else parts = s.words.map(([, size]) => ({ loc: { reg: GO_INT_REGS[regs.i++]! }, size }));
    } else {
      stack = align(stack, s.align);
      parts = s.words.map(([off, size]) => ({ loc: { stack: 8 + stack + off }, size }));
      stack += s.size;
    }
    return { name, typeText: p.type.text, role, index, value, parts };
  };
  // A generic function compiled for a GC shape (main.Sum[go.shape.int]) takes its dictionary
  // pointer as a hidden first argument, before the receiver: it holds RAX.
  const argRegs = { i: proto.name.includes("[go.shape.") ? 1 : 0, fp: 0 };
  const args = proto.params.map((p, i) => assign(p, paramName(p, i), p.receiver ? "receiver" : "arg", i, argRegs));
  stack = align(stack, 8);
  const resRegs = { i: 0, fp: 0 };
  const results = proto.results.map((p, i) => assign(p, resultName(p, i, proto.results.length), "result", i, resRegs));
  return { args, results };
}
