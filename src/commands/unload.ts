// `probe unload DIR`: removes everything a `probe load --pin DIR` pinned; the programs detach
// once nothing else holds them.
import { pc } from "../colors.ts";
import { unpinDir } from "../../lib/bpffs.ts";
import { ProbeError, UsageError } from "../errors.ts";
import { Out } from "../output.ts";
import { requireTracingCaps } from "../session.ts";

export interface UnloadOptions {
  json?: boolean;
}

export async function run(dir: string | undefined, o: UnloadOptions): Promise<number> {
  if (!dir) throw new UsageError("missing argument: probe unload <pin directory>");
  requireTracingCaps();
  let removed;
  try {
    removed = unpinDir(dir);
  } catch (e) {
    // Every refusal of unpinDir is about the directory the user gave.
    if (e instanceof ProbeError) throw new UsageError(e.message, e.hint);
    throw e;
  }
  const out = new Out();
  for (const r of removed) {
    out.line(o.json ? JSON.stringify({ unpinned: r.path, kind: r.kind, id: r.id }) : `${pc.dim("unpinned")} ${r.kind} ${r.id} ${r.path}`);
  }
  if (!o.json) out.line(removed.length ? `${removed.length} object(s) unpinned from ${dir}` : `nothing was pinned in ${dir}`);
  out.flush();
  return 0;
}
