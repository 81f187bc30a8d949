// Per-route/target traffic as the data plane produces it, for Prometheus and the UI's live
// columns. The request path calls `onResponse` / `onUpstreamError` (bound once, passed to the
// HTTP proxy as its hooks): one WeakMap lookup by the RouteTarget object, then plain number and
// typed-array updates on its TrafficCell. No strings, no label hashing, no allocation.
//
// Cells are made on a pair's first traffic, not at a swap: most routes of a 10,000-route table
// never see a request between two swaps, and a cell, its WeakMap entries and its place in the
// live index cost some 600 bytes per route that way (issue #9: a worker's heap per route). The
// first request of a pair takes the slow path (find its source in the live table, make the
// cell); every later one finds the cell by object identity.
//
// A pair that stays in the table (same source, same target key) keeps its cell across swaps, so
// counters and rates continue; a pair that leaves loses it, and with it its Prometheus labels.
// Requests still in flight on an older table count on the live cell of their pair if the pair
// is still in the table, else on the cell they had (invisible now) or nowhere: either way not
// on a series of the live table. A swap looks only at the routes that have cells.

import { isTcpProto } from '../../routing/table.ts';
import type { Route, RouteTable, RouteTarget } from '../../routing/types.ts';
import { latencySamples, longWindow, shortWindow } from './live-window.ts';
import { routesBySrc } from './route-index.ts';
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

/** The service a route's own cell is labelled with: its first target's. */
function serviceOf(r: Route): string {
  return (r.targets[0] ?? r.starved[0])?.service ?? '';
}

/** The route's first target (or starved target) with `key`. */
function targetWithKey(r: Route, key: string): RouteTarget | undefined {
  for (const t of r.targets) if (t.key === key) return t;
  for (const t of r.starved) if (t.key === key) return t;
  return undefined;
}

/** The most latency samples a worker keeps between two reports (then it drops until the next). */
const maxLogged = 1 << 16;

/**
 * A worker's latency samples since its last report, of every cell, in one pair of arrays: the
 * request path stores two values, and a busy cell costs nothing here once reported. Past
 * `maxLogged` samples in one report interval (more requests per second than a worker serves),
 * later ones are dropped until the next report.
 */
class LatencyLog {
  private cells: (TrafficCell | undefined)[] = [];
  private ms = new Float64Array(1024);
  private n = 0;

  add(cell: TrafficCell, ms: number): void {
    const n = this.n;
    if (n === this.ms.length) {
      if (n >= maxLogged) return;
      const grown = new Float64Array(n * 2);
      grown.set(this.ms);
      this.ms = grown;
    }
    this.cells[n] = cell;
    this.ms[n] = ms;
    this.n = n + 1;
  }

  take(): Map<TrafficCell, number[]> {
    const out = new Map<TrafficCell, number[]>();
    for (let i = 0; i < this.n; i++) {
      const c = this.cells[i] as TrafficCell;
      let list = out.get(c);
      if (list === undefined) out.set(c, (list = []));
      list.push(this.ms[i] as number);
      // Let a cell that leaves the table go.
      this.cells[i] = undefined;
    }
    this.n = 0;
    for (const [c, list] of out) if (list.length > latencySamples) out.set(c, list.slice(-latencySamples));
    return out;
  }
}

/** The cells a route of the live table has so far (only routes with at least one are kept). */
class RouteCells {
  /** The live table's route under this source. */
  route: Route;
  /** Requests answered before a target was picked; labelled with the first target's service. */
  cell: TrafficCell | undefined;
  /** The first target cell made; the others by key (two targets with one key share a cell). */
  first: TrafficCell | undefined;
  more: Map<string, TrafficCell> | undefined;

  constructor(route: Route) {
    this.route = route;
  }

  target(key: string): TrafficCell | undefined {
    const f = this.first;
    if (f === undefined || f.key === key) return f;
    return this.more?.get(key);
  }

  addTarget(c: TrafficCell): void {
    if (this.first === undefined) this.first = c;
    else (this.more ??= new Map()).set(c.key, c);
  }

