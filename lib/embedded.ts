// The BPF objects compiled at build time and embedded in the executable (as files: see build.ts).
import { readFileSync } from "node:fs";
import { BPF_OBJECTS } from "./bpf-objects.generated.ts";

export function embeddedObject(name: string): Uint8Array {
  const path = BPF_OBJECTS[name];
  if (!path) throw new Error(`no embedded BPF object ${name}: run 'bun run build'`);
  return readFileSync(path);
}
