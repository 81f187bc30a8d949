// Weighted random `random` (fabio's `rnd`): target i with probability w_i / W among the available
// targets, O(log n) per pick via cumulative weights and a binary search. The random source is
// injectable so tests (and simulations) are reproducible.

import type { Balancer, BalancerFactory, Route, RouteTarget, TargetHealthView } from '../types.ts';
import { balancerWeights, noTargetsBalancer } from './smooth-wrr.ts';

/** Draws that may land on unavailable targets before switching to an exact O(n) draw. */
const REJECTION_TRIES = 8;

/** Largest double below 1. */
const BELOW_ONE = 1 - 2 ** -53;

/** `random()` forced into [0, 1): a broken source (NaN, 1, -0.5) must not throw or index out of range. */
export function unitRandom(random: () => number): number {
  const r = random();
  if (r >= 0 && r < 1) return r;
  return r >= 1 ? BELOW_ONE : 0;
}

/** The targets of a route with their weights laid end to end on [0, total). */
export class WeightedPool {
  readonly targets: readonly RouteTarget[];
  readonly weights: Float64Array;
  /** ends[i] = weights[0] + ... + weights[i]. */
  readonly ends: Float64Array;
  readonly total: number;

  constructor(targets: readonly RouteTarget[]) {
    this.targets = targets;
    this.weights = balancerWeights(targets);
    this.ends = new Float64Array(targets.length);
    let sum = 0;
    for (let i = 0; i < targets.length; i++) {
      sum += this.weights[i] as number;
      this.ends[i] = sum;
    }
    this.total = sum;
  }

  /** Index of the target whose interval [ends[i] - w_i, ends[i]) holds x, for 0 <= x < total. */
  indexAt(x: number): number {
    const ends = this.ends;
    let lo = 0;
    let hi = ends.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((ends[mid] as number) > x) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }

  /**
   * A weighted draw among the available targets other than `exclude` (-1: none excluded), or -1
   * when there is none. Exactly w_i / (sum of eligible weights), whichever branch answers.
   */
  draw(health: TargetHealthView, random: () => number, exclude: number): number {
    const targets = this.targets;
    const weights = this.weights;
    const excluded = exclude >= 0 ? (weights[exclude] as number) : 0;
    const excludedStart = exclude >= 0 ? (this.ends[exclude] as number) - excluded : 0;
    const span = this.total - excluded;
    if (span > 0) {
      for (let tries = 0; tries < REJECTION_TRIES; tries++) {
        // Draw on the line with the excluded interval cut out.
        let x = unitRandom(random) * span;
        if (exclude >= 0 && x >= excludedStart) x += excluded;
        const i = this.indexAt(x);
        if (i !== exclude && health.isAvailable((targets[i] as RouteTarget).key)) return i;
      }
    }
    // Most of the weight is unavailable: draw among the available targets directly.
    let available = 0;
    for (let i = 0; i < targets.length; i++) {
      if (i !== exclude && health.isAvailable((targets[i] as RouteTarget).key))
        available += weights[i] as number;
    }
    if (available === 0) return -1;
    let x = unitRandom(random) * available;
    let last = -1;
    for (let i = 0; i < targets.length; i++) {
      if (i === exclude || !health.isAvailable((targets[i] as RouteTarget).key)) continue;
      x -= weights[i] as number;
      if (x < 0) return i;
      last = i;
    }
    return last;
  }
}

class RandomBalancer implements Balancer {
  readonly #pool: WeightedPool;
  readonly #health: TargetHealthView;
  readonly #random: () => number;
  /** The draw peek() made, which the next pick() returns if that target is still available. */
  #peeked = -1;

  constructor(route: Route, health: TargetHealthView, random: () => number) {
    this.#pool = new WeightedPool(route.targets);
    this.#health = health;
    this.#random = random;
  }

  pick(): RouteTarget | undefined {
    const i = this.#next();
    this.#peeked = -1;
    return i < 0 ? undefined : this.#pool.targets[i];
  }

  peek(): RouteTarget | undefined {
    const i = this.#next();
    this.#peeked = i;
    return i < 0 ? undefined : this.#pool.targets[i];
  }

  #next(): number {
    const peeked = this.#peeked;
    if (peeked >= 0 && this.#health.isAvailable((this.#pool.targets[peeked] as RouteTarget).key))
      return peeked;
    return this.#pool.draw(this.#health, this.#random, -1);
  }
}

/** Factory for `random`; `random` defaults to Math.random. */
export const createRandomBalancer: BalancerFactory = (
  route: Route,
  health: TargetHealthView,
  random: () => number = Math.random,
): Balancer => {
  if (route.targets.length === 0) return noTargetsBalancer;
  return new RandomBalancer(route, health, random);
};
