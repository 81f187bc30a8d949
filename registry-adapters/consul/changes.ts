// Working out *which* services changed, so only those are fetched again.
//
// - Catalog (`/v1/catalog/services`): the set of services with a route tag, and each one's tag
//   union; a service that appears, disappears or whose tag union changes is refetched.
// - Checks (`/v1/health/state/any`): every check, keyed by node and check id. A check that
//   appears, disappears, or changes status or tags marks its service; a node check marks every
//   routed service on that node. Checks are compared field by field rather than by
//   `ModifyIndex` alone: a new ModifyIndex with the same status and tags is an output-only
//   update (a TTL note, an HTTP body) and changes nothing Cairn routes on.
// - Sweep (`/v1/catalog/node/<node>`): some changes move no check at all (Weights, port, address
//   or meta re-registered, instances without checks); they move the catalog index, and a sweep
//   compares every instance's `ModifyIndex` with the one last fetched.

import { type CheckLike, isRelevantCheck, isRouteTag } from './health.ts';
import { instanceKey, type ServiceData } from './instances.ts';

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

// ---- catalog ----------------------------------------------------------------------------------

/** Routed service name -> its tag union, joined (for comparison). */
export type RoutedServices = ReadonlyMap<string, string>;

/** `/v1/catalog/services` -> the services with at least one route tag. */
export function routedServices(body: unknown, tagPrefix: string): RoutedServices | { error: string } {
  if (!isObj(body)) return { error: '/v1/catalog/services: expected an object of service names' };
  const out = new Map<string, string>();
  for (const [name, tags] of Object.entries(body)) {
    const list = Array.isArray(tags) ? tags.filter((t): t is string => typeof t === 'string') : [];
    if (list.some((t) => isRouteTag(t, tagPrefix))) out.set(name, [...list].sort().join('\n'));
  }
  return out;
}

export interface CatalogDiff {
  /** New services, or services whose tag union changed. */
  readonly changed: string[];
  /** Services that lost their last route tag or instance. */
  readonly removed: string[];
}

export function diffRouted(prev: RoutedServices, next: RoutedServices): CatalogDiff {
  const changed: string[] = [];
  const removed: string[] = [];
  for (const [name, tags] of next) if (prev.get(name) !== tags) changed.push(name);
  for (const name of prev.keys()) if (!next.has(name)) removed.push(name);
  return { changed, removed };
}

// ---- checks -----------------------------------------------------------------------------------

export interface CheckState {
  readonly node: string;
  readonly serviceId: string;
  readonly serviceName: string;
  readonly status: string;
  readonly tags: string;
  readonly modifyIndex: number;
}

/** `node\0checkID` -> the check, for the checks that matter (fabio's filter). */
export type CheckMap = ReadonlyMap<string, CheckState>;

/** `/v1/health/state/any` -> the relevant checks. */
export function indexChecks(body: unknown, tagPrefix: string): CheckMap | { error: string } {
  if (body === undefined) body = [];
  if (!Array.isArray(body)) return { error: '/v1/health/state/any: expected a list of checks' };
  const out = new Map<string, CheckState>();
  for (const raw of body) {
    if (!isObj(raw)) continue;
    const c = raw as CheckLike & { ModifyIndex?: unknown };
    if (!isRelevantCheck(c, tagPrefix)) continue;
    const node = typeof c.Node === 'string' ? c.Node : '';
    const id = typeof c.CheckID === 'string' ? c.CheckID : '';
    out.set(`${node}\0${id}`, {
      node,
      serviceId: typeof c.ServiceID === 'string' ? c.ServiceID : '',
      serviceName: typeof c.ServiceName === 'string' ? c.ServiceName : '',
      status: typeof c.Status === 'string' ? c.Status : '',
      tags: Array.isArray(c.ServiceTags) ? c.ServiceTags.join('\n') : '',
      modifyIndex: typeof c.ModifyIndex === 'number' ? c.ModifyIndex : -1,
    });
  }
  return out;
}

export interface CheckChanges {
  /** Services with a service check that appeared, vanished or changed status or tags. */
  readonly services: Set<string>;
  /** Nodes with a node check that did. */
  readonly nodes: Set<string>;
}

export function diffChecks(prev: CheckMap, next: CheckMap): CheckChanges {
  const services = new Set<string>();
  const nodes = new Set<string>();
  const mark = (c: CheckState): void => {
    if (c.serviceId === '') nodes.add(c.node);
    else services.add(c.serviceName);
  };
  for (const [k, c] of next) {
    const p = prev.get(k);
    if (p === undefined) mark(c);
    else if (
      p.status !== c.status ||
      p.tags !== c.tags ||
      p.serviceId !== c.serviceId ||
      p.serviceName !== c.serviceName
    ) {
      mark(c);
      // A check id re-registered for another instance: the old one changed too.
      if (p.serviceId !== c.serviceId || p.serviceName !== c.serviceName) mark(p);
    }
  }
  for (const [k, p] of prev) if (!next.has(k)) mark(p);
  return { services, nodes };
}

// ---- sweep ------------------------------------------------------------------------------------

/** `/v1/catalog/nodes` -> node names. */
export function nodeNames(body: unknown): string[] | { error: string } {
  if (!Array.isArray(body)) return { error: '/v1/catalog/nodes: expected a list of nodes' };
  const out: string[] = [];
  for (const n of body) if (isObj(n) && typeof n.Node === 'string') out.push(n.Node);
  return out;
}

/** Service name -> (`node\0serviceID` -> ModifyIndex), as the sweep saw the catalog. */
export type SeenInstances = Map<string, Map<string, number>>;

/**
 * Adds one `/v1/catalog/node/<node>` answer to `seen`, for the routed services only. A node that
 * vanished between listing and reading answers 404 (body undefined): it has no instances.
 */
export function addNodeServices(
  seen: SeenInstances,
  node: string,
  body: unknown,
  routed: RoutedServices,
): { error: string } | undefined {
  if (body === undefined || body === null) return undefined;
  if (!isObj(body)) return { error: `/v1/catalog/node/${node}: expected an object` };
  const services = body.Services;
  if (services === null || services === undefined) return undefined;
  // Consul answers a map keyed by service ID; newer versions' node-services answer a list.
  const list = Array.isArray(services) ? services : isObj(services) ? Object.values(services) : undefined;
  if (list === undefined) return { error: `/v1/catalog/node/${node}: Services is not a map` };
  for (const s of list) {
    if (!isObj(s) || typeof s.Service !== 'string' || typeof s.ID !== 'string') continue;
    if (!routed.has(s.Service)) continue;
    let m = seen.get(s.Service);
    if (m === undefined) {
      m = new Map();
      seen.set(s.Service, m);
    }
    m.set(instanceKey(node, s.ID), typeof s.ModifyIndex === 'number' ? s.ModifyIndex : -1);
  }
  return undefined;
}

/** The services whose instances (set or ModifyIndex) differ from what was fetched. */
export function sweepChanges(known: Iterable<ServiceData>, seen: SeenInstances): string[] {
  const out: string[] = [];
  for (const data of known) {
    const now = seen.get(data.name) ?? new Map<string, number>();
    if (now.size !== data.modifyIndex.size) {
      out.push(data.name);
      continue;
    }
    for (const [k, idx] of data.modifyIndex) {
      if (now.get(k) !== idx) {
        out.push(data.name);
        break;
      }
    }
  }
  return out;
}
