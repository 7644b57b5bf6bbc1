// Loading probe's own embedded programs for a given attach mode, with their config written first.
import { BpfObject } from "./object.ts";
import { embeddedObject } from "./embedded.ts";
import { libbpf } from "./ffi/libbpf.ts";
import { BPF_ATTACH, BPF_PROG_TYPE } from "./kernel/abi.ts";
import { vmlinuxBtfFallback } from "./kernel/vmlinux-btf.ts";
import type { AttachMode } from "./uprobe.ts";

/** The process filter's own programs (bpf/filter.h): loaded only when children are followed. */
const FILTER_PROGRAMS = ["filter_fork", "filter_exit", "filter_exec"];

/**
 * Opens an embedded object, writes `config` at the start of its .rodata, and loads the programs
 * named in `only` (default: all), and the process filter's own programs only when asked. A uprobe program serves one attach mode:
 * uprobe_multi programs are refused by perf-event links and the other way round, so the mode is
 * fixed before load.
 */
export function loadEmbedded(
  name: string,
  mode: AttachMode,
  config: Uint8Array,
  only?: string[],
  withFilterPrograms = false,
  /**
   * max_entries of maps sized for the job (a ring buffer's bytes, one description per function,
   * one entry for a table the job leaves unused); names the object has no map of are skipped.
   */
  sizes: Record<string, number> = {},
): BpfObject {
  const btf = vmlinuxBtfFallback();
  const obj = BpfObject.fromBytes(embeddedObject(name), name, name, btf?.path);
  try {
    for (const p of obj.programs()) {
      const wanted = FILTER_PROGRAMS.includes(p.name) ? withFilterPrograms : !only || only.includes(p.name);
      if (!wanted) obj.setAutoload(p, false);
      else if (mode === "multi" && libbpf().bpf_program__type(p.handle) === BPF_PROG_TYPE.KPROBE) obj.setExpectedAttachType(p, BPF_ATTACH.TRACE_UPROBE_MULTI);
    }
    for (const m of obj.maps()) {
      const n = sizes[m.name];
      if (n !== undefined) obj.setMaxEntries(m, n);
    }
    obj.setGlobalData(".rodata", 0, config);
    obj.load();
    return obj;
  } catch (e) {
    obj.close();
    throw e;
  } finally {
    btf?.close();
  }
}
