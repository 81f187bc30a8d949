// Smooth (interleaved) weighted round-robin, Cairn's default strategy `wrr`.
//
// The sequence: slot t (0, 1, 2, ...) goes to the target with the earliest deadline among the
// eligible ones, where target i's k-th pick of a period of P = sum(weights) slots is eligible
// from slot k·P/w_i on and due by slot (k+1)·P/w_i (ties: table order). This is WF2Q-style
// earliest-deadline-first on the ideal fluid schedule. It gives, when every target is available:
//   - exactness: each period of P slots holds target i exactly w_i times, and the sequence is
//     periodic, so ANY P consecutive picks do too (not just aligned ones);
//   - smoothness: after any T picks from the start of a period each target has floor(T·w/P) or
//     ceil(T·w/P) picks, so no target bursts ahead or falls behind by a whole pick
//     (weights 5,1,1 give `a b a a c a a`; nginx's smooth WRR gives `a a b a c a a`);
//   - cost: O(log n) per slot with two binary heaps, instead of nginx's O(n) scan.
// Routes whose gcd-reduced period fits MAX_SCHEDULE_LENGTH get the period precomputed once (lazily,
// on the first pick) into a Uint16Array, so a pick is an array read; longer periods run the heaps.
//
// Unavailable targets are skipped by advancing to the next available slot of the sequence. The scan
// is bounded by SCAN_LIMIT slots; past that (most targets ejected) the next available slot is found
// per target instead, so a pick never costs O(P) even while the whole route is down.

import type { Balancer, BalancerFactory, Route, RouteTarget, TargetHealthView } from '../types.ts';

/** Longest period (sum of gcd-reduced weights) that is precomputed: 128 KiB as a Uint16Array. */
export const MAX_SCHEDULE_LENGTH = 65_536;

/** Slots examined in sequence order before falling back to a per-target search (a power of two). */
export const SCAN_LIMIT = 64;
const AHEAD_MASK = SCAN_LIMIT - 1;

/**
 * Weights above this are clamped so the sequence's arithmetic stays exact in doubles: heap keys
 * k/w stay distinguishable (see KeyedHeap) and eligibility products k·P, slot·w (<= w·P, with
 * P <= n·MAX_WEIGHT) stay below 2^53 for routes of up to ~9,000 targets.
 */
export const MAX_WEIGHT = 1_000_000;

/** The balancer of a route without targets (or a factory given nonsense): never picks. */
export const noTargetsBalancer: Balancer = Object.freeze({
  pick: (): RouteTarget | undefined => undefined,
  peek: (): RouteTarget | undefined => undefined,
});

/**
 * Integer weights as the balancers use them. `RouteTarget.weight` is documented as an integer
 * >= 1; anything else (NaN, 0, fractions from a hand-built route) is coerced instead of thrown on.
 */
export function balancerWeights(targets: readonly RouteTarget[]): Float64Array {
  const weights = new Float64Array(targets.length);
  for (let i = 0; i < targets.length; i++) {
    const w = (targets[i] as RouteTarget).weight;
    weights[i] = Number.isFinite(w) && w >= 1 ? Math.min(Math.floor(w), MAX_WEIGHT) : 1;
  }
  return weights;
}

function gcd(a: number, b: number): number {
  while (b !== 0) {
    const t = a % b;
    a = b;
    b = t;
  }
  return a;
}

/** Divides the weights in place by their gcd (a shorter period, same proportions); returns the period. */
export function reduceWeights(weights: Float64Array): number {
  let g = 0;
  for (const w of weights) g = gcd(g, w);
  let period = 0;
  for (let i = 0; i < weights.length; i++) {
    const w = (weights[i] as number) / (g || 1);
    weights[i] = w;
    period += w;
  }
  return period;
}

/**
 * A binary min-heap of target indices by a fraction key k/w (ties: lower index), the key stored
 * beside the index so a sift compares contiguous doubles. The keys are exact enough: k <= w + 1 and
 * w <= MAX_WEIGHT, so two different keys differ by at least 1/MAX_WEIGHT^2 = 1e-12, far above the
 * rounding of a correctly rounded division near 1 (~1e-16), and equal fractions round equally.
 */
