// Per-route/target traffic as the data plane produces it, for Prometheus and the UI's live
// columns. The request path calls `onResponse` / `onUpstreamError` (bound once, passed to the
// HTTP proxy as its hooks): one WeakMap lookup by the RouteTarget object, then plain number and
// typed-array updates on its TrafficCell. No strings, no label hashing, no allocation.
//
// Cells are bound to a table's Route/RouteTarget objects when the table becomes live. A pair that
// stays in the table (same source, same target key) keeps its cell, so counters and rates
// continue across swaps; a pair that leaves loses it, and with it its Prometheus labels. Requests
// still in flight on an older table find that table's objects in the WeakMaps (entries vanish
// with the table) and count on the cell they started with.
//
// Binding is incremental: the table builder reuses the Route object of an unchanged route, and
// such a route is already bound (its objects are in the WeakMaps, its cells stay). Only routes
// that are new objects are looked up by source and target key, so a swap after one registry
// change binds a handful of cells, not the 17,000 of a 10,000-instance table.

import { isTcpProto } from '../../routing/table.ts';
import type { Route, RouteTable, RouteTarget } from '../../routing/types.ts';
import { latencySamples, longWindow, shortWindow } from './live-window.ts';
import { TrafficCell, type UpstreamErrorKind } from './traffic-cell.ts';

/** What the UI and `/api/routes` show for a cell. */
export interface LiveStats {
  /** Requests (TCP: connections) per second over the last minute and the last 5 minutes. */
  readonly rate1m: number;
  readonly rate5m: number;
  /** Latency percentiles over the last minute, ms; null when there was no request (or TCP). */
  readonly p50ms: number | null;
  readonly p99ms: number | null;
  /** Fraction of the last minute's requests answered with a 5xx status. */
  readonly errors5xx: number;
  /** Failed upstream connects per request over the last minute. */
  readonly connectErrors: number;
  /** Requests (TCP: connections) since the cell was created. */
  readonly requests: number;
}

const idle: LiveStats = {
  rate1m: 0,
  rate5m: 0,
  p50ms: null,
  p99ms: null,
  errors5xx: 0,
  connectErrors: 0,
  requests: 0,
};

/** The TCP engine's counters, by route source and target key (lib/proxy/tcp/stats.ts). */
export interface TcpCounterSource {
  targets(): Iterable<{
    readonly route: string;
    readonly key: string;
    readonly counters: { readonly total: number; readonly connectErrors: number };
  }>;
}

/** The cells of one route of the live table. */
interface BoundRoute {
  readonly route: Route;
  /** Requests answered before a target was picked; labelled with the first target's service. */
  readonly cell: TrafficCell;
  /** By target key (two targets of a route may share a key: they share the cell). */
  readonly targets: ReadonlyMap<string, TrafficCell>;
}

export class Traffic {
  private readonly byTarget = new WeakMap<RouteTarget, TrafficCell>();
  private readonly byRoute = new WeakMap<Route, TrafficCell>();
  /** The live table's routes and their cells, by source, in table order. */
  private live = new Map<string, BoundRoute>();
  /** Requests no route matched. */
  readonly noRoute = new TrafficCell({ route: '', service: '', target: '', key: '', tcp: false });
  /** The ticker's clock: seconds since start, stamped on latency samples. */
  second = 0;
  private readonly scratch = new Float64Array(latencySamples);
  /** See latencyOnly(). */
  private rates = true;

  /**
   * A worker of `--workers`: its cells only feed the reports to the control process, which keeps
   * the rates, so windows opened from now on keep latencies only (1.2 KB less per busy cell).
   */
  latencyOnly(): void {
    this.rates = false;
    for (const b of this.live.values()) {
      b.cell.rates = false;
      for (const c of b.targets.values()) c.rates = false;
    }
    this.noRoute.rates = false;
  }

  /** The HTTP proxy's `onResponse` hook. */
  readonly onResponse = (
    route: Route | undefined,
    target: RouteTarget | undefined,
    status: number,
    ms: number,
  ): void => {
    let cell: TrafficCell | undefined;
    if (target !== undefined) cell = this.byTarget.get(target);
    if (cell === undefined && route !== undefined) cell = this.byRoute.get(route);
    (cell ?? this.noRoute).record(status, ms, this.second);
  };

  /** The HTTP proxy's `onUpstreamError` hook. */
  readonly onUpstreamError = (
    route: Route,
    target: RouteTarget,
    kind: UpstreamErrorKind,
    retried: boolean,
  ): void => {
    const cell = this.byTarget.get(target) ?? this.byRoute.get(route);
    if (cell !== undefined) cell.recordUpstreamError(kind, retried);
  };

