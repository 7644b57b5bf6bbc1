// A user's own libbpf object (`probe load app.bpf.o`): open it, set its globals, decide how each
// program attaches (before load: uprobe_multi programs need their expected attach type), load it,
// attach uprobes/uretprobes/tracepoints, and optionally pin everything so it outlives us.
// Policy (which target a name means, what to print) stays with the caller.
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, statSync, unlinkSync, writeFileSync } from "node:fs";
import { dirname, join, resolve as resolvePath } from "node:path";
import { CString, type Pointer } from "bun:ffi";
import { libbpf } from "./ffi/libbpf.ts";
import { closeFd, cstr, errno, mount, OsError, syscallErr, SYS, ptr } from "./ffi/libc.ts";
import { BPF_ATTACH, linkCreatePerfEvent } from "./bpf-syscall.ts";
import { BpfObject, LoadError, type BpfProgram } from "./object.ts";
import { LinkSet } from "./link.ts";
import { Btf, BTF_KIND, type BtfType } from "./btf.ts";
import { resolveFunction } from "./symbols.ts";
import { attachUprobe, defaultAttachMode, type AttachMode, type UprobeLink } from "./uprobe.ts";
import { OpenTarget } from "./target.ts";
import { bpffsMounts, pinnedObject } from "./kernel-view.ts";

export class UserObjectError extends Error {
  constructor(
    message: string,
    readonly hint?: string,
    /** True when the input was wrong (a bad spec, an unknown name): the CLI's usage error. */
    readonly usage = false,
  ) {
    super(message);
  }
}

export type AttachKind = "uprobe" | "uretprobe" | "tracepoint";

export interface AttachSpec {
  prog: string;
  kind: AttachKind;
  /** uprobes: a path or name for the caller's resolver; tracepoints: the category. */
  target: string;
  /** uprobes: function (`SSL_read`, `sym+0x10`, `0x1234`); tracepoints: the event name. */
  func: string;
  /** Where the spec came from, for messages. */
  from: "--attach" | "SEC";
}

