// A target named by the user (`uprobe libc malloc`) across a selection of containers: opened in
// each selected container's view as it appears, attached once per real inode (containers of one
// image share the file; the programs' PID-namespace filter keeps only the selected processes),
// detached once no selected container uses it.
import { openTarget, type OpenTarget } from "../lib/proc/target.ts";
import { ProcessError } from "../lib/proc/identity.ts";
import { TargetNotFound } from "../lib/proc/target.ts";
import type { Closable } from "../lib/scope.ts";
import { ProbeError } from "./errors.ts";
import type { TracedContainer } from "./fleet.ts";
import { SharedFiles } from "./fleet-files.ts";
import { containerName } from "./fleet-labels.ts";
import type { Session } from "./session.ts";

function notFound(e: unknown): boolean {
  return e instanceof TargetNotFound || (e instanceof ProcessError && e.reason === "not-found");
}

/**
 * The target as the first selected container that has it sees it, waited for (until Ctrl-C) when
 * none does yet: its file is what the functions are resolved in and the programs are planned for.
 */
export async function firstInFleet(s: Session, spec: string): Promise<{ target: OpenTarget; container: TracedContainer }> {
  const fleet = s.fleet!;
  const missing = new Set<TracedContainer>();
  let said = false;
  for (;;) {
    for (const c of fleet.current()) {
      if (missing.has(c)) continue;
      try {
        return { target: s.openTargetIn(spec, { pid: c.container.pid }), container: c };
      } catch (e) {
        if (!notFound(e)) throw e;
        missing.add(c);
      }
    }
    if (!said) {
      const n = fleet.current().length;
      s.note(`probe: ${n ? `none of the ${n} selected containers has ${spec}` : "no container is selected yet"} (${fleet.description}): waiting for one that has it... (Ctrl-C to stop)`);
      said = true;
    }
    await Bun.sleep(100);
  }
}

/**
 * Follows `spec` in every selected container: `attach(t)` runs once per file (the first
 * container's included), and what it returns is closed when the last container using that file
 * stops. Files whose attach fails are said, counted (probe_attach_errors_total) and not retried.
 */
export async function followInFleet(s: Session, spec: string, first: { target: OpenTarget; container: TracedContainer }, attach: (t: OpenTarget) => Closable): Promise<void> {
  const fleet = s.fleet!;
  const files = s.scope.add(new SharedFiles<Closable>());
  const names = new Map<string, string>([[first.target.inodeKey, first.target.display]]);
  files.use(first.target.inodeKey, first.container, () => attach(first.target));
  s.note(`probe: ${containerName(first.container)}: ${first.target.display}`);
  await s.eachView(async (view, c) => {
    if (!c || c === first.container) return;
    let t: OpenTarget;
    try {
      t = openTarget(spec, view);
    } catch (e) {
      if (!notFound(e)) throw e;
      s.note(`probe: ${containerName(c)} has no ${spec}: none of its calls are seen`);
      return;
    }
    let made: Closable | undefined;
    try {
      made = files.use(t.inodeKey, c, () => {
        const links = attach(t);
        return { close: () => (links.close(), t.close()) };
      });
    } catch (e) {
      t.close();
      throw e instanceof ProbeError ? e : new ProbeError(`${t.display}: ${(e as Error).message}`);
    }
    if (!made) t.close();
    else names.set(t.inodeKey, t.display);
    s.note(`probe: ${containerName(c)}: ${t.display}${made ? "" : " (probed already)"}`);
  });
  fleet.onRemoved((c) => {
    const detached = files.release(c);
    s.note(`probe: ${containerName(c)} stopped${detached.length ? `; detached ${detached.map((k) => names.get(k) ?? k).join(", ")} (no selected container uses it now)` : ""}`);
  });
}
