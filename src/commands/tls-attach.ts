// What ssl-read and sslsniff share: finding the TLS the traced processes use (or every TLS on the
// host), saying what was found, attaching entry and return programs to its functions and saying
// exactly what the kernel has attached. lib/tls/ finds and plans; this file decides where to look
// and how to tell the user.
import { TlsFinder, type LookedAt, type TlsLibrary } from "../../lib/tls/find.ts";
import { pidsInNamespace, withDescendants } from "../../lib/tls/processes.ts";
import { tlsProbes, type TlsProbes } from "../../lib/tls/points.ts";
import { lookedFor, type TlsRole } from "../../lib/tls/stacks.ts";
import type { TlsStack } from "../../lib/tls/detect.ts";
import type { UprobeLink } from "../../lib/uprobe.ts";
import type { Closable } from "../../lib/scope.ts";
import { ProbeError } from "../errors.ts";
import type { Session } from "../session.ts";
import { containerName } from "../fleet-labels.ts";
import type { TracedContainer } from "../fleet.ts";
import { SharedFiles } from "../fleet-files.ts";
import { mark } from "../timing.ts";

/** One stack of one file, as the programs number it (the library index in the attach cookie). */
export interface TlsTarget {
  index: number;
  lib: TlsLibrary;
  stack: TlsStack;
}

export interface TlsAttached extends TlsTarget {
  probes: TlsProbes;
  entry: UprobeLink;
  ret: UprobeLink;
}

/**
 * How a stack sits in its file, for people: "OpenSSL 3.0.19 linked into /usr/bin/node"; NSS names
 * both its files: "NSS 3.87.1 (/usr/lib/.../libssl3.so, I/O through /usr/lib/.../libnspr4.so)".
 */
export function describeStack(lib: TlsLibrary, stack: TlsStack): string {
  if (stack.nss) return `${stack.name} (${stack.nss.ssl}, I/O through ${stack.nss.io})`;
  return `${stack.name} ${lib.linkage === "shared" ? "in" : "linked into"} ${lib.target.display}`;
}

/**
 * What NSS's probes see, said once when they are attached: NSPR's I/O functions carry more than
 * TLS; handshakes are seen only where the program calls SSL_ForceHandshake (and it is exported).
 */
function sayNss(s: Session, stacks: TlsStack[], roles: readonly TlsRole[]): void {
  const nss = stacks.filter((st) => st.kind === "nss");
  if (!nss.length) return;
  if (roles.some((r) => r !== "handshake")) {
    s.note("NSS: PR_Read, PR_Recv, PR_Write and PR_Send are NSPR's I/O for every descriptor: reads and writes of files, pipes and plain sockets through NSPR are included, not only TLS");
  }
  if (roles.includes("handshake")) {
    const has = nss.some((st) => st.functions.some((f) => f.def.role === "handshake"));
    s.note(has
      ? "NSS: handshakes are SSL_ForceHandshake calls; a program that does not call it handshakes inside its first read or write (not shown apart)"
      : "NSS: SSL_ForceHandshake is not exported by its SSL library: NSS handshakes are left out");
  }
}

const WAIT_POLL_MS = 5;

/**
 * The TLS libraries to probe: the file given with --lib; those the traced process(es) use, found
 * in their view (with --wait, waited for); or every one on the host. Says what was found.
 */
export async function findTls(s: Session, o: { lib?: string; wait?: boolean }): Promise<TlsTarget[]> {
  const finder = s.scope.add(new TlsFinder());
  let libs: TlsLibrary[];
  if (o.lib) {
    const t = await s.openTarget(o.lib, o.wait);
    const lib = finder.addTarget(t);
    if (!lib) {
      throw new ProbeError(
        `function SSL_read not found in ${t.display}, nor any other TLS function probe knows: ${lookedFor()}`,
        "give the file that holds the TLS code: libssl.so.3, libgnutls.so.30, libnspr4.so (NSS's I/O), or the program itself (node, a Go program)",
      );
    }
    libs = [lib];
  } else if (s.filter.proc) {
    libs = await inTracedProcesses(s, finder, !!o.wait);
  } else {
    libs = finder.onHost([process.pid]);
    if (!libs.length) throw new ProbeError(`no TLS library found on this host: looked for ${lookedFor()} in the loader's libraries and in every running process`, "name the file with --lib PATH");
    sayHostWide(s, libs);
  }
  const targets: TlsTarget[] = [];
  for (const lib of libs) for (const stack of lib.stacks) targets.push({ index: targets.length, lib, stack });
  return targets;
}

