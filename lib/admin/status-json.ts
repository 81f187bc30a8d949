// `GET /api/status`: the table's version and age, each registry's state (up / stale / down since
// when, its last change), the problems of the live table, and what the admin allows.

import type { ExcludedInstance, Problem } from '../../routing/types.ts';
import type { CairnServer } from '../server.ts';
import type { DrainingTarget } from '../stats/telemetry.ts';
import type { WorkerJson } from '../workers/view.ts';

export interface RegistryJson {
  readonly name: string;
  readonly state: 'starting' | 'up' | 'stale' | 'down';
  /** ISO time of the transition into `state`. */
  readonly since: string;
  /** ISO time of the registry's last delivered change. */
  readonly last_change: string;
  readonly error?: string;
}

export interface StatusJson {
  /** Content hash of the live table. */
  readonly version: string;
  readonly routes: number;
  /** Table swaps since start (the first table counts). */
  readonly swaps: number;
  /** ISO time the live table was built (its last change). */
  readonly built_at: string;
  readonly registries: readonly RegistryJson[];
  readonly problems: readonly Problem[];
  readonly excluded: readonly ExcludedInstance[];
  /** Targets that left the table and still carry requests or connections. */
  readonly draining: readonly DrainingTarget[];
  /** True while Cairn shuts down (`/health` answers 503). */
  readonly shutting_down: boolean;
  /** Where `PUT /api/manual` stores overrides: a registry name or `memory`. */
  readonly manual_store: string;
  readonly admin: { readonly readonly: boolean; readonly token_required: boolean };
  /** Per-request metrics and live traffic are recorded (`--metrics`). */
  readonly metrics: boolean;
  /** `--workers N` (N > 1): the worker processes that serve the traffic; absent with one process. */
  readonly workers?: readonly WorkerJson[];
}

export function statusJson(cairn: CairnServer, manualStore: string, admin: StatusJson['admin']): StatusJson {
  const runtime = cairn.controller.current;
  const table = runtime.table;
  const telemetry = cairn.telemetry;
  return {
    version: table.version,
    routes: table.routes.length,
    swaps: cairn.controller.swapCount,
    built_at: new Date(runtime.builtAt).toISOString(),
    registries: telemetry.registries().map((r) => ({
      name: r.name,
      state: r.state,
      since: new Date(r.since).toISOString(),
      last_change: new Date(r.lastChange).toISOString(),
      ...(r.error !== undefined ? { error: r.error } : {}),
    })),
    problems: table.problems,
    excluded: table.excluded,
    draining: telemetry.draining(),
    shutting_down: cairn.isDraining,
    manual_store: manualStore,
    admin,
    metrics: telemetry.recording,
    ...(cairn.cluster !== undefined ? { workers: cairn.cluster.workers() } : {}),
  };
}
