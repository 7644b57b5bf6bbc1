// A loaded BPF object (libbpf's bpf_object): owns its programs and maps and closes them together.
import { ptr, toArrayBuffer, type Pointer } from "bun:ffi";
import { cstr, errno } from "./ffi/libc.ts";
import { libbpf, captureLibbpfLog, takeLibbpfLog, describeLibbpfError } from "./ffi/libbpf.ts";
import { ProbeError } from "./errors.ts";

export class LoadError extends ProbeError {
  constructor(
    message: string,
    /** The verifier's (or libbpf's) log, when there is one. */
    readonly log: string,
  ) {
    super(message);
  }
}

export interface BpfProgram {
  name: string;
  section: string;
  handle: Pointer;
}

export interface BpfMapHandle {
  name: string;
  handle: Pointer;
}

const OPEN_OPTS_SIZE = 80; // sizeof(struct bpf_object_open_opts) in libbpf 1.1

export class BpfObject {
  private closed = false;
  private loaded = false;

  private constructor(
    private readonly obj: Pointer,
    readonly name: string,
    // libbpf reads the ELF image until load finishes: keep it alive as long as the object.
    private readonly image: Uint8Array | undefined,
    // libbpf keeps pointers to these strings (the name, the BTF path) until it is closed.
    private readonly strings: Uint8Array[],
  ) {}

  /**
   * Opens an object from memory: probe's embedded programs, or a user's file read by probe (so a
   * FIFO or a huge file never reaches libbpf). `name` is libbpf's object name (its data maps are
   * named after it); `display` names it in messages.
   */
  static fromBytes(image: Uint8Array, name: string, display = name, btfCustomPath?: string): BpfObject {
    captureLibbpfLog();
    const nameBuf = cstr(name);
    const btfPath = btfCustomPath ? cstr(btfCustomPath) : undefined;
    const opts = new ArrayBuffer(OPEN_OPTS_SIZE);
    const v = new DataView(opts);
    v.setBigUint64(0, BigInt(OPEN_OPTS_SIZE), true); // sz
    v.setBigUint64(8, BigInt(ptr(nameBuf)), true); // object_name
    // btf_custom_path: the kernel's BTF for CO-RE, where libbpf cannot find it itself (read at load).
    if (btfPath) v.setBigUint64(48, BigInt(ptr(btfPath)), true);
    const obj = libbpf().bpf_object__open_mem(image, BigInt(image.length), new Uint8Array(opts)) as Pointer | null;
    if (!obj) throw new LoadError(`cannot open BPF object ${display}: ${describeLibbpfError(errno())}`, takeLibbpfLog());
    return new BpfObject(obj, display, image, btfPath ? [nameBuf, btfPath] : [nameBuf]);
  }

  programs(): BpfProgram[] {
    const out: BpfProgram[] = [];
    let p: Pointer | null = null;
    while ((p = libbpf().bpf_object__next_program(this.obj, p) as Pointer | null)) {
      out.push({
        name: String(libbpf().bpf_program__name(p)),
        section: String(libbpf().bpf_program__section_name(p)),
        handle: p,
      });
    }
    return out;
  }

  program(name: string): BpfProgram {
    const prog = this.programs().find((p) => p.name === name);
    if (!prog) throw new Error(`BPF object ${this.name} has no program ${name}`);
    return prog;
  }

  maps(): BpfMapHandle[] {
    const out: BpfMapHandle[] = [];
    let m: Pointer | null = null;
    while ((m = libbpf().bpf_object__next_map(this.obj, m) as Pointer | null)) {
      out.push({ name: String(libbpf().bpf_map__name(m)), handle: m });
    }
    return out;
  }

  map(name: string): BpfMapHandle {
    const m = this.maps().find((x) => x.name === name || x.name.endsWith(name));
    if (!m) throw new Error(`BPF object ${this.name} has no map ${name}`);
    return m;
  }

  /** Writes bytes into a global data section (.rodata/.bss/.data) before load. */
  setGlobalData(section: string, offset: number, bytes: Uint8Array): void {
    if (this.loaded) throw new Error("global data can only be set before load");
    const m = this.map(section);
    const size = new BigUint64Array(1);
    const p = libbpf().bpf_map__initial_value(m.handle, size);
    if (!p || offset + bytes.length > Number(size[0])) throw new Error(`${section} of ${this.name} has no room for ${bytes.length} bytes at ${offset}`);
    new Uint8Array(toArrayBuffer(p, 0, Number(size[0]))).set(bytes, offset);
  }

  /** A data-section map's initial contents (what .rodata/.data hold before load). */
  initialValue(m: BpfMapHandle): Uint8Array | undefined {
    const size = new BigUint64Array(1);
    const p = libbpf().bpf_map__initial_value(m.handle, size);
    return p ? new Uint8Array(toArrayBuffer(p, 0, Number(size[0]))) : undefined;
  }

  /** libbpf's `struct btf *` of the object (owned by the object), or null without BTF. */
  btfHandle(): Pointer | null {
    return libbpf().bpf_object__btf(this.obj) as Pointer | null;
  }

  setExpectedAttachType(prog: BpfProgram, type: number): void {
    libbpf().bpf_program__set_expected_attach_type(prog.handle, type);
  }

  setAutoload(prog: BpfProgram, on: boolean): void {
    libbpf().bpf_program__set_autoload(prog.handle, on ? 1 : 0);
  }

  setMaxEntries(map: BpfMapHandle, n: number): void {
    libbpf().bpf_map__set_max_entries(map.handle, n);
  }

  load(): void {
    takeLibbpfLog();
    const r = libbpf().bpf_object__load(this.obj);
    if (r < 0) {
      const log = takeLibbpfLog();
      throw new LoadError(`cannot load BPF object ${this.name}: ${describeLibbpfError(-r)}`, log);
    }
    this.loaded = true;
  }

  progFd(prog: BpfProgram | string): number {
    const p = typeof prog === "string" ? this.program(prog) : prog;
    const fd = libbpf().bpf_program__fd(p.handle);
    if (fd < 0) throw new Error(`program ${p.name} of ${this.name} is not loaded`);
    return fd;
  }

  mapFd(map: BpfMapHandle | string): number {
    const m = typeof map === "string" ? this.map(map) : map;
    const fd = libbpf().bpf_map__fd(m.handle);
    if (fd < 0) throw new Error(`map ${m.name} of ${this.name} is not loaded`);
    return fd;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    libbpf().bpf_object__close(this.obj);
    void this.image;
    void this.strings;
  }
}
