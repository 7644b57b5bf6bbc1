// Folded stacks (Brendan Gregg's format: `comm;outer;...;inner count`, one stack per line) and a
// flame graph drawn from them as one self-contained SVG: a rectangle per frame, as wide as its
// share of the samples; hovering names it with its count and share, a click zooms into it, "Reset
// Zoom" and Escape zoom out, "Search" highlights frames matching a regular expression, and
// `graph.svg#zoom=NAME` opens zoomed into NAME. The script is embedded; nothing is fetched.
import { ProbeError } from "./errors.ts";

/** One stack, outermost frame first, and how many times it was seen. */
export interface FoldedStack {
  frames: string[];
  count: number;
}

/** A frame name made safe for the folded format: `;` separates frames and a newline ends the stack. */
export function foldedFrameName(name: string): string {
  return name.replace(/;/g, "_").replace(/[\r\n]+/g, " ");
}

/** Stacks counted by their folded key; add them in any order. */
export class FoldedStacks {
  private readonly counts = new Map<string, number>();

  /** Adds `count` samples of the stack `frames` (outermost first: the process name, then `main`...). */
  add(frames: readonly string[], count = 1): void {
    if (frames.length === 0 || !(count > 0)) return;
    const key = frames.map(foldedFrameName).join(";");
    this.counts.set(key, (this.counts.get(key) ?? 0) + count);
  }

  /** Adds a stack as an unwinder returns it (innermost first), under the process name `comm`. */
  addStack(comm: string, innermostFirst: readonly string[], count = 1): void {
    this.add([comm, ...[...innermostFirst].reverse()], count);
  }

  /** Distinct stacks. */
  get size(): number {
    return this.counts.size;
  }

  /** Samples over all stacks. */
  get total(): number {
    let t = 0;
    for (const c of this.counts.values()) t += c;
    return t;
  }

  /** The stacks, sorted by their folded text (flamegraph.pl's order). */
  entries(): FoldedStack[] {
    return [...this.counts.keys()].sort().map((k) => ({ frames: k.split(";"), count: this.counts.get(k)! }));
  }

  /** The folded text: `a;b;c 12` lines, sorted, each ending in a newline. */
  toString(): string {
    return [...this.counts.keys()].sort().map((k) => `${k} ${this.counts.get(k)}\n`).join("");
  }

  /**
   * Parses folded text (as written by toString, stackcollapse-*.pl or bpftrace post-processing).
   * Blank lines are skipped; a line without a count after its last space is an error naming it.
   */
  static parse(text: string, source = "folded stacks"): FoldedStacks {
    const out = new FoldedStacks();
    const lines = text.split("\n");
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i]!.replace(/\r$/, "");
      if (!line.trim()) continue;
      const sp = line.lastIndexOf(" ");
      const count = sp > 0 ? Number(line.slice(sp + 1)) : NaN;
      if (!(count >= 0) || !Number.isFinite(count)) {
        throw new ProbeError(`${source}, line ${i + 1}: no sample count at the end (expected 'frame;frame;... COUNT')`);
      }
      const stack = line.slice(0, sp);
      if (stack) out.counts.set(stack, (out.counts.get(stack) ?? 0) + count);
    }
    return out;
  }
}

export interface FlameGraphOptions {
  title?: string;
  subtitle?: string;
  /** Image width in pixels (default 1200). */
  width?: number;
  /** Height of one frame (default 16). */
  frameHeight?: number;
  fontSize?: number;
  /** Frames narrower than this many pixels are left out, with their callees (default 0.1, as flamegraph.pl). */
  minWidth?: number;
  /** What a count is, for the tooltips (default "samples"). */
  countName?: string;
  /** Icicle graph: the root at the top, callees below. */
  inverted?: boolean;
}

/** A frame of the merged tree: a function reached by one path from the root. */
interface Node {
  name: string;
  count: number;
  children: Map<string, Node>;
}

const PAD_X = 10;
const CHAR_WIDTH = 0.59; // of the font size: Verdana's average, what flamegraph.pl assumes