  /** Route-level cell first, then target cells in the order they were made. */
  *cells(): IterableIterator<TrafficCell> {
    if (this.cell !== undefined) yield this.cell;
    if (this.first !== undefined) yield this.first;
    if (this.more !== undefined) yield* this.more.values();
  }

  /**
   * The source's route is a new object: keep the cells of the pairs it still has. Returns false
   * when none is left.
   */
  rebind(r: Route): boolean {
    this.route = r;
    if (this.cell !== undefined && this.cell.service !== serviceOf(r)) this.cell = undefined;
    const kept: TrafficCell[] = [];
    for (const c of this.cells()) if (c.target !== '' && targetWithKey(r, c.key) !== undefined) kept.push(c);
    this.first = kept[0];
    this.more = undefined;
    for (let i = 1; i < kept.length; i++) this.addTarget(kept[i] as TrafficCell);
    return this.cell !== undefined || this.first !== undefined;
  }
}

export class Traffic {
  private readonly byTarget = new WeakMap<RouteTarget, TrafficCell>();
  private readonly byRoute = new WeakMap<Route, TrafficCell>();
  /** The cells of the live table, by route source: only routes that have any. */
  private readonly live = new Map<string, RouteCells>();
  /** The live table (the last one bound). */
  private table: Pick<RouteTable, 'routes'> | undefined;
  /** Requests no route matched. */
  readonly noRoute = new TrafficCell({ route: '', service: '', target: '', key: '', tcp: false });
  /** The ticker's clock: seconds since start, stamped on latency samples. */
  second = 0;
  private readonly scratch = new Float64Array(latencySamples);
  /** Whether new cells keep a live window; see reportOnly(). */
  private windows = true;
  /** Latencies since the last report, in a worker (see reportOnly()). */
  private log: LatencyLog | undefined;

  /**
   * A worker of `--workers`: its cells only feed the reports to the control process, which keeps
   * the rates and percentiles, so cells made from now on keep no live window (its latency ring
   * is 2 KB, times every busy route of a 10,000-route table); their latencies go to one log the
   * reports drain (takeLatencies()).
   */
  reportOnly(): void {
    this.windows = false;
    this.log ??= new LatencyLog();
    for (const c of this.cells()) c.live = false;
  }

  /**
   * Worker of `--workers`: the latencies recorded since the previous call, by cell, oldest first,
   * at most `latencySamples` (the most recent) per cell, as the control's rings keep no more.
   */
  takeLatencies(): Map<TrafficCell, number[]> {
    return this.log?.take() ?? new Map();
  }

  /** The HTTP proxy's `onResponse` hook. */
  readonly onResponse = (
    route: Route | undefined,
    target: RouteTarget | undefined,
    status: number,
    ms: number,
  ): void => {
    let cell: TrafficCell | undefined;
    if (target !== undefined) cell = this.byTarget.get(target) ?? this.attachTarget(route, target);
    else if (route !== undefined) cell = this.byRoute.get(route) ?? this.attachRoute(route);
    else cell = this.noRoute;
    if (cell !== undefined) {
      cell.record(status, ms, this.second);
      if (this.log !== undefined) this.log.add(cell, ms);
    }
  };

  /** The HTTP proxy's `onUpstreamError` hook. */
  readonly onUpstreamError = (
    route: Route,
    target: RouteTarget,
    kind: UpstreamErrorKind,
    retried: boolean,
  ): void => {
    const cell = this.byTarget.get(target) ?? this.attachTarget(route, target);
    if (cell !== undefined) cell.recordUpstreamError(kind, retried);
  };

  /** A new table is live: cells of pairs that left it go; the others stay with their pair. */
  bind(table: RouteTable): void {
    this.table = table;
    if (this.live.size === 0) return;
    const bySrc = routesBySrc(table);
    for (const [src, rc] of this.live) {
      const r = bySrc.get(src);
      if (r === rc.route) continue;
      if (r === undefined || !rc.rebind(r)) this.live.delete(src);
    }
  }