  /** A new table is live: bind its routes and targets to cells, drop cells of pairs that left. */
  bind(table: RouteTable): void {
    const previous = this.live;
    const next = new Map<string, BoundRoute>();
    for (const r of table.routes) {
      const old = previous.get(r.src);
      next.set(r.src, old !== undefined && old.route === r ? old : this.bindRoute(r, old));
    }
    this.live = next;
  }

  /** A route that is a new object: its pairs keep the cells they had under the same source. */
  private bindRoute(r: Route, old: BoundRoute | undefined): BoundRoute {
    const tcp = isTcpProto(r.proto);
    const service = (r.targets[0] ?? r.starved[0])?.service ?? '';
    const cell =
      old !== undefined && old.cell.service === service
        ? old.cell
        : new TrafficCell({ route: r.src, service, target: '', key: '', tcp });
    cell.rates = this.rates;
    this.byRoute.set(r, cell);
    const targets = new Map<string, TrafficCell>();
    for (const list of [r.targets, r.starved]) {
      for (const t of list) {
        let c = targets.get(t.key) ?? old?.targets.get(t.key);
        if (c === undefined)
          c = new TrafficCell({ route: r.src, service: t.service, target: t.dst, key: t.key, tcp });
        c.rates = this.rates;
        targets.set(t.key, c);
        this.byTarget.set(t, c);
      }
    }
    return { route: r, cell, targets };
  }

  /** The cell of a target of a bound table. */
  cellOf(target: RouteTarget): TrafficCell | undefined {
    return this.byTarget.get(target);
  }

  /** Cells of the live table (each route's cell, then its target cells), then the no-route cell. */
  *cells(): IterableIterator<TrafficCell> {
    for (const b of this.live.values()) {
      yield b.cell;
      yield* b.targets.values();
    }
    yield this.noRoute;
  }

  /** The key of a cell in `live` ('' for the no-route cell): how workers and control name cells. */
  keyOf(cell: TrafficCell): string {
    if (cell === this.noRoute) return '';
    return cell.target === '' ? `${cell.route}\u0000\u0000${cell.service}` : `${cell.route}\u0000${cell.key}`;
  }

  /** Control process of `--workers`: a worker's traffic on a cell of the live table. */
  absorb(
    key: string,
    requests: number,
    errors5xx: number,
    connectErrors: number,
    latencies: readonly number[],
  ): void {
    const cell = key === '' ? this.noRoute : this.cellByKey(key);
    // A cell of a table that is gone here already (the report crossed a swap): nothing to show it on.
    if (cell === undefined) return;
    cell.absorb(requests, errors5xx, connectErrors, latencies, this.second);
  }

  /** The live cell `keyOf` named: `route\0targetKey`, or `route\0\0service` for a route's own cell. */
  private cellByKey(key: string): TrafficCell | undefined {
    const cut = key.indexOf('\u0000');
    if (cut < 0) return undefined;
    const bound = this.live.get(key.slice(0, cut));
    if (bound === undefined) return undefined;
    if (key.charCodeAt(cut + 1) === 0) {
      return bound.cell.service === key.slice(cut + 2) ? bound.cell : undefined;
    }
    return bound.targets.get(key.slice(cut + 1));
  }

  /** Once a second: TCP counters are copied in, every live window takes a sample. */
  tick(tcp?: TcpCounterSource): void {
    this.second++;
    if (tcp !== undefined) {
      for (const s of tcp.targets()) {
        this.live.get(s.route)?.targets.get(s.key)?.syncTcp(s.counters.total, s.counters.connectErrors);
      }
    }
    for (const b of this.live.values()) {
      b.cell.sample();
      for (const c of b.targets.values()) c.sample();
    }
    this.noRoute.sample();
  }

  /** The live numbers of a cell (computed on demand; percentiles cached per second). */
  stats(cell: TrafficCell | undefined): LiveStats {
    const w = cell?.window;
    if (cell === undefined || w === undefined)
      return cell === undefined ? idle : { ...idle, requests: cell.requests };
    const minute = w.lastMinute();
    const p = cell.tcp ? undefined : w.percentiles(this.second, this.scratch);
    const any = minute.requests > 0;
    return {
      rate1m: w.rate(shortWindow),
      rate5m: w.rate(longWindow),
      p50ms: p !== undefined && any ? p.p50 : null,
      p99ms: p !== undefined && any ? p.p99 : null,
      errors5xx: any ? minute.errors5xx / minute.requests : 0,
      connectErrors: any ? minute.connectErrors / minute.requests : minute.connectErrors > 0 ? 1 : 0,
      requests: cell.requests,
    };
  }
}
