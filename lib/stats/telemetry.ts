// Everything the admin listener reports beyond the table itself, in one object the server owns
// from its first moment (so the first table load is already in the history): live traffic
// (Traffic), the change history, Prometheus metrics, registry states, per-target health as the
// UI names it, and a fan-out of events for the SSE stream.
//
// The server calls onSwap / onRegistryState; the HTTP proxy gets the hooks from proxyHooks(); a
// one-second ticker (start/stop) samples the live windows and emits a `tick`.

import type { RegistryState, RegistryStateName } from '../../registry-adapters/types.ts';
import { isTcpProto } from '../../routing/table.ts';
import type { InstanceStatus, Route, RouteTarget, Snapshot } from '../../routing/types.ts';
import type { Controller, SwapEvent } from '../controller.ts';
import type { TargetHealth } from '../health/target-health.ts';
import {
  CairnMetrics,
  type MetricsSource,
  type TargetState,
  type TcpRouteCounters,
} from '../metrics/prometheus.ts';
import type { TcpStats } from '../proxy/tcp/stats.ts';
import { ChangeHistory, type HistoryEntry } from './history.ts';
import { type LeavingTarget, trackLeaving } from './leaving.ts';
import { Traffic } from './traffic.ts';

/** What the server provides; read lazily (the telemetry exists before the proxy and TCP engine). */
export interface TelemetryHost {
  readonly config: { readonly metrics: boolean };
  readonly controller: Controller;
  readonly health: TargetHealth;
  readonly tcp: { readonly stats: TcpStats };
  readonly upgrades: { readonly open: { readonly size: number } };
  readonly isDraining: boolean;
  clientConnections(): number;
}

/** Control process of `--workers`: the workers' per-target state, summed (lib/workers/control.ts). */
export interface WorkerTraffic {
  /** Open requests/connections by `route source \0 target key`. */
  readonly open: ReadonlyMap<string, number>;
  /** Per target key: how many workers do not send it traffic (passive health is per worker). */
  readonly ejected: ReadonlyMap<string, number>;
  /** Workers accepting traffic. */
  readonly listening: number;
}

/** A target's health as the UI shows it. */
export type HealthName = 'passing' | 'warning' | 'ejected' | 'draining';

export interface TargetHealthInfo {
  readonly health: HealthName;
  /** Why, when not plainly passing. */
  readonly reason?: string;
}

export interface RegistryView {
  readonly name: string;
  /** `starting` until the first read; then the adapter's up / stale / down. */
  readonly state: RegistryStateName | 'starting';
  /** Epoch ms of the transition into `state`. */
  readonly since: number;
  /** Epoch ms of the registry's last delivered change. */
  readonly lastChange: number;
  readonly error?: string;
}

/** Targets that left the table but still carry requests or connections. */
export interface DrainingTarget {
  readonly service: string;
  readonly dst: string;
  readonly open: number;
}

export type TelemetryEvent =
  | { readonly type: 'swap'; readonly entry: HistoryEntry }
  | { readonly type: 'registry'; readonly registry: RegistryView }
  | { readonly type: 'tick'; readonly at: number };

/** The pseudo-registry the admin's in-memory override store feeds the controller as. */
export const memoryManualRegistry = 'admin:manual';

export class Telemetry {
  readonly traffic = new Traffic();
  readonly history = new ChangeHistory(100);
  readonly metrics: CairnMetrics;
  private readonly host: TelemetryHost;
  private readonly listeners = new Set<(e: TelemetryEvent) => void>();
  private readonly adapterStates = new Map<string, RegistryState>();
  /**
   * Registry status of each instance of the live table, by `service \0 id`: made on first use
   * from the snapshots that were current at the swap (the UI asks; a swap should not pay).
   */
  private instanceStatus: Map<string, InstanceStatus> | undefined;
  private statusSources: readonly (Snapshot | undefined)[] = [];
  /** Targets that left in a swap, by key, until they have nothing in flight. */
  private readonly leaving = new Map<string, LeavingTarget>();
  private timer: NodeJS.Timeout | undefined;
  /**
   * Control process of `--workers`: traffic arrives from the workers (Traffic.absorb) and what is
   * open per target is theirs, summed (by `route source \0 target key`), not this process's.
   */
  fromWorkers: WorkerTraffic | undefined;

