// USDT semaphores: a probe guarded by one (`if (python_function__entry_semaphore) ...`) runs only
// while its counter is non-zero. The kernel raises the counter in every process it installs the
// probe in, and drops it when the probe goes, when told where the counter is (ref_ctr_offset: a
// file offset). uprobe_multi links always take it (ref_ctr_offsets, Linux 6.6); perf-event
// uprobes take it in config bits 32-63 since Linux 4.20, which the uprobe PMU advertises as
// format/ref_ctr_offset. Without it the probe is attached but the application never fires it.
import { existsSync } from "node:fs";
import type { AttachMode } from "../uprobe.ts";
import type { UsdtProbe } from "./notes.ts";

const PMU_REF_CTR = "/sys/bus/event_source/devices/uprobe/format/ref_ctr_offset";

/** Whether probes attached in `mode` raise their semaphores. */
export function kernelRaisesSemaphores(mode: AttachMode, pmuFormat = PMU_REF_CTR): boolean {
  return mode === "multi" || existsSync(pmuFormat);
}

/** The probes that have a semaphore at any site. */
export function guardedProbes(probes: readonly UsdtProbe[]): UsdtProbe[] {
  return probes.filter((p) => p.sites.some((s) => s.semaphoreOffset));
}
