// A user's own libbpf object (`probe load app.bpf.o`): read it without blocking (a cap on its
// size, checked before libbpf sees it), set its globals, decide how each program attaches (before
// load: uprobe_multi programs need their expected attach type), load it, attach uprobes,
// uretprobes and tracepoints, and optionally pin everything so it outlives us.
// Functions resolve through lib/plan.ts like `probe uprobe`'s: Go names, and a Go function's
// return probes at its RET instructions, never a uretprobe.
import { CString, type Pointer } from "bun:ffi";
import { basename, dirname, join, resolve as resolvePath } from "node:path";
import { existsSync } from "node:fs";
import { libbpf } from "./ffi/libbpf.ts";
import { closeFd, cstr, OsError } from "./ffi/libc.ts";
import { ProbeError } from "./errors.ts";
import { openRegular, readFdCapped } from "./files.ts";
import { checkBpfObject, BPF_OBJECT_MAX_BYTES } from "./bpf-object-check.ts";
import { BPF_ATTACH, BPF_PROG_TYPE } from "./kernel/abi.ts";
import { BpfObject, type BpfProgram } from "./object.ts";
import { setGlobal, type GlobalSetting } from "./globals.ts";
import { planProbes, entryPoints, returnPoints, nameCulprit } from "./plan.ts";
import { attachUprobe, bestAttachMode, AttachError, type AttachMode, type UprobeLink } from "./uprobe.ts";
import { attachTracepoint, type TracepointLink } from "./tracepoint.ts";
import { openTarget, type OpenTarget } from "./proc/target.ts";
import { bpffsName, ensureBpffs, pinObject, preparePinDir, removeEmptyDir, unpinDir } from "./bpffs.ts";

/** The object and what was asked of it do not fit (no such program or map, a program of another type). */
export class ObjectPlanError extends ProbeError {}

export type AttachKind = "uprobe" | "uretprobe" | "tracepoint";

export interface AttachSpec {
  prog: string;
  kind: AttachKind;
  /** uprobes: a path or name for the caller's opener; tracepoints: the category. */
  target: string;
  /** uprobes: function (`SSL_read`, `sym+0x10`, `0x1234`, a Go name); tracepoints: the event name. */
  func: string;
  /** Given explicitly by the caller, or read from the program's SEC name. */
  from: "explicit" | "SEC";
}

/**
 * What a libbpf SEC name says about attaching: `uprobe/PATH:FUNC`, `uretprobe/PATH:FUNC`
 * (`uprobe//abs/path:FUNC` too), `uprobe.s/...`, `tracepoint/CAT/NAME`, `tp/CAT/NAME`.
 * A bare `uprobe`/`uretprobe` gives the kind without a target.
 */
export function parseSection(prog: string, sec: string): AttachSpec | { prog: string; kind: AttachKind; bare: true } | undefined {
  let m = /^(uprobe|uretprobe)(?:\.s)?(?:\/(.+):([^:/]+))?$/.exec(sec);
  if (m) {
    const kind = m[1] as "uprobe" | "uretprobe";
    if (!m[2]) return { prog, kind, bare: true };
    return { prog, kind, target: m[2], func: m[3]!, from: "SEC" };
  }
  m = /^(?:tracepoint|tp)\/([^/]+)\/([^/]+)$/.exec(sec);
  if (m) return { prog, kind: "tracepoint", target: m[1]!, func: m[2]!, from: "SEC" };
  if (sec === "tracepoint" || sec === "tp") return { prog, kind: "tracepoint", bare: true };
  return undefined;
}

/** A target file ready for uprobes; the caller decides what a name means (host or a process's view). */
export type TargetOpener = (target: string) => OpenTarget;

export interface LoadOptions {
  /** Explicit attachments; programs without one attach from their SEC name, if it says where. */
  attach?: AttachSpec[];
  set?: GlobalSetting[];
  /** Pin programs, links and maps here (on a bpf filesystem) so they outlive this process. */
  pinDir?: string;
  /** PID (in our namespace) for the kernel's filter on uprobe links; programs should filter by tgid too. */
  pid?: number;
  /** Default: targets on the host. */
  openTarget?: TargetOpener;
  /** Default: uprobe_multi where the kernel has it. */
  mode?: AttachMode;
  /** Told about side effects worth a line (mounting tracefs/bpffs, Go returns at RETs). */
  onNote?: (message: string) => void;
}

