// A Prometheus metric whose series are computed when scraped, from counters Cairn keeps itself.
//
// Why not prom-client's Counter/Histogram children: `counter.labels(...).inc()` and
// `histogram.observe()` hash the label set into a string and validate it on every call, which is
// an allocation and a loop per request. The request path instead bumps plain numbers on a
// TrafficCell; this object turns them into series at scrape time, and prom-client's Registry
// formats them with everything else (it only needs `name`, `help`, `type`, `get()`).

import type { Metric, Registry } from 'prom-client';

export type Labels = Readonly<Record<string, string>>;

export interface Sample {
  readonly labels: Labels;
  readonly value: number;
  /** For histograms: `<name>_bucket`, `<name>_sum`, `<name>_count`. */
  readonly metricName?: string;
}

export interface ScrapeMetricOptions {
  readonly name: string;
  readonly help: string;
  readonly type: 'counter' | 'gauge' | 'histogram';
  readonly collect: () => Sample[];
}

export class ScrapeMetric {
  readonly name: string;
  readonly help: string;
  readonly type: 'counter' | 'gauge' | 'histogram';
  readonly aggregator = 'sum';
  private readonly collectSamples: () => Sample[];

  constructor(opts: ScrapeMetricOptions) {
    this.name = opts.name;
    this.help = opts.help;
    this.type = opts.type;
    this.collectSamples = opts.collect;
  }

  async get(): Promise<{
    name: string;
    help: string;
    type: string;
    aggregator: string;
    values: Sample[];
  }> {
    return {
      name: this.name,
      help: this.help,
      type: this.type,
      aggregator: this.aggregator,
      values: this.collectSamples(),
    };
  }

  /** Registry.resetMetrics() calls this; the counters belong to the data plane, not to us. */
  reset(): void {}

  registerIn(registry: Registry): this {
    registry.registerMetric(this as unknown as Metric);
    return this;
  }
}

/** Series of a histogram from non-cumulative bucket counts (the last count is +Inf). */
export function histogramSamples(
  name: string,
  labels: Labels,
  bounds: readonly number[],
  counts: ArrayLike<number>,
  sum: number,
): Sample[] {
  const out: Sample[] = [];
  let cumulative = 0;
  for (let i = 0; i < bounds.length; i++) {
    cumulative += counts[i] as number;
    out.push({
      metricName: `${name}_bucket`,
      labels: { ...labels, le: String(bounds[i]) },
      value: cumulative,
    });
  }
  cumulative += counts[bounds.length] as number;
  out.push({ metricName: `${name}_bucket`, labels: { ...labels, le: '+Inf' }, value: cumulative });
  out.push({ metricName: `${name}_sum`, labels, value: sum });
  out.push({ metricName: `${name}_count`, labels, value: cumulative });
  return out;
}