/** The flame graph of `stacks` as an SVG document. */
export function renderFlameGraph(stacks: FoldedStacks | Iterable<FoldedStack>, opts: FlameGraphOptions = {}): string {
  const width = opts.width ?? 1200;
  const frameHeight = opts.frameHeight ?? 16;
  const fontSize = opts.fontSize ?? 12;
  const minWidth = opts.minWidth ?? 0.1;
  const countName = opts.countName ?? "samples";
  const title = opts.title ?? "Flame Graph";

  const root: Node = { name: "all", count: 0, children: new Map() };
  for (const s of stacks instanceof FoldedStacks ? stacks.entries() : stacks) {
    if (!(s.count > 0)) continue;
    root.count += s.count;
    let n = root;
    for (const f of s.frames) {
      let c = n.children.get(f);
      if (!c) {
        c = { name: f, count: 0, children: new Map() };
        n.children.set(f, c);
      }
      c.count += s.count;
      n = c;
    }
  }

  const usable = width - 2 * PAD_X;
  const scale = root.count > 0 ? usable / root.count : 0;
  type Placed = { node: Node; x: number; w: number; depth: number };
  const placed: Placed[] = [];
  let maxDepth = 0;
  const place = (node: Node, x: number, depth: number) => {
    const w = node.count * scale;
    if (w < minWidth) return;
    placed.push({ node, x, w, depth });
    maxDepth = Math.max(maxDepth, depth);
    let cx = x;
    for (const child of [...node.children.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
      place(child, cx, depth + 1);
      cx += child.count * scale;
    }
  };
  if (root.count > 0) place(root, PAD_X, 0);

  const top = fontSize * 3 + (opts.subtitle ? fontSize * 1.5 : 0);
  const bottom = fontSize * 2 + 8;
  const height = Math.ceil(top + (maxDepth + 1) * frameHeight + bottom);
  const yOf = (depth: number) => (opts.inverted ? top + depth * frameHeight : height - bottom - (depth + 1) * frameHeight);

  const out: string[] = [];
  out.push(`<?xml version="1.0" encoding="UTF-8" standalone="no"?>`);
  out.push(
    `<svg version="1.1" xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" ` +
      `data-pad="${PAD_X}" data-font="${fontSize}" data-count-name="${xmlEscape(countName)}" data-total="${root.count}" onload="init(evt)">`,
  );
  out.push(`<defs><linearGradient id="background" y1="0" y2="1" x1="0" x2="0"><stop stop-color="#eeeeee" offset="5%"/><stop stop-color="#eeeeb0" offset="95%"/></linearGradient></defs>`);
  out.push(`<style type="text/css">
text { font-family: Verdana, "DejaVu Sans", sans-serif; font-size: ${fontSize}px; fill: rgb(0,0,0); }
#title { text-anchor: middle; font-size: ${fontSize + 5}px; }
#subtitle { text-anchor: middle; fill: rgb(90,90,90); }
#details { fill: rgb(0,0,0); }
#unzoom, #search { cursor: pointer; }
#unzoom.hidden { display: none; }
g.f:hover rect { stroke: rgb(0,0,0); stroke-width: 0.5; cursor: pointer; }
g.f.hidden { display: none; }
g.f.parent rect { opacity: 0.5; }
g.f text { pointer-events: none; }
</style>`);
  out.push(`<script type="text/ecmascript"><![CDATA[${SCRIPT}]]></script>`);
  out.push(`<rect x="0" y="0" width="${width}" height="${height}" fill="url(#background)"/>`);
  out.push(`<text id="title" x="${width / 2}" y="${fontSize * 2}">${xmlEscape(title)}</text>`);
  if (opts.subtitle) out.push(`<text id="subtitle" x="${width / 2}" y="${fontSize * 3.5}">${xmlEscape(opts.subtitle)}</text>`);
  out.push(`<text id="unzoom" class="hidden" x="${PAD_X}" y="${fontSize * 2}">Reset Zoom</text>`);
  out.push(`<text id="search" x="${width - PAD_X - 100}" y="${fontSize * 2}">Search</text>`);
  out.push(`<text id="matched" x="${width - PAD_X - 100}" y="${height - fontSize}"> </text>`);
  out.push(`<text id="details" x="${PAD_X}" y="${height - fontSize}"> </text>`);
  out.push(`<g id="frames">`);
  for (const p of placed) {
    const name = p.node.name;
    const share = root.count > 0 ? (p.node.count / root.count) * 100 : 0;
    const label = `${name} (${formatCount(p.node.count)} ${countName}, ${share.toFixed(2)}%)`;
    const y = yOf(p.depth);
    out.push(
      `<g class="f" data-name="${xmlEscape(name)}" data-count="${p.node.count}"><title>${xmlEscape(label)}</title>` +
        `<rect x="${num(p.x)}" y="${num(y)}" width="${num(p.w)}" height="${frameHeight - 1}" rx="2" ry="2" fill="${frameColor(name, p.depth)}"/>` +
        `<text x="${num(p.x + 3)}" y="${num(y + frameHeight / 2 + fontSize / 2 - 2)}">${xmlEscape(fitText(name, p.w, fontSize))}</text></g>`,
    );
  }
  out.push(`</g>`);
  out.push(`</svg>\n`);
  return out.join("\n");
}

/** The part of `name` that fits in `w` pixels (".." marks a cut), or "" when too little fits. */
export function fitText(name: string, w: number, fontSize: number): string {
  const fits = Math.floor((w - 6) / (fontSize * CHAR_WIDTH));
  if (fits < 3) return "";
  return name.length <= fits ? name : `${name.slice(0, fits - 2)}..`;
}

function num(v: number): string {
  return String(Math.round(v * 100) / 100);
}

function formatCount(n: number): string {
  return Number.isInteger(n) ? n.toLocaleString("en-US") : String(n);
}

/**
 * Text for XML content and attribute values: the five special characters escaped, and the
 * characters XML 1.0 forbids (controls, lone surrogates, U+FFFE/U+FFFF) replaced by U+FFFD.
 */
export function xmlEscape(s: string): string {
  return s
    .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, "\ufffd")
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;")
    .replace(/'/g, "&#39;");
}

/** flamegraph.pl's "hot" palette, keyed by the name so a function keeps its colour across graphs. */
function frameColor(name: string, depth: number): string {
  if (depth === 0) return "rgb(200,200,200)";
  if (name.startsWith("[unknown]")) return "rgb(180,180,170)";
  let h = 2166136261;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 16777619);
  const v1 = ((h >>> 0) % 1000) / 1000;
  const v2 = ((h >>> 10) % 1000) / 1000;
  const v3 = ((h >>> 20) % 1000) / 1000;
  return `rgb(${205 + Math.round(50 * v3)},${Math.round(230 * v1)},${Math.round(55 * v2)})`;
}

