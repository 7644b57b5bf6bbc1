// Folded stacks and the SVG flame graph: the folded text round-trips; the SVG is well-formed XML
// to xmllint, with one rectangle per node of the merged stack tree at the width its count gives;
// names with XML's special characters survive; and Debian's chromium renders it headless: the
// frame names are in its DOM, the embedded script zooms (`#zoom=NAME`), and a screenshot is kept
// in tests/.work/unwind/flamegraph.png for a look.
import { describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync, existsSync, statSync } from "node:fs";
import { join } from "node:path";
import { FoldedStacks, renderFlameGraph, fitText, xmlEscape } from "../../lib/flamegraph.ts";
import { ProbeError } from "../../lib/errors.ts";
import { WORK } from "./unwind-fixtures.ts";

const STACKS: [string[], number][] = [
  [["chain", "_start", "__libc_start_main", "main", "a", "b", "c", "target"], 50],
  [["chain", "_start", "__libc_start_main", "main", "qsort_r", "msort_with_tmp.part.0", "msort_with_tmp.part.0", "compare", "target"], 30],
  [["chain", "_start", "__libc_start_main", "main", "std::vector<int>::push_back(int const&)"], 12],
  [["chain", "_start", "__libc_start_main", "main", 'say "hi" & <bye> \'now\''], 3],
  [["go-chain", "runtime.goexit", "runtime.main", "main.main", "main.(*T).M", "[unknown] (libc.so.6)"], 4],
  [["go-chain", "runtime.goexit", "runtime.main", "main.main", "日本語.関数\u0001"], 1],
];

function folded(): FoldedStacks {
  const f = new FoldedStacks();
  for (const [frames, count] of STACKS) f.add(frames, count);
  return f;
}

/** The merged tree as the test sees it: [name, count] in drawing order (depth first, children by name). */
function expectedNodes(): [string, number][] {
  type N = { count: number; children: Map<string, N> };
  const root: N = { count: 0, children: new Map() };
  for (const [frames, count] of STACKS) {
    root.count += count;
    let n = root;
    for (const f of frames) {
      if (!n.children.has(f)) n.children.set(f, { count: 0, children: new Map() });
      n = n.children.get(f)!;
      n.count += count;
    }
  }
  const out: [string, number][] = [];
  const walk = (name: string, n: N) => {
    out.push([name, n.count]);
    for (const k of [...n.children.keys()].sort()) walk(k, n.children.get(k)!);
  };
  walk("all", root);
  return out;
}

