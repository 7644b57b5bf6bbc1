// Where the probes of one TLS stack go in its file: an entry probe on each function, and its
// return probe — a uretprobe at the same place for C, entry probes on every RET instruction for
// Go (a uretprobe rewrites a return address on a stack Go moves). Each point's attach cookie
// carries the library's index and the function's code (bpf/ssl_read.h).
import type { ElfFile } from "../elf.ts";
import { returnOffsets } from "../go-returns.ts";
import { tlsCookie } from "../layouts.ts";
import type { ProbePoint } from "../uprobe.ts";
import type { TlsStack } from "./detect.ts";
import type { TlsRole } from "./stacks.ts";

export interface TlsProbes {
  entry: ProbePoint[];
  returns: ProbePoint[];
  /** Whether `returns` are uretprobes (C) or entry probes at RET instructions (Go). */
  retprobe: boolean;
  /** The names of the functions probed, in the order of `entry`. */
  functions: string[];
  /** Function names by cookie, for naming a point the kernel refuses. */
  names: string[];
  /** Go: how many RET instructions carry return probes. */
  retSites: number;
}

/** The probe points for the functions of `stack` that play one of `roles`, as library number `lib`. */
export function tlsProbes(elf: ElfFile, stack: TlsStack, lib: number, roles: readonly TlsRole[]): TlsProbes {
  const go = stack.kind === "go";
  const out: TlsProbes = { entry: [], returns: [], retprobe: !go, functions: [], names: [], retSites: 0 };
  for (const f of stack.functions) {
    if (!roles.includes(f.def.role)) continue;
    const cookie = tlsCookie(lib, f.def.fn);
    out.entry.push({ offset: f.offset, cookie });
    out.functions.push(f.def.name);
    out.names[Number(cookie)] = f.def.name;
    if (!go) {
      out.returns.push({ offset: f.offset, cookie });
      continue;
    }
    const rets = returnOffsets(elf, f.go!).offsets;
    out.retSites += rets.length;
    for (const offset of rets) {
      out.returns.push({ offset, cookie });
      out.names[Number(cookie)] = f.def.name;
    }
  }
  return out;
}
