// The form a routing table travels in from the control process to its workers: the build inputs
// (every registry's latest snapshot merged: the Controller's `inputs`), serialised once per
// swap. A worker rebuilds the table with the same build options and must arrive at the same
// version hash; inputs are much smaller than the built table (no routers, no per-target objects)
// and rebuilding is deterministic, so this is both the cheapest and a checkable form.

import { IncrementalTableBuilder } from '../../routing/table.ts';
import type {
  BuildOptions,
  InstanceStatus,
  RouteTable,
  ServiceInstance,
  Snapshot,
} from '../../routing/types.ts';

export function serialiseInputs(inputs: Snapshot): string {
  return JSON.stringify(inputs);
}

export type RebuildResult =
  | { readonly ok: true; readonly table: RouteTable }
  | { readonly ok: false; readonly error: string; readonly got?: string };

/** A worker builder's previous inputs (the builder keeps the same array, so this costs nothing). */
const previousInputs = new WeakMap<IncrementalTableBuilder, readonly ServiceInstance[]>();

/**
 * The worker side: rebuild, and accept the table only if it hashes to the control's version. A
 * worker passes the same builder every time, so a change rebuilds only the services it touched
 * (as the control's Controller does); a plain BuildOptions builds from scratch.
 */
export function rebuildTable(
  json: string,
  version: string,
  builder: IncrementalTableBuilder | BuildOptions,
): RebuildResult {
  let inputs: Snapshot;
  try {
    inputs = JSON.parse(json) as Snapshot;
  } catch (err) {
    return { ok: false, error: `table inputs are not JSON: ${(err as Error).message}` };
  }
  const b = builder instanceof IncrementalTableBuilder ? builder : new IncrementalTableBuilder(builder);
  const instances = Array.isArray(inputs.instances)
    ? reuseRecords(inputs.instances, previousInputs.get(b) ?? [])
    : inputs.instances;
  const table = b.build({ ...inputs, instances });
  previousInputs.set(b, instances);
  if (table.version !== version) return { ok: false, error: 'table version mismatch', got: table.version };
  return { ok: true, table };
}

/**
 * The parsed instances with every record equal to one of the previous message's (same place,
 * counted from the head or the tail, as a change is a window in the control's stable order)
 * replaced by that earlier object; the strings of the new ones interned among themselves.
 *
 * Why: JSON.parse makes every string a copy of its own, so a registry name or an address that
 * 10,000 instances share is kept 10,000 times, and a table rebuilt from all-new records would
 * hold only new copies. The same objects as before also let the builder find what changed by
 * identity (a window of changed records) instead of regrouping every instance.
 */
export function reuseRecords(
  parsed: readonly ServiceInstance[],
  previous: readonly ServiceInstance[],
): ServiceInstance[] {
  const out = new Array<ServiceInstance>(parsed.length);
  const min = Math.min(parsed.length, previous.length);
  let head = 0;
  while (head < min && sameJson(parsed[head], previous[head])) {
    out[head] = previous[head] as ServiceInstance;
    head++;
  }
  let tail = 0;
  while (
    tail < min - head &&
    sameJson(parsed[parsed.length - 1 - tail], previous[previous.length - 1 - tail])
  ) {
    out[parsed.length - 1 - tail] = previous[previous.length - 1 - tail] as ServiceInstance;
    tail++;
  }
  const strings = new Map<string, string>();
  const intern = (v: string): string => {
    const hit = strings.get(v);
    if (hit !== undefined) return hit;
    strings.set(v, v);
    return v;
  };
  let lastTags: readonly string[] | undefined;
  for (let i = head; i < parsed.length - tail; i++) {
    const inst = parsed[i] as ServiceInstance & Record<string, unknown>;
    let tags = inst.tags;
    if (Array.isArray(tags)) {
      // Instances of one service usually carry the same tags (and sit next to each other).
      if (lastTags !== undefined && sameJson(tags, lastTags)) tags = lastTags;
      else tags = tags.map((t) => (typeof t === 'string' ? intern(t) : t));
      lastTags = tags;
    }
    out[i] = {
      ...inst,
      ...(typeof inst.service === 'string' ? { service: intern(inst.service) } : {}),
      ...(typeof inst.address === 'string' ? { address: intern(inst.address) } : {}),
      ...(typeof inst.registry === 'string' ? { registry: intern(inst.registry) } : {}),
      ...(typeof inst.status === 'string' ? { status: intern(inst.status) as InstanceStatus } : {}),
      ...(tags !== inst.tags ? { tags } : {}),
    };
  }
  return out;
}

/** Equal as JSON values (what crossed the wire: strings, numbers, booleans, null, arrays, objects). */
function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!sameJson(a[i], b[i])) return false;
    return true;
  }
  if (Array.isArray(b)) return false;
  const x = a as Record<string, unknown>;
  const y = b as Record<string, unknown>;
  let n = 0;
  for (const k in x) {
    if (!Object.hasOwn(y, k) || !sameJson(x[k], y[k])) return false;
    n++;
  }
  for (const _ in y) n--;
  return n === 0;
}