export interface Attachment {
  prog: string;
  kind: AttachKind;
  /** uprobes: as the user knows the file; tracepoints: CAT/NAME. */
  target: string;
  func: string;
  /** uprobes: file offsets of each function (entries, or Go RET instructions). */
  offsets: number[];
  /** True when a uretprobe program runs as entry probes at a Go function's RET instructions. */
  atReturns?: boolean;
  from: AttachSpec["from"];
  link: UprobeLink | TracepointLink;
}

/** Loaded and attached; owns the object, its links and the target fds; close() releases all (pins stay). */
export class UserObject {
  private closed = false;
  pinned: string[] = [];

  constructor(
    readonly path: string,
    readonly obj: BpfObject,
    readonly attachments: Attachment[],
    /** Programs loaded but not attached, and why. */
    readonly unattached: { prog: string; reason: string }[],
    readonly mode: AttachMode,
    private readonly targets: OpenTarget[],
  ) {}

  /** The object's maps: name, fd, whether libbpf made it for a data section. */
  maps(): { name: string; fd: number; internal: boolean }[] {
    return this.obj.maps().map((m) => ({ name: m.name, fd: this.obj.mapFd(m), internal: libbpf().bpf_map__is_internal(m.handle) !== 0 }));
  }

  mapFd(name: string): number {
    const m = this.obj.maps().find((x) => x.name === name);
    if (!m) throw new ObjectPlanError(`${this.path} has no map '${name}'`, `its maps: ${this.obj.maps().map((x) => x.name).join(", ")}`);
    return this.obj.mapFd(m);
  }

  /** The object's .rodata contents: its bpf_printk formats among them. */
  rodataSections(): Uint8Array[] {
    return this.obj.maps().filter((m) => /\.rodata/.test(m.name)).map((m) => this.obj.initialValue(m)).filter((b): b is Uint8Array => b !== undefined);
  }

  /**
   * Pins maps (`DIR/<map>`), programs (`DIR/progs/<prog>`) and links (`DIR/links/<prog>_<kind>_<n>`):
   * the attachment then lives until `unpinDir(DIR)`. Maps libbpf already pinned by name stay where they are.
   */
  pinAll(dir: string): string[] {
    const L = libbpf();
    const done: string[] = [];
    const pin = (fd: number, path: string) => {
      pinObject(fd, path);
      done.push(path);
    };
    try {
      for (const m of this.obj.maps()) {
        const existing = L.bpf_map__pin_path(m.handle);
        if (existing && existsSync(new CString(existing as Pointer).toString())) continue;
        // Data-section maps are named `<obj prefix>.rodata`: pin them as `rodata`, `bss`, `data`.
        const internal = L.bpf_map__is_internal(m.handle) !== 0 && m.name.includes(".");
        pin(this.obj.mapFd(m), join(dir, bpffsName(internal ? m.name.slice(m.name.indexOf(".") + 1) : m.name)));
      }
      for (const p of this.obj.programs()) {
        const fd = L.bpf_program__fd(p.handle);
        if (fd >= 0) pin(fd, join(dir, "progs", bpffsName(p.name)));
      }
      const seen = new Map<string, number>();
      for (const a of this.attachments) {
        for (const fd of a.link.linkFds) {
          const n = seen.get(a.prog) ?? 0;
          seen.set(a.prog, n + 1);
          pin(fd, join(dir, "links", `${bpffsName(a.prog)}_${a.kind}_${n}`));
        }
      }
    } catch (e) {
      unpinDir(dir, { quiet: true });
      throw e;
    }
    this.pinned.push(...done);
    return done;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const a of [...this.attachments].reverse()) a.link.close();
    for (const t of this.targets) t.close();
    this.obj.close();
  }
}

