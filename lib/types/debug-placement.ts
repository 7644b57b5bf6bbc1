// A C function's arguments are read where the calling convention puts them (abi-sysv.ts), but an
// optimized copy of a function (gcc's .constprop/.isra/.part clones, and any function whose
// caller the compiler could see) may take them elsewhere, or not at all: a propagated constant,
// a value only the caller knew, a removed parameter. Debug info says where each one is at the
// entry; where it disagrees with the convention the value is unreadable, with the reason, never
// read from the register the convention would have used.
import type { ParamLocation } from "../dwarf/locations.ts";
import { formatLocation } from "../dwarf/format.ts";
import type { FunctionLayout, ValueLayout } from "./function-layout.ts";

/** Marks the arguments of `layout` whose convention placement debug info contradicts (by position). */
export function confirmPlacement(layout: FunctionLayout, locations: (ParamLocation | undefined)[]): void {
  for (const a of layout.args) {
    const loc = locations[a.index];
    if (!loc) continue;
    const why = disagreement(a, loc);
    if (why) a.value = { kind: "unreadable", reason: why };
  }
}

function disagreement(a: ValueLayout, loc: ParamLocation): string | undefined {
  if (a.value.kind === "unreadable" || a.value.kind === "empty") return undefined;
  const first = a.parts[0];
  switch (loc.kind) {
    case "unavailable":
      return loc.reason;
    case "register":
      if (a.parts.length === 1 && first && "reg" in first.loc && first.loc.reg === loc.name) return undefined;
      return `in ${loc.name} at the entry, not where the calling convention puts it (an optimized copy of the function)`;
    case "stack":
      // At the entry the CFA is rsp + 8: a stack argument at cfa+N is at sp+N+8.
      if (loc.base === "cfa" && first && "stack" in first.loc && first.loc.stack === loc.offset + 8) return undefined;
      return `at ${formatLocation(loc)} at the entry, not where the calling convention puts it (an optimized copy of the function)`;
    case "constant":
      return `a constant the compiler propagated (${formatLocation(loc)})`;
    case "address":
      return `at a fixed address (${formatLocation(loc)}), not passed`;
    case "expression":
      // DW_OP_addr A; DW_OP_stack_value: the value is the address A itself, a constant.
      if (/^DW_OP_addr: \d+; DW_OP_stack_value$/.test(loc.text)) return `a constant address the compiler propagated (${formatLocation(loc)})`;
      return `computed from what the caller passed (${formatLocation(loc)}): not in a register at the entry`;
    case "pieces":
      // Split values (small structs in two registers): the convention's own placement.
      return undefined;
  }
}
