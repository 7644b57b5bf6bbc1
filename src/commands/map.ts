// `probe map dump <name|id|pinned path>`: a map's entries, keys and values formatted from its BTF.
// Also the map printing that `probe load --maps` uses.
import { readlinkSync } from "node:fs";
import { pc } from "../colors.ts";
import { libbpf } from "../../lib/ffi/libbpf.ts";
import { closeFd, cstr, errno, describeErrno } from "../../lib/ffi/libc.ts";
import { MapReader } from "../../lib/maps.ts";
import type { MapInfo } from "../../lib/kernel/bpf.ts";
import { fdKind } from "../../lib/kernel/abi.ts";
import { MapFormatter, type JsonValue } from "../../lib/btf.ts";
import { kernelView } from "../../lib/kernel-view.ts";
import { ProbeError, UsageError } from "../errors.ts";
import { Out, pad } from "../output.ts";

const EPERM = 1, EACCES = 13;

export interface MapOptions {
  json?: boolean;
}

export interface MapSnapshot {
  info: MapInfo;
  keyType: string;
  valueType: string;
  entries: { key: string; value: string; keyJson: JsonValue; valueJson: JsonValue }[];
}

/** Opens a map by pinned path, id, or name (which must be unique in the kernel). The caller closes the fd. */
export function openMapRef(ref: string): number {
  const L = libbpf();
  if (ref.includes("/")) {
    const fd = L.bpf_obj_get(cstr(ref));
    if (fd < 0) throw new ProbeError(`cannot open pinned map ${ref}: ${describeErrno(errno())}`, "give a path under a bpf filesystem, e.g. /sys/fs/bpf/myapp/rcount");
    if (fdKind(readlinkSync(`/proc/self/fd/${fd}`)) !== "map") {
      closeFd(fd);
      throw new ProbeError(`${ref} is a pinned BPF object but not a map`, "maps of a 'probe load --pin DIR' are DIR/<map name>");
    }
    return fd;
  }
  if (/^\d+$/.test(ref)) {
    const fd = L.bpf_map_get_fd_by_id(Number(ref));
    if (fd === -EPERM || fd === -EACCES) throw new ProbeError(`cannot open map id ${ref}: opening BPF objects by id needs CAP_SYS_ADMIN (CAP_BPF and CAP_PERFMON are not enough)`, "run it as root, or give the map's pinned path");
    if (fd < 0) throw new ProbeError(`no map with id ${ref}: ${describeErrno(-fd)}`, "see 'probe list' for map ids");
    return fd;
  }
  const view = kernelView();
  if (view.enumerationDenied) throw new ProbeError(`cannot find map '${ref}' by name: listing BPF maps needs CAP_SYS_ADMIN (CAP_BPF and CAP_PERFMON are not enough)`, "run it as root, or give the map's pinned path");
  const hits = view.maps.filter((m) => m.name === ref);
  if (hits.length === 0) throw new ProbeError(`no map named '${ref}' is loaded`, "see 'probe list' for map names and ids");
  if (hits.length > 1) throw new ProbeError(`${hits.length} maps are named '${ref}' (ids ${hits.map((m) => m.id).join(", ")})`, "give the id or the pinned path instead");
  const fd = L.bpf_map_get_fd_by_id(hits[0]!.id);
  if (fd < 0) throw new ProbeError(`map '${ref}' (id ${hits[0]!.id}) went away: ${describeErrno(errno())}`);
  return fd;
}

/** Reads every entry of the map behind `fd` and formats it (per-CPU values as one list per entry). */
export function snapshotMap(fd: number, formatter?: MapFormatter): MapSnapshot {
  const reader = new MapReader(fd);
  const f = formatter ?? new MapFormatter(reader.info);
  const entries = reader.entries().map((e) => {
    const vals = e.values;
    const one = vals.length === 1;
    return {
      key: f.key(e.key),
      value: one ? f.value(vals[0]!) : `[${vals.map((v) => f.value(v)).join(", ")}]`,
      keyJson: f.keyJson(e.key),
      valueJson: one ? f.valueJson(vals[0]!) : vals.map((v) => f.valueJson(v)),
    };
  });
  return { info: reader.info, keyType: f.keyType, valueType: f.valueType, entries };
}

export function printSnapshot(out: Out, s: MapSnapshot, json: boolean, label?: string): void {
  if (json) {
    out.line(JSON.stringify({
      ...(label ? { time: label } : {}),
      map: s.info.name,
      id: s.info.id,
      type: s.info.typeName,
      key_type: s.keyType || null,
      value_type: s.valueType || null,
      entries: s.entries.map((e) => ({ key: e.keyJson, value: e.valueJson })),
    }));
    return;
  }
  const types = s.keyType || s.valueType ? ` ${s.keyType || "?"} -> ${s.valueType || "?"}` : "";
  out.line(pc.bold(`${label ? `${label} ` : ""}${s.info.name} (id ${s.info.id}, ${s.info.typeName}${types}, ${s.entries.length} entr${s.entries.length === 1 ? "y" : "ies"})`));
  // Keys up to 48 characters line their values up; a longer one still keeps two spaces.
  const w = Math.min(48, Math.max(4, ...s.entries.map((e) => e.key.length)));
  if (s.entries.length) out.line(pc.dim(`  ${pad("KEY", w)}  VALUE`));
  for (const e of s.entries) out.line(`  ${pad(e.key, w)}  ${e.value}`);
}

export async function run(sub: string | undefined, ref: string | undefined, o: MapOptions): Promise<number> {
  if (sub !== "dump") throw new UsageError(sub ? `unknown map subcommand '${sub}' (only 'dump')` : "missing subcommand: probe map dump <name|id|path>");
  if (!ref) throw new UsageError("missing argument: probe map dump <name|id|pinned path>");
  const fd = openMapRef(ref);
  const out = new Out();
  try {
    printSnapshot(out, snapshotMap(fd), !!o.json);
  } catch (e) {
    if (e instanceof ProbeError) throw e;
    throw new ProbeError(`cannot read map ${ref}: ${(e as Error).message}`);
  } finally {
    closeFd(fd);
    out.flush();
  }
  return 0;
}