// The viewer. Plain ES5-level DOM code, so any browser that renders SVG runs it.
const SCRIPT = `
"use strict";
var svg, details, unzoomBtn, matchedText, frames = [], pad = 10, fontSize = 12, total = 0, countName = "samples", fullWidth = 0;
function init(evt) {
  svg = document.documentElement;
  details = document.getElementById("details");
  unzoomBtn = document.getElementById("unzoom");
  matchedText = document.getElementById("matched");
  pad = Number(svg.getAttribute("data-pad"));
  fontSize = Number(svg.getAttribute("data-font"));
  total = Number(svg.getAttribute("data-total"));
  countName = svg.getAttribute("data-count-name");
  fullWidth = Number(svg.getAttribute("width")) - 2 * pad;
  var gs = document.querySelectorAll("g.f");
  for (var i = 0; i < gs.length; i++) {
    var g = gs[i], r = g.querySelector("rect");
    var f = { g: g, rect: r, text: g.querySelector("text"), name: g.getAttribute("data-name"), count: Number(g.getAttribute("data-count")),
      x: Number(r.getAttribute("x")), w: Number(r.getAttribute("width")), y: Number(r.getAttribute("y")), fill: r.getAttribute("fill") };
    frames.push(f);
    g.addEventListener("mouseover", show.bind(null, f));
    g.addEventListener("mouseout", function () { details.textContent = " "; });
    g.addEventListener("click", zoom.bind(null, f));
  }
  unzoomBtn.addEventListener("click", unzoom);
  document.getElementById("search").addEventListener("click", search);
  window.addEventListener("keydown", function (e) {
    if (e.key === "Escape") unzoom();
    if ((e.ctrlKey || e.metaKey) && e.key === "f") { e.preventDefault(); search(); }
  });
  // "file.svg#zoom=NAME" opens zoomed into the first frame of that name (a link to a view).
  var m = /^#zoom=(.+)$/.exec(window.location.hash);
  if (m) {
    var want = decodeURIComponent(m[1]);
    for (var k = 0; k < frames.length; k++) if (frames[k].name === want) { zoom(frames[k]); break; }
  }
}
function share(n) { return total > 0 ? (100 * n / total).toFixed(2) : "0.00"; }
function show(f) { details.textContent = "Function: " + f.name + " (" + f.count.toLocaleString("en-US") + " " + countName + ", " + share(f.count) + "%)"; }
function fit(name, w) {
  var n = Math.floor((w - 6) / (fontSize * ${CHAR_WIDTH}));
  if (n < 3) return "";
  return name.length <= n ? name : name.slice(0, n - 2) + "..";
}
function place(f, x, w) {
  f.rect.setAttribute("x", x.toFixed(2));
  f.rect.setAttribute("width", w.toFixed(2));
  f.text.setAttribute("x", (x + 3).toFixed(2));
  f.text.textContent = fit(f.name, w);
}
// Zooming into f: f and the frames under it in the stack span the width; its callees scale with
// it; frames beside it are hidden.
function zoom(z) {
  var scale = fullWidth / z.w, eps = 0.0001;
  for (var i = 0; i < frames.length; i++) {
    var f = frames[i];
    var inside = f.x >= z.x - eps && f.x + f.w <= z.x + z.w + eps;
    var below = f.x <= z.x + eps && f.x + f.w >= z.x + z.w - eps && f !== z && isAncestor(f, z);
    f.g.classList.remove("hidden", "parent");
    if (below) { f.g.classList.add("parent"); place(f, pad, fullWidth); }
    else if (inside && isDescendantOrSelf(f, z)) place(f, pad + (f.x - z.x) * scale, f.w * scale);
    else f.g.classList.add("hidden");
  }
  unzoomBtn.classList.remove("hidden");
}
// Frames are stacked by y: callers on one side, callees on the other (the root's side tells which).
function rootSideIsLow() { return frames.length > 0 && frames[0].y < (frames[frames.length - 1].y); }
function isAncestor(f, z) { return rootSideIsLow() ? f.y < z.y : f.y > z.y; }
function isDescendantOrSelf(f, z) { return f === z || (rootSideIsLow() ? f.y > z.y : f.y < z.y); }
function unzoom() {
  for (var i = 0; i < frames.length; i++) {
    var f = frames[i];
    f.g.classList.remove("hidden", "parent");
    place(f, f.x, f.w);
  }
  unzoomBtn.classList.add("hidden");
}
function search() {
  var term = window.prompt("Search frames for (a regular expression; empty to clear):", "");
  var re = null;
  if (term) { try { re = new RegExp(term); } catch (e) { re = null; } }
  var matched = 0, spans = [];
  for (var i = 0; i < frames.length; i++) {
    var f = frames[i];
    var hit = re !== null && re.test(f.name);
    f.rect.setAttribute("fill", hit ? "rgb(230,0,230)" : f.fill);
    // Count each matched span once: callees of a matched frame are inside it.
    if (hit && !spans.some(function (s) { return f.x >= s[0] - 0.0001 && f.x + f.w <= s[1] + 0.0001; })) { spans.push([f.x, f.x + f.w]); matched += f.count; }
  }
  matchedText.textContent = re ? "Matched: " + share(matched) + "%" : " ";
}
`;
