// `GET /metrics`: Cairn's Prometheus metrics (names in DESIGN.md section 8) plus prom-client's
// default process metrics.
//
// Nothing here runs per request. Request counters and duration histograms are read from the
// TrafficCells at scrape time (ScrapeMetric); state gauges (targets up, registries up, open
// connections, TCP counters) are computed in prom-client `collect()` callbacks, each starting from
// `reset()`. So a route, target or registry that left the table also leaves the output: there is
// no label set that outlives what it describes.

import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import {
  durationBuckets,
  statusClasses,
  type TrafficCell,
  upstreamErrorKinds,
} from '../stats/traffic-cell.ts';
import { histogramSamples, type Sample, ScrapeMetric } from './scrape-metric.ts';

export interface TargetState {
  readonly service: string;
  readonly target: string;
  readonly up: boolean;
  readonly ejected: boolean;
}

export interface TcpRouteCounters {
  readonly route: string;
  readonly service: string;
  readonly connections: number;
  readonly bytesIn: number;
  readonly bytesOut: number;
}

/** Where the metrics come from; read at scrape time only. */
export interface MetricsSource {
  /** Cells of the live table plus the no-route cell. */
  cells(): Iterable<TrafficCell>;
  /** Every target of the live table once (by service and dst). */
  targets(): Iterable<TargetState>;
  registries(): Iterable<{ readonly name: string; readonly up: boolean }>;
  routes(): number;
  problems(): number;
  tcpRoutes(): Iterable<TcpRouteCounters>;
  openConnections(): { readonly http: number; readonly tcp: number; readonly websocket: number };
}

// Default metrics describe the process, not a server: registered once per process, so tests that
// start several servers in one process do not stack up event-loop monitors and GC observers.
let processRegistry: Registry | undefined;

function defaultMetricsRegistry(): Registry {
  if (processRegistry === undefined) {
    processRegistry = new Registry();
    collectDefaultMetrics({ register: processRegistry });
  }
  return processRegistry;
}

/** prom-client's default metrics of this process, in the text format. */
export function processExposition(): Promise<string> {
  return defaultMetricsRegistry().metrics();
}

export class CairnMetrics {
  readonly registry = new Registry();
  private readonly swaps: Counter;

