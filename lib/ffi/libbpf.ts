// The libbpf symbols probe calls (system libbpf.so.1; 1.1 on Debian 12). Declared here only.
import { dlopen, JSCallback, type Pointer } from "bun:ffi";
import { describeErrno, errno, vformat } from "./libc.ts";

// String literals, not FFIType members: TypeScript then infers each function's exact types.
// size_t is u64 on x86-64.
const i32 = "i32", u32 = "u32", i64 = "i64", u64 = "u64", p = "ptr", v = "void", cstring = "cstring";

function open() {
  try {
    return dlopen("libbpf.so.1", {
      libbpf_set_print: { args: [p], returns: p },
      libbpf_strerror: { args: [i32, p, u64], returns: i32 },
      bpf_object__open_mem: { args: [p, u64, p], returns: p },
      bpf_object__load: { args: [p], returns: i32 },
      bpf_object__close: { args: [p], returns: v },
      bpf_object__btf: { args: [p], returns: p },
      bpf_object__next_program: { args: [p, p], returns: p },
      bpf_object__next_map: { args: [p, p], returns: p },
      bpf_program__name: { args: [p], returns: cstring },
      bpf_program__section_name: { args: [p], returns: cstring },
      bpf_program__fd: { args: [p], returns: i32 },
      bpf_program__type: { args: [p], returns: i32 },
      bpf_program__set_expected_attach_type: { args: [p, i32], returns: i32 },
      bpf_program__set_autoload: { args: [p, u32], returns: i32 },
      bpf_map__name: { args: [p], returns: cstring },
      bpf_map__fd: { args: [p], returns: i32 },
      bpf_map__set_max_entries: { args: [p, u32], returns: i32 },
      bpf_map__initial_value: { args: [p, p], returns: p },
      bpf_map__set_pin_path: { args: [p, p], returns: i32 },
      bpf_map__is_internal: { args: [p], returns: u32 },
      bpf_map_lookup_elem: { args: [i32, p, p], returns: i32 },
      bpf_map_update_elem: { args: [i32, p, p, u64], returns: i32 },
      bpf_map_delete_elem: { args: [i32, p], returns: i32 },
      bpf_map_get_next_key: { args: [i32, p, p], returns: i32 },
      bpf_obj_get_info_by_fd: { args: [i32, p, p], returns: i32 },
      bpf_obj_pin: { args: [i32, p], returns: i32 },
      bpf_obj_get: { args: [p], returns: i32 },
      bpf_prog_get_next_id: { args: [u32, p], returns: i32 },
      bpf_map_get_next_id: { args: [u32, p], returns: i32 },
      bpf_link_get_next_id: { args: [u32, p], returns: i32 },
      bpf_prog_get_fd_by_id: { args: [u32], returns: i32 },
      bpf_map_get_fd_by_id: { args: [u32], returns: i32 },
      bpf_link_get_fd_by_id: { args: [u32], returns: i32 },
      bpf_btf_get_fd_by_id: { args: [u32], returns: i32 },
      bpf_btf_get_next_id: { args: [u32, p], returns: i32 },
      bpf_task_fd_query: { args: [i32, i32, u32, p, p, p, p, p, p], returns: i32 },
      btf__raw_data: { args: [p, p], returns: p },
      bpf_map__pin_path: { args: [p], returns: p },
    });
  } catch (e) {
    throw new Error(
      `cannot load libbpf.so.1 (${(e as Error).message.split("\n")[0]}); install it: apt-get install libbpf1`,
    );
  }
}

let lib: ReturnType<typeof open> | undefined;
/** libbpf, opened on first use so that `probe --version` never pays for it. */
export function libbpf(): ReturnType<typeof open>["symbols"] {
  lib ??= open();
  return lib.symbols;
}

let printHook: JSCallback | undefined;
let captured: string[] = [];
let echo: ((line: string) => void) | undefined;

/**
 * Routes libbpf's messages into a buffer (the verifier's log among them) instead of stderr.
 * The callback only ever runs on the JS thread, inside the libbpf call that logs.
 */
export function captureLibbpfLog(onLine?: (line: string) => void): void {
  echo = onLine;
  if (printHook) return;
  printHook = new JSCallback(
    (level: number, fmt: Pointer, ap: Pointer) => {
      const text = vformat(fmt, ap);
      captured.push(text);
      if (captured.length > 2000) captured.splice(0, 1000);
      echo?.(text);
      return 0;
    },
    { args: [i32, p, p], returns: i32 },
  );
  libbpf().libbpf_set_print(printHook.ptr);
}

/** Returns and clears what libbpf has logged since the last call. */
export function takeLibbpfLog(): string {
  const s = captured.join("");
  captured = [];
  return s;
}

/** An error code from libbpf: its own codes (4000 and up: bad ELF, relocation, ...) or an errno. */
export function describeLibbpfError(err: number): string {
  if (err < 4000) return describeErrno(err);
  const buf = new Uint8Array(256);
  libbpf().libbpf_strerror(err, buf, BigInt(buf.length));
  const end = buf.indexOf(0);
  return new TextDecoder().decode(buf.subarray(0, end < 0 ? buf.length : end));
}
