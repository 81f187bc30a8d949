// `/v1/health/service/<name>` entries -> ServiceInstances, the one place Consul's records become
// Cairn's. Follows fabio: the instance address is `Service.Address`, else the node's `Address`
// (an IPv6 address is bracketed later, when the route command's URL is built); `$DC` in a route
// tag is the instance's datacenter. Adds Cairn's Weights. A malformed entry is skipped with a
// problem; unknown fields are ignored.

import type { Problem, ServiceInstance } from '../../routing/types.ts';
import { type ChecksRequired, type CheckLike, consulWeight, instanceStatus } from './health.ts';

export interface ConvertOptions {
  readonly tagPrefix: string;
  readonly checksRequired: ChecksRequired;
  /** The adapter's name, stamped on every instance (`consul:http://...`). */
  readonly registry: string;
  /** `$DC` when an entry does not name its node's datacenter. */
  readonly datacenter?: string | undefined;
}

/** One service's instances as last fetched, and what the sweep compares against. */
export interface ServiceData {
  readonly name: string;
  readonly instances: readonly ServiceInstance[];
  readonly problems: readonly Problem[];
  /** `node\0serviceID` -> the instance's `Service.ModifyIndex`. */
  readonly modifyIndex: ReadonlyMap<string, number>;
  /** Nodes the instances run on (a node check change refetches this service). */
  readonly nodes: ReadonlySet<string>;
}

/** Meta key holding the instance's Consul node; Consul meta keys cannot contain a dot. */
export const nodeMetaKey = 'consul.node';
/** Meta key set when Weights.Warning is 0 and the instance is in warning: no traffic. */
export const weightZeroMetaKey = 'consul.weight-zero';

export function instanceKey(node: string, serviceId: string): string {
  return `${node}\0${serviceId}`;
}

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function str(v: unknown): string {
  return typeof v === 'string' ? v : '';
}

function stringList(v: unknown): string[] {
  return Array.isArray(v) ? v.filter((t): t is string => typeof t === 'string') : [];
}

function entryText(e: unknown): string {
  let s: string;
  try {
    s = JSON.stringify(e) ?? String(e);
  } catch {
    s = String(e);
  }
  return s.length > 200 ? `${s.slice(0, 200)}...` : s;
}

/**
 * Converts a `/v1/health/service/<name>` body. A body that is not a list is an error (the caller
 * keeps the previous data); a bad entry is a problem.
 */
export function serviceData(name: string, body: unknown, o: ConvertOptions): ServiceData | { error: string } {
  if (body === undefined) body = [];
  if (!Array.isArray(body))
    return { error: `/v1/health/service/${name}: expected a list, got ${entryText(body)}` };
  const instances: ServiceInstance[] = [];
  const problems: Problem[] = [];
  const modifyIndex = new Map<string, number>();
  const nodes = new Set<string>();
  for (const entry of body) {
    const bad = (reason: string): void => {
      problems.push({
        source: 'registry',
        severity: 'error',
        service: name,
        reason,
        input: entryText(entry),
      });
    };
    if (!isObj(entry) || !isObj(entry.Service)) {
      bad('Consul entry without a Service object; skipped');
      continue;
    }
    const svc = entry.Service;
    const node = isObj(entry.Node) ? entry.Node : {};
    const id = str(svc.ID);
    if (id === '') {
      bad('Consul service entry without an ID; skipped');
      continue;
    }
    const port = svc.Port;
    if (typeof port !== 'number') {
      bad(`instance ${id}: Port is not a number; skipped`);
      continue;
    }
    const nodeName = str(node.Node);
    const checks = Array.isArray(entry.Checks) ? (entry.Checks.filter(isObj) as CheckLike[]) : [];
    let status = instanceStatus(checks, id, o.checksRequired);
    const weights = isObj(svc.Weights) ? svc.Weights : undefined;
    const weight = consulWeight(weights, status);
    const meta: Record<string, string> = {};
    if (isObj(svc.Meta))
      for (const [k, v] of Object.entries(svc.Meta)) if (typeof v === 'string') meta[k] = v;
    meta[nodeMetaKey] = nodeName;
    if (weight === 0) {
      // Weights.Warning = 0: the operator wants no traffic while warning. The table has no
      // zero weight, so the instance is shown as taken out of rotation instead.
      status = 'maintenance';
      meta[weightZeroMetaKey] = 'Weights.Warning is 0: no traffic while warning';
    }
    const dc = str(node.Datacenter) || (o.datacenter ?? '');
    const instance: ServiceInstance = {
      service: str(svc.Service) || name,
      id,
      address: str(svc.Address) || str(node.Address),
      port,
      tags: expandDatacenter(stringList(svc.Tags), o.tagPrefix, dc),
      status,
      registry: o.registry,
      meta,
      ...(weight !== undefined && weight > 0 ? { weight } : {}),
    };
    instances.push(instance);
    const mi = svc.ModifyIndex;
    modifyIndex.set(instanceKey(nodeName, id), typeof mi === 'number' ? mi : -1);
    nodes.add(nodeName);
  }
  instances.sort(compareInstances);
  return { name, instances, problems, modifyIndex, nodes };
}