/** Which processes --pid/--container/--children mean, now. */
function tracedPids(s: Session): number[] {
  const proc = s.filter.proc!;
  if (s.filter.bpf.pidns?.length) {
    const pids = pidsInNamespace(s.filter.bpf.pidns[0]!.inum);
    return pids.includes(proc.pid) ? pids : [proc.pid, ...pids];
  }
  if (s.filter.bpf.followForks) return withDescendants(proc.pid);
  return [proc.pid];
}

async function inTracedProcesses(s: Session, finder: TlsFinder, wait: boolean): Promise<TlsLibrary[]> {
  const proc = s.filter.proc!;
  let said = false;
  for (;;) {
    const pids = tracedPids(s);
    const r = finder.inProcesses(pids);
    if (r.libraries.length) {
      sayPerProcess(s, r.libraries);
      return r.libraries;
    }
    if (!wait) throw notFound(s, r.looked);
    if (!said && pids.length === 1) {
      const early = probeBeforeMapped(s, finder);
      if (early.length) return early;
    }
    if (proc.watch.exited()) throw new ProbeError(`${proc.label} exited before it loaded a TLS library`);
    if (!said) s.note(`probe: waiting for ${proc.label}${pids.length > 1 ? ` (or the ${pids.length - 1} other processes of its container)` : ""} to load a TLS library... (Ctrl-C to stop)`);
    said = true;
    await Bun.sleep(WAIT_POLL_MS);
  }
}

/** The shared TLS libraries a process's loader would load, by the names programs link against. */
const LOADER_NAMES = ["libssl.so.3", "libgnutls.so.30"];

/**
 * --wait on one process that has no TLS yet: the shared TLS libraries its loader would load are
 * probed at once, so that reads made right after it maps one are seen (waiting for the mapping,
 * then attaching, misses the first milliseconds). If it maps another file, the session moves the
 * probes there; until it maps one, the others keep waiting as before.
 */
function probeBeforeMapped(s: Session, finder: TlsFinder): TlsLibrary[] {
  const proc = s.filter.proc!;
  const libs: TlsLibrary[] = [];
  for (const name of LOADER_NAMES) {
    const t = s.openBeforeMapped(name, true);
    const lib = t && finder.addTarget(t);
    if (lib) libs.push(lib);
  }
  if (libs.length) {
    const files = libs.map((l) => `${l.target.display} (${l.stacks.map((st) => st.name).join(", ")})`).join(" and ");
    s.note(`probe: ${proc.label} has not loaded a TLS library yet (/proc/${proc.pid}/maps): probing ${files}, which its loader would load; its calls are seen from the moment it maps one`);
  }
  return libs;
}

/** Nothing found: what was looked for, and where. */
function notFound(s: Session, looked: LookedAt[]): ProbeError {
  const proc = s.filter.proc!;
  const one = looked.find((l) => l.pid === proc.pid) ?? looked[0]!;
  const where =
    looked.length > 1
      ? `the ${looked.length} processes of container ${proc.container?.name ?? ""}`.replace(/ $/, "") + ` (${looked.reduce((a, l) => a + l.files, 0)} mapped files)`
      : `the ${one.files} files process ${one.pid} (${one.comm}) maps executable, its executable ${one.executable || "(unknown)"} included`;
  const unusable = [...new Set(looked.flatMap((l) => l.unusable))];
  const skipped = looked.flatMap((l) => l.skipped);
  const extra = [unusable.length ? ` ${unusable.join("; ")}.` : "", skipped.length ? ` Could not read: ${skipped.slice(0, 3).join("; ")}${skipped.length > 3 ? ` and ${skipped.length - 3} more` : ""}.` : ""].join("");
  return new ProbeError(
    `no TLS found in ${proc.label}: looked for a shared OpenSSL libssl or GnuTLS libgnutls, and for ${lookedFor()} in the symbols of ${where}.${extra}`,
    "if it loads its TLS library later, add --wait; TLS linked in without symbols (Bun's BoringSSL) cannot be found; name the file with --lib PATH",
  );
}

/** One line per traced process: what it uses, where. */
function sayPerProcess(s: Session, libs: TlsLibrary[]): void {
  const byPid = new Map<number, { comm: string; what: string[] }>();
  for (const lib of libs) {
    for (const [pid, comm] of lib.users) {
      const e = byPid.get(pid) ?? { comm, what: [] };
      // NSS's two files say the same.
      for (const st of lib.stacks) if (!e.what.includes(describeStack(lib, st))) e.what.push(describeStack(lib, st));
      byPid.set(pid, e);
    }
  }
  const lines = [...byPid].sort((a, b) => a[0] - b[0]).map(([pid, e]) => `${e.comm} ${pid}: ${e.what.join("; ")}`);
  for (const l of lines.slice(0, 10)) s.note(l);
  if (lines.length > 10) s.note(`... and ${lines.length - 10} more processes`);
}

