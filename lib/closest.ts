// "Did you mean": the known names closest to one that is not known: functions, tracepoints, USDT
// probes.

/**
 * Up to `max` of `names` closest to `wanted`: small edit distances first (typos), then names that
 * contain it. For `provider:name`-style names, a wanted string without a colon is also compared
 * with the part after the colon.
 */
export function closestNames(wanted: string, names: Iterable<string>, max = 3): string[] {
  const w = wanted.toLowerCase();
  const bare = !w.includes(":");
  const limit = Math.max(2, Math.floor(w.length / 3));
  const scored: [number, string][] = [];
  for (const n of new Set(names)) {
    const l = n.toLowerCase();
    let d = editDistance(w, l, limit);
    const colon = l.indexOf(":");
    if (bare && colon >= 0) d = Math.min(d, editDistance(w, l.slice(colon + 1), limit));
    if (d <= limit) scored.push([d, n]);
    else if (w && l.includes(w)) scored.push([limit + 1, n]);
  }
  scored.sort((a, b) => a[0] - b[0] || a[1].length - b[1].length || (a[1] < b[1] ? -1 : 1));
  return scored.slice(0, max).map(([, n]) => n);
}

/** Levenshtein distance, giving up (cap + 1) once every path exceeds `cap`. */
export function editDistance(a: string, b: string, cap = Infinity): number {
  if (Math.abs(a.length - b.length) > cap) return cap + 1;
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    let best = i;
    for (let j = 1; j <= b.length; j++) {
      const c = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
      cur.push(c);
      if (c < best) best = c;
    }
    if (best > cap) return cap + 1;
    prev = cur;
  }
  return prev[b.length]!;
}
