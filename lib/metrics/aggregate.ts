// `--workers N` (N > 1): one /metrics for the whole pool. Each worker answers the control's
// 'metrics' request with `registry.getMetricsAsJSON()` of its Cairn registry; the control merges
// them with prom-client's AggregatorRegistry (counters and histograms summed, gauges summed unless
// named below) together with the series only the control knows (the table, the registries, the
// pool), and puts its own process metrics first.

import { AggregatorRegistry, Counter, Gauge, Registry } from 'prom-client';

/** Series about the table and the registries: the control process owns them, workers only mirror them. */
export const controlMetricNames: ReadonlySet<string> = new Set([
  'cairn_table_swaps_total',
  'cairn_registry_up',
  'cairn_config_problems',
  'cairn_routes',
]);

/**
 * Per-worker state gauges that must stay 0/1 rather than count workers: a target is up only
 * while every worker sends it traffic, ejected while any worker has ejected it (passive health is
 * per worker).
 */
const workerAggregators: Readonly<Record<string, string>> = {
  cairn_target_up: 'min',
  cairn_target_ejected: 'max',
};

interface MetricJson {
  readonly name: string;
  aggregator?: string;
}

/** A worker's answer: everything but the control-owned series, with the aggregators above. */
export function workerShare(metrics: readonly unknown[]): MetricJson[] {
  const out: MetricJson[] = [];
  for (const m of metrics as MetricJson[]) {
    if (controlMetricNames.has(m.name)) continue;
    const aggregator = workerAggregators[m.name];
    out.push(aggregator !== undefined ? { ...m, aggregator } : m);
  }
  return out;
}

/** The control's share of its own Cairn registry. */
export function controlShare(metrics: readonly unknown[]): MetricJson[] {
  return (metrics as MetricJson[]).filter((m) => controlMetricNames.has(m.name));
}

/** Metrics of the worker pool itself, kept by the control process. */
export class PoolMetrics {
  readonly registry = new Registry();
  readonly restarts: Counter;

  constructor(listening: () => number) {
    this.restarts = new Counter({
      name: 'cairn_worker_restarts_total',
      help: 'Worker processes that died and were restarted (--workers)',
      registers: [this.registry],
    });
    new Gauge({
      name: 'cairn_workers',
      help: 'Worker processes accepting traffic (--workers)',
      registers: [this.registry],
      collect() {
        this.set(listening());
      },
    });
  }
}

export async function aggregatedExposition(
  processText: string,
  control: readonly unknown[],
  workers: readonly (readonly unknown[])[],
): Promise<string> {
  const merged = AggregatorRegistry.aggregate([control, ...workers] as object[]);
  return `${processText}\n${await merged.metrics()}`;
}