/** `PROG=KIND:TARGET:FUNCTION` (`entry_ssl_read=uprobe:libssl:SSL_read`, `tp=tracepoint:sched:sched_switch`). */
export function parseAttachSpec(text: string): AttachSpec {
  const eq = text.indexOf("=");
  const bad = () =>
    new UserObjectError(`bad --attach '${text}'`, "write PROG=uprobe:TARGET:FUNCTION, PROG=uretprobe:TARGET:FUNCTION or PROG=tracepoint:CATEGORY:NAME", true);
  if (eq <= 0) throw bad();
  const prog = text.slice(0, eq);
  const parts = text.slice(eq + 1).split(":");
  if (parts.length < 3) throw bad();
  const kind = parts[0] === "tp" ? "tracepoint" : parts[0];
  if (kind !== "uprobe" && kind !== "uretprobe" && kind !== "tracepoint") throw bad();
  const func = parts[parts.length - 1]!;
  const target = parts.slice(1, -1).join(":");
  if (!target || !func) throw bad();
  return { prog, kind, target, func, from: "--attach" };
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

export interface GlobalSetting {
  name: string;
  value: string;
}

export function parseSetting(text: string): GlobalSetting {
  const eq = text.indexOf("=");
  if (eq <= 0) throw new UserObjectError(`bad --set '${text}'`, "write NAME=VALUE, NAME being a global variable of the object", true);
  return { name: text.slice(0, eq), value: text.slice(eq + 1) };
}

/** A target file ready for uprobes; the caller's resolver decides what a name means (host, --pid, --container). */
export type TargetOpener = (target: string) => OpenTarget;

/** Default resolver: the target is a path on the host. */
export const openHostPath: TargetOpener = (target) => {
  if (!existsSync(target)) throw new UserObjectError(`${target}: file not found`, "give a path, or a library name through the CLI", true);
  return OpenTarget.open(target, target);
};

export interface LoadOptions {
  /** Explicit attachments; programs without one attach from their SEC name, if it says where. */
  attach?: AttachSpec[];
  set?: GlobalSetting[];
  /** Pin programs, links and maps here (on a bpf filesystem) so they outlive this process. */
  pinDir?: string;
  /** Host PID to restrict uprobes to (programs should still filter by tgid for returns). */
  pid?: number;
  openTarget?: TargetOpener;
  mode?: AttachMode;
  /** Told about side effects worth a line (mounting tracefs/bpffs). */
  onNote?: (message: string) => void;
}

export interface Attachment {
  prog: string;
  kind: AttachKind;
  /** uprobes: as the user knows the file; tracepoints: CAT/NAME. */
  target: string;
  func: string;
  /** uprobes: file offsets of each function. */
  offsets: number[];
  from: "--attach" | "SEC";
  link: UprobeLink | TracepointLink;
}

/** A perf-event tracepoint with a BPF link on it. */
export class TracepointLink extends LinkSet {
  constructor(
    readonly name: string,
    linkFds: number[],
    perfFds: number[],
  ) {
    super(linkFds, perfFds);
  }
}

/** Loaded and attached; owns the object, its links and the target fds; close() releases all (pins stay). */
export class UserObject {
  private closed = false;
  pinned: string[] = [];

  constructor(
    readonly path: string,
    readonly obj: BpfObject,
    readonly attachments: Attachment[],
    readonly unattached: string[],
    readonly mode: AttachMode,
    private readonly targets: OpenTarget[],
  ) {}

  /** The object's maps: name, fd, whether libbpf made it for a data section. */
  maps(): { name: string; fd: number; internal: boolean }[] {
    return this.obj.maps().map((m) => ({
      name: m.name,
      fd: this.obj.mapFd(m),
      internal: libbpf().bpf_map__is_internal(m.handle) !== 0,
    }));
  }

  mapFd(name: string): number {
    const m = this.obj.maps().find((x) => x.name === name);
    if (!m) throw new UserObjectError(`${this.path} has no map '${name}'`, `its maps: ${this.obj.maps().map((x) => x.name).join(", ")}`, true);
    return this.obj.mapFd(m);
  }

  /**
   * Pins maps (`DIR/<map>`), programs (`DIR/progs/<prog>`) and links (`DIR/links/<prog>.<n>`):
   * the attachment then lives until `unpinDir(DIR)`. Maps libbpf already pinned by name stay where they are.
   */
  pinAll(dir: string): string[] {
    const L = libbpf();
    const done: string[] = [];
    const pin = (fd: number, path: string) => {
      mkdirSync(dirname(path), { recursive: true });
      const r = L.bpf_obj_pin(fd, cstr(path));
      if (r < 0) throw new OsError("bpf(OBJ_PIN)", -r || errno(), path);
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
        const fd = libbpf().bpf_program__fd(p.handle);
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
      for (const p of done.reverse()) tryUnlink(p);
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

/** bpffs refuses names with dots (`.rodata`, `app.bss`). */
function bpffsName(name: string): string {
  return name.replace(/[^A-Za-z0-9_-]/g, "_");
}

function tryUnlink(p: string): void {
  try {
    unlinkSync(p);
  } catch {
    // already gone
  }
}

/** Opens, configures, loads and attaches a user's object. On any failure nothing stays loaded. */
export function loadUserObject(path: string, opts: LoadOptions = {}): UserObject {
  if (!existsSync(path)) throw new UserObjectError(`${path}: no such file`, "give the .o file clang produced (clang -O2 -g -target bpf -c app.bpf.c)", true);
  const mode = opts.mode ?? defaultAttachMode();
  const openTarget = opts.openTarget ?? openHostPath;
  const pinDir = opts.pinDir ? resolvePath(opts.pinDir) : undefined;
  if (pinDir) preparePinDir(pinDir, opts.onNote);

  let obj: BpfObject;
  try {
    obj = BpfObject.fromFile(path);
  } catch (e) {
    if (pinDir) removeEmptyDir(pinDir);
    throw e;
  }
  const targets: OpenTarget[] = [];
  const attachments: Attachment[] = [];
  try {
    const programs = obj.programs();
    const specs = planAttachments(programs, opts.attach ?? []);
    for (const s of opts.set ?? []) setGlobal(obj, s);
    routePinnedMaps(obj, pinDir, opts.onNote);

    // A uprobe_multi link only takes programs loaded for it: decide per program now.
    for (const p of programs) {
      const kinds = new Set(specs.filter((s) => s.prog === p.name).map((s) => s.kind));
      if (mode === "multi" && (kinds.has("uprobe") || kinds.has("uretprobe"))) obj.setExpectedAttachType(p, BPF_ATTACH.TRACE_UPROBE_MULTI);
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
        attachments.push({ prog: first.prog, kind: "tracepoint", target: `${first.target}/${first.func}`, func: first.func, offsets: [], from: first.from, link });
        continue;
      }
      let t = opened.get(first.target);
      if (!t) {
        t = openTarget(first.target);
        targets.push(t);
        opened.set(first.target, t);
      }
      const funcs = [...new Set(group.map((s) => s.func))];
      const offsets = funcs.map((f) => resolveFunction(t!.elf, f).offset);
      const link = attachUprobe(progFd, t.kernelPath, offsets.map((offset, i) => ({ offset, cookie: BigInt(i) })), {
        retprobe: first.kind === "uretprobe",
        pid: opts.pid,
        mode,
        displayPath: t.display,
      });
      attachments.push({ prog: first.prog, kind: first.kind, target: t.display, func: funcs.join(","), offsets, from: first.from, link });
    }
    const attachedProgs = new Set(specs.map((s) => s.prog));
    const uo = new UserObject(path, obj, attachments, programs.map((p) => p.name).filter((n) => !attachedProgs.has(n)), mode, targets);
    if (pinDir) {
      try {
        uo.pinAll(pinDir);
      } catch (e) {
        uo.close();
        unpinDir(pinDir);
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

/** Matches explicit --attach specs and SEC names to the object's programs. */
function planAttachments(programs: BpfProgram[], explicit: AttachSpec[]): AttachSpec[] {
  const names = programs.map((p) => p.name);
  for (const s of explicit) {
    if (!names.includes(s.prog)) {
      throw new UserObjectError(`--attach ${s.prog}=...: the object has no program '${s.prog}'`, `its programs: ${names.join(", ")}`, true);
    }
  }
  // A uprobe program is a kprobe-type program; a tracepoint program is its own type: the kernel
  // would only say EINVAL at attach time.
  const PROG_KPROBE = 2;
  const PROG_TRACEPOINT = 5;
  for (const s of explicit) {
    const type = libbpf().bpf_program__type(programs.find((p) => p.name === s.prog)!.handle);
    const want = s.kind === "tracepoint" ? PROG_TRACEPOINT : PROG_KPROBE;
    if (type !== want) {
      const sec = programs.find((p) => p.name === s.prog)!.section;
      throw new UserObjectError(
        `--attach ${s.prog}=${s.kind}:...: program '${s.prog}' (SEC("${sec}")) is not a ${s.kind === "tracepoint" ? "tracepoint" : "uprobe"} program`,
        s.kind === "tracepoint" ? 'tracepoint programs have SEC("tracepoint/...") or SEC("tp/...")' : 'uprobe programs have SEC("uprobe...") or SEC("uretprobe...")',
        true,
      );
    }
  }
  const out = [...explicit];
  for (const p of programs) {
    if (explicit.some((s) => s.prog === p.name)) continue;
    const sec = parseSection(p.name, p.section);
    if (sec && !("bare" in sec)) out.push(sec);
  }
  return out;
}

/** Sets a global variable of .rodata/.bss/.data from text, typed by the object's BTF. */
function setGlobal(obj: BpfObject, s: GlobalSetting): void {
  const btfPtr = obj.btfHandle();
  if (!btfPtr) throw new UserObjectError(`--set ${s.name}: ${obj.name} has no BTF`, "compile it with -g", true);
  const btf = Btf.fromLibbpf(btfPtr as Pointer);
  const known: string[] = [];
  for (const sec of btf.types) {
    if (!sec || sec.kind !== BTF_KIND.DATASEC || !/^\.(rodata|bss|data)/.test(sec.name)) continue;
    for (const v of sec.vars!) {
      const varType = btf.type(v.type);
      if (!varType || varType.kind !== BTF_KIND.VAR) continue;
      known.push(varType.name);
      if (varType.name !== s.name) continue;
      const bytes = encodeValue(btf, varType.sizeOrType, v.size, s);
      obj.setGlobalData(sec.name, v.offset, bytes);
      return;
    }
  }
  throw new UserObjectError(
    `--set ${s.name}: no global variable '${s.name}' in ${obj.name}`,
    known.length ? `its globals: ${known.join(", ")}` : "the object has no .rodata/.bss/.data globals",
    true,
  );
}

function encodeValue(btf: Btf, typeId: number, size: number, s: GlobalSetting): Uint8Array {
  const t = btf.resolve(typeId) as BtfType | undefined;
  const out = new Uint8Array(size);
  const bad = (why: string) => new UserObjectError(`--set ${s.name}=${s.value}: ${why}`, `${s.name} is ${btf.typeName(typeId)}`, true);
  if (!t) throw bad("unknown type");
  if (t.kind === BTF_KIND.INT || t.kind === BTF_KIND.ENUM || t.kind === BTF_KIND.ENUM64) {
    let v: bigint;
    const text = s.value.trim();
    const e = t.enumValues?.find((x) => x.name === text);
    if (e) v = e.value;
    else if (text === "true" || text === "false") v = text === "true" ? 1n : 0n;
    else if (/^-?(0x[0-9a-f]+|0o[0-7]+|0b[01]+|\d+)$/i.test(text)) v = text.startsWith("-") ? -BigInt(text.slice(1)) : BigInt(text);
    else throw bad("not a number");
    const bits = BigInt(t.sizeOrType * 8);
    const signed = t.kind === BTF_KIND.INT ? (t.int!.encoding & 1) !== 0 : t.kflag;
    const min = signed ? -(1n << (bits - 1n)) : 0n;
    const max = signed ? (1n << (bits - 1n)) - 1n : (1n << bits) - 1n;
    if (v < min || v > max) throw bad(`out of range for ${t.sizeOrType * 8}-bit ${signed ? "signed" : "unsigned"} integer`);
    let u = BigInt.asUintN(Number(bits), v);
    for (let i = 0; i < t.sizeOrType && i < size; i++, u >>= 8n) out[i] = Number(u & 0xffn);
    return out;
  }
  if (t.kind === BTF_KIND.ARRAY) {
    const elem = btf.resolve(t.array!.type);
    if (elem?.kind === BTF_KIND.INT && elem.sizeOrType === 1) {
      const bytes = new TextEncoder().encode(s.value);
      if (bytes.length > size) throw bad(`longer than ${size} bytes`);
      out.set(bytes);
      return out;
    }
  }
  throw bad("only integers, enums, booleans and char arrays can be set");
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
      ensureBpffs(dirname(new CString(p as Pointer).toString()), onNote);
    }
  }
}

/** Makes sure `dir` is on a bpf filesystem, mounting one at /sys/fs/bpf if that is where it goes. */
export function ensureBpffs(dir: string, onNote?: (m: string) => void): void {
  const abs = resolvePath(dir);
  const under = (m: string) => abs === m || abs.startsWith(m.endsWith("/") ? m : m + "/");
  if (bpffsMounts().some(under)) return;
  if (under("/sys/fs/bpf")) {
    mount("bpf", "/sys/fs/bpf", "bpf");
    onNote?.("mounted a bpf filesystem at /sys/fs/bpf");
    return;
  }
  throw new UserObjectError(`${dir} is not on a bpf filesystem`, "pin under /sys/fs/bpf (or mount -t bpf bpf DIR)", true);
}

function preparePinDir(dir: string, onNote?: (m: string) => void): void {
  ensureBpffs(dir, onNote);
  if (existsSync(dir)) {
    if (!statSync(dir).isDirectory()) throw new UserObjectError(`${dir} exists and is not a directory`, "choose a new pin directory", true);
    if (readdirSync(dir).length > 0) {
      throw new UserObjectError(`${dir} already holds a load`, `run 'probe unload ${dir}' first, or pin somewhere else`, true);
    }
  }
  mkdirSync(dir, { recursive: true });
}

function removeEmptyDir(dir: string): void {
  try {
    rmdirSync(dir);
  } catch {
    // not empty or gone
  }
}

export interface Unpinned {
  path: string;
  kind: "prog" | "map" | "link";
  id: number;
}

/**
 * Removes every pinned BPF object under `dir` and the directories, `dir` included. Refuses a
 * directory that is not on a bpf filesystem or is a mount point; leaves anything that is not a
 * BPF object (and so the directory holding it).
 */
export function unpinDir(dir: string, opts: { quiet?: boolean } = {}): Unpinned[] {
  const abs = resolvePath(dir);
  const mounts = bpffsMounts();
  if (mounts.includes(abs)) throw new UserObjectError(`${dir} is a bpf filesystem's root`, "give the directory a load was pinned into", true);
  if (!mounts.some((m) => abs.startsWith(m.endsWith("/") ? m : m + "/"))) {
    if (opts.quiet) return [];
    throw new UserObjectError(`${dir} is not on a bpf filesystem`, "give the directory used with 'probe load --pin'", true);
  }
  if (!existsSync(abs)) {
    if (opts.quiet) return [];
    throw new UserObjectError(`${dir} does not exist`, "nothing is pinned there", true);
  }
  const found: Unpinned[] = [];
  const dirs: string[] = [];
  const walk = (d: string) => {
    for (const n of readdirSync(d)) {
      const p = join(d, n);
      if (statSync(p).isDirectory()) {
        walk(p);
        dirs.push(p);
        continue;
      }
      const o = pinnedObject(p);
      if (o) found.push({ path: p, ...o });
    }
  };
  walk(abs);
  // Links first: the probes stop firing before their programs and maps go.
  const order = { link: 0, prog: 1, map: 2 };
  found.sort((a, b) => order[a.kind] - order[b.kind]);
  for (const f of found) unlinkSync(f.path);
  for (const d of dirs) removeEmptyDir(d);
  removeEmptyDir(abs);
  return found;
}

// ---- tracepoints and tracefs ----

/** Where tracefs is mounted; mounts it at /sys/kernel/tracing when it is nowhere. */
export function tracefsRoot(onNote?: (m: string) => void): string {
  let mounts: string[][] = [];
  try {
    mounts = readFileSync("/proc/self/mounts", "utf8").split("\n").map((l) => l.split(" "));
  } catch {
    // no procfs: try the usual place anyway
  }
  const tfs = mounts.find((f) => f[2] === "tracefs");
  if (tfs) return tfs[1]!;
  const dbg = mounts.find((f) => f[2] === "debugfs");
  if (dbg && existsSync(`${dbg[1]}/tracing/trace_pipe`)) return `${dbg[1]}/tracing`;
  try {
    mount("tracefs", "/sys/kernel/tracing", "tracefs");
  } catch (e) {
    throw new UserObjectError(`tracefs is not mounted and mounting it failed: ${(e as Error).message}`, "mount -t tracefs tracefs /sys/kernel/tracing");
  }
  onNote?.("mounted tracefs at /sys/kernel/tracing");
  return "/sys/kernel/tracing";
}

const PERF_TYPE_TRACEPOINT = 2;
const PERF_FLAG_FD_CLOEXEC = 8;

/** A BPF link on the perf event of tracepoint CATEGORY/NAME, for every CPU and process. */
export function attachTracepoint(progFd: number, category: string, name: string, onNote?: (m: string) => void): TracepointLink {
  const root = tracefsRoot(onNote);
  const idPath = `${root}/events/${category}/${name}/id`;
  let id: number;
  try {
    id = Number(readFileSync(idPath, "utf8").trim());
  } catch {
    throw new UserObjectError(`no tracepoint ${category}/${name} (${idPath})`, `see ${root}/available_events`, true);
  }
  const attr = new Uint8Array(128);
  const v = new DataView(attr.buffer);
  v.setUint32(0, PERF_TYPE_TRACEPOINT, true); // type
  v.setUint32(4, 128, true); // size
  v.setBigUint64(8, BigInt(id), true); // config: the tracepoint id
  // Tracepoint events for BPF: any process (pid -1) with cpu 0 covers every CPU.
  const pfd = syscallErr(SYS.perf_event_open, ptr(attr), BigInt.asUintN(64, -1n), 0, BigInt.asUintN(64, -1n), PERF_FLAG_FD_CLOEXEC);
  if (pfd < 0) throw new OsError("perf_event_open(tracepoint)", -pfd, `${category}/${name}`);
  try {
    const linkFd = linkCreatePerfEvent(progFd, pfd, 0n);
    return new TracepointLink(`${category}/${name}`, [linkFd], [pfd]);
  } catch (e) {
    closeFd(pfd);
    throw e;
  }
}

// ---- the verifier's log ----

/** The part of a libbpf/verifier log that says why a load failed: the verifier's last lines. */
export function verifierSummary(log: string, lines = 20): string {
  const all = log.split("\n");
  const begin = all.findIndex((l) => l.includes("-- BEGIN PROG LOAD LOG --"));
  // No verifier log (the object did not open, a map failed): libbpf's chatter is no summary.
  if (begin < 0) return "";
  const end = all.findIndex((l, i) => i > begin && l.includes("-- END PROG LOAD LOG --"));
  let body = all.slice(begin + 1, end > begin ? end : undefined);
  body = body.filter((l) => l.trim() !== "" && !/^processed \d+ insns/.test(l) && !/^verification time/.test(l));
  const tail = body.slice(-lines);
  const failed = all.find((l) => /BPF program load failed|failed to load/.test(l));
  return [failed?.trim(), ...tail].filter(Boolean).join("\n");
}

export { LoadError };

// ---- bpf_printk ----

/** Format strings the object's programs can print: C strings in its .rodata* sections, as regexps. */
export function printkFormats(objectPath: string): RegExp[] {
  const out: RegExp[] = [];
  for (const bytes of rodataSections(readFileSync(objectPath))) {
    {
      let start = 0;
      for (let i = 0; i < bytes.length; i++) {
        if (bytes[i] !== 0) continue;
        if (i - start >= 2) {
          const s = new TextDecoder().decode(bytes.subarray(start, i));
          if (/^[\x20-\x7e\t\n]+$/.test(s)) out.push(formatToRegExp(s));
        }
        start = i + 1;
      }
    }
  }
  return out;
}

/** The .rodata* sections of a BPF ELF object (lib/elf.ts reads x86-64 ELF only; this is EM_BPF). */
function rodataSections(elf: Uint8Array): Uint8Array[] {
  const v = new DataView(elf.buffer, elf.byteOffset, elf.byteLength);
  if (elf.length < 64 || v.getUint32(0, false) !== 0x7f454c46 || elf[4] !== 2 || elf[5] !== 1) return [];
  const shoff = Number(v.getBigUint64(40, true));
  const shentsize = v.getUint16(58, true);
  const shnum = v.getUint16(60, true);
  const shstrndx = v.getUint16(62, true);
  const sec = (i: number) => {
    const o = shoff + i * shentsize;
    return { name: v.getUint32(o, true), type: v.getUint32(o + 4, true), offset: Number(v.getBigUint64(o + 24, true)), size: Number(v.getBigUint64(o + 32, true)) };
  };
  if (shoff + shnum * shentsize > elf.length || shstrndx >= shnum) return [];
  const strtab = sec(shstrndx);
  const name = (off: number) => {
    const start = strtab.offset + off;
    const end = elf.indexOf(0, start);
    return new TextDecoder().decode(elf.subarray(start, end < 0 ? start : end));
  };
  const out: Uint8Array[] = [];
  for (let i = 1; i < shnum; i++) {
    const s = sec(i);
    const SHT_NOBITS = 8;
    if (s.type !== SHT_NOBITS && name(s.name).startsWith(".rodata")) out.push(elf.subarray(s.offset, s.offset + s.size));
  }
  return out;
}

function formatToRegExp(fmt: string): RegExp {
  let re = "";
  const spec = /%([-+ #0]*\d*(?:\.\d+)?)(hh|h|ll|l|z)?([diuxXpscoK%]|p[KSsBbIi]?[46]?)/y;
  for (let i = 0; i < fmt.length; ) {
    if (fmt[i] === "%") {
      spec.lastIndex = i;
      const m = spec.exec(fmt);
      if (m) {
        const conv = m[3]!;
        re += conv === "%" ? "%" : conv === "s" || conv.startsWith("p") ? "[\\s\\S]*?" : conv === "c" ? "[\\s\\S]" : "\\s*[-+]?(?:0x)?[0-9a-fA-F]*";
        i = spec.lastIndex;
        continue;
      }
    }
    re += fmt[i]!.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
    i++;
  }
  return new RegExp(`^${re.replace(/\\n$|\n$/, "")}$`);
}

export interface PrintkLine {
  comm: string;
  pid: number;
  cpu: number;
  timestamp: number;
  message: string;
}

/** Parses a trace_pipe line: `  curl-6679  [007] ...11  402.234559: bpf_trace_printk: msg`. */
export function parseTraceLine(line: string): PrintkLine | undefined {
  const m = /^\s*(.*)-(\d+)\s+\[(\d+)\]\s+\S+\s+([\d.]+):\s+bpf_trace_printk:\s?(.*)$/.exec(line);
  if (!m) return undefined;
  return { comm: m[1]!, pid: Number(m[2]), cpu: Number(m[3]), timestamp: Number(m[4]), message: m[5]! };
}

/**
 * Reads bpf_printk output from tracefs trace_pipe in a child process (the read blocks), keeping
 * the lines that match one of our object's format strings (and, with pids, only those processes).
 * trace_pipe is consumed: another reader at the same time takes lines away from us.
 */
export class PrintkReader {
  private proc: ReturnType<typeof Bun.spawn> | undefined;
  private done: Promise<void> | undefined;

  constructor(
    private readonly formats: RegExp[],
    private readonly pids?: Set<number>,
  ) {}

  matches(l: PrintkLine): boolean {
    if (this.pids && this.pids.size > 0 && !this.pids.has(l.pid)) return false;
    return this.formats.some((f) => f.test(l.message));
  }

  start(onLine: (l: PrintkLine) => void, onNote?: (m: string) => void): void {
    const root = tracefsRoot(onNote);
    const proc = Bun.spawn(["cat", `${root}/trace_pipe`], { stdout: "pipe", stderr: "ignore", stdin: "ignore" });
    this.proc = proc;
    // The ring buffer may hold lines nobody consumed yet, from before we started: a marker written
    // now through trace_marker sorts after all of them, so everything before it is skipped.
    const marker = `probe-printk-start-${process.pid}-${Date.now()}`;
    let seenMarker = false;
    try {
      writeFileSync(`${root}/trace_marker`, marker);
    } catch {
      seenMarker = true; // no trace_marker: old lines may show
    }
    const reader = (proc.stdout as ReadableStream<Uint8Array>).getReader();
    const dec = new TextDecoder();
    this.done = (async () => {
      let buf = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += dec.decode(value, { stream: true });
        let nl: number;
        while ((nl = buf.indexOf("\n")) >= 0) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          if (!seenMarker) {
            seenMarker = line.includes(marker);
            continue;
          }
          const parsed = parseTraceLine(line);
          if (parsed && this.matches(parsed)) onLine(parsed);
        }
      }
    })().catch(() => {});
  }

  async stop(): Promise<void> {
    this.proc?.kill();
    await this.done;
    this.proc = undefined;
  }
}
