// Which of a file's USDT probes a user means: `provider:name`, a bare `name` (unique in the
// file), or a glob over either (`python:function__*`, `hotspot:*`, `*:throw`). A glob that picks
// probes some of whose sites cannot be attached leaves those out and says why; a probe named
// exactly must be attachable at every site.
import { compileGlob, isGlob } from "../glob.ts";
import { closestNames } from "../closest.ts";
import { findUsdtProbe, assertAttachable, UsdtNoteError, type UsdtProbe } from "./notes.ts";

export interface UsdtSelection {
  probes: UsdtProbe[];
  /** Probes a glob matched but that cannot be attached, each with the reason. */
  skipped: { probe: UsdtProbe; reason: string }[];
}

export function usdtProbeName(p: { provider: string; name: string }): string {
  return `${p.provider}:${p.name}`;
}

/** The probes of `file` that `spec` selects (see the module comment). */
export function selectUsdtProbes(probes: readonly UsdtProbe[], spec: string, file: string): UsdtSelection {
  if (!isGlob(spec)) {
    const p = findUsdtProbe(probes, spec, file);
    assertAttachable(p);
    return { probes: [p], skipped: [] };
  }
  const colon = spec.indexOf(":");
  const match = compileGlob(colon >= 0 ? spec : `*:${spec}`);
  const hits = probes.filter((p) => match(usdtProbeName(p)));
  if (hits.length === 0) {
    if (probes.length === 0) throw new UsdtNoteError(`${file} has no USDT probes (no .note.stapsdt notes)`);
    const close = closestNames(spec.replace(/[*?[\]]/g, ""), probes.map(usdtProbeName));
    throw new UsdtNoteError(`no USDT probe of ${file} matches ${spec}`, close.length ? `it has ${close.join(", ")}${probes.length > close.length ? ", ..." : ""}` : undefined);
  }
  const out: UsdtSelection = { probes: [], skipped: [] };
  for (const p of hits) {
    try {
      assertAttachable(p);
      out.probes.push(p);
    } catch (e) {
      if (!(e instanceof UsdtNoteError)) throw e;
      out.skipped.push({ probe: p, reason: e.message });
    }
  }
  if (out.probes.length === 0) throw new UsdtNoteError(`none of the ${hits.length} USDT probes of ${file} matching ${spec} can be attached: ${out.skipped[0]!.reason}`);
  return out;
}