function xmllint(args: string[], file: string): string {
  const r = Bun.spawnSync(["xmllint", ...args, file], { stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`xmllint ${args.join(" ")} ${file} failed (is libxml2-utils installed?): ${r.stderr}`);
  return r.stdout.toString();
}

function decodeXml(s: string): string {
  return s.replace(/&(lt|gt|quot|apos|amp|#39|#x[0-9a-f]+|#\d+);/gi, (_m, e: string) =>
    e === "lt" ? "<" : e === "gt" ? ">" : e === "quot" ? '"' : e === "apos" || e === "#39" ? "'" : e === "amp" ? "&" : String.fromCodePoint(e[1] === "x" ? parseInt(e.slice(2), 16) : Number(e.slice(1))),
  );
}

/** Attribute values in document order, as xmllint's XPath prints them (` name="value"` each). */
function attrs(file: string, xpath: string): string[] {
  return [...xmllint(["--xpath", xpath], file).matchAll(/\s[\w-]+="([^"]*)"/g)].map((m) => decodeXml(m[1]!));
}

describe("folded stacks", () => {
  test("add, addStack (innermost first), toString and parse round-trip", () => {
    const f = folded();
    f.addStack("chain", ["target", "c", "b", "a", "main", "__libc_start_main", "_start"], 2);
    f.add(["x;y", "line\nbreak"], 1);
    f.add([], 5);
    f.add(["zero"], 0);
    const text = f.toString();
    expect(text).toContain("chain;_start;__libc_start_main;main;a;b;c;target 52\n");
    expect(text).toContain("x_y;line break 1\n");
    expect(text).not.toContain("zero");
    expect(f.size).toBe(STACKS.length + 1);
    expect(f.total).toBe(STACKS.reduce((s, [, c]) => s + c, 0) + 3);
    const back = FoldedStacks.parse(text);
    expect(back.toString()).toBe(text);
    expect(FoldedStacks.parse("a;b 1\n\na;b 2\r\nc 3\n").toString()).toBe("a;b 3\nc 3\n");
  });

  test("a line without a count is an error naming the line", () => {
    expect(() => FoldedStacks.parse("a;b 1\na;b\n", "stacks.folded")).toThrow(ProbeError);
    expect(() => FoldedStacks.parse("a;b 1\na;b\n", "stacks.folded")).toThrow("stacks.folded, line 2: no sample count");
    expect(() => FoldedStacks.parse("a;b x\n")).toThrow("line 1");
  });
});

describe("SVG flame graph", () => {
  const svgPath = join(WORK, "flamegraph.svg");
  const svg = renderFlameGraph(folded(), { title: "probe: target <stacks>", subtitle: "100 samples & more", width: 1200 });
  writeFileSync(svgPath, svg);

  test("well-formed XML, one rectangle per frame node, widths proportional to counts", () => {
    xmllint(["--noout"], svgPath);
    const names = attrs(svgPath, "//*[@class='f']/@data-name");
    const counts = attrs(svgPath, "//*[@class='f']/@data-count").map(Number);
    const widths = attrs(svgPath, "//*[@class='f']/*[local-name()='rect']/@width").map(Number);
    const rects = attrs(svgPath, "//*[local-name()='rect']/@width");
    const expected = expectedNodes();
    // The control character is not allowed in XML: it is shown as U+FFFD.
    expect(names).toEqual(expected.map(([n]) => n.replace("\u0001", "\ufffd")));
    expect(counts).toEqual(expected.map(([, c]) => c));
    const total = expected[0]![1];
    widths.forEach((w, i) => expect(Math.abs(w - (expected[i]![1] / total) * 1180)).toBeLessThan(0.006));
    // Every rectangle but the background is a frame.
    expect(rects.length).toBe(expected.length + 1);
    // Hover text: name, count, share.
    const titleText = xmllint(["--xpath", "//*[@class='f'][@data-name='compare']/*[local-name()='title']/text()"], svgPath);
    expect(titleText.trim()).toBe("compare (30 samples, 30.00%)");
    // Nothing outside the file: no href, no src, no url other than the local gradient.
    expect(svg.replace('xmlns="http://www.w3.org/2000/svg"', "")).not.toMatch(/href|src=|https?:|url\((?!#background\))|@import/);
  });

  test("names with <, >, &, quotes, unicode and control characters are escaped", () => {
    expect(xmlEscape(`a<b>&"'\u0001\ud800x`)).toBe("a&lt;b&gt;&amp;&quot;&#39;\ufffd\ufffdx");
    expect(svg).toContain("std::vector&lt;int&gt;::push_back(int const&amp;)");
    expect(svg).toContain("say &quot;hi&quot; &amp; &lt;bye&gt; &#39;now&#39;");
    expect(svg).toContain("日本語.関数\ufffd");
    expect(svg).toContain(">probe: target &lt;stacks&gt;</text>");
    expect(fitText("msort_with_tmp.part.0", 60, 12)).toBe("msort..");
    expect(fitText("main", 10, 12)).toBe("");
  });

  test("frames narrower than minWidth are left out with their callees", () => {
    const f = new FoldedStacks();
    f.add(["p", "big"], 100_000);
    f.add(["p", "tiny", "tinier"], 1);
    const small = renderFlameGraph(f, { width: 1200 });
    expect(small).toContain('data-name="big"');
    expect(small).not.toContain('data-name="tiny"');
    expect(renderFlameGraph(f, { width: 1200, minWidth: 0 })).toContain('data-name="tinier"');
    expect(renderFlameGraph(new FoldedStacks())).toContain("</svg>");
  });

  test("chromium renders it: names in the DOM, the script zooms, a screenshot", async () => {
    const chromiumArgs = (dir: string) => [
      "chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
      "--disable-component-update", "--disable-sync", `--user-data-dir=${dir}`,
    ];
    const dirs = [0, 1, 2].map(() => mkdtempSync(join(WORK, "chromium-")));
    const png = join(WORK, "flamegraph.png");
    rmSync(png, { force: true });
    const url = `file://${svgPath}`;
    const runs = [
      Bun.spawn([...chromiumArgs(dirs[0]!), "--dump-dom", url], { stdout: "pipe", stderr: "pipe" }),
      Bun.spawn([...chromiumArgs(dirs[1]!), "--dump-dom", `${url}#zoom=compare`], { stdout: "pipe", stderr: "pipe" }),
      Bun.spawn([...chromiumArgs(dirs[2]!), `--screenshot=${png}`, "--window-size=1200,800", url], { stdout: "pipe", stderr: "pipe" }),
    ];
    const timer = setTimeout(() => runs.forEach((r) => r.kill()), 90_000);
    const [dom, zoomed] = await Promise.all(runs.slice(0, 2).map((r) => new Response(r.stdout).text()));
    const codes = await Promise.all(runs.map((r) => r.exited));
    clearTimeout(timer);
    dirs.forEach((d) => rmSync(d, { recursive: true, force: true }));
    if (codes.some((c) => c !== 0)) throw new Error(`chromium failed (is Debian's chromium installed?): exit codes ${codes.join(", ")}`);

    // Chromium serializes ' unescaped in attributes.
    const missing = expectedNodes().filter(([name]) => !dom.includes(`data-name="${xmlEscape(name).replace(/&#39;/g, "'")}"`));
    expect(missing).toEqual([]);
    expect(dom.includes(">msort_with_tmp.part.0</text>")).toBe(true);

    // Zoomed into compare: it and its callee span the width, its callers are marked, the rest hidden.
    const frame = (name: string) => new RegExp(`<g class="([^"]*)" data-name="${name.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}"[^>]*>(?:<title>[^<]*</title>)<rect x="([\\d.]+)" y="[\\d.]+" width="([\\d.]+)"`).exec(zoomed);
    const compare = frame("compare")!;
    expect(compare[1]).toBe("f");
    expect([Number(compare[2]), Number(compare[3])]).toEqual([10, 1180]);
    expect(frame("main")![1]).toBe("f parent");
    expect(frame("a")![1]).toBe("f hidden");
    expect(frame("go-chain")![1]).toBe("f hidden");
    expect(/<text id="unzoom" class="" /.test(zoomed)).toBe(true);

    expect(existsSync(png) && statSync(png).size).toBeGreaterThan(5000);
    console.log(`screenshot: ${png}`);
  }, 120_000);
});
