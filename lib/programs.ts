// Loading probe's own embedded programs for a given attach mode, with their config written first.
import { BpfObject } from "./object.ts";
import { embeddedObject } from "./embedded.ts";
import { BPF_ATTACH } from "./kernel/abi.ts";
import type { AttachMode } from "./uprobe.ts";

/**
 * Opens an embedded object, writes `config` at the start of its .rodata, and loads it.
 * A program serves one attach mode: uprobe_multi programs are refused by perf-event links and
 * the other way round, so the mode is fixed before load.
 */
export function loadEmbedded(name: string, mode: AttachMode, config: Uint8Array, only?: string[]): BpfObject {
  const obj = BpfObject.fromBytes(embeddedObject(name), name);
  try {
    for (const p of obj.programs()) {
      if (only && !only.includes(p.name)) obj.setAutoload(p, false);
      else if (mode === "multi") obj.setExpectedAttachType(p, BPF_ATTACH.TRACE_UPROBE_MULTI);
    }
    obj.setGlobalData(".rodata", 0, config);
    obj.load();
    return obj;
  } catch (e) {
    obj.close();
    throw e;
  }
}
