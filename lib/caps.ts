// Whether this process may load BPF programs and open uprobes: root, or CAP_BPF + CAP_PERFMON.
import { readFileSync } from "node:fs";

const CAP = { SYS_ADMIN: 21, PERFMON: 38, BPF: 39 } as const;

function effective(): bigint {
  const status = readFileSync("/proc/self/status", "utf8");
  const m = /^CapEff:\s*([0-9a-f]+)/m.exec(status);
  return m ? BigInt(`0x${m[1]}`) : 0n;
}

/** Names of the capabilities missing for tracing, or [] when we have what it takes. */
export function missingTracingCaps(): string[] {
  const eff = effective();
  const has = (c: number) => (eff & (1n << BigInt(c))) !== 0n;
  if (has(CAP.SYS_ADMIN)) return [];
  const missing: string[] = [];
  if (!has(CAP.BPF)) missing.push("CAP_BPF");
  if (!has(CAP.PERFMON)) missing.push("CAP_PERFMON");
  return missing;
}