function compareInstances(a: ServiceInstance, b: ServiceInstance): number {
  const na = a.meta?.[nodeMetaKey] ?? '';
  const nb = b.meta?.[nodeMetaKey] ?? '';
  if (a.id !== b.id) return a.id < b.id ? -1 : 1;
  return na < nb ? -1 : na > nb ? 1 : 0;
}

/**
 * `$DC` / `${DC}` in the route part of route tags (the word after the prefix), as fabio expands
 * it with its datacenter. Every other `$...` is left for the table builder, which expands the
 * same route part with Go's os.Expand rules, so this pass scans `$` the same way to stay exact
 * (`$$DC` is `$$` then `DC`).
 */
export function expandDatacenter(tags: readonly string[], tagPrefix: string, dc: string): string[] {
  const out: string[] = [];
  for (const tag of tags) {
    const start = tag.indexOf(tagPrefix);
    if (!tag.includes('$') || start < 0 || tag.slice(0, start).trim() !== '') {
      out.push(tag);
      continue;
    }
    const from = start + tagPrefix.length;
    // The route ends at the first space after it (leading white space is trimmed first).
    let i = from;
    while (i < tag.length && /\s/.test(tag[i] ?? '')) i++;
    const space = tag.indexOf(' ', i);
    const end = space < 0 ? tag.length : space;
    const route = tag.slice(i, end);
    // The table builder expands only `host/path` routes, not `:port` or slash-less ones.
    if (route.startsWith(':') || !route.includes('/')) {
      out.push(tag);
      continue;
    }
    out.push(tag.slice(0, i) + expandDcVar(route, dc) + tag.slice(end));
  }
  return out;
}

const shellSpecial = '*#$@!?-0123456789';

function isNameChar(c: string): boolean {
  return /[A-Za-z0-9_]/.test(c);
}

/** Go os.Expand's tokenisation, replacing only the variable DC. */
function expandDcVar(s: string, dc: string): string {
  let out = '';
  let i = 0;
  while (i < s.length) {
    const c = s[i] ?? '';
    if (c !== '$' || i + 1 >= s.length) {
      out += c;
      i++;
      continue;
    }
    const next = s[i + 1] ?? '';
    let name = '';
    let len: number;
    if (next === '{') {
      const close = s.indexOf('}', i + 2);
      if (i + 3 < s.length && shellSpecial.includes(s[i + 2] ?? '') && s[i + 3] === '}') len = 4;
      else if (close < 0) len = 2;
      else {
        name = s.slice(i + 2, close);
        len = close - i + 1;
      }
    } else if (shellSpecial.includes(next)) {
      len = 2;
    } else {
      let k = i + 1;
      while (k < s.length && isNameChar(s[k] ?? '')) k++;
      name = s.slice(i + 1, k);
      len = k - i;
    }
    const token = s.slice(i, i + len);
    out += name === 'DC' ? dc : token;
    i += Math.max(len, 1);
  }
  return out;
}
