// The live view of one route/target's traffic: request, 5xx and connect-error rates over the last
// 1 and 5 minutes, and latency percentiles over the last minute. Built for the request path:
//
// - Counters are plain cumulative numbers the request path bumps (see TrafficCell). Once a
//   second the ticker copies them into rings of per-second samples, so a rate over W seconds is
//   one subtraction: (now - W seconds ago) / W. The request path never touches the rings.
// - Latencies go into a fixed ring of the most recent samples (with the second they were taken),
//   so recording one is two array stores. Percentiles are computed only when someone asks (the
//   admin API or the UI's stats tick), at most once per second per cell.
//
// Samples are Uint32: a cumulative count wraps at 2^32, and `(a - b) >>> 0` still gives the right
// difference as long as fewer than 2^32 requests happen in five minutes.

/** Seconds kept for the long rate (5 min) and the short one (1 min). */
export const longWindow = 300;
export const shortWindow = 60;
/** Latency samples kept per cell (the most recent ones). Power of two: the index wraps with a mask. */
export const latencySamples = 256;
/**
 * Latency slots a window starts with. The ring doubles (up to latencySamples) only when the
 * sample it would overwrite is from the last `shortWindow` seconds: an older one no percentile
 * can use any more, so a quiet route's ring stays small (most of a 10,000-route table's) and the
 * percentiles are exactly those of a full ring.
 */
const initialLatencySlots = 8;

export class LiveWindow {
  /**
   * Cumulative requests at each of the last `longWindow + 1` ticks; undefined in a latency-only
   * window (a worker of `--workers`: the control process keeps the rates).
   */
  private requestsAt: Uint32Array | undefined;
  /**
   * 5xx responses then connect errors at each of the last `shortWindow + 1` ticks; created on the
   * first error (most cells never see one), until then both stay at their baselines.
   */
  private errorsAt: Uint32Array | undefined;
  private readonly errors5xxBase: number;
  private readonly connectErrorsBase: number;
  /** Ticks sampled since the window was created (the newest sample is `ticks`). */
  private ticks = 0;
  /** Latency ring: milliseconds, and the clock second each was recorded in (see initialLatencySlots). */
  private latency: Float32Array;
  private latencySecond: Uint32Array;
  private latencyCount = 0;
  /**
   * Percentiles cache, valid for one clock second: every reader in that second (the SSE tick, the
   * API) sees the same numbers, and a busy cell is sorted at most once a second.
   */
  private cachedAt = -1;
  private p50 = 0;
  private p99 = 0;

  /**
   * A window whose baseline is the counters' values now (their earlier history is unknown).
   * Without `rates` it keeps only the latency ring: rates, errors and ticks then read as 0.
   */
  constructor(requests: number, errors5xx: number, connectErrors: number, rates = true) {
    // One buffer for the rings a busy cell needs: each typed array's own buffer would cost a
    // header and a malloc'd store apiece, thousands of times over in a large table.
    const ring = rates ? longWindow + 1 : 0;
    const slots = initialLatencySlots;
    const buffer = new ArrayBuffer((ring + 2 * slots) * 4);
    this.latencySecond = new Uint32Array(buffer, 0, slots);
    this.latency = new Float32Array(buffer, slots * 4, slots);
    if (rates) {
      this.requestsAt = new Uint32Array(buffer, 2 * slots * 4, ring);
      this.requestsAt[0] = requests;
    }
    this.errors5xxBase = errors5xx;
    this.connectErrorsBase = connectErrors;
  }

  /** Request path: one latency sample. */
  recordLatency(ms: number, second: number): void {
    let slots = this.latency.length;
    if (this.latencyCount >= slots && slots < latencySamples) {
      const overwritten = this.latencySecond[this.latencyCount & (slots - 1)] as number;
      if (overwritten > second - shortWindow) slots = this.grow();
    }
    const i = this.latencyCount & (slots - 1);
    this.latency[i] = ms;
    this.latencySecond[i] = second;
    this.latencyCount++;
  }

  /** Twice the latency slots, the samples kept where their sequence numbers now fall. */
  private grow(): number {
    const slots = this.latency.length;
    const next = slots * 2;
    const ring = this.requestsAt?.length ?? 0;
    const buffer = new ArrayBuffer((ring + 2 * next) * 4);
    const second = new Uint32Array(buffer, 0, next);
    const latency = new Float32Array(buffer, next * 4, next);
    for (let n = Math.max(0, this.latencyCount - slots); n < this.latencyCount; n++) {
      second[n & (next - 1)] = this.latencySecond[n & (slots - 1)] as number;
      latency[n & (next - 1)] = this.latency[n & (slots - 1)] as number;
    }
    if (this.requestsAt !== undefined) {
      const requestsAt = new Uint32Array(buffer, 2 * next * 4, ring);
      requestsAt.set(this.requestsAt);
      this.requestsAt = requestsAt;
    }
    this.latencySecond = second;
    this.latency = latency;
    return next;
  }

