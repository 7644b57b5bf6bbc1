// A container's pod and the pod's labels, from the labels the runtimes keep.
//
// Where a pod's labels live (what selectors match):
//   kubelet gives the CRI runtime a pod sandbox whose labels are the pod's labels plus
//   io.kubernetes.pod.{name,namespace,uid}, and containers whose labels are only
//   io.kubernetes.pod.{name,namespace,uid} and io.kubernetes.container.name.
//   - containerd's CRI plugin stores the sandbox as a containerd container (the pause process) whose
//     labels are the pause image's labels, overlaid by the sandbox's labels, plus
//     io.cri-containerd.kind=sandbox; app containers get their image's labels, overlaid by the
//     container's labels, plus io.cri-containerd.kind=container. Pod annotations are not labels:
//     they stay in the sandbox's io.cri-containerd.sandbox.metadata extension. (The OCI spec's
//     annotations add io.kubernetes.cri.sandbox-{id,name,namespace,uid} and container-type.)
//     tests/kernel/fleet.test.ts checks this against containerd 1.6's CRI plugin driven over gRPC.
//   - cri-dockerd (and the older dockershim) stores the sandbox as a docker container labelled
//     io.kubernetes.docker.type=podsandbox, with the pod's labels, and the pod's annotations as
//     labels named annotation.KEY; app containers are labelled io.kubernetes.docker.type=container
//     and io.kubernetes.sandbox.id. (From cri-dockerd's source; it is not in Debian to test.)
//   - crictl reports pod labels directly (`crictl pods`). (crictl is not in Debian 12: untested.)
//   So a container's pod labels are its sandbox's labels (matched by io.kubernetes.pod.uid) less
//   the runtime's own keys: io.kubernetes.*, io.cri-containerd.*, annotation.*. Sandboxes
//   themselves are not listed (their process is the pause program). A pod's labels are as they
//   were when its sandbox was made: `kubectl label` on a running pod is not seen by the runtime.
import type { FleetContainer } from "./discovery.ts";

/** Label keys kubelet sets on every container and sandbox it asks a runtime for. */
export const K8S_LABELS = {
  podName: "io.kubernetes.pod.name",
  podNamespace: "io.kubernetes.pod.namespace",
  podUid: "io.kubernetes.pod.uid",
  containerName: "io.kubernetes.container.name",
} as const;

export interface PodInfo {
  name: string;
  namespace: string;
  /** "" when the runtime did not record it. */
  uid: string;
}

function isStringRecord(v: unknown): v is Record<string, string> {
  return typeof v === "object" && v !== null && !Array.isArray(v) && Object.values(v).every((x) => typeof x === "string");
}

export function labelsOf(v: unknown): Record<string, string> {
  if (!isStringRecord(v)) return {};
  return { ...v };
}

const RUNTIME_KEY = /^(io\.kubernetes\.|io\.cri-containerd\.|annotation\.)/;

/** A sandbox's labels without the runtime's own keys: the pod's labels. */
export function podLabelsFromSandbox(labels: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(labels)) if (!RUNTIME_KEY.test(k)) out[k] = v;
  return out;
}

/** Sandbox containers as the CRI runtimes mark them. */
export function isSandbox(labels: Record<string, string>): boolean {
  return labels["io.cri-containerd.kind"] === "sandbox" || labels["io.kubernetes.docker.type"] === "podsandbox";
}

function podOf(labels: Record<string, string>): PodInfo | undefined {
  const name = labels[K8S_LABELS.podName];
  const namespace = labels[K8S_LABELS.podNamespace];
  if (!name || !namespace) return undefined;
  return { name, namespace, uid: labels[K8S_LABELS.podUid] ?? "" };
}

/** What an engine says of one container, before its pod is known. */
export type Found = Pick<FleetContainer, "engine" | "id" | "name" | "namespace" | "address" | "labels" | "pid">;

export function toContainer(f: Found, podLabels?: Record<string, string>): FleetContainer {
  const c: FleetContainer = { engine: f.engine, id: f.id, name: f.name, labels: f.labels, pid: f.pid };
  if (f.namespace !== undefined) c.namespace = f.namespace;
  if (f.address !== undefined) c.address = f.address;
  const pod = podOf(f.labels);
  if (pod) c.pod = pod;
  const cn = f.labels[K8S_LABELS.containerName];
  if (cn) c.containerName = cn;
  if (podLabels) c.podLabels = podLabels;
  return c;
}

/** Splits found entries into app containers and sandboxes, giving each container its pod's labels. */
export function withPodLabels(found: Found[], podLabelsByUid: Map<string, Record<string, string>> = new Map()): FleetContainer[] {
  for (const f of found) {
    const uid = f.labels[K8S_LABELS.podUid];
    if (uid && isSandbox(f.labels)) podLabelsByUid.set(uid, podLabelsFromSandbox(f.labels));
  }
  return found.filter((f) => !isSandbox(f.labels)).map((f) => toContainer(f, podLabelsByUid.get(f.labels[K8S_LABELS.podUid] ?? "")));
}