/** Reads a user's object file: regular files only, never blocking, capped. */
export function readObjectFile(path: string): Uint8Array {
  const fd = openRegular(path);
  try {
    return readFdCapped(fd, BPF_OBJECT_MAX_BYTES, path);
  } finally {
    closeFd(fd);
  }
}

/** Opens, configures, loads and attaches a user's object. On any failure nothing stays loaded. */
export function loadUserObject(path: string, options: LoadOptions = {}): UserObject {
  const opts = { ...options, mode: options.mode ?? bestAttachMode(), openTarget: options.openTarget ?? ((t: string) => openTarget(t)) };
  const bytes = readObjectFile(path);
  // What libbpf 1.1 crashes on (struct_ops maps, references past their sections) never reaches it.
  checkBpfObject(bytes, path);
  const pinDir = opts.pinDir ? resolvePath(opts.pinDir) : undefined;
  if (pinDir) preparePinDir(pinDir, opts.onNote);

  let obj: BpfObject;
  try {
    // libbpf names an object after its file, up to the first dot; its data maps are named after that.
    obj = BpfObject.fromBytes(bytes, basename(path).split(".")[0] || "obj", path);
  } catch (e) {
    if (pinDir) removeEmptyDir(pinDir);
    throw e;
  }
  const targets: OpenTarget[] = [];
  const attachments: Attachment[] = [];
  try {
    const programs = obj.programs();
    const { specs, unattached } = planAttachments(programs, opts.attach ?? []);
    for (const s of opts.set ?? []) setGlobal(obj, s);
    routePinnedMaps(obj, pinDir, opts.onNote);

    // A uprobe_multi link only takes programs loaded for it: decide per program now.
    for (const p of programs) {
      const kinds = new Set(specs.filter((s) => s.prog === p.name).map((s) => s.kind));
      if (opts.mode === "multi" && (kinds.has("uprobe") || kinds.has("uretprobe"))) obj.setExpectedAttachType(p, BPF_ATTACH.TRACE_UPROBE_MULTI);
    }
    obj.load();

    // One link per (program, file, entry|return), with every function of that file in it.
    const groups = new Map<string, AttachSpec[]>();
    for (const s of specs) {
      const k = s.kind === "tracepoint" ? `${s.prog}\0tp\0${s.target}/${s.func}` : `${s.prog}\0${s.kind}\0${s.target}`;
      groups.set(k, [...(groups.get(k) ?? []), s]);
    }
    const opened = new Map<string, OpenTarget>();
    for (const group of groups.values()) {
      const first = group[0]!;
      const progFd = obj.progFd(first.prog);
      if (first.kind === "tracepoint") {
        const link = attachTracepoint(progFd, first.target, first.func, opts.onNote);
        attachments.push({ prog: first.prog, kind: "tracepoint", target: `${first.target}:${first.func}`, func: first.func, offsets: [], from: first.from, link });
        continue;
      }
      let t = opened.get(first.target);
      if (!t) {
        t = opts.openTarget(first.target);
        targets.push(t);
        opened.set(first.target, t);
      }
      const funcs = [...new Set(group.map((s) => s.func))];
      const isReturn = first.kind === "uretprobe";
      const plan = planProbes(t.elf, funcs, { ret: isReturn });
      const points = isReturn ? returnPoints(plan) : entryPoints(plan);
      if (isReturn && !plan.retprobe) opts.onNote?.(`${first.prog}: ${plan.notes.join("; ")}`);
      let link: UprobeLink;
      try {
        link = attachUprobe(progFd, t.kernelPath, points, { retprobe: isReturn && plan.retprobe, pid: opts.pid, mode: opts.mode, displayPath: t.display });
      } catch (e) {
        if (e instanceof AttachError) throw nameCulprit(e, t.elf, t.display, plan.functions.map((f) => f.name));
        throw e;
      }
      attachments.push({
        prog: first.prog,
        kind: first.kind,
        target: t.display,
        func: plan.functions.map((f) => f.name).join(","),
        offsets: points.map((p) => p.offset),
        atReturns: isReturn && !plan.retprobe,
        from: first.from,
        link,
      });
    }
    const uo = new UserObject(path, obj, attachments, unattached, opts.mode, targets);
    if (pinDir) {
      try {
        uo.pinAll(pinDir);
      } catch (e) {
        uo.close();
        throw e;
      }
    }
    return uo;
  } catch (e) {
    for (const a of attachments.reverse()) a.link.close();
    for (const t of targets) t.close();
    obj.close();
    if (pinDir) unpinDir(pinDir, { quiet: true });
    throw e;
  }
}

