// Power of two choices `p2c`: draw two distinct available targets at random (each weighted by its
// weight), send to the one with fewer requests in flight; on a tie, the first drawn. Two draws and
// two in-flight reads per pick, O(log n), and it steers away from slow or stuck instances without
// the herd behaviour of a global least-connections scan.

import type { Balancer, BalancerFactory, Route, RouteTarget, TargetHealthView } from '../types.ts';
import { WeightedPool } from './random.ts';
import { noTargetsBalancer } from './smooth-wrr.ts';

class PowerOfTwoBalancer implements Balancer {
  readonly #pool: WeightedPool;
  readonly #health: TargetHealthView;
  readonly #random: () => number;
  // The candidates of the last draw, kept from peek() to the next pick() so both agree.
  #first = -1;
  #second = -1;
  #drawn = false;

  constructor(route: Route, health: TargetHealthView, random: () => number) {
    this.#pool = new WeightedPool(route.targets);
    this.#health = health;
    this.#random = random;
  }

  pick(): RouteTarget | undefined {
    if (!this.#candidatesUsable()) this.#drawCandidates();
    this.#drawn = false;
    return this.#choose();
  }

  peek(): RouteTarget | undefined {
    if (!this.#candidatesUsable()) this.#drawCandidates();
    return this.#choose();
  }

  #candidatesUsable(): boolean {
    if (!this.#drawn || this.#first < 0) return false;
    const targets = this.#pool.targets;
    if (!this.#health.isAvailable((targets[this.#first] as RouteTarget).key)) return false;
    return this.#second < 0 || this.#health.isAvailable((targets[this.#second] as RouteTarget).key);
  }

  #drawCandidates(): void {
    const first = this.#pool.draw(this.#health, this.#random, -1);
    this.#first = first;
    this.#second = first < 0 ? -1 : this.#pool.draw(this.#health, this.#random, first);
    this.#drawn = true;
  }

  // In-flight counts are read at decision time, so a peek() followed by traffic may pick differently.
  #choose(): RouteTarget | undefined {
    const targets = this.#pool.targets;
    const first = this.#first;
    if (first < 0) return undefined;
    const second = this.#second;
    if (second < 0) return targets[first];
    const a = targets[first] as RouteTarget;
    const b = targets[second] as RouteTarget;
    // Strictly fewer wins; equal (or a NaN from a broken view) keeps the first.
    return this.#health.inFlight(b.key) < this.#health.inFlight(a.key) ? b : a;
  }
}

/** Factory for `p2c`; `random` defaults to Math.random. */
export const createP2cBalancer: BalancerFactory = (
  route: Route,
  health: TargetHealthView,
  random: () => number = Math.random,
): Balancer => {
  if (route.targets.length === 0) return noTargetsBalancer;
  return new PowerOfTwoBalancer(route, health, random);
};
