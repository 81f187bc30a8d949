// Counters of the TCP data plane, for the metrics exporter and the admin UI. Plain numbers in
// plain objects: a connection keeps direct references to its counters, so counting a chunk of
// bytes is one field update, and the exporter reads whatever it wants whenever it scrapes.
//
// Mapping to DESIGN.md 8: `cairn_tcp_connections_total` = `total`, `cairn_open_connections` =
// `open`, `cairn_upstream_errors_total{kind="connect"}` = `connectErrors` (per target).

import type { Route, RouteTarget } from '../../../routing/types.ts';

export class TcpCounters {
  /** Connections open right now (client side accepted and upstream connected or connecting). */
  open = 0;
  /** Connections ever forwarded (counted when the upstream connect starts). */
  total = 0;
  /** Bytes from clients to upstreams. */
  bytesIn = 0;
  /** Bytes from upstreams to clients. */
  bytesOut = 0;
  /** Failed upstream connects (refused, unreachable, timed out). */
  connectErrors = 0;
}

/** Counters of one target of one route. */
export interface TcpTargetStats {
  readonly route: string;
  readonly service: string;
  readonly target: string;
  readonly key: string;
  readonly counters: TcpCounters;
}

/** Why a client connection was closed before anything was forwarded. */
export class TcpRejections {
  /** No route for the port / server name. */
  noRoute = 0;
  /** The route had no available target. */
  noTarget = 0;
  /** allow=/deny= refused the client address. */
  denied = 0;
  /** Every target of the route failed to connect (after retries). */
  connectFailed = 0;
  /** Not a TLS ClientHello, or a bad PROXY protocol header. */
  badPrelude = 0;
  /** The client did not send its ClientHello / PROXY header in time. */
  preludeTimeout = 0;
  /** SNI listeners: connections with no SNI match handed to the HTTPS side. */
  toHttps = 0;
}

export class TcpStats {
  /** Totals over every route and target. */
  readonly all = new TcpCounters();
  readonly rejected = new TcpRejections();
  private readonly byRouteTarget = new Map<string, TcpTargetStats>();
  private readonly byRoute = new Map<string, TcpCounters>();
  // Target objects belong to one route of one table: a per-object cache saves building the
  // route|target key on every connection.
  private readonly byTargetObject = new WeakMap<RouteTarget, TcpCounters>();
  private readonly byRouteObject = new WeakMap<Route, TcpCounters>();

  /** Counters of `target` on `route`, created on first use; stable across table swaps. */
  target(route: Route, target: RouteTarget): TcpCounters {
    const cached = this.byTargetObject.get(target);
    if (cached !== undefined) return cached;
    const k = `${route.src}\u0000${target.key}`;
    let s = this.byRouteTarget.get(k);
    if (s === undefined) {
      s = {
        route: route.src,
        service: target.service,
        target: target.dst,
        key: target.key,
        counters: new TcpCounters(),
      };
      this.byRouteTarget.set(k, s);
    }
    this.byTargetObject.set(target, s.counters);
    return s.counters;
  }

  /** Counters of `route` (sum over its targets), created on first use. */
  route(route: Route): TcpCounters {
    const cached = this.byRouteObject.get(route);
    if (cached !== undefined) return cached;
    let c = this.byRoute.get(route.src);
    if (c === undefined) {
      c = new TcpCounters();
      this.byRoute.set(route.src, c);
    }
    this.byRouteObject.set(route, c);
    return c;
  }

  targets(): IterableIterator<TcpTargetStats> {
    return this.byRouteTarget.values();
  }

  routes(): IterableIterator<[string, TcpCounters]> {
    return this.byRoute.entries();
  }

  /** Forgets counters of targets that left the table and have no open connection. */
  retain(liveKeys: ReadonlySet<string>): void {
    for (const [k, s] of this.byRouteTarget) {
      if (s.counters.open === 0 && !liveKeys.has(s.key)) this.byRouteTarget.delete(k);
    }
  }
}
