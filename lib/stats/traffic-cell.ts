// The counters of one route and target (or of a route alone, or of requests with no route): what
// the request path records, what Prometheus exports and what the UI's live columns read. One
// object per (route source, target key), found by object identity on the request path and kept
// across table swaps while the pair stays in the table.

import { LiveWindow } from './live-window.ts';

/** Upper bounds (seconds) of `cairn_request_duration_seconds` buckets. */
export const durationBuckets: readonly number[] = [
  0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
];
const bucketsMs = durationBuckets.map((s) => s * 1000);
const bucketCount = durationBuckets.length;

/** `code` label values by status class index (`status / 100`); 0 is "no status" (client gone). */
export const statusClasses: readonly string[] = ['none', '1xx', '2xx', '3xx', '4xx', '5xx'];

export const upstreamErrorKinds = ['connect', 'reset', 'timeout', 'other'] as const;
export type UpstreamErrorKind = (typeof upstreamErrorKinds)[number];
const kindIndex: Readonly<Record<UpstreamErrorKind, number>> = { connect: 0, reset: 1, timeout: 2, other: 3 };

export interface CellLabels {
  /** Route source as the table prints it; '' for requests no route matched. */
  readonly route: string;
  readonly service: string;
  /** Target dst; '' for a route-level cell (a request answered before a target was picked). */
  readonly target: string;
  /** RouteTarget.key; '' for route-level cells. */
  readonly key: string;
  /** A TCP route: counts connections (synced from the TCP engine), not HTTP requests. */
  readonly tcp: boolean;
}

let nextId = 1;

const classCount = statusClasses.length;
const errorKindCount = upstreamErrorKinds.length;
/** Doubles per cell: byClass, then the histogram (with +Inf), then upstream errors. */
const countersLength = classCount + bucketCount + 1 + errorKindCount;

/** Offsets in a cell's counters: byClass, then the histogram (with +Inf), then upstream errors. */
const bucketsAt = classCount;
const errorsAt = classCount + bucketCount + 1;

/**
 * The zeros every cell reads until it counts something: most cells of a large table never see a
 * request (route-level cells, idle targets). Only TrafficCell writes counters, and only after
 * `firstWrite()` gave the cell its own array, so these are never written.
 */
const noCounters: number[] = new Array<number>(countersLength).fill(0);
const noViews = {
  byClass: new Float64Array(bucketsAt),
  buckets: new Float64Array(errorsAt - bucketsAt),
  upstreamErrors: new Float64Array(countersLength - errorsAt),
};

export class TrafficCell implements CellLabels {
  /** Stable id while the cell lives (rows in the API and UI). */
  readonly id: number;
  readonly route: string;
  readonly service: string;
  readonly target: string;
  readonly key: string;
  readonly tcp: boolean;
  /** Requests (TCP: connections) ever recorded. */
  requests = 0;
  /**
   * byClass, buckets and upstreamErrors in one plain array of numbers: shared zeros until the
   * first count (see noCounters). Not typed arrays: a buffer object, its off-heap store and three
   * views cost a busy cell ~450 bytes more, times every busy route of a 10,000-route table. The
   * getters below copy them out for the exporter (once per scrape).
   */
  private counters: number[] = noCounters;
  durationSeconds = 0;
  retries = 0;
  /** Created on the first request, so idle targets of a large table cost no ring memory. */
  window: LiveWindow | undefined;
  /**
   * Whether the cell keeps a live window. Not in a worker of `--workers`: the control process
   * keeps the rates and percentiles, and the worker's latencies go to one log its reports drain
   * (Traffic.reportOnly), so a busy cell there costs its counters only, not a 2 KB ring.
   */
  live = true;
  /** Worker of `--workers`: the counters as of its last report to the control (StatsReporter). */
  reportedRequests = 0;
  reportedErrors5xx = 0;
  reportedConnectErrors = 0;

  constructor(labels: CellLabels) {
    this.id = nextId++;
    this.route = labels.route;
    this.service = labels.service;
    this.target = labels.target;
    this.key = labels.key;
    this.tcp = labels.tcp;
  }

  /** Responses by status class (statusClasses). A copy (shared zeros before the first count). */
  get byClass(): Float64Array {
    const c = this.counters;
    return c === noCounters ? noViews.byClass : Float64Array.from(c.slice(0, bucketsAt));
  }

  /** Duration histogram: non-cumulative counts per bucket, the last one is +Inf. A copy. */
  get buckets(): Float64Array {
    const c = this.counters;
    return c === noCounters ? noViews.buckets : Float64Array.from(c.slice(bucketsAt, errorsAt));
  }

  /** Failed upstream attempts by kind (upstreamErrorKinds). A copy. */
  get upstreamErrors(): Float64Array {
    const c = this.counters;
    return c === noCounters ? noViews.upstreamErrors : Float64Array.from(c.slice(errorsAt));
  }

  /** Request path: one finished request. No allocation after the first call. */
  record(status: number, ms: number, second: number): void {
    if (this.counters === noCounters) this.firstWrite();
    const c = this.counters;
    this.requests++;
    const cls = status >= 100 && status < 600 ? (status / 100) | 0 : 0;
    c[cls] = (c[cls] as number) + 1;
    let b = 0;
    while (b < bucketCount && ms > (bucketsMs[b] as number)) b++;
    c[bucketsAt + b] = (c[bucketsAt + b] as number) + 1;
    this.durationSeconds += ms / 1000;
    this.window?.recordLatency(ms, second);
  }

  /** Request path: one failed upstream attempt; `retried` when another target is tried next. */
  recordUpstreamError(kind: UpstreamErrorKind, retried: boolean): void {
    // Before counting: a window opened afterwards would take this error as its baseline.
    if (this.counters === noCounters) this.firstWrite();
    const i = errorsAt + kindIndex[kind];
    this.counters[i] = (this.counters[i] as number) + 1;
    if (retried) this.retries++;
  }

  get errors5xx(): number {
    return this.counters[5] as number;
  }

  get connectErrors(): number {
    return this.counters[errorsAt] as number;
  }

  /** Once a second (the ticker): the live window takes a sample. */
  sample(): void {
    this.window?.sample(this.requests, this.errors5xx, this.connectErrors);
  }

  /**
   * Control process of `--workers`: traffic a worker recorded on its copy of this cell. Only what
   * the live window reads (Prometheus series are summed from the workers' own metrics instead).
   */
  absorb(
    requests: number,
    errors5xx: number,
    connectErrors: number,
    latencies: readonly number[],
    second: number,
  ): void {
    if (this.counters === noCounters) this.firstWrite();
    const c = this.counters;
    this.requests += requests;
    c[5] = (c[5] as number) + errors5xx;
    c[errorsAt] = (c[errorsAt] as number) + connectErrors;
    const w = this.window;
    if (w !== undefined) for (const ms of latencies) w.recordLatency(ms, second);
  }

  /** TCP cells: the engine's counters are the source of truth; copy them at the tick. */
  syncTcp(connections: number, connectErrors: number): void {
    if (this.counters === noCounters) {
      if (connections === this.requests && connectErrors === this.connectErrors) return;
      this.firstWrite();
    }
    this.requests = connections;
    this.counters[errorsAt] = connectErrors;
  }

  /**
   * Every write path comes through here first: the cell gets its own counters and (if `live`) its
   * window, whose baseline is the counters before this write.
   */
  private firstWrite(): void {
    this.counters = new Array<number>(countersLength).fill(0);
    if (this.live) this.window = new LiveWindow(this.requests, this.errors5xx, this.connectErrors);
  }
}
