// The BPF objects compiled at build time and embedded in the executable.
import { BPF_OBJECTS } from "./bpf-objects.generated.ts";

export function embeddedObject(name: string): Uint8Array {
  const b64 = BPF_OBJECTS[name];
  if (!b64) throw new Error(`no embedded BPF object ${name}: run 'bun run build'`);
  return Uint8Array.from(Buffer.from(b64, "base64"));
}
