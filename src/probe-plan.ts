// What to attach for `probe uprobe <target> <function> [--ret]`: a C function gets an entry uprobe
// and a real uretprobe; a Go function gets its return probes as plain uprobes on every RET
// instruction, because a uretprobe rewrites a return address on a stack Go moves.
import type { ElfFile } from "../lib/elf.ts";
import { resolveFunction } from "../lib/symbols.ts";
import { inspectGo, requireRegisterAbi, goFunction, type GoInfo } from "../lib/go.ts";
import { returnOffsets } from "../lib/go-returns.ts";
import type { ProbePoint } from "../lib/uprobe.ts";

export interface ProbePlan {
  /** The function as output names it. */
  name: string;
  entry: ProbePoint[];
  /** Return probes: a uretprobe at the entry, or entry probes at each RET (`retprobe: false`). */
  returns?: { points: ProbePoint[]; retprobe: boolean };
  /** Arguments and results in Go's register ABI; calls paired per goroutine. */
  goAbi: boolean;
  go?: GoInfo;
  /** One line for the user about how returns are probed. */
  note?: string;
}

export function planProbes(elf: ElfFile, spec: string, o: { ret?: boolean; unsafeUretprobe?: boolean }): ProbePlan {
  const go = inspectGo(elf);
  if (!go) {
    const f = resolveFunction(elf, spec);
    const entry = [{ offset: f.offset, cookie: 0n }];
    return { name: f.name, entry, returns: o.ret ? { points: entry, retprobe: true } : undefined, goAbi: false };
  }
  requireRegisterAbi(elf, go);
  const version = go.version?.raw ?? "unknown version";
  // Raw offsets and symbol+0x.. keep their C meaning: the user chose the address.
  if (/^0x[0-9a-f]+$/i.test(spec) || /\+(0x[0-9a-f]+|\d+)$/i.test(spec)) {
    const f = resolveFunction(elf, spec);
    const entry = [{ offset: f.offset, cookie: 0n }];
    if (o.ret && !o.unsafeUretprobe) {
      throw new GoPlanError(`${elf.path} is a Go program (${version}): --ret needs a function name, not an address`, "give the function's name so probe can find its RET instructions");
    }
    return { name: f.name, entry, returns: o.ret ? { points: entry, retprobe: true } : undefined, goAbi: true, go };
  }
  const fn = goFunction(elf, spec);
  const entry = [{ offset: fn.offset, cookie: 0n }];
  const base = { name: fn.name, entry, goAbi: true, go };
  if (!o.ret) return { ...base, note: `Go ${version} (${go.abi} ABI)` };
  if (o.unsafeUretprobe) {
    return { ...base, returns: { points: entry, retprobe: true }, note: `Go ${version}: a real uretprobe, as asked (--unsafe-uretprobe): this can crash the program` };
  }
  const rets = returnOffsets(elf, fn);
  return {
    ...base,
    returns: { points: rets.offsets.map((offset) => ({ offset, cookie: 0n })), retprobe: false },
    note: `Go ${version} (${go.abi} ABI): returns probed at ${rets.offsets.length} RET instruction${rets.offsets.length === 1 ? "" : "s"}, not with a uretprobe`,
  };
}

export class GoPlanError extends Error {
  constructor(
    message: string,
    readonly hint?: string,
  ) {
    super(message);
  }
}
