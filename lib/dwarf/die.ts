// A DIE: its tag, its attributes' raw values (in the order its abbreviation lists them), and its
// children, known when its unit was parsed whole or read on first access when it was decoded
// alone. What the values mean is asked of its Unit (unit.ts), which knows the other sections.
import type { Abbrev } from "./abbrev.ts";
import type { AttrVal } from "./forms.ts";
import type { Unit } from "./unit.ts";

export class Die {
  /** undefined: not known yet (a DIE decoded alone); null: none (the unit DIE). */
  private up: Die | null | undefined;
  private kids: Die[] | undefined;

  constructor(
    readonly unit: Unit,
    readonly offset: number,
    readonly abbrev: Abbrev,
    readonly vals: AttrVal[],
    /** Offset just past the DIE's attributes: where its first child starts. */
    readonly attrsEnd: number,
  ) {}

  /**
   * The DIE this one is a child of (undefined for the unit DIE). Known for DIEs of a parsed unit
   * and children read through `children`; for a DIE decoded alone (a type another DIE refers to),
   * found on first access by a scan of its unit (only C++ names ask, for their scopes).
   */
  get parent(): Die | undefined {
    if (this.up === undefined) this.up = this.unit.parentOf(this) ?? null;
    return this.up ?? undefined;
  }

  set parent(p: Die | undefined) {
    this.up = p ?? null;
  }

  /** Offset past the DIE's subtree, once its children were read alone. */
  subtreeEnd: number | undefined;

  /**
   * The DIE's children. A DIE of a parsed unit has them already; one decoded alone (a type
   * another unit refers to) reads them on first access, without parsing the rest of its unit.
   */
  get children(): Die[] {
    this.kids ??= this.abbrev.hasChildren ? this.unit.readChildren(this) : [];
    return this.kids;
  }

  /** Used while parsing a whole unit. */
  adopt(child: Die): void {
    (this.kids ??= []).push(child);
    child.parent = this;
  }

  /** Used while parsing a whole unit: a DIE whose children list is complete (maybe empty). */
  sealChildren(): void {
    this.kids ??= [];
  }

  get tag(): number {
    return this.abbrev.tag;
  }

  /** Index of attribute `at` in vals, or -1. */
  index(at: number): number {
    const s = this.abbrev.specs;
    for (let i = 0; i < s.length; i++) if (s[i]!.at === at) return i;
    return -1;
  }

  has(at: number): boolean {
    return this.index(at) >= 0;
  }

  form(at: number): number | undefined {
    const i = this.index(at);
    return i < 0 ? undefined : this.abbrev.specs[i]!.form;
  }
}