class KeyedHeap {
  readonly #items: Int32Array;
  readonly #keys: Float64Array;
  size = 0;

  constructor(capacity: number) {
    this.#items = new Int32Array(capacity);
    this.#keys = new Float64Array(capacity);
  }

  top(): number {
    return this.#items[0] as number;
  }

  push(target: number, key: number): void {
    const items = this.#items;
    const keys = this.#keys;
    let at = this.size++;
    while (at > 0) {
      const parent = (at - 1) >> 1;
      const parentKey = keys[parent] as number;
      const p = items[parent] as number;
      if (parentKey < key || (parentKey === key && p < target)) break;
      items[at] = p;
      keys[at] = parentKey;
      at = parent;
    }
    items[at] = target;
    keys[at] = key;
  }

  pop(): number {
    const items = this.#items;
    const keys = this.#keys;
    const first = items[0] as number;
    const size = --this.size;
    const last = items[size] as number;
    const lastKey = keys[size] as number;
    let at = 0;
    for (;;) {
      let child = 2 * at + 1;
      if (child >= size) break;
      let childKey = keys[child] as number;
      const right = child + 1;
      if (right < size) {
        const rightKey = keys[right] as number;
        if (
          rightKey < childKey ||
          (rightKey === childKey && (items[right] as number) < (items[child] as number))
        ) {
          child = right;
          childKey = rightKey;
        }
      }
      const c = items[child] as number;
      if (lastKey < childKey || (lastKey === childKey && last < c)) break;
      items[at] = c;
      keys[at] = childKey;
      at = child;
    }
    if (size > 0) {
      items[at] = last;
      keys[at] = lastKey;
    }
    return first;
  }
}

/** The infinite smooth WRR sequence of target indices, O(log n) per slot. */
export class SmoothWrrSequence {
  readonly #weights: Float64Array;
  readonly #period: number;
  /** Picks of each target so far in the current period. */
  readonly #served: Float64Array;
  /** Targets whose next pick is eligible, by deadline (k+1)/w. */
  readonly #ready: KeyedHeap;
  /** Targets whose next pick is not yet eligible, by eligibility time k/w. */
  readonly #waiting: KeyedHeap;
  #slot = 0;

  /** `weights`: integers >= 1, at least one (not copied: do not change them afterwards). */
  constructor(weights: Float64Array) {
    this.#weights = weights;
    let period = 0;
    for (const w of weights) period += w;
    this.#period = period;
    this.#served = new Float64Array(weights.length);
    this.#ready = new KeyedHeap(weights.length);
    this.#waiting = new KeyedHeap(weights.length);
    this.#startPeriod();
  }

  get period(): number {
    return this.#period;
  }

