// From a target argument (and maybe a process) to one open file we can parse and probe.
import { OpenTarget } from "../lib/target.ts";
import { resolveTarget, TargetNotFound } from "../lib/resolve.ts";
import { ProbeError } from "./errors.ts";

export async function openTargetFor(target: string, o: { pid?: number; wait?: boolean }): Promise<OpenTarget> {
  let r;
  try {
    r = resolveTarget(target, { pid: o.pid });
  } catch (e) {
    if (e instanceof TargetNotFound) throw new ProbeError(e.message, e.hint);
    throw e;
  }
  try {
    return OpenTarget.open(r.path, r.display);
  } catch (e) {
    const msg = (e as Error).message;
    throw new ProbeError(msg.includes(r.display) ? msg : `${r.display}: ${msg}`);
  }
}
