// The form a routing table travels in from the control process to its workers: the build inputs
// (every registry's latest snapshot merged, as the Controller merges them), serialised once per
// swap. A worker rebuilds the table with the same build options and must arrive at the same
// version hash; inputs are much smaller than the built table (no routers, no per-target objects)
// and rebuilding is deterministic, so this is both the cheapest and a checkable form.

import { IncrementalTableBuilder } from '../../routing/table.ts';
import type { BuildOptions, Problem, RouteTable, ServiceInstance, Snapshot } from '../../routing/types.ts';
import type { RegistryInfo } from '../controller.ts';

/** The merged snapshot of every registry, in the Controller's order (see Controller.rebuild). */
export function mergedInputs(registries: readonly RegistryInfo[]): Snapshot {
  const instances: ServiceInstance[] = [];
  const manual: string[] = [];
  const problems: Problem[] = [];
  for (const r of registries) {
    const s = r.snapshot;
    if (s === undefined) continue;
    for (const i of s.instances) instances.push(i.registry === undefined ? { ...i, registry: r.name } : i);
    if (s.manual.trim() !== '') manual.push(s.manual);
    for (const p of s.problems ?? []) problems.push(p);
  }
  return { instances, manual: manual.join('\n'), problems };
}

export function serialiseInputs(inputs: Snapshot): string {
  return JSON.stringify(inputs);
}

export type RebuildResult =
  | { readonly ok: true; readonly table: RouteTable }
  | { readonly ok: false; readonly error: string; readonly got?: string };

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
  const table = b.build(inputs);
  if (table.version !== version) return { ok: false, error: 'table version mismatch', got: table.version };
  return { ok: true, table };
}
