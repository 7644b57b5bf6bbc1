// What a failed load's log says: the verifier's last lines, and its reason in one line.

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

/** The verifier's reason in one line: its last line that is not bookkeeping. */
export function verifierReason(log: string): string {
  const lines = verifierSummary(log, 40).split("\n").filter((l) => !/^\d+: /.test(l) && !/^;/.test(l) && !/BPF program load failed/.test(l));
  return lines.at(-1)?.trim() ?? "";
}

/** The program the verifier rejected, as libbpf names it in its log. */
export function rejectedProgram(log: string): string | undefined {
  return /prog '([^']+)': BPF program load failed/.exec(log)?.[1];
}

/**
 * libbpf's own last word when there is no verifier log: "failed to guess program type from ELF
 * section 'foo/bar'", "map 'relbm': failed to create", ... without the "libbpf: " prefix.
 */
export function libbpfReason(log: string): string {
  const lines = log.split("\n").map((l) => l.trim()).filter(Boolean).map((l) => l.replace(/^libbpf:\s*/, ""));
  const meaningful = lines.filter((l) => !/^(loading|elf:|sec '|map '.*: at sec_idx|prog '.*': .*relo)/i.test(l) || /fail|error|invalid|unsupported|isn't|not /i.test(l));
  // Its last specific complaint: not a step it retries ("Retrying without BTF"), nor the generic
  // lines that follow every failure ("failed to load object", "prog 'p': failed to load: -22").
  const failing = meaningful.filter(
    (l) => /fail|error|invalid|unsupported|isn't|not |unknown|missing|bad/i.test(l) && !/retrying|^failed to (load|open) object|failed to load: -?\d+$/i.test(l),
  );
  return (failing.at(-1) ?? meaningful.at(-1) ?? "").replace(/\s+/g, " ").slice(0, 300);
}
