// Choosing containers: Kubernetes label selectors (the syntax of `kubectl -l`), pod references
// ("NS/NAME" or "NAME"), namespaces and container names, as one pure function over what
// discovery found.
//
// A selector is matched against a container's labels merged with its pod's labels (the pod's win
// where both have a key). Kubernetes keeps a pod's own labels only on its sandbox (see
// discovery.ts), so for CRI-managed containers selectors see the pod's labels plus the
// io.kubernetes.* ones; for a plain docker/podman container they see its own labels.
import { ProbeError } from "../errors.ts";
import type { FleetContainer } from "./discovery.ts";

export type Operator = "=" | "!=" | "in" | "notin" | "exists" | "!exists";

export interface Requirement {
  key: string;
  op: Operator;
  /** One value for = and !=, one or more for in/notin, none for exists/!exists. */
  values: string[];
}

export interface Selector {
  /** The text it was parsed from, for messages. */
  text: string;
  requirements: Requirement[];
}

export class SelectorError extends ProbeError {
  constructor(
    readonly text: string,
    /** 1-based column of the offending character (text.length + 1 at its end). */
    readonly column: number,
    why: string,
  ) {
    super(`invalid label selector ${JSON.stringify(text)} at column ${column}: ${why}`, "e.g. app=web,tier!=cache,env in (prod,staging),!canary");
  }
}

// Kubernetes' limits: name part 63 characters, prefix a DNS subdomain of 253.
const NAME = /^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const PREFIX = /^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const MAX_SELECTOR = 4096;

function keyProblem(key: string): string | undefined {
  const slash = key.indexOf("/");
  const name = slash < 0 ? key : key.slice(slash + 1);
  if (slash >= 0 && !PREFIX.test(key.slice(0, slash))) return `key prefix ${JSON.stringify(key.slice(0, slash))} is not a DNS subdomain`;
  if (!NAME.test(name)) return `key ${JSON.stringify(key)} is not a valid label name (63 letters, digits, '-', '_', '.' at most, alphanumeric at both ends)`;
  return undefined;
}

function valueProblem(v: string): string | undefined {
  if (v === "" || NAME.test(v)) return undefined;
  return `value ${JSON.stringify(v)} is not a valid label value (63 letters, digits, '-', '_', '.' at most, alphanumeric at both ends)`;
}

/** Parses a selector; an empty (or all-blank) text selects everything. Throws SelectorError with a column. */
export function parseSelector(text: string): Selector {
  if (text.length > MAX_SELECTOR) throw new SelectorError(text.slice(0, 40) + "…", MAX_SELECTOR + 1, `longer than ${MAX_SELECTOR} characters`);
  let i = 0;
  const fail = (why: string, at = i): never => {
    throw new SelectorError(text, at + 1, why);
  };
  const skipSpace = () => {
    while (i < text.length && /\s/.test(text[i]!)) i++;
  };
  // A key or value word: anything up to a delimiter; validity is checked after.
  const word = (): { s: string; at: number } => {
    skipSpace();
    const at = i;
    while (i < text.length && !/[\s,=!()]/.test(text[i]!)) i++;
    return { s: text.slice(at, i), at };
  };
  const requirements: Requirement[] = [];
  skipSpace();
  if (i === text.length) return { text, requirements };
  for (;;) {
    skipSpace();
    let negated = false;
    if (text[i] === "!") {
      negated = true;
      i++;
    }
    const key = word();
    if (!key.s) fail(i < text.length ? `expected a label key, found ${JSON.stringify(text[i])}` : "expected a label key, found the end");
    const kp = keyProblem(key.s);
    if (kp) fail(kp, key.at);
    skipSpace();
    if (negated) {
      requirements.push({ key: key.s, op: "!exists", values: [] });
    } else if (i === text.length || text[i] === ",") {
      requirements.push({ key: key.s, op: "exists", values: [] });
    } else if (text.startsWith("==", i) || text[i] === "=" || text.startsWith("!=", i)) {
      const op: Operator = text.startsWith("!=", i) ? "!=" : "=";
      i += text.startsWith("==", i) || op === "!=" ? 2 : 1;
      const v = word();
      if (i < text.length && !/[\s,]/.test(text[i]!)) fail(`unexpected ${JSON.stringify(text[i])} in the value`);
      const vp = valueProblem(v.s);
      if (vp) fail(vp, v.at);
      requirements.push({ key: key.s, op, values: [v.s] });
    } else {
      const opWord = word();
      if (opWord.s !== "in" && opWord.s !== "notin") {
        fail(opWord.s ? `unknown operator ${JSON.stringify(opWord.s)} (expected =, ==, !=, in, notin)` : `expected an operator, found ${JSON.stringify(text[i])}`, opWord.s ? opWord.at : i);
      }
      skipSpace();
      if (text[i] !== "(") fail(`expected '(' after ${opWord.s}`);
      i++;
      const values: string[] = [];
      for (;;) {
        const v = word();
        const vp = valueProblem(v.s);
        if (vp) fail(vp, v.at);
        skipSpace();
        if (text[i] === "," || text[i] === ")") {
          values.push(v.s);
          if (text[i++] === ")") break;
          continue;
        }
        fail(i < text.length ? `unexpected ${JSON.stringify(text[i])} in the value list` : "the value list has no closing ')'");
      }
      if (values.length === 1 && values[0] === "") fail(`the value list of ${opWord.s} is empty`, i - 1);
      requirements.push({ key: key.s, op: opWord.s === "in" ? "in" : "notin", values: [...new Set(values)] });
    }
    skipSpace();
    if (i === text.length) break;
    if (text[i] !== ",") fail(`expected ',' or the end, found ${JSON.stringify(text[i])}`);
    i++;
  }
  return { text, requirements };
}

