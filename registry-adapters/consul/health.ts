// An instance's health from its Consul checks, and which checks matter to Cairn at all.
//
// Consul keeps node checks (`serfHealth`, maintenance, custom node checks: ServiceID '') and
// service checks (ServiceID set). Two policies:
// - `all` (Cairn's default, Consul's own rule for `?passing` and DNS): the instance's status is
//   the worst of its service checks and its node's checks. No check at all means passing.
// - `one` (fabio's default `registry.consul.checksRequired=one`): one service check in an
//   accepted status is enough; node checks other than a critical `serfHealth` are ignored, and an
//   instance without any service check is never routed (fabio only sees instances through their
//   checks).
// In both, maintenance (node `_node_maintenance`, or `_service_maintenance:<id>` critical) takes
// the instance out, and so does a critical `serfHealth` (its agent is gone).
//
// The status is computed once; the table then keeps the statuses `--health-status` accepts
// (passing, or passing,warning). "Best service check" under `one` is equivalent to fabio's "at
// least one check in an accepted status", because both accepted sets are upward closed.

import type { InstanceStatus } from '../../routing/types.ts';

export type ChecksRequired = 'one' | 'all';

/** The fields of a Consul health check Cairn reads. */
export interface CheckLike {
  readonly Node?: string;
  readonly CheckID?: string;
  readonly Status?: string;
  readonly ServiceID?: string;
  readonly ServiceName?: string;
  readonly ServiceTags?: readonly string[] | null;
}

export const serfHealth = 'serfHealth';
export const nodeMaintenance = '_node_maintenance';
export const serviceMaintenancePrefix = '_service_maintenance:';

/** passing < warning < critical; anything Consul might add later counts as critical. */
function rank(status: string | undefined): number {
  if (status === 'passing') return 0;
  if (status === 'warning') return 1;
  return 2;
}

const byRank: readonly InstanceStatus[] = ['passing', 'warning', 'critical'];

/** fabio's isServiceCheck: a check of the instance itself, not a node or maintenance check. */
export function isServiceCheck(c: CheckLike): boolean {
  const id = c.CheckID ?? '';
  return (
    (c.ServiceID ?? '') !== '' &&
    id !== serfHealth &&
    id !== nodeMaintenance &&
    !id.startsWith(serviceMaintenancePrefix)
  );
}

/**
 * The status of instance `serviceId` given its checks (the `Checks` of a `/v1/health/service`
 * entry: its node's checks and its own). Checks of other instances are ignored.
 */
export function instanceStatus(
  checks: readonly CheckLike[],
  serviceId: string,
  mode: ChecksRequired,
): InstanceStatus {
  let serfCritical = false;
  let worstNode = 0;
  let worstService = 0;
  let bestService = 3;
  let serviceChecks = 0;
  for (const c of checks) {
    const id = c.CheckID ?? '';
    const sid = c.ServiceID ?? '';
    if (id === nodeMaintenance) return 'maintenance';
    if (id === `${serviceMaintenancePrefix}${serviceId}` && sid === serviceId) {
      // fabio only honours a critical maintenance check; Consul always makes it critical.
      if (c.Status === 'critical') return 'maintenance';
      continue;
    }
    if (sid === '') {
      if (id === serfHealth && c.Status === 'critical') serfCritical = true;
      worstNode = Math.max(worstNode, rank(c.Status));
      continue;
    }
    if (sid !== serviceId || !isServiceCheck(c)) continue;
    const r = rank(c.Status);
    serviceChecks++;
    worstService = Math.max(worstService, r);
    bestService = Math.min(bestService, r);
  }
  if (serfCritical) return 'critical';
  if (mode === 'all') return byRank[Math.max(worstNode, worstService)] ?? 'critical';
  if (serviceChecks === 0) return 'unknown';
  return byRank[bestService] ?? 'critical';
}

/**
 * The instance weight from Consul `Weights`: `Passing` (default 1), or `Warning` while the
 * instance is in warning. 0 (allowed for Warning) means no traffic; undefined means "not given".
 */
export function consulWeight(
  weights: { readonly Passing?: unknown; readonly Warning?: unknown } | null | undefined,
  status: InstanceStatus,
): number | undefined {
  if (weights === null || weights === undefined) return undefined;
  const w = status === 'warning' ? weights.Warning : weights.Passing;
  return typeof w === 'number' && Number.isInteger(w) && w >= 0 ? w : undefined;
}

/** Whether `tag`, trimmed as fabio trims it, is a route tag. */
export function isRouteTag(tag: string, tagPrefix: string): boolean {
  return tag.trim().startsWith(tagPrefix);
}

/**
 * fabio's check filter: node-level and maintenance checks always matter (they can take any
 * instance out); a service check matters only when its instance carries a route tag.
 */
export function isRelevantCheck(c: CheckLike, tagPrefix: string): boolean {
  const id = c.CheckID ?? '';
  if ((c.ServiceID ?? '') === '' || id === serfHealth || id === nodeMaintenance) return true;
  if (id.startsWith(serviceMaintenancePrefix)) return true;
  for (const t of c.ServiceTags ?? []) if (typeof t === 'string' && isRouteTag(t, tagPrefix)) return true;
  return false;
}
