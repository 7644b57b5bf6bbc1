// Which DIE another one sits in, for DIEs decoded alone (C++ names need their namespaces and
// classes): an index of a unit's "scopes", the DIEs that have children, each with where its
// subtree ends and the scope it sits in. Built by one pass over the unit and its namespaces that
// steps over every other subtree with a DW_AT_sibling (classes, functions, blocks) and keeps it as
// an opaque scope, read only when a DIE asked about lies inside it (a nested or local type). Most
// DIEs of a C++ unit are in function and class bodies; most types asked about are not.
import { TAG } from "./constants.ts";
import type { DieStep, Unit } from "./unit.ts";

/** DIEs whose children are read in the first pass (the others wait until asked into). */
const DECLARES = new Set<number>([TAG.compile_unit, TAG.partial_unit, TAG.namespace]);
const MAX_DEPTH = 256;

export class ScopeIndex {
  private n = 0;
  private start = new Float64Array(64);
  private end = new Float64Array(64);
  /** Index of the enclosing scope, -1 for none. */
  private up = new Int32Array(64);
  /** 1 while the scope's subtree was stepped over. */
  private opaque = new Uint8Array(64);

  constructor(private readonly unit: Unit) {
    this.insert(0, this.scan(unit.h.dieOffset, unit.h.end), -1);
  }

  /** Offsets of the scopes holding the DIE at `offset`, outermost first ([] for the unit DIE). */
  pathTo(offset: number): number[] {
    let i = this.innermost(offset);
    // Each round reads one opaque subtree holding the DIE: at most as many as it is deep.
    for (let rounds = 0; i >= 0 && this.opaque[i] && rounds <= MAX_DEPTH; rounds++) {
      this.refine(i);
      i = this.innermost(offset);
    }
    const path: number[] = [];
    for (let j = i; j >= 0 && path.length <= MAX_DEPTH; j = this.up[j]!) path.push(this.start[j]!);
    return path.reverse();
  }

  /** The innermost scope whose subtree holds `offset` (the DIE itself excluded), or -1. */
  private innermost(offset: number): number {
    let lo = 0;
    let hi = this.n - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (this.start[mid]! < offset) lo = mid + 1;
      else hi = mid - 1;
    }
    let i = hi;
    while (i >= 0 && this.end[i]! <= offset) i = this.up[i]!;
    return i;
  }

  /** Reads the children of opaque scope `i` and inserts the scopes among them after it. */
  private refine(i: number): void {
    const u = this.unit;
    const c = u.cursorAt(this.start[i]!);
    const step: DieStep = { offset: 0, abbrev: undefined, sibling: undefined };
    u.stepDie(c, step);
    this.opaque[i] = 0;
    this.insert(i + 1, this.scan(c.offset, this.end[i]!), i);
  }

  /**
   * The scopes among the DIEs in [from, to), in order; `up` -1 for those directly in the range's
   * parent, else the index (in the result) of the one they sit in.
   */
  private scan(from: number, to: number): Found {
    const u = this.unit;
    const c = u.cursorAt(from);
    const step: DieStep = { offset: 0, abbrev: undefined, sibling: undefined };
    const found: Found = { start: [], end: [], up: [], opaque: [] };
    const open: number[] = [];
    while (c.offset < to && !c.atEnd) {
      u.stepDie(c, step);
      const abbrev = step.abbrev;
      if (!abbrev) {
        const k = open.pop();
        if (k !== undefined) found.end[k] = c.offset;
        continue;
      }
      if (!abbrev.hasChildren) continue;
      const k = found.start.length;
      found.start.push(step.offset);
      found.up.push(open.length ? open[open.length - 1]! : -1);
      const jump = step.sibling;
      if (jump !== undefined && jump <= to && !DECLARES.has(abbrev.tag)) {
        found.end.push(jump);
        found.opaque.push(1);
        c.seek(jump - c.base);
        continue;
      }
      if (open.length >= MAX_DEPTH) c.fail(`DIEs nested deeper than ${MAX_DEPTH}`, step.offset);
      found.end.push(to);
      found.opaque.push(0);
      open.push(k);
    }
    return found;
  }

  /** Puts `f` at index `at`, its top-level entries inside scope `parent`. */
  private insert(at: number, f: Found, parent: number): void {
    const m = f.start.length;
    if (!m) return;
    const n = this.n + m;
    if (n > this.start.length) this.resize(Math.max(n, this.start.length * 2));
    // Later scopes move up by m; their links to scopes at or after `at` too.
    this.start.copyWithin(at + m, at, this.n);
    this.end.copyWithin(at + m, at, this.n);
    this.up.copyWithin(at + m, at, this.n);
    this.opaque.copyWithin(at + m, at, this.n);
    for (let j = at + m; j < n; j++) if (this.up[j]! >= at) this.up[j]! += m;
    for (let k = 0; k < m; k++) {
      this.start[at + k] = f.start[k]!;
      this.end[at + k] = f.end[k]!;
      this.up[at + k] = f.up[k]! < 0 ? parent : at + f.up[k]!;
      this.opaque[at + k] = f.opaque[k]!;
    }
    this.n = n;
  }

  private resize(cap: number): void {
    const grow = <T extends Float64Array | Int32Array | Uint8Array>(a: T, b: T): T => (b.set(a), b);
    this.start = grow(this.start, new Float64Array(cap));
    this.end = grow(this.end, new Float64Array(cap));
    this.up = grow(this.up, new Int32Array(cap));
    this.opaque = grow(this.opaque, new Uint8Array(cap));
  }
}

interface Found {
  start: number[];
  end: number[];
  up: number[];
  opaque: number[];
}