function matchesRequirement(r: Requirement, labels: Record<string, string>): boolean {
  const has = Object.hasOwn(labels, r.key);
  const v = labels[r.key];
  switch (r.op) {
    case "exists":
      return has;
    case "!exists":
      return !has;
    case "=":
      return has && v === r.values[0];
    case "!=":
      return !has || v !== r.values[0];
    case "in":
      return has && r.values.includes(v!);
    case "notin":
      return !has || !r.values.includes(v!);
  }
}

/** True when every requirement holds for `labels` (an empty selector matches everything). */
export function matchesSelector(sel: Selector, labels: Record<string, string>): boolean {
  return sel.requirements.every((r) => matchesRequirement(r, labels));
}

/** The labels a selector sees for a container: its own, overlaid with its pod's. */
export function selectorLabels(c: FleetContainer): Record<string, string> {
  return c.podLabels ? { ...c.labels, ...c.podLabels } : c.labels;
}

export interface PodRef {
  /** Undefined: any namespace (unless the criteria's namespace says which). */
  namespace?: string;
  name: string;
}

/** "NS/NAME" or "NAME". Throws SelectorError for anything else. */
export function parsePodRef(text: string): PodRef {
  const parts = text.trim().split("/");
  const bad = (why: string) => new SelectionError(`invalid pod ${JSON.stringify(text)}: ${why}`, "give it as NAMESPACE/NAME or NAME");
  if (parts.length > 2) throw bad("more than one '/'");
  const name = parts.at(-1)!;
  const namespace = parts.length === 2 ? parts[0]! : undefined;
  if (!name) throw bad("the name is empty");
  if (namespace === "") throw bad("the namespace is empty");
  return { namespace, name };
}

export class SelectionError extends ProbeError {}

export interface SelectionCriteria {
  /** A pod by name, in criteria.namespace or pod.namespace (which must agree) or else in any namespace. */
  pod?: PodRef;
  /** The pod's namespace (io.kubernetes.pod.namespace). */
  namespace?: string;
  /** Parsed or as text. */
  selector?: Selector | string;
  /** io.kubernetes.container.name, or the engine's container name outside Kubernetes. */
  containerName?: string;
  /** Every container (still narrowed by the other criteria if given). */
  allContainers?: boolean;
}

/**
 * The containers meeting every given criterion. Throws SelectionError when no criterion is given
 * (selecting everything must be asked for with allContainers) or when the pod's namespace and
 * the namespace disagree; SelectorError for a selector that does not parse.
 */
export function select(containers: readonly FleetContainer[], criteria: SelectionCriteria): FleetContainer[] {
  const { pod, namespace, containerName, allContainers } = criteria;
  const selector = typeof criteria.selector === "string" ? parseSelector(criteria.selector) : criteria.selector;
  if (!pod && namespace === undefined && !selector && containerName === undefined && !allContainers) {
    throw new SelectionError("no container selection criteria were given", "name a pod, a namespace, a label selector or a container name, or ask for all containers");
  }
  if (pod?.namespace !== undefined && namespace !== undefined && pod.namespace !== namespace) {
    throw new SelectionError(`pod ${pod.namespace}/${pod.name} is not in namespace ${namespace}`);
  }
  const ns = pod?.namespace ?? namespace;
  return containers.filter((c) => {
    if (ns !== undefined && c.pod?.namespace !== ns) return false;
    if (pod && c.pod?.name !== pod.name) return false;
    if (containerName !== undefined && (c.containerName ?? c.name) !== containerName) return false;
    if (selector && !matchesSelector(selector, selectorLabels(c))) return false;
    return true;
  });
}
