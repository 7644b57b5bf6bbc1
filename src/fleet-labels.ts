// How a selected container is named in rows, notes and metrics labels (no fleet code loaded:
// commands import this whether or not containers are selected).
import type { TracedContainer } from "./fleet.ts";

export interface ContainerLabels {
  pod: string;
  namespace: string;
  container: string;
}

/** pod, namespace and container of a selected container ("" each when unknown). */
export function containerLabels(t: TracedContainer | undefined): ContainerLabels {
  const c = t?.container;
  return { pod: c?.pod?.name ?? "", namespace: c?.pod?.namespace ?? "", container: c?.containerName ?? c?.name ?? "" };
}

/** How a container is named in notes: "shop/web-7d9f/nginx" for a pod's, else the engine's name. */
export function containerName(c: TracedContainer): string {
  return podColumn(containerLabels(c));
}

/** The POD column: "shop/web-7d9f/nginx" for a pod's container, the engine's name for another, "-" for none. */
export function podColumn(l: ContainerLabels | undefined): string {
  if (!l || !l.container) return "-";
  return l.pod ? `${l.namespace}/${l.pod}/${l.container}` : l.container;
}