  constructor(host: TelemetryHost) {
    this.host = host;
    this.metrics = new CairnMetrics(this.metricsSource());
  }

  /** The HTTP proxy's per-request hooks; none with `--metrics=false`. */
  proxyHooks(): Pick<Traffic, 'onResponse' | 'onUpstreamError'> | Record<string, never> {
    if (!this.host.config.metrics) return {};
    return { onResponse: this.traffic.onResponse, onUpstreamError: this.traffic.onUpstreamError };
  }

  get recording(): boolean {
    return this.host.config.metrics;
  }

  start(): void {
    if (this.timer !== undefined) return;
    this.timer = setInterval(() => this.tick(), 1000);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  subscribe(listener: (e: TelemetryEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  onSwap(e: SwapEvent): void {
    this.traffic.bind(e.current);
    trackLeaving(e.previous, e.current, this.leaving);
    this.statusSources = this.host.controller.registryInfos().map((r) => r.snapshot);
    this.instanceStatus = undefined;
    this.metrics.onSwap();
    const entry = this.history.record(e.previous.routes.length === 0 ? undefined : e.previous, e.current);
    this.emit({ type: 'swap', entry });
  }

  private statusOf(service: string, id: string): InstanceStatus | undefined {
    let status = this.instanceStatus;
    if (status === undefined) {
      status = new Map();
      for (const s of this.statusSources) {
        for (const i of s?.instances ?? []) status.set(`${i.service}\u0000${i.id}`, i.status ?? 'passing');
      }
      this.instanceStatus = status;
    }
    return status.get(`${service}\u0000${id}`);
  }

  onRegistryState(state: RegistryState): void {
    this.adapterStates.set(state.registry, state);
    const view = this.registries().find((r) => r.name === state.registry);
    if (view !== undefined) this.emit({ type: 'registry', registry: view });
  }

  /** Every registry the controller knows (not the admin's in-memory override store). */
  registries(): RegistryView[] {
    const out: RegistryView[] = [];
    for (const r of this.host.controller.registryInfos()) {
      if (r.name === memoryManualRegistry) continue;
      const a = this.adapterStates.get(r.name);
      let state: RegistryView['state'];
      let since = r.since;
      if (a !== undefined) {
        state = a.state;
        since = a.since;
      } else if (r.status === 'down') state = r.snapshot !== undefined ? 'stale' : 'down';
      else state = r.status;
      const error = a?.error ?? r.error;
      out.push({
        name: r.name,
        state,
        since,
        lastChange: r.lastChange,
        ...(error !== undefined ? { error } : {}),
      });
    }
    return out;
  }

  targetHealth(t: RouteTarget): TargetHealthInfo {
    if (this.host.isDraining) return { health: 'draining', reason: 'Cairn is shutting down' };
    const h = this.host.health;
    const workers = this.fromWorkers;
    if (workers !== undefined) {
      const n = workers.ejected.get(t.key) ?? 0;
      if (n > 0)
        return {
          health: 'ejected',
          reason: `ejected (consecutive failures or failing check) in ${n} of ${workers.listening} workers`,
        };
    }
    if (h.isEjected(t.key))
      return { health: 'ejected', reason: 'passively ejected after consecutive failures' };
    if (!h.isAvailable(t.key)) return { health: 'ejected', reason: 'active health check failing' };
    if (t.instanceId !== undefined && this.statusOf(t.service, t.instanceId) === 'warning')
      return { health: 'warning', reason: 'the registry reports status warning' };
    return { health: 'passing' };
  }

  /** A target's share of its route's traffic right now: 0 when unavailable, else its share among the available ones. */
  effectiveWeight(route: Route, t: RouteTarget): number {
    const h = this.host.health;
    if (!h.isAvailable(t.key)) return 0;
    let available = 0;
    for (const x of route.targets) if (h.isAvailable(x.key)) available += x.share;
    return available > 0 ? t.share / available : 0;
  }

  /** Open requests (HTTP: in flight to the target) or connections (TCP) of a target, by route. */
  openCounts(): (route: Route, t: RouteTarget) => number {
    const external = this.fromWorkers;
    if (external !== undefined) return (route, t) => external.open.get(`${route.src}\u0000${t.key}`) ?? 0;
    const tcp = new Map<string, number>();
    for (const s of this.host.tcp.stats.targets()) tcp.set(`${s.route}\u0000${s.key}`, s.counters.open);
    const h = this.host.health;
    return (route, t) =>
      isTcpProto(route.proto) ? (tcp.get(`${route.src}\u0000${t.key}`) ?? 0) : h.inFlight(t.key);
  }

  /** Routes of the live table. */
  tableRoutes(): readonly Route[] {
    return this.host.controller.current.table.routes;
  }

  draining(): DrainingTarget[] {
    const out: DrainingTarget[] = [];
    const tcpOpen = new Map<string, number>();
    for (const s of this.host.tcp.stats.targets())
      tcpOpen.set(s.key, (tcpOpen.get(s.key) ?? 0) + s.counters.open);
    for (const [key, t] of this.leaving) {
      const open = this.host.health.inFlight(key) + (tcpOpen.get(key) ?? 0);
      if (open > 0) out.push({ service: t.service, dst: t.dst, open });
      else this.leaving.delete(key);
    }
    return out;
  }

  private tick(): void {
    this.traffic.tick(this.fromWorkers === undefined ? this.host.tcp.stats : undefined);
    this.emit({ type: 'tick', at: Date.now() });
  }

  private emit(e: TelemetryEvent): void {
    for (const l of this.listeners) {
      try {
        l(e);
      } catch {
        // A failing listener (a broken SSE socket) must not stop the others or the caller.
      }
    }
  }

  private metricsSource(): MetricsSource {
    return {
      cells: () => this.traffic.cells(),
      targets: () => this.targetStates(),
      registries: () => this.registries().map((r) => ({ name: r.name, up: r.state === 'up' })),
      routes: () => this.host.controller.current.table.routes.length,
      problems: () => this.host.controller.current.table.problems.length,
      tcpRoutes: () => this.tcpRoutes(),
      openConnections: () => ({
        http: this.host.clientConnections(),
        tcp: this.host.tcp.stats.all.open,
        websocket: this.host.upgrades.open.size,
      }),
    };
  }

  private targetStates(): TargetState[] {
    const seen = new Set<string>();
    const out: TargetState[] = [];
    const h = this.host.health;
    for (const r of this.host.controller.current.table.routes) {
      for (const t of r.targets) {
        const k = `${t.service}\u0000${t.dst}`;
        if (seen.has(k)) continue;
        seen.add(k);
        out.push({
          service: t.service,
          target: t.dst,
          up: h.isAvailable(t.key),
          ejected: h.isEjected(t.key),
        });
      }
    }
    return out;
  }

  private tcpRoutes(): TcpRouteCounters[] {
    const services = new Map<string, string>();
    for (const r of this.host.controller.current.table.routes) {
      if (isTcpProto(r.proto)) services.set(r.src, (r.targets[0] ?? r.starved[0])?.service ?? '');
    }
    const out: TcpRouteCounters[] = [];
    for (const [route, c] of this.host.tcp.stats.routes()) {
      const service = services.get(route);
      // Routes that left the table leave the metrics too.
      if (service === undefined) continue;
      out.push({ route, service, connections: c.total, bytesIn: c.bytesIn, bytesOut: c.bytesOut });
    }
    return out;
  }
}