const UNSUPPORTED_SECTIONS: [RegExp, string][] = [
  [/^k(ret)?probe(\.multi)?(\/|$)/, "kprobes are not supported: probe attaches uprobes, uretprobes and tracepoints"],
  [/^(fentry|fexit|fmod_ret|lsm|iter|struct_ops|xdp|tc|cgroup|sk_|socket|raw_tp|raw_tracepoint|tp_btf|usdt|perf_event|syscall)/, "only uprobe, uretprobe and tracepoint programs are attached"],
];

/** Matches explicit specs and SEC names to the object's programs; the rest are loaded only, with the reason. */
function planAttachments(programs: BpfProgram[], explicit: AttachSpec[]): { specs: AttachSpec[]; unattached: { prog: string; reason: string }[] } {
  const names = programs.map((p) => p.name);
  for (const s of explicit) {
    if (!names.includes(s.prog)) throw new ObjectPlanError(`the object has no program '${s.prog}'`, `its programs: ${names.join(", ")}`);
  }
  // A uprobe program is a kprobe-type program; a tracepoint program is its own type: the kernel
  // would only say EINVAL at attach time.
  for (const s of explicit) {
    const p = programs.find((x) => x.name === s.prog)!;
    const type = libbpf().bpf_program__type(p.handle);
    const want = s.kind === "tracepoint" ? BPF_PROG_TYPE.TRACEPOINT : BPF_PROG_TYPE.KPROBE;
    if (type !== want) {
      throw new ObjectPlanError(
        `program '${s.prog}' (SEC("${p.section}")) is not a ${s.kind === "tracepoint" ? "tracepoint" : "uprobe"} program`,
        s.kind === "tracepoint" ? 'tracepoint programs have SEC("tracepoint/...") or SEC("tp/...")' : 'uprobe programs have SEC("uprobe...") or SEC("uretprobe...")',
      );
    }
  }
  const specs = [...explicit];
  const unattached: { prog: string; reason: string }[] = [];
  for (const p of programs) {
    if (explicit.some((s) => s.prog === p.name)) continue;
    const sec = parseSection(p.name, p.section);
    if (sec && !("bare" in sec)) specs.push(sec);
    else if (sec) unattached.push({ prog: p.name, reason: `SEC("${p.section}") does not say where: give an attachment for it` });
    else {
      const why = UNSUPPORTED_SECTIONS.find(([re]) => re.test(p.section));
      unattached.push({ prog: p.name, reason: why ? `SEC("${p.section}"): ${why[1]}` : `SEC("${p.section}") is not a kind probe attaches` });
    }
  }
  return { specs, unattached };
}

/**
 * Maps marked LIBBPF_PIN_BY_NAME: with a pin dir they go there; otherwise libbpf's default
 * (/sys/fs/bpf/NAME), which needs a bpf filesystem there.
 */
function routePinnedMaps(obj: BpfObject, pinDir: string | undefined, onNote?: (m: string) => void): void {
  const L = libbpf();
  for (const m of obj.maps()) {
    const p = L.bpf_map__pin_path(m.handle);
    if (!p) continue;
    if (pinDir) {
      const r = L.bpf_map__set_pin_path(m.handle, cstr(join(pinDir, bpffsName(m.name))));
      if (r < 0) throw new OsError("bpf_map__set_pin_path", -r, m.name);
    } else {
      const path = new CString(p as Pointer).toString();
      ensureBpffs(dirname(path), onNote);
      // libbpf's rule, as bpftool follows it: the object asks for the map to be shared by name.
      onNote?.(`map ${m.name} is pinned at ${path} (the object marks it LIBBPF_PIN_BY_NAME): it outlives this run, and the next load of the object reuses it`);
    }
  }
}
