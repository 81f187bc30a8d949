// `GET /api/routes`: one row per route target, fabio's fields first (same names, same meaning,
// `tags` left out when empty as fabio does), then Cairn's: live health, effective weight, and
// the live traffic of the row.

import type { RouteProto, RouteTable } from '../../routing/types.ts';
import type { HealthName, Telemetry } from '../stats/telemetry.ts';
import type { LiveStats } from '../stats/traffic.ts';

export interface RowStats {
  readonly req_per_sec_1m: number;
  readonly req_per_sec_5m: number;
  /** Latency percentiles over the last minute, ms; null without requests (and for TCP). */
  readonly p50_ms: number | null;
  readonly p99_ms: number | null;
  /** Fraction of the last minute's requests answered with a 5xx. */
  readonly errors_5xx_ratio_1m: number;
  /** Failed upstream connects per request over the last minute. */
  readonly connect_errors_ratio_1m: number;
  /** HTTP: requests in flight to the target; TCP: open connections. */
  readonly open: number;
  /** Requests (TCP: connections) since the row appeared. */
  readonly requests_total: number;
}

export interface RouteRow {
  // fabio's fields
  readonly service: string;
  readonly host: string;
  readonly path: string;
  readonly src: string;
  readonly dst: string;
  readonly opts: string;
  /** The target's share of the route's traffic, 0..1. */
  readonly weight: number;
  readonly tags?: readonly string[];
  readonly cmd: 'route add';
  /** Requests per second over the last minute. */
  readonly rate1: number;
  /** p99 latency over the last minute in nanoseconds (fabio's unit). */
  readonly pct99: number;
  // Cairn's
  /** Stable while the route/target pair stays in the table (the SSE `stats` events use it). */
  readonly id: number;
  readonly proto: RouteProto;
  readonly healthy: boolean;
  readonly health: HealthName;
  readonly health_reason?: string;
  /** Share of the route's traffic it gets right now: 0 when unavailable, else among the available. */
  readonly weight_effective: number;
  readonly stats: RowStats;
}

export function rowStats(s: LiveStats, open: number): RowStats {
  return {
    req_per_sec_1m: round(s.rate1m, 3),
    req_per_sec_5m: round(s.rate5m, 3),
    p50_ms: s.p50ms === null ? null : round(s.p50ms, 3),
    p99_ms: s.p99ms === null ? null : round(s.p99ms, 3),
    errors_5xx_ratio_1m: round(s.errors5xx, 4),
    connect_errors_ratio_1m: round(s.connectErrors, 4),
    open,
    requests_total: s.requests,
  };
}

export function routeRows(table: RouteTable, telemetry: Telemetry): RouteRow[] {
  const out: RouteRow[] = [];
  const open = telemetry.openCounts();
  const traffic = telemetry.traffic;
  for (const r of table.routes) {
    for (const t of r.targets) {
      const cell = traffic.cellOf(r, t);
      const live = traffic.stats(cell);
      const h = telemetry.targetHealth(t);
      out.push({
        service: t.service,
        host: r.host,
        path: r.path,
        src: r.src,
        dst: t.dst,
        opts: Object.keys(t.rawOpts)
          .sort()
          .map((k) => `${k}=${t.rawOpts[k]}`)
          .join(' '),
        weight: round(t.share, 4),
        ...(t.tags.length > 0 ? { tags: [...t.tags] } : {}),
        cmd: 'route add',
        rate1: round(live.rate1m, 3),
        pct99: live.p99ms === null ? 0 : Math.round(live.p99ms * 1e6),
        id: cell?.id ?? 0,
        proto: r.proto,
        healthy: h.health !== 'ejected',
        health: h.health,
        ...(h.reason !== undefined ? { health_reason: h.reason } : {}),
        weight_effective: round(telemetry.effectiveWeight(r, t), 4),
        stats: rowStats(live, open(r, t)),
      });
    }
  }
  return out;
}

function round(n: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}
