// The one place where registry snapshots become the live table: merge every registry's latest
// snapshot, build a new table (pure), and swap it in whole. Readers (listeners, admin) grab
// `controller.current` once per request and finish on that snapshot.
//
// A registry that fails keeps its last good snapshot in the merge, so an outage never empties
// the table; the state is reported instead.

import { createBalancer } from '../routing/balancers/index.ts';
import { IncrementalTableBuilder } from '../routing/table.ts';
import type {
  Balancer,
  BuildOptions,
  Problem,
  Route,
  RouteTable,
  ServiceInstance,
  Snapshot,
  Strategy,
} from '../routing/types.ts';
import type { TargetHealth } from './health/target-health.ts';
import { routesBySrc } from './stats/route-index.ts';

/** A table plus the balancer state for it: what a request works against from lookup to forward. */
export class TableRuntime {
  readonly table: RouteTable;
  private readonly balancers = new Map<Route, Balancer>();
  private readonly strategy: Strategy;
  private readonly health: TargetHealth;
  readonly builtAt: number;

  constructor(table: RouteTable, strategy: Strategy, health: TargetHealth, builtAt = Date.now()) {
    this.table = table;
    this.builtAt = builtAt;
    this.strategy = strategy;
    this.health = health;
  }

  /**
   * The route's balancer in this snapshot (fresh state per snapshot, as ever), made when the
   * route first takes traffic: a swap does not pay for the thousands of routes a change did not
   * touch, and most of a big table's routes are idle between two swaps anyway.
   */
  balancer(route: Route): Balancer | undefined {
    let b = this.balancers.get(route);
    if (b === undefined) {
      // Only routes of this table (a route object can be shared by several tables).
      if (routesBySrc(this.table).get(route.src) !== route) return undefined;
      b = createBalancer(this.strategy, route, this.health);
      this.balancers.set(route, b);
    }
    return b;
  }
}

export type RegistryStatus = 'starting' | 'up' | 'down';

export interface RegistryInfo {
  readonly name: string;
  status: RegistryStatus;
  since: number;
  lastChange: number;
  error: string | undefined;
  snapshot: Snapshot | undefined;
}

export interface SwapEvent {
  readonly previous: RouteTable;
  readonly current: RouteTable;
}

export interface ControllerOptions {
  readonly build: BuildOptions;
  readonly strategy: Strategy;
  readonly health: TargetHealth;
  readonly onSwap?: (e: SwapEvent) => void;
  readonly onProblems?: (problems: readonly Problem[]) => void;
}

export class Controller {
  private runtime: TableRuntime;
  private readonly registries = new Map<string, RegistryInfo>();
  private readonly opts: ControllerOptions;
  private swaps = 0;
  private rebuildQueued = false;
  /** Keeps the previous build's products: a change rebuilds only what it touched. */
  private readonly builder: IncrementalTableBuilder;
  /**
   * Instances a registry reported without a registry name, with the name added: the same copy
   * for the same record, so unchanged records keep their identity from build to build.
   */
  private readonly named = new Map<string, WeakMap<ServiceInstance, ServiceInstance>>();
  /** What the last build was given (the builder keeps the same arrays: no copy). */
  private lastInputs: Snapshot = { instances: [], manual: '' };

  constructor(opts: ControllerOptions) {
    this.opts = opts;
    this.builder = new IncrementalTableBuilder(opts.build);
    this.runtime = new TableRuntime(this.builder.build(this.lastInputs), opts.strategy, opts.health);
  }

  /** The live table and balancers; read once per request. */
  get current(): TableRuntime {
    return this.runtime;
  }

  /**
   * The merged registry inputs of the last build: they build the current table (or one of the
   * same version). What `--workers` sends its workers to rebuild it from.
   */
  get inputs(): Snapshot {
    return this.lastInputs;
  }

  get swapCount(): number {
    return this.swaps;
  }

  /**
   * Swaps in a table built elsewhere (a worker process gets its tables from the control process,
   * which runs the registries). Same swap event as a rebuild.
   */
  install(table: RouteTable): void {
    const previous = this.runtime.table;
    this.runtime = new TableRuntime(table, this.opts.strategy, this.opts.health);
    this.swaps++;
    this.opts.onSwap?.({ previous, current: table });
  }

  registry(name: string): RegistryInfo {
    let r = this.registries.get(name);
    if (r === undefined) {
      const now = Date.now();
      r = { name, status: 'starting', since: now, lastChange: now, error: undefined, snapshot: undefined };
      this.registries.set(name, r);
    }
    return r;
  }

  registryInfos(): RegistryInfo[] {
    return [...this.registries.values()];
  }

  /** A registry's new full snapshot. Rebuilds synchronously (tests and CLI rely on that). */
  updateSnapshot(name: string, snapshot: Snapshot): void {
    const r = this.registry(name);
    r.snapshot = snapshot;
    r.lastChange = Date.now();
    this.setStatus(name, 'up', undefined);
    this.rebuild();
  }

  /** Coalesces several updates arriving in one tick into one rebuild. */
  updateSnapshotSoon(name: string, snapshot: Snapshot): void {
    const r = this.registry(name);
    r.snapshot = snapshot;
    r.lastChange = Date.now();
    this.setStatus(name, 'up', undefined);
    if (this.rebuildQueued) return;
    this.rebuildQueued = true;
    setImmediate(() => {
      this.rebuildQueued = false;
      this.rebuild();
    });
  }

  setStatus(name: string, status: RegistryStatus, error: string | undefined): void {
    const r = this.registry(name);
    if (r.status !== status) {
      r.status = status;
      r.since = Date.now();
    }
    r.error = error;
  }

  rebuild(): void {
    const instances: ServiceInstance[] = [];
    const manual: string[] = [];
    const problems: Problem[] = [];
    for (const r of this.registries.values()) {
      const s = r.snapshot;
      if (s === undefined) continue;
      for (const i of s.instances)
        instances.push(i.registry === undefined ? this.withRegistry(r.name, i) : i);
      if (s.manual.trim() !== '') manual.push(s.manual);
      for (const p of s.problems ?? []) problems.push(p);
    }
    this.lastInputs = { instances, manual: manual.join('\n'), problems };
    const table = this.builder.build(this.lastInputs);
    this.opts.onProblems?.(table.problems);
    if (table.version === this.runtime.table.version && sameExcluded(table, this.runtime.table)) return;
    const previous = this.runtime.table;
    this.runtime = new TableRuntime(table, this.opts.strategy, this.opts.health);
    this.swaps++;
    this.opts.onSwap?.({ previous, current: table });
  }

  private withRegistry(registry: string, i: ServiceInstance): ServiceInstance {
    let copies = this.named.get(registry);
    if (copies === undefined) {
      copies = new WeakMap();
      this.named.set(registry, copies);
    }
    let named = copies.get(i);
    if (named === undefined) {
      named = { ...i, registry };
      copies.set(i, named);
    }
    return named;
  }
}

function sameExcluded(a: RouteTable, b: RouteTable): boolean {
  if (a.excluded.length !== b.excluded.length || a.problems.length !== b.problems.length) return false;
  for (let i = 0; i < a.excluded.length; i++) {
    const x = a.excluded[i];
    const y = b.excluded[i];
    if (x?.id !== y?.id || x?.status !== y?.status || x?.service !== y?.service) return false;
  }
  return true;
}
