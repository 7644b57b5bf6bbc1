// This process's mount table (/proc/self/mounts): where bpffs and tracefs are.
import { readFileSync } from "node:fs";

export interface Mount {
  source: string;
  target: string;
  fsType: string;
}

/** The mounts this process sees; [] without procfs. */
export function selfMounts(): Mount[] {
  let text: string;
  try {
    text = readFileSync("/proc/self/mounts", "utf8");
  } catch {
    return [];
  }
  const unescape = (s: string) => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
  return text
    .split("\n")
    .map((l) => l.split(" "))
    .filter((f) => f.length >= 3)
    .map((f) => ({ source: unescape(f[0]!), target: unescape(f[1]!), fsType: f[2]! }));
}