function users(lib: TlsLibrary): string {
  const u = [...lib.users].sort((a, b) => a[0] - b[0]).map(([pid, comm]) => `${comm} ${pid}`);
  if (!u.length) return "no running process maps it yet";
  return `${u.length} process${u.length === 1 ? "" : "es"} (${u.slice(0, 5).join(", ")}${u.length > 5 ? ", ..." : ""})`;
}

function sayHostWide(s: Session, libs: TlsLibrary[]): void {
  const pids = new Set(libs.flatMap((l) => [...l.users.keys()]));
  s.note(`TLS on this host: ${libs.length} file${libs.length === 1 ? "" : "s"}, used by ${pids.size} running process${pids.size === 1 ? "" : "es"} (programs started later are covered when they use these files)`);
  const said = new Set<string>();
  for (const lib of libs) {
    for (const st of lib.stacks) {
      const line = `  ${describeStack(lib, st)}: ${users(lib)}`;
      if (!said.has(line)) s.note(line);
      said.add(line);
    }
  }
}

/**
 * Attaches `progs` to the functions of each target that play one of `roles` (entry probes, and
 * return probes: uretprobes for C, entry probes on RET instructions for Go), then says exactly
 * what is attached, in the kernel's own words.
 */
export function attachTls(s: Session, targets: TlsTarget[], progs: { entry: number; ret: number }, roles: readonly TlsRole[]): TlsAttached[] {
  const out: TlsAttached[] = [];
  for (const t of targets) {
    const probes = tlsProbes(t.lib.target.elf, t.stack, t.index, roles);
    if (!probes.entry.length) continue;
    const entry = s.attach(progs.entry, t.lib.target, probes.entry, false, probes.names);
    const ret = s.attach(progs.ret, t.lib.target, probes.returns, probes.retprobe, probes.names);
    out.push({ ...t, probes, entry, ret });
  }
  if (!out.length) throw new ProbeError(`none of the TLS libraries found has a ${roles.join(" or ")} function to probe`);
  s.confirm();
  for (const a of out) {
    // The kernel's own word on what is attached: a manager that drops the retprobe flag shows here.
    const kinds = [...a.entry.info(), ...a.ret.info()].map((i) => (i.uprobe?.retprobe ? "uretprobe" : "uprobe"));
    const goRets = a.probes.retprobe ? "" : ` (returns at ${a.probes.retSites} RET instruction${a.probes.retSites === 1 ? "" : "s"}, not uretprobes)`;
    s.note(`Tracing ${a.probes.functions.join(", ")} in ${a.lib.target.display}${s.label}: kernel reports ${[...new Set(kinds)].join(" + ")} [${s.modeName}]${goRets}`);
  }
  sayNss(s, targets.filter((t) => t.stack.kind === "nss").map((t) => t.stack), roles);
  return out;
}

/** One file's links (entry and return, every stack of it), detached together. */
class FileLinks implements Closable {
  constructor(readonly links: UprobeLink[]) {}
  close(): void {
    for (const l of this.links) l.close();
  }
}

/** A process is looked at again this often while it is new (it may load its TLS library later)... */
const LOOK_YOUNG_MS = 200;
/** ...for this long after probe first saw it, then this often. */
const YOUNG_FOR_MS = 5_000;
const LOOK_OLD_MS = 5_000;

/**
 * A selection of containers (--selector, --pod, --namespace, --container-name, --all-containers):
 * the TLS of each selected container's processes, found in their own views as containers appear
 * and looked for again while they run (a process started later, a library loaded later), attached
 * once per real inode whatever the number of containers sharing it (the programs' PID-namespace
 * filter keeps only the selected processes), and detached once no selected container uses it.
 * Returns the targets by cookie index: the array grows as files are found.
 */
