// Round-robin `rr`: fabio's rr picker, a counter walking a ring of slots laid out from the weights.
//
// fabio (route.go weighTargets) builds the ring like this: each target gets as many slots as its
// weight; targets are placed smallest count first, each starting at slot 0 and stepping
// floor(ringSize / count) slots between its placements, taking the next free slot (cyclically)
// whenever the stepped-to one is taken. Equal weights therefore give plain table order (fabio uses
// the target list itself then), and 80/20 gives `b a a a a b a a a a`. Cairn lays out the same
// ring (written from that description, with a union-find "next free slot" so a ring costs
// O(P α(P)) instead of fabio's linear probing) and walks it from slot 0 like fabio's counter.
// Unlike `wrr`, the ring can cluster (weights 6000/4000 end in a run of 2000 `a`s), which is why
// `wrr` is the default. fabio sorts the targets with an unstable sort; Cairn breaks ties by
// table order, which is what fabio's sort does for up to 12 targets.
//
// Routes whose ring would exceed MAX_SCHEDULE_LENGTH slots even after gcd reduction fall back to
// the smooth sequence (same counts over every period, better spread).

import type { Balancer, BalancerFactory, Route, TargetHealthView } from '../types.ts';
import {
  balancerWeights,
  createSmoothWrrBalancer,
  MAX_SCHEDULE_LENGTH,
  noTargetsBalancer,
  reduceWeights,
  ScheduleBalancer,
} from './smooth-wrr.ts';

/** fabio's weighted ring for integer weights >= 1 (ring size = their sum, <= MAX_SCHEDULE_LENGTH). */
export function buildFabioRing(weights: Float64Array): Uint16Array {
  const n = weights.length;
  let size = 0;
  for (const w of weights) size += w;
  const ring = new Uint16Array(size);
  const order = new Array<number>(n);
  for (let i = 0; i < n; i++) order[i] = i;
  order.sort((a, b) => (weights[a] as number) - (weights[b] as number) || a - b);

  // nextFree[s] leads to the first free slot >= s; slot `size` is a sentinel meaning "wrap to 0".
  const nextFree = new Uint32Array(size + 1);
  for (let s = 0; s <= size; s++) nextFree[s] = s;
  for (const target of order) {
    const count = weights[target] as number;
    const step = Math.floor(size / count);
    let next = 0;
    for (let k = 0; k < count; k++) {
      let slot = firstFree(nextFree, next);
      if (slot === size) slot = firstFree(nextFree, 0);
      ring[slot] = target;
      nextFree[slot] = slot + 1;
      next = (slot + step) % size;
    }
  }
  return ring;
}

function firstFree(nextFree: Uint32Array, slot: number): number {
  let s = slot;
  for (;;) {
    const parent = nextFree[s] as number;
    if (parent === s) return s;
    // Path halving keeps later searches short.
    const grand = nextFree[parent] as number;
    nextFree[s] = grand;
    s = grand;
  }
}

/** Factory for `rr`. */
export const createRoundRobinBalancer: BalancerFactory = (
  route: Route,
  health: TargetHealthView,
): Balancer => {
  const targets = route.targets;
  if (targets.length === 0) return noTargetsBalancer;
  const weights = balancerWeights(targets);
  let size = 0;
  for (const w of weights) size += w;
  // The table already gcd-reduces its weights; reduce here only when the ring would not fit, since
  // reduction changes fabio's layout.
  if (size > MAX_SCHEDULE_LENGTH) size = reduceWeights(weights);
  if (size > MAX_SCHEDULE_LENGTH) return createSmoothWrrBalancer(route, health);
  return new ScheduleBalancer(targets, health, weights, buildFabioRing);
};
