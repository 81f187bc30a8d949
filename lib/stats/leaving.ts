// Targets that left the table at a swap, by key, for the UI's "draining" list (until nothing is
// in flight to them). Only the routes that went or changed can have taken a target out (the table
// builder hands unchanged routes over as the same objects), and only their keys, plus those
// already leaving, are looked for in the new table: no index of every live key is kept between
// swaps (in a 10,000-route table that was a 10,000-entry map in every process).

import type { RouteTable } from '../../routing/types.ts';
import { routesBySrc } from './route-index.ts';

export interface LeavingTarget {
  readonly service: string;
  readonly dst: string;
}

/**
 * `current` replaces `previous`: targets of `previous` whose key `current` has no longer join
 * `leaving`; keys in `leaving` that `current` has again leave it.
 */
export function trackLeaving(
  previous: Pick<RouteTable, 'routes'>,
  current: Pick<RouteTable, 'routes'>,
  leaving: Map<string, LeavingTarget>,
): void {
  const after = routesBySrc(current);
  const gone = new Map<string, LeavingTarget>();
  for (const r of previous.routes) {
    if (after.get(r.src) === r) continue;
    for (const t of r.targets) gone.set(t.key, t);
  }
  if (gone.size === 0 && leaving.size === 0) return;
  const live = new Set<string>();
  for (const r of current.routes) {
    for (const t of r.targets) if (gone.has(t.key) || leaving.has(t.key)) live.add(t.key);
  }
  for (const k of leaving.keys()) if (live.has(k)) leaving.delete(k);
  for (const [k, t] of gone) if (!live.has(k)) leaving.set(k, { service: t.service, dst: t.dst });
}