export async function attachTlsInFleet(s: Session, progs: { entry: number; ret: number }, roles: readonly TlsRole[]): Promise<TlsTarget[]> {
  const fleet = s.fleet!;
  mark(`fleet: ${fleet.current().length} containers selected`);
  const finder = s.scope.add(new TlsFinder());
  // Added after the finder: the scope closes links before the files they are on.
  const files = s.scope.add(new SharedFiles<FileLinks>());
  const targets: TlsTarget[] = [];
  const targetsOf = new Map<TlsLibrary, TlsTarget[]>();
  /** Per container: when each of its processes was first seen and last looked at. */
  const looked = new Map<TracedContainer, Map<number, { first: number; last: number }>>();
  /** Container and file pairs the kernel refused. */
  const refused = new Set<string>();
  let nssSaid = false;

  const attachFile = (lib: TlsLibrary, c: TracedContainer): FileLinks => {
    let ts = targetsOf.get(lib);
    if (!ts) {
      ts = lib.stacks.map((stack) => ({ index: targets.length, lib, stack }));
      for (const t of ts) targets[t.index] = t;
      targetsOf.set(lib, ts);
    }
    const links: UprobeLink[] = [];
    const functions = new Set<string>();
    try {
      for (const t of ts) {
        const probes = tlsProbes(t.lib.target.elf, t.stack, t.index, roles);
        if (!probes.entry.length) continue;
        links.push(s.attach(progs.entry, t.lib.target, probes.entry, false, probes.names));
        links.push(s.attach(progs.ret, t.lib.target, probes.returns, probes.retprobe, probes.names));
        for (const f of probes.functions) functions.add(f);
      }
    } catch (e) {
      for (const l of links) l.close();
      throw e;
    }
    if (!links.length) throw new ProbeError(`${lib.target.display} has no ${roles.join(" or ")} function to probe`);
    const kinds = new Set(links.flatMap((l) => l.info()).map((i) => (i.uprobe?.retprobe ? "uretprobe" : "uprobe")));
    s.note(`Tracing ${[...functions].join(", ")} in ${lib.target.display} (first used by ${containerName(c)}): kernel reports ${[...kinds].join(" + ")} [${s.modeName}]`);
    if (!nssSaid && lib.stacks.some((st) => st.kind === "nss")) {
      nssSaid = true;
      sayNss(s, lib.stacks, roles);
    }
    return new FileLinks(links);
  };

  const look = (c: TracedContainer) => {
    const now = performance.now();
    let seen = looked.get(c);
    if (!seen) looked.set(c, (seen = new Map()));
    const pids = fleet.processesOf(c);
    const due: number[] = [];
    for (const pid of pids) {
      const p = seen.get(pid);
      if (!p) seen.set(pid, { first: now, last: now });
      else if (now - p.last >= (now - p.first < YOUNG_FOR_MS ? LOOK_YOUNG_MS : LOOK_OLD_MS)) p.last = now;
      else continue;
      due.push(pid);
    }
    if (seen.size > pids.length) {
      const live = new Set(pids);
      for (const pid of seen.keys()) if (!live.has(pid)) seen.delete(pid);
    }
    if (!due.length) return;
    for (const lib of finder.inProcesses(due).libraries) {
      // NSS's handshake file when handshakes are not traced: nothing to attach there.
      if (!lib.stacks.some((st) => st.functions.some((f) => roles.includes(f.def.role)))) continue;
      const key = lib.target.inodeKey;
      if (files.uses(key, c) || refused.has(`${c.pidns.inum}/${key}`)) continue;
      try {
        files.use(key, c, () => attachFile(lib, c));
      } catch (e) {
        // Said and counted once: the kernel would refuse it again.
        refused.add(`${c.pidns.inum}/${key}`);
        s.attachFailed(c, `${lib.target.display}: ${(e as Error).message}`);
        continue;
      }
      const who = [...lib.users].filter(([pid]) => due.includes(pid)).map(([pid, comm]) => `${comm} ${pid}`);
      s.note(`probe: ${containerName(c)} uses ${lib.stacks.map((st) => describeStack(lib, st)).join("; ")} (${who.slice(0, 3).join(", ")}${who.length > 3 ? ", ..." : ""})`);
    }
  };

  await s.eachView(async (_view, c) => look(c!));
  fleet.onRemoved((c) => {
    looked.delete(c);
    const detached = files.release(c);
    s.note(`probe: ${containerName(c)} stopped${detached.length ? `; detached ${detached.map((k) => finder.libraries.find((l) => l.target.inodeKey === k)?.target.display ?? k).join(", ")} (no selected container uses it now)` : ""}`);
  });
  const timer = setInterval(() => {
    for (const c of fleet.current()) {
      try {
        look(c);
      } catch (e) {
        s.attachFailed(c, (e as Error).message);
      }
    }
  }, LOOK_YOUNG_MS);
  s.scope.add({ close: () => clearInterval(timer) });
  s.confirm();
  mark(`fleet: ${files.attachedCount} files attached`);
  const n = fleet.current().length;
  s.note(`Tracing TLS ${roles.join(", ")} calls in ${n} container${n === 1 ? "" : "s"} (${fleet.description}) and those that start later: ${files.attachedCount} file${files.attachedCount === 1 ? "" : "s"} probed now [${s.modeName}]`);
  return targets;
}