  /** Latency slots now (grows up to latencySamples). */
  get latencySlots(): number {
    return this.latency.length;
  }

  /** Latency samples recorded since the window was created. */
  get latencyTotal(): number {
    return this.latencyCount;
  }

  /**
   * Worker processes (`--workers`): the samples recorded after the first `since` ones (at most a
   * ring's worth, oldest first), appended to `out`. The control process re-records them.
   */
  latenciesSince(since: number, out: number[]): void {
    const slots = this.latency.length;
    const from = Math.max(since, this.latencyCount - slots);
    for (let n = from; n < this.latencyCount; n++) out.push(this.latency[n & (slots - 1)] as number);
  }

  /** Once a second: the counters' current values become the newest sample. */
  sample(requests: number, errors5xx: number, connectErrors: number): void {
    const requestsAt = this.requestsAt;
    if (requestsAt === undefined) return;
    this.ticks++;
    requestsAt[this.ticks % (longWindow + 1)] = requests;
    let errorsAt = this.errorsAt;
    if (errorsAt === undefined) {
      if (errors5xx === this.errors5xxBase && connectErrors === this.connectErrorsBase) return;
      // Every earlier tick held the baselines.
      errorsAt = new Uint32Array(2 * (shortWindow + 1));
      errorsAt.fill(this.errors5xxBase, 0, shortWindow + 1);
      errorsAt.fill(this.connectErrorsBase, shortWindow + 1);
      this.errorsAt = errorsAt;
    }
    const i = this.ticks % (shortWindow + 1);
    errorsAt[i] = errors5xx;
    errorsAt[shortWindow + 1 + i] = connectErrors;
  }

  /** Requests per second over the last `seconds` (at most the window's age). */
  rate(seconds: number): number {
    const ring = this.requestsAt;
    if (ring === undefined) return 0;
    return this.delta(ring, Math.min(seconds, longWindow)) / this.span(seconds);
  }

  /** Requests, 5xx responses and connect errors over the last minute. */
  lastMinute(): { requests: number; errors5xx: number; connectErrors: number } {
    return {
      requests: this.requestsAt === undefined ? 0 : this.delta(this.requestsAt, shortWindow),
      errors5xx: this.errorsDelta(0),
      connectErrors: this.errorsDelta(shortWindow + 1),
    };
  }

  /** p50 and p99 in ms of the samples taken in the last `shortWindow` seconds; 0 without any. */
  percentiles(second: number, scratch: Float64Array): { p50: number; p99: number } {
    if (this.cachedAt !== second) {
      const slots = this.latency.length;
      const oldest = second - shortWindow;
      let k = 0;
      for (let n = Math.max(0, this.latencyCount - slots); n < this.latencyCount; n++) {
        const i = n & (slots - 1);
        if ((this.latencySecond[i] as number) > oldest) scratch[k++] = this.latency[i] as number;
      }
      const recent = scratch.subarray(0, k).sort();
      this.p50 = nearestRank(recent, 0.5);
      this.p99 = nearestRank(recent, 0.99);
      this.cachedAt = second;
    }
    return { p50: this.p50, p99: this.p99 };
  }

  private span(seconds: number): number {
    return Math.max(1, Math.min(seconds, this.ticks, longWindow));
  }

  /** Errors over the last minute from the ring at `offset` in errorsAt (0 before any error). */
  private errorsDelta(offset: number): number {
    const ring = this.errorsAt;
    if (ring === undefined) return 0;
    return this.delta(ring, shortWindow, offset, shortWindow + 1);
  }

  /** Difference over `seconds` in the ring of `size` slots starting at `offset` in `ring`. */
  private delta(ring: Uint32Array, seconds: number, offset = 0, size = ring.length): number {
    const back = Math.min(seconds, this.ticks, size - 1);
    const now = ring[offset + (this.ticks % size)] as number;
    const then = ring[offset + ((this.ticks - back) % size)] as number;
    return (now - then) >>> 0;
  }
}

/** Nearest-rank percentile of sorted values; 0 for none. */
export function nearestRank(sorted: ArrayLike<number>, q: number): number {
  const n = sorted.length;
  if (n === 0) return 0;
  const rank = Math.min(n, Math.max(1, Math.ceil(q * n)));
  return sorted[rank - 1] as number;
}
