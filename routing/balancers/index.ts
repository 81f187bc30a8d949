// The load-balancing strategies, by name. A balancer is created per route per table snapshot and
// holds all of its counters itself; Route and RouteTarget stay frozen.

import type { Balancer, BalancerFactory, Route, RouteTarget, Strategy, TargetHealthView } from '../types.ts';
import { createP2cBalancer } from './p2c.ts';
import { createRandomBalancer } from './random.ts';
import { createRoundRobinBalancer } from './round-robin.ts';
import { createSmoothWrrBalancer } from './smooth-wrr.ts';

export { createP2cBalancer } from './p2c.ts';
export { createRandomBalancer } from './random.ts';
export { buildFabioRing, createRoundRobinBalancer } from './round-robin.ts';
export { buildSmoothSchedule, createSmoothWrrBalancer, SmoothWrrSequence } from './smooth-wrr.ts';

/** Cairn's default: smooth weighted round-robin. */
export const defaultStrategy: Strategy = 'wrr';

export const balancerFactories: Record<Strategy, BalancerFactory> = Object.freeze({
  wrr: createSmoothWrrBalancer,
  rr: createRoundRobinBalancer,
  random: createRandomBalancer,
  p2c: createP2cBalancer,
});

/** A health view for when there is none (tests, explain without a data plane): all up, idle. */
export const alwaysAvailable: TargetHealthView = Object.freeze({
  isAvailable: (_key: string): boolean => true,
  inFlight: (_key: string): number => 0,
});

/**
 * A route with one target: every strategy picks it while it is available. Most routes of a big
 * table have one instance, and a strategy's state (a schedule, weights, counters: about 0.5 KB)
 * would buy nothing there.
 */
class SingleTargetBalancer implements Balancer {
  private readonly target: RouteTarget;
  private readonly health: TargetHealthView;

  constructor(target: RouteTarget, health: TargetHealthView) {
    this.target = target;
    this.health = health;
  }

  pick(): RouteTarget | undefined {
    return this.health.isAvailable(this.target.key) ? this.target : undefined;
  }

  peek(): RouteTarget | undefined {
    return this.pick();
  }
}

/** The balancer for one route of one table snapshot. `random` is used by `random` and `p2c`. */
export function createBalancer(
  strategy: Strategy,
  route: Route,
  health: TargetHealthView,
  random?: () => number,
): Balancer {
  const only = route.targets.length === 1 ? route.targets[0] : undefined;
  if (only !== undefined) return new SingleTargetBalancer(only, health);
  // Object.hasOwn: an untyped caller's 'toString' must not reach Object.prototype.
  const factory = Object.hasOwn(balancerFactories, strategy)
    ? balancerFactories[strategy]
    : createSmoothWrrBalancer;
  return factory(route, health, random);
}

/** Exactly one of Cairn's strategy names. */
export function isStrategy(s: string): s is Strategy {
  return Object.hasOwn(balancerFactories, s);
}

/**
 * A strategy from configuration: Cairn's names, plus fabio's `rnd` for `random`; case and
 * surrounding blanks ignored. undefined for anything else (the caller reports the problem).
 */
export function parseStrategy(s: string): Strategy | undefined {
  const name = s.trim().toLowerCase();
  if (name === 'rnd') return 'random';
  return isStrategy(name) ? name : undefined;
}
