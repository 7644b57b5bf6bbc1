// Go executables: recognising them, and the Go version and calling convention they were built
// with. Their build info is read by go-buildinfo.ts, their function table by go-pclntab.ts, their
// functions by name by go-functions.ts.
import type { ElfFile } from "./elf.ts";
import { parseVersion, readBuildInfo, runtimeBuildVersion, type GoVersion } from "./go-buildinfo.ts";
import { GoError } from "./go-error.ts";
import { findPclntab, pclntabVersion, type PclntabVersion } from "./go-pclntab.ts";

export interface GoInfo {
  /** undefined when the binary does not say (no build info and no runtime.buildVersion). */
  version?: GoVersion;
  /** Where the version came from. */
  versionSource?: "buildinfo" | "runtime.buildVersion" | "pclntab";
  /** Main module path from the build info, when present. */
  modulePath?: string;
  /** The sections that identified the binary as Go. */
  evidence: string[];
  /** "register": Go >= 1.17 on amd64 (args in RAX RBX RCX RDI RSI R8 R9 R10 R11, R14 = g). */
  abi: "register" | "stack" | "unknown";
  /** No `.symtab`: function bounds come from `.gopclntab`. */
  stripped: boolean;
  /** Layout of `.gopclntab`, when the binary has one. */
  pclntabVersion?: PclntabVersion;
}

/** Go facts about an ELF file, or undefined when it is not a Go program. */
export function inspectGo(elf: ElfFile): GoInfo | undefined {
  const evidence = [".note.go.buildid", ".go.buildinfo", ".gopclntab"].filter((n) => elf.section(n));
  // Only look inside the data of files that already look like Go: C binaries can be huge.
  const pcln = evidence.length || elf.section(".data.rel.ro.gopclntab") ? findPclntab(elf) : undefined;
  if (pcln && !evidence.includes(pcln.sectionName)) evidence.push(pcln.sectionName === ".gopclntab" ? ".gopclntab" : `pclntab in ${pcln.sectionName}`);
  if (evidence.length === 0) return undefined;

  const info: GoInfo = { evidence, abi: "unknown", stripped: !elf.sections.some((s) => s.name === ".symtab") };
  if (pcln) info.pclntabVersion = pclntabVersion(pcln.bytes);

  const bi = readBuildInfo(elf);
  if (bi?.version) {
    info.version = parseVersion(bi.version);
    info.versionSource = "buildinfo";
    if (bi.modulePath) info.modulePath = bi.modulePath;
  }
  if (!info.version) {
    const v = runtimeBuildVersion(elf);
    if (v) {
      info.version = parseVersion(v);
      info.versionSource = "runtime.buildVersion";
    }
  }
  if (info.version) {
    const { major, minor } = info.version;
    info.abi = major > 1 || minor >= 17 ? "register" : "stack";
  } else if (info.pclntabVersion === "1.18" || info.pclntabVersion === "1.20") {
    // No version string, but this table layout only exists since Go 1.18: register ABI for sure.
    info.abi = "register";
    info.versionSource = "pclntab";
    info.version = { raw: `go${info.pclntabVersion} or later`, major: 1, minor: Number(info.pclntabVersion.split(".")[1]) };
  }
  return info;
}

/**
 * Throws unless arguments and results can be read in Go's register ABI (amd64, Go >= 1.17):
 * older Go passes everything on the stack and probe does not decode that.
 */
export function requireRegisterAbi(elf: ElfFile, info: GoInfo): void {
  if (info.abi === "register") return;
  if (info.abi === "stack") {
    throw new GoError(
      `${elf.path} was built with ${info.version!.raw}, which passes Go arguments on the stack; probe reads them only in the register ABI of Go 1.17 and later`,
      "rebuild the program with Go >= 1.17",
    );
  }
  throw new GoError(
    `cannot tell which Go version built ${elf.path} (no build info, no runtime.buildVersion), so not which calling convention it uses`,
    "rebuild it with Go >= 1.17, or probe only its entry, without arguments",
  );
}