  constructor(source: MetricsSource) {
    const registers = [this.registry];
    const http = (): TrafficCell[] => [...source.cells()].filter((c) => !c.tcp);

    new ScrapeMetric({
      name: 'cairn_requests_total',
      help: 'HTTP requests by route, service and status class (code="none": the client left first)',
      type: 'counter',
      collect: () => {
        const groups = groupBy(http(), (c) => `${c.route}\u0000${c.service}`, statusClasses.length);
        const out: Sample[] = [];
        for (const g of groups.values()) {
          g.sumInto((c, acc) => addInto(acc, c.byClass));
          for (let i = 0; i < statusClasses.length; i++) {
            const v = g.acc[i] as number;
            if (v > 0)
              out.push({
                labels: { route: g.first.route, service: g.first.service, code: statusClasses[i] as string },
                value: v,
              });
          }
        }
        return out;
      },
    }).registerIn(this.registry);

    new ScrapeMetric({
      name: 'cairn_request_duration_seconds',
      help: 'HTTP request duration (first byte in to last byte out) by route and service',
      type: 'histogram',
      collect: () => {
        const groups = groupBy(http(), (c) => `${c.route}\u0000${c.service}`, durationBuckets.length + 2);
        const out: Sample[] = [];
        for (const g of groups.values()) {
          g.sumInto((c, acc) => {
            addInto(acc, c.buckets);
            acc[durationBuckets.length + 1] = (acc[durationBuckets.length + 1] as number) + c.durationSeconds;
          });
          if (g.acc.subarray(0, durationBuckets.length + 1).every((v) => v === 0)) continue;
          const labels = { route: g.first.route, service: g.first.service };
          const sum = g.acc[durationBuckets.length + 1] as number;
          out.push(
            ...histogramSamples('cairn_request_duration_seconds', labels, durationBuckets, g.acc, sum),
          );
        }
        return out;
      },
    }).registerIn(this.registry);

    new ScrapeMetric({
      name: 'cairn_upstream_errors_total',
      help: 'Failed upstream attempts (HTTP requests and TCP connects) by service, target and kind',
      type: 'counter',
      collect: () => {
        const targets = [...source.cells()].filter((c) => c.target !== '');
        const groups = groupBy(targets, (c) => `${c.service}\u0000${c.target}`, upstreamErrorKinds.length);
        const out: Sample[] = [];
        for (const g of groups.values()) {
          g.sumInto((c, acc) => addInto(acc, c.upstreamErrors));
          for (let i = 0; i < upstreamErrorKinds.length; i++) {
            const v = g.acc[i] as number;
            if (v > 0)
              out.push({
                labels: {
                  service: g.first.service,
                  target: g.first.target,
                  kind: upstreamErrorKinds[i] as string,
                },
                value: v,
              });
          }
        }
        return out;
      },
    }).registerIn(this.registry);

    new ScrapeMetric({
      name: 'cairn_retries_total',
      help: 'HTTP requests retried on another target, by route and service',
      type: 'counter',
      collect: () => {
        const groups = groupBy(http(), (c) => `${c.route}\u0000${c.service}`, 1);
        const out: Sample[] = [];
        for (const g of groups.values()) {
          g.sumInto((c, acc) => {
            acc[0] = (acc[0] as number) + c.retries;
          });
          if ((g.acc[0] as number) > 0)
            out.push({
              labels: { route: g.first.route, service: g.first.service },
              value: g.acc[0] as number,
            });
        }
        return out;
      },
    }).registerIn(this.registry);

    new Gauge({
      name: 'cairn_target_up',
      help: '1 while a target receives traffic (not ejected, active check passing), else 0',
      labelNames: ['service', 'target'],
      registers,
      collect() {
        this.reset();
        for (const t of source.targets()) this.set({ service: t.service, target: t.target }, t.up ? 1 : 0);
      },
    });

    new Gauge({
      name: 'cairn_target_ejected',
      help: '1 while a target is passively ejected after consecutive failures, else 0',
      labelNames: ['service', 'target'],
      registers,
      collect() {
        this.reset();
        for (const t of source.targets())
          this.set({ service: t.service, target: t.target }, t.ejected ? 1 : 0);
      },
    });

    this.swaps = new Counter({
      name: 'cairn_table_swaps_total',
      help: 'Routing tables swapped in (the first table counts)',
      registers,
    });

    new Gauge({
      name: 'cairn_registry_up',
      help: '1 while a registry delivers current data, 0 while it is down or stale',
      labelNames: ['registry'],
      registers,
      collect() {
        this.reset();
        for (const r of source.registries()) this.set({ registry: r.name }, r.up ? 1 : 0);
      },
    });

    new Gauge({
      name: 'cairn_config_problems',
      help: 'Problems (bad tags, override lines, registry records) in the live table',
      registers,
      collect() {
        this.set(source.problems());
      },
    });

    new Gauge({
      name: 'cairn_routes',
      help: 'Routes in the live table',
      registers,
      collect() {
        this.set(source.routes());
      },
    });

    new Counter({
      name: 'cairn_tcp_connections_total',
      help: 'TCP connections forwarded, by route and service',
      labelNames: ['route', 'service'],
      registers,
      collect() {
        this.reset();
        for (const r of source.tcpRoutes()) this.inc({ route: r.route, service: r.service }, r.connections);
      },
    });

    new Counter({
      name: 'cairn_tcp_bytes_total',
      help: 'TCP bytes forwarded, by route, service and direction (in: client to upstream)',
      labelNames: ['route', 'service', 'direction'],
      registers,
      collect() {
        this.reset();
        for (const r of source.tcpRoutes()) {
          this.inc({ route: r.route, service: r.service, direction: 'in' }, r.bytesIn);
          this.inc({ route: r.route, service: r.service, direction: 'out' }, r.bytesOut);
        }
      },
    });

    new Gauge({
      name: 'cairn_open_connections',
      help: 'Open connections: http (clients on HTTP listeners), tcp (forwarded sessions), websocket',
      labelNames: ['kind'],
      registers,
      collect() {
        const o = source.openConnections();
        this.set({ kind: 'http' }, o.http);
        this.set({ kind: 'tcp' }, o.tcp);
        this.set({ kind: 'websocket' }, o.websocket);
      },
    });
  }

  onSwap(): void {
    this.swaps.inc();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** The text exposition: process metrics, then Cairn's. */
  async exposition(): Promise<string> {
    const [processText, own] = await Promise.all([
      defaultMetricsRegistry().metrics(),
      this.registry.metrics(),
    ]);
    return `${processText}\n${own}`;
  }
}

function addInto(acc: Float64Array, values: Float64Array): void {
  for (let i = 0; i < values.length; i++) acc[i] = (acc[i] as number) + (values[i] as number);
}

interface Group {
  readonly first: TrafficCell;
  readonly members: TrafficCell[];
  readonly acc: Float64Array;
  sumInto(add: (c: TrafficCell, acc: Float64Array) => void): void;
}

/** Cells grouped by a label key (several targets share one route/service series). */
function groupBy(
  cells: readonly TrafficCell[],
  key: (c: TrafficCell) => string,
  width: number,
): Map<string, Group> {
  const groups = new Map<string, Group>();
  for (const c of cells) {
    const k = key(c);
    let g = groups.get(k);
    if (g === undefined) {
      const members: TrafficCell[] = [];
      const acc = new Float64Array(width);
      g = {
        first: c,
        members,
        acc,
        sumInto(add) {
          for (const m of members) add(m, acc);
        },
      };
      groups.set(k, g);
    }
    g.members.push(c);
  }
  return groups;
}
