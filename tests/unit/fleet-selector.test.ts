// Label selector parsing and matching (the syntax and semantics of Kubernetes' `kubectl -l`), pod
// references, and select() over hand-written container records (discovery's output shape; the
// kernel test runs the same selection over real engines).
import { describe, expect, test } from "bun:test";
import { dedupeContainers, isSandbox, podLabelsFromSandbox, type FleetContainer } from "../../lib/fleet/discovery.ts";
import { matchesSelector, parsePodRef, parseSelector, select, SelectionError, SelectorError } from "../../lib/fleet/selector.ts";

describe("parseSelector", () => {
  test("every operator, whitespace and prefixed keys", () => {
    const s = parseSelector(" app = web , tier==front,env!=prod, zone in (a, b,a) ,track notin(canary), example.com/owned , !skip ");
    expect(s.requirements).toEqual([
      { key: "app", op: "=", values: ["web"] },
      { key: "tier", op: "=", values: ["front"] },
      { key: "env", op: "!=", values: ["prod"] },
      { key: "zone", op: "in", values: ["a", "b"] },
      { key: "track", op: "notin", values: ["canary"] },
      { key: "example.com/owned", op: "exists", values: [] },
      { key: "skip", op: "!exists", values: [] },
    ]);
    expect(parseSelector("").requirements).toEqual([]);
    expect(parseSelector("  ").requirements).toEqual([]);
    expect(parseSelector("k=").requirements).toEqual([{ key: "k", op: "=", values: [""] }]);
  });

  test("errors name the column", () => {
    const cases: [string, number, RegExp][] = [
      ["app=web,", 9, /expected a label key, found the end/],
      [",app", 1, /expected a label key/],
      ["app in (a,b", 12, /no closing/],
      ["app in a,b", 8, /expected '\('/],
      ["app in ()", 9, /empty/],
      ["app foo (a)", 5, /unknown operator "foo"/],
      ["app=web tier=x", 9, /expected ',' or the end/],
      ["-bad=x", 1, /not a valid label name/],
      ["app=-x", 5, /not a valid label value/],
      ["Bad_Prefix.com/x=1", 1, /not a DNS subdomain/],
      ["!app=x", 5, /expected ',' or the end/],
      ["app=(x)", 5, /unexpected "\("/],
      [`k=${"v".repeat(64)}`, 3, /not a valid label value/],
    ];
    for (const [text, column, why] of cases) {
      let err: unknown;
      try {
        parseSelector(text);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(SelectorError);
      expect([text, (err as SelectorError).column]).toEqual([text, column]);
      expect((err as Error).message).toMatch(why);
      expect((err as Error).message).toContain(`at column ${column}`);
    }
  });

  test("semantics: != and notin match a missing key, = and in need it", () => {
    const labels = { app: "web", tier: "front" };
    const m = (sel: string, l: Record<string, string> = labels) => matchesSelector(parseSelector(sel), l);
    expect(m("app=web")).toBe(true);
    expect(m("app=db")).toBe(false);
    expect(m("env!=prod")).toBe(true);
    expect(m("env in (prod)")).toBe(false);
    expect(m("env notin (prod)")).toBe(true);
    expect(m("tier notin (front,back)")).toBe(false);
    expect(m("app,tier")).toBe(true);
    expect(m("!env")).toBe(true);
    expect(m("!app")).toBe(false);
    expect(m("")).toBe(true);
    expect(m("toString")).toBe(false); // no prototype keys
  });
});

describe("pods and select()", () => {
  const c = (over: Partial<FleetContainer> & { pid: number }): FleetContainer => ({ engine: "containerd", id: `c${over.pid}`, name: `c${over.pid}`, labels: {}, ...over });
  const all = [
    c({ pid: 1, pod: { name: "web", namespace: "shop", uid: "u1" }, containerName: "nginx", podLabels: { app: "web" } }),
    c({ pid: 2, pod: { name: "web", namespace: "shop", uid: "u1" }, containerName: "sidecar", podLabels: { app: "web" } }),
    c({ pid: 3, pod: { name: "web", namespace: "billing", uid: "u2" }, containerName: "nginx", podLabels: { app: "web", tier: "back" } }),
    c({ pid: 4, engine: "docker", name: "plain", labels: { app: "tool" } }),
  ];
  const pids = (cs: FleetContainer[]) => cs.map((x) => x.pid);

  test("parsePodRef", () => {
    expect(parsePodRef("shop/web")).toEqual({ namespace: "shop", name: "web" });
    expect(parsePodRef("web")).toEqual({ namespace: undefined, name: "web" });
    expect(() => parsePodRef("a/b/c")).toThrow(SelectionError);
    expect(() => parsePodRef("/web")).toThrow(/namespace is empty/);
    expect(() => parsePodRef("shop/")).toThrow(/name is empty/);
  });

  test("criteria are AND-ed; pod labels overlay container labels", () => {
    expect(pids(select(all, { pod: parsePodRef("web") }))).toEqual([1, 2, 3]);
    expect(pids(select(all, { pod: parsePodRef("web"), namespace: "billing" }))).toEqual([3]);
    expect(pids(select(all, { namespace: "shop", containerName: "nginx" }))).toEqual([1]);
    expect(pids(select(all, { selector: "app=web,tier!=back" }))).toEqual([1, 2]);
    expect(pids(select(all, { selector: "app=tool" }))).toEqual([4]);
    expect(pids(select(all, { containerName: "plain" }))).toEqual([4]);
    expect(pids(select(all, { allContainers: true }))).toEqual([1, 2, 3, 4]);
    expect(() => select(all, {})).toThrow(/no container selection criteria/);
    expect(() => select(all, { pod: parsePodRef("shop/web"), namespace: "billing" })).toThrow(/not in namespace billing/);
  });

  test("sandbox recognition, pod labels from a sandbox, de-duplication across engines", () => {
    expect(isSandbox({ "io.cri-containerd.kind": "sandbox" })).toBe(true);
    expect(isSandbox({ "io.kubernetes.docker.type": "podsandbox" })).toBe(true);
    expect(isSandbox({ "io.cri-containerd.kind": "container" })).toBe(false);
    expect(podLabelsFromSandbox({ app: "web", "io.kubernetes.pod.name": "web", "io.cri-containerd.kind": "sandbox", "annotation.kubernetes.io/config.seen": "x", "app.kubernetes.io/name": "shop" })).toEqual({ app: "web", "app.kubernetes.io/name": "shop" });
    const twice = [c({ pid: 9, id: "same", engine: "containerd" }), c({ pid: 9, id: "same", engine: "docker" }), c({ pid: 8, id: "other" })];
    expect(dedupeContainers(twice).map((x) => [x.id, x.engine])).toEqual([["same", "docker"], ["other", "containerd"]]);
  });
});