  /**
   * The cells of `route`'s source in the live table, made on first use; undefined when `route`
   * is not there (an older table's route whose pair `key`, or own cell, the live table lacks).
   */
  private cellsOf(route: Route, key: string | undefined): RouteCells | undefined {
    const rc = this.live.get(route.src);
    let r = rc?.route;
    if (r === undefined) {
      if (this.table === undefined) return undefined;
      r = routesBySrc(this.table).get(route.src);
      if (r === undefined) return undefined;
    }
    if (r !== route) {
      if (key === undefined ? serviceOf(r) !== serviceOf(route) : targetWithKey(r, key) === undefined)
        return undefined;
    }
    if (rc !== undefined) return rc;
    const made = new RouteCells(r);
    this.live.set(route.src, made);
    return made;
  }

  /** Slow path, a target's first request (on this target object). */
  private attachTarget(route: Route | undefined, target: RouteTarget): TrafficCell | undefined {
    if (route === undefined) return this.noRoute;
    const c = this.targetCell(route, target.key);
    if (c !== undefined) this.byTarget.set(target, c);
    return c;
  }

  /** Slow path, a route's first request answered before a target was picked. */
  private attachRoute(route: Route): TrafficCell | undefined {
    const rc = this.cellsOf(route, undefined);
    if (rc === undefined) return this.table === undefined ? this.noRoute : undefined;
    let c = rc.cell;
    if (c === undefined) {
      c = new TrafficCell({
        route: rc.route.src,
        service: serviceOf(rc.route),
        target: '',
        key: '',
        tcp: isTcpProto(rc.route.proto),
      });
      c.live = this.windows;
      rc.cell = c;
    }
    this.byRoute.set(route, c);
    return c;
  }

  /** The live cell of the pair (`route`'s source, `key`), made if the pair has none yet. */
  private targetCell(route: Route, key: string): TrafficCell | undefined {
    const rc = this.cellsOf(route, key);
    if (rc === undefined) return undefined;
    let c = rc.target(key);
    if (c === undefined) {
      const t = targetWithKey(rc.route, key);
      if (t === undefined) return undefined;
      c = new TrafficCell({
        route: rc.route.src,
        service: t.service,
        target: t.dst,
        // The table's string, not `key`: in the control that is a slice of a worker's message.
        key: t.key,
        tcp: isTcpProto(rc.route.proto),
      });
      c.live = this.windows;
      rc.addTarget(c);
    }
    return c;
  }

  /**
   * The cell of a target of the live table, made if it has none yet: the admin's rows carry the
   * cell's id, stable while the pair stays in the table (the UI matches its stats events by it).
   * Undefined for a target the live table does not have.
   */
  cellOf(route: Route, target: RouteTarget): TrafficCell | undefined {
    return this.byTarget.get(target) ?? this.attachTarget(route, target);
  }

  /** Cells of the live table (each route's cell, then its target cells), then the no-route cell. */
  *cells(): IterableIterator<TrafficCell> {
    for (const rc of this.live.values()) yield* rc.cells();
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
    const r = this.liveRoute(key.slice(0, cut));
    if (r === undefined) return undefined;
    if (key.charCodeAt(cut + 1) === 0) {
      return serviceOf(r) === key.slice(cut + 2) ? this.attachRoute(r) : undefined;
    }
    return this.targetCell(r, key.slice(cut + 1));
  }

  /** The live table's route with source `src`. */
  private liveRoute(src: string): Route | undefined {
    const rc = this.live.get(src);
    if (rc !== undefined) return rc.route;
    return this.table === undefined ? undefined : routesBySrc(this.table).get(src);
  }

  /** Once a second: TCP counters are copied in, every live window takes a sample. */
  tick(tcp?: TcpCounterSource): void {
    this.second++;
    if (tcp !== undefined) {
      for (const s of tcp.targets()) {
        let c = this.live.get(s.route)?.target(s.key);
        if (c === undefined) {
          // A pair's first connection makes its cell (as a request does on HTTP routes).
          if (s.counters.total === 0 && s.counters.connectErrors === 0) continue;
          const r = this.liveRoute(s.route);
          if (r !== undefined) c = this.targetCell(r, s.key);
        }
        c?.syncTcp(s.counters.total, s.counters.connectErrors);
      }
    }
    for (const rc of this.live.values()) {
      rc.cell?.sample();
      rc.first?.sample();
      if (rc.more !== undefined) for (const c of rc.more.values()) c.sample();
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
