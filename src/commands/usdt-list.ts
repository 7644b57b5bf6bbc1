// `probe usdt --list FILE` and `probe usdt --list --pid P`: the USDT probes of a file, or of every
// file a process maps (as it maps them: the inode in /proc/PID/maps, opened in its view), with
// their arguments as parsed and typed, and their semaphores. Needs no BPF and no root for a file.
import { basename } from "node:path";
import { ElfError } from "../../lib/elf.ts";
import { ProbeError } from "../../lib/errors.ts";
import { OpenTarget, openTarget, TargetNotFound } from "../../lib/proc/target.ts";
import { executablePath, mappedFiles, openMappedFile } from "../../lib/proc/maps.ts";
import { Scope } from "../../lib/scope.ts";
import { describeArg } from "../../lib/usdt/args.ts";
import { readUsdtSites, groupUsdtSites, UsdtNoteError, type UsdtProbe, type UsdtSite } from "../../lib/usdt/notes.ts";
import { usdtProbeName } from "../../lib/usdt/select.ts";
import { usdtLayout, groupByArgCount } from "../../lib/usdt/values.ts";
import { compileGlob } from "../../lib/glob.ts";
import { pc } from "../colors.ts";
import { UsageError } from "../errors.ts";
import { Out } from "../output.ts";
import { table } from "../table.ts";
import { targetProcess } from "../targets.ts";
import type { UsdtOptions } from "./usdt.ts";
import { writeStderr } from "../stderr.ts";

const hex = (n: number) => `0x${n.toString(16)}`;

export async function run(target: string | undefined, filter: string | undefined, o: UsdtOptions): Promise<number> {
  const scope = new Scope();
  try {
    const proc = await targetProcess(o);
    if (proc) scope.add(proc);
    if (!target && !proc) throw new UsageError("--list needs a file (a path, a library name, a program on PATH) or --pid/--container (every file the process maps)");
    const out = new Out();
    const match = filter ? compileGlob(filter.includes(":") ? filter : `*:${filter}`) : () => true;
    let listed = 0;
    if (target) {
      const t = scope.add(openListTarget(target, proc?.pid));
      listed += listFile(out, t, readUsdtSites(t.elf), match, !!o.json);
    } else {
      for (const f of mappedFiles(proc!.pid)) {
        let t: OpenTarget;
        try {
          const opened = openMappedFile(proc!.pid, f);
          t = scope.add(new OpenTarget(opened.fd, f.path));
        } catch (e) {
          // Files that are no ELF (locale archives, caches) or that vanished are not probe files.
          if (e instanceof ElfError || (e instanceof ProbeError && !(e instanceof UsageError))) continue;
          throw e;
        }
        let sites: UsdtSite[];
        try {
          sites = readUsdtSites(t.elf);
        } catch (e) {
          if (!(e instanceof UsdtNoteError)) throw e;
          writeStderr(`${pc.yellow(`probe: warning: ${e.message}`)}\n`);
          continue;
        }
        listed += listFile(out, t, sites, match, !!o.json);
      }
    }
    out.flush();
    if (!listed) writeStderr(`probe: no USDT probes${filter ? ` matching ${filter}` : ""} in ${target ?? `the files process ${proc!.pid} maps`}\n`);
    return 0;
  } finally {
    scope.close();
  }
}

/** The file as `probe usdt` would trace it: uprobe's resolution, plus `python3` for python3.11. */
function openListTarget(target: string, pid: number | undefined): OpenTarget {
  try {
    return openTarget(target, pid === undefined ? {} : { pid });
  } catch (e) {
    if (!(e instanceof TargetNotFound) || pid === undefined || target.includes("/")) throw e;
    const exe = executablePath(pid);
    const base = basename(exe);
    if (!exe || !base.startsWith(target) || !/^[.\d-]+$/.test(base.slice(target.length))) throw e;
    return openTarget(exe, { pid });
  }
}

interface ArgView {
  name: string;
  type: string;
  spec: string;
}

/** Names and types of each argument (as `probe usdt` shows them), with its spec as parsed. */
function argViews(p: UsdtProbe, site: UsdtSite): ArgView[] {
  let names: { name: string; type: string }[] = [];
  try {
    const group = groupByArgCount(p).find((g) => g.sites.includes(site))!;
    names = usdtLayout(group).layout.args.map((a) => ({ name: a.name, type: a.typeText }));
  } catch {
    // Types that do not fit (a table entry for another version of the probe): specs alone.
  }
  return site.args.map((a, i) => ({ name: names[i]?.name ?? `arg${i}`, type: names[i]?.type ?? "", spec: describeArg(a) }));
}

/** Prints one file's probes; returns how many. */
function listFile(out: Out, t: OpenTarget, sites: UsdtSite[], match: (name: string) => boolean, json: boolean): number {
  const probes = groupUsdtSites(sites).filter((p) => match(usdtProbeName(p)));
  if (!probes.length) return 0;
  if (json) {
    for (const p of probes) {
      p.sites.forEach((s, i) => {
        out.line(JSON.stringify({
          event: "usdt-probe", file: t.display, provider: s.provider, name: s.name, site: i,
          pc: hex(s.pc), offset: hex(s.offset), semaphore: s.semaphore ? hex(s.semaphore) : null, semaphore_offset: s.semaphoreOffset ? hex(s.semaphoreOffset) : null,
          note: { pc: hex(s.note.pc), base: hex(s.note.base), semaphore: hex(s.note.semaphore) },
          args_text: s.argsText,
          args: s.error ? [] : argViews(p, s),
          ...(s.error ? { error: s.error } : {}),
        }));
      });
    }
    return probes.length;
  }
  const nsites = probes.reduce((n, p) => n + p.sites.length, 0);
  out.line(pc.bold(`${t.display}: ${probes.length} USDT probe${probes.length === 1 ? "" : "s"}, ${nsites} site${nsites === 1 ? "" : "s"}`));
  const rows = probes.map((p) => {
    const first = p.sites.find((s) => !s.error) ?? p.sites[0]!;
    const sems = [...new Set(p.sites.map((s) => (s.semaphore ? hex(s.semaphore) : "-")))];
    const args = first.error ? pc.red(first.error.replace(/^[^:]*: /, "")) : argViews(p, first).map((a) => `${a.type ? `${a.type}${a.type.endsWith("*") ? "" : " "}` : ""}${a.name} = ${a.spec}`).join(", ");
    return ["", usdtProbeName(p), String(p.sites.length), sems.join(","), args];
  });
  for (const l of table([{ title: "" }, { title: "PROBE" }, { title: "SITES", right: true }, { title: "SEMAPHORE" }, { title: "ARGUMENTS" }], rows)) out.line(l);
  return probes.length;
}
