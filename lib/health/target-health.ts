// Live per-target state shared by every table snapshot: in-flight counts (p2c, drain) and
// passive ejection. Keyed by RouteTarget.key, so a target keeps its state across table swaps.
//
// Passive ejection: N consecutive failures (connect errors, resets, 5xx) take a target out for a
// backoff that doubles on each ejection (capped) and resets after a success. A route never loses
// more than half of its targets this way: when every instance looks broken the fault is more
// likely upstream of them, and sending traffic somewhere beats answering 503 to everyone.

import type { RouteTarget, TargetHealthView } from '../../routing/types.ts';

export interface PassiveHealthOptions {
  /** Consecutive failures that eject a target (0 disables ejection). */
  readonly maxFailures: number;
  readonly baseEjectMs: number;
  readonly maxEjectMs: number;
  readonly now?: () => number;
}

export const defaultPassiveHealth: PassiveHealthOptions = {
  maxFailures: 5,
  baseEjectMs: 30_000,
  maxEjectMs: 300_000,
};

export class TargetState {
  inFlight = 0;
  consecutiveFailures = 0;
  /** Epoch ms until which the target is ejected; 0 = not ejected. */
  ejectedUntil = 0;
  /** Number of ejections in a row (backoff exponent); reset by a success after return. */
  ejections = 0;
  requests = 0;
  failures = 0;
  /** Set by active checks (check=): false while the check fails. */
  checkOk = true;
}

export class TargetHealth implements TargetHealthView {
  private readonly states = new Map<string, TargetState>();
  private readonly opts: PassiveHealthOptions;
  private readonly now: () => number;

  constructor(opts: Partial<PassiveHealthOptions> = {}) {
    this.opts = { ...defaultPassiveHealth, ...opts };
    this.now = opts.now ?? Date.now;
  }

  state(key: string): TargetState {
    let s = this.states.get(key);
    if (s === undefined) {
      s = new TargetState();
      this.states.set(key, s);
    }
    return s;
  }

  isAvailable(key: string): boolean {
    const s = this.states.get(key);
    if (s === undefined) return true;
    if (!s.checkOk) return false;
    return s.ejectedUntil === 0 || s.ejectedUntil <= this.now();
  }

  inFlight(key: string): number {
    return this.states.get(key)?.inFlight ?? 0;
  }

  isEjected(key: string): boolean {
    const s = this.states.get(key);
    return s !== undefined && s.ejectedUntil > this.now();
  }

  recordSuccess(s: TargetState): void {
    s.consecutiveFailures = 0;
    if (s.ejectedUntil !== 0 && s.ejectedUntil <= this.now()) {
      s.ejectedUntil = 0;
      s.ejections = 0;
    }
  }

  /** Counts a failure; ejects the target when the threshold is reached. Returns true if ejected. */
  recordFailure(s: TargetState, routeTargets: readonly RouteTarget[]): boolean {
    s.failures++;
    s.consecutiveFailures++;
    const { maxFailures } = this.opts;
    if (maxFailures <= 0 || s.consecutiveFailures < maxFailures) return false;
    const now = this.now();
    if (s.ejectedUntil > now) return false;
    let ejected = 0;
    for (const t of routeTargets) if (this.isEjected(t.key)) ejected++;
    if ((ejected + 1) * 2 > routeTargets.length) return false;
    const backoff = Math.min(this.opts.baseEjectMs * 2 ** s.ejections, this.opts.maxEjectMs);
    s.ejectedUntil = now + backoff;
    s.ejections++;
    s.consecutiveFailures = 0;
    return true;
  }

  /** Drops state of targets no longer in any table (after a swap), except ones still in flight. */
  retainOnly(keys: ReadonlySet<string>): void {
    for (const [k, s] of this.states) if (!keys.has(k) && s.inFlight === 0) this.states.delete(k);
  }
}
