// Which processes to look at for TLS: every process of the host, those of one PID namespace (a
// container), a process and its descendants. Read from /proc; processes that go away meanwhile
// are left out.
import { readdirSync, readFileSync, statSync } from "node:fs";

/** Every process /proc shows (kernel threads included: they have no mappings). */
export function allPids(): number[] {
  let names: string[];
  try {
    names = readdirSync("/proc");
  } catch {
    return [];
  }
  return names.filter((d) => /^\d+$/.test(d)).map(Number).sort((a, b) => a - b);
}

/** The processes whose PID namespace is the one with inode `inum` (a container's own processes). */
export function pidsInNamespace(inum: number): number[] {
  return allPids().filter((pid) => {
    try {
      return statSync(`/proc/${pid}/ns/pid`).ino === inum;
    } catch {
      return false;
    }
  });
}

/** `pid` and every process below it, as far as /proc/PID/task/TID/children says (capped). */
export function withDescendants(pid: number, max = 4096): number[] {
  const out = [pid];
  for (let i = 0; i < out.length && out.length < max; i++) {
    let tasks: string[] = [];
    try {
      tasks = readdirSync(`/proc/${out[i]}/task`);
    } catch {
      continue;
    }
    for (const t of tasks) {
      try {
        for (const c of readFileSync(`/proc/${out[i]}/task/${t}/children`, "utf8").trim().split(/\s+/)) if (c) out.push(Number(c));
      } catch {
        // thread gone
      }
    }
  }
  return [...new Set(out)].slice(0, max);
}