  /** Target index of the next slot. */
  next(): number {
    const weights = this.#weights;
    const served = this.#served;
    const waiting = this.#waiting;
    const ready = this.#ready;
    // Release every target whose next pick's ideal start k·P/w has been reached (k·P <= slot·w,
    // compared in integers).
    while (waiting.size > 0) {
      const i = waiting.top();
      const k = served[i] as number;
      const w = weights[i] as number;
      if (k * this.#period > this.#slot * w) break;
      waiting.pop();
      ready.push(i, (k + 1) / w);
    }
    // Never empty: if no target were eligible, sum(served) > slot, yet sum(served) == slot.
    const chosen = ready.pop();
    const count = (served[chosen] as number) + 1;
    served[chosen] = count;
    const w = weights[chosen] as number;
    // A target that has had all w picks of this period waits for the next period.
    if (count < w) waiting.push(chosen, count / w);
    if (++this.#slot === this.#period) this.#startPeriod();
    return chosen;
  }

  /** Whether target a's next pick is due before target b's (deadline order, ties by index). */
  dueBefore(a: number, b: number): boolean {
    const left = ((this.#served[a] as number) + 1) * (this.#weights[b] as number);
    const right = ((this.#served[b] as number) + 1) * (this.#weights[a] as number);
    return left < right || (left === right && a < b);
  }

  // The state at the end of a period equals the initial one shifted by P, so restart from zero:
  // this keeps every product small and makes the sequence exactly periodic.
  #startPeriod(): void {
    this.#slot = 0;
    this.#served.fill(0);
    this.#waiting.size = 0;
    this.#ready.size = 0;
    for (let i = 0; i < this.#weights.length; i++) this.#ready.push(i, 1 / (this.#weights[i] as number));
  }
}

/** One period of the smooth WRR sequence (weights gcd-reduced, period <= MAX_SCHEDULE_LENGTH). */
export function buildSmoothSchedule(weights: Float64Array): Uint16Array {
  const sequence = new SmoothWrrSequence(weights);
  const schedule = new Uint16Array(sequence.period);
  for (let t = 0; t < schedule.length; t++) schedule[t] = sequence.next();
  return schedule;
}

/**
 * Plays a precomputed cyclic schedule of target indices (shared with `rr`, whose schedule is
 * fabio's ring). The schedule is built on the first pick, so routes that never see traffic cost
 * nothing.
 */
export class ScheduleBalancer implements Balancer {
  readonly #targets: readonly RouteTarget[];
  readonly #health: TargetHealthView;
  readonly #weights: Float64Array;
  readonly #build: (weights: Float64Array) => Uint16Array;
  #schedule: Uint16Array | undefined;
  #cursor = 0;
  // Slots of each target in ascending order (CSR layout), built the first time a scan gives up.
  #slotsStart: Uint32Array | undefined;
  #slots: Uint32Array | undefined;

  constructor(
    targets: readonly RouteTarget[],
    health: TargetHealthView,
    weights: Float64Array,
    build: (weights: Float64Array) => Uint16Array,
  ) {
    this.#targets = targets;
    this.#health = health;
    this.#weights = weights;
    this.#build = build;
  }

  pick(): RouteTarget | undefined {
    const slot = this.#nextAvailableSlot();
    if (slot < 0) return undefined;
    const schedule = this.#schedule as Uint16Array;
    this.#cursor = slot + 1 === schedule.length ? 0 : slot + 1;
    return this.#targets[schedule[slot] as number];
  }

  peek(): RouteTarget | undefined {
    const slot = this.#nextAvailableSlot();
    if (slot < 0) return undefined;
    return this.#targets[(this.#schedule as Uint16Array)[slot] as number];
  }

  #nextAvailableSlot(): number {
    if (this.#schedule === undefined) this.#schedule = this.#build(this.#weights);
    const schedule = this.#schedule;
    const length = schedule.length;
    const targets = this.#targets;
    const health = this.#health;
    const scan = Math.min(length, SCAN_LIMIT);
    let slot = this.#cursor;
    for (let n = 0; n < scan; n++) {
      if (health.isAvailable((targets[schedule[slot] as number] as RouteTarget).key)) return slot;
      slot = slot + 1 === length ? 0 : slot + 1;
    }
    // The whole period was scanned: nothing is available.
    if (scan === length) return -1;
    return this.#nextAvailableSlotByTarget();
  }

  // Same answer as scanning on, in O(n log P): the nearest upcoming slot of any available target.
  #nextAvailableSlotByTarget(): number {
    const schedule = this.#schedule as Uint16Array;
    if (this.#slots === undefined) this.#indexSlots(schedule);
    const start = this.#slotsStart as Uint32Array;
    const slots = this.#slots as Uint32Array;
    const length = schedule.length;
    const cursor = this.#cursor;
    let best = -1;
    let bestDistance = length;
    for (let i = 0; i < this.#targets.length; i++) {
      if (!this.#health.isAvailable((this.#targets[i] as RouteTarget).key)) continue;
      const from = start[i] as number;
      const to = start[i + 1] as number;
      if (from === to) continue;
      // First slot of target i at or after the cursor, else its first slot of the next period.
      let lo = from;
      let hi = to;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if ((slots[mid] as number) < cursor) lo = mid + 1;
        else hi = mid;
      }
      const distance = lo < to ? (slots[lo] as number) - cursor : (slots[from] as number) + length - cursor;
      if (distance < bestDistance) {
        bestDistance = distance;
        best = i;
      }
    }
    if (best < 0) return -1;
    const slot = cursor + bestDistance;
    return slot >= length ? slot - length : slot;
  }

  #indexSlots(schedule: Uint16Array): void {
    const n = this.#targets.length;
    const start = new Uint32Array(n + 1);
    for (const i of schedule) start[i + 1] = (start[i + 1] as number) + 1;
    for (let i = 0; i < n; i++) start[i + 1] = (start[i + 1] as number) + (start[i] as number);
    const fill = start.slice(0, n);
    const slots = new Uint32Array(schedule.length);
    for (let slot = 0; slot < schedule.length; slot++) {
      const i = schedule[slot] as number;
      const at = fill[i] as number;
      slots[at] = slot;
      fill[i] = at + 1;
    }
    this.#slotsStart = start;
    this.#slots = slots;
  }
}

/**
 * Smooth WRR for periods too long to precompute: runs the heaps, keeping up to SCAN_LIMIT slots of
 * lookahead so that peek() can skip unavailable targets without advancing.
 */
class SequenceBalancer implements Balancer {
  readonly #targets: readonly RouteTarget[];
  readonly #health: TargetHealthView;
  readonly #sequence: SmoothWrrSequence;
  readonly #ahead = new Int32Array(SCAN_LIMIT);
  #head = 0;
  #buffered = 0;
  /** Lookahead slots the last search went through (consumed by pick). */
  #searched = 0;

  constructor(targets: readonly RouteTarget[], health: TargetHealthView, weights: Float64Array) {
    this.#targets = targets;
    this.#health = health;
    this.#sequence = new SmoothWrrSequence(weights);
  }

  pick(): RouteTarget | undefined {
    const i = this.#nextAvailable();
    if (i < 0) return undefined;
    this.#head = (this.#head + this.#searched) & AHEAD_MASK;
    this.#buffered -= this.#searched;
    return this.#targets[i];
  }

  peek(): RouteTarget | undefined {
    const i = this.#nextAvailable();
    return i < 0 ? undefined : this.#targets[i];
  }

  #nextAvailable(): number {
    const ahead = this.#ahead;
    const targets = this.#targets;
    const health = this.#health;
    for (let n = 0; n < SCAN_LIMIT; n++) {
      const at = (this.#head + n) & AHEAD_MASK;
      if (n === this.#buffered) {
        ahead[at] = this.#sequence.next();
        this.#buffered++;
      }
      const i = ahead[at] as number;
      if (health.isAvailable((targets[i] as RouteTarget).key)) {
        this.#searched = n + 1;
        return i;
      }
    }
    // Most targets are out: approximate "next available slot" by the available target whose next
    // pick is due first. Bounded at O(n); the sequence itself stays exact for when they return.
    this.#searched = SCAN_LIMIT;
    let best = -1;
    for (let i = 0; i < targets.length; i++) {
      if (!health.isAvailable((targets[i] as RouteTarget).key)) continue;
      if (best < 0 || this.#sequence.dueBefore(i, best)) best = i;
    }
    return best;
  }
}

/** Factory for `wrr`. The route is only read; all counters live in the returned balancer. */
export const createSmoothWrrBalancer: BalancerFactory = (
  route: Route,
  health: TargetHealthView,
): Balancer => {
  const targets = route.targets;
  if (targets.length === 0) return noTargetsBalancer;
  const weights = balancerWeights(targets);
  const period = reduceWeights(weights);
  if (period <= MAX_SCHEDULE_LENGTH)
    return new ScheduleBalancer(targets, health, weights, buildSmoothSchedule);
  return new SequenceBalancer(targets, health, weights);
};
