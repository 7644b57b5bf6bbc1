// What the benchmark files share: a row of the results table, the median of repeated runs, and a
// benchmark run on its own (`bun bench/tls.ts`), its rows printed as they come and then as the
// table `bun run bench` prints.
export type Row = (what: string, value: string, note?: string) => void;

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

export function printTable(rows: [string, string, string][]): void {
  const w = [Math.max(...rows.map((r) => r[0].length)), Math.max(...rows.map((r) => r[1].length))];
  console.log(`\n${"measure".padEnd(w[0]!)}  ${"value".padEnd(w[1]!)}  note`);
  console.log(`${"-".repeat(w[0]!)}  ${"-".repeat(w[1]!)}  ----`);
  for (const [a, b, c] of rows) console.log(`${a.padEnd(w[0]!)}  ${b.padEnd(w[1]!)}  ${c}`);
}

/** Runs one benchmark file's measurements on their own. */
export async function runAlone(bench: (row: Row) => Promise<void>): Promise<void> {
  const rows: [string, string, string][] = [];
  await bench((a, b, c = "") => {
    rows.push([a, b, c]);
    console.error(`  ${a}: ${b} ${c}`);
  });
  printTable(rows);
}
