// One conformance suite, run for every strategy in balancerFactories: the contract of the
// Balancer interface (routing/types.ts) that the data plane relies on, whatever the strategy.

import { expect } from 'chai';
import { alwaysAvailable, balancerFactories } from '../../routing/balancers/index.ts';
import type { Balancer, Route, RouteTarget, Strategy, TargetHealthView } from '../../routing/types.ts';

// ---- helpers (kept local: each test file builds its own routes) -----------------------------

function target(name: string, weight: number, totalWeight: number): RouteTarget {
  const dst = `http://${name}:80/`;
  return Object.freeze({
    key: `svc|${dst}|`,
    service: 'svc',
    dst,
    url: Object.freeze({
      protocol: 'http:',
      hostname: name,
      port: 80,
      host: `${name}:80`,
      pathname: '/',
      search: '',
    }),
    tags: Object.freeze([]),
    fixedWeight: 0,
    instanceWeight: 1,
    share: totalWeight > 0 ? weight / totalWeight : 0,
    weight,
    opts: Object.freeze({ proto: 'http' as const }),
    rawOpts: Object.freeze({}),
  });
}

/** A frozen route with one target per weight, named a, b, c, ... (t<i> past z). */
function route(weights: readonly number[]): Route {
  let total = 0;
  for (const w of weights) total += w;
  const targets = weights.map((w, i) => target(i < 26 ? String.fromCharCode(97 + i) : `t${i}`, w, total));
  return Object.freeze({
    src: '/',
    host: '',
    path: '/',
    port: 0,
    proto: 'http' as const,
    targets: Object.freeze(targets),
    starved: Object.freeze([]),
    totalWeight: total,
  });
}

/** A health view tests can change between picks. */
class FakeHealth implements TargetHealthView {
  readonly down = new Set<string>();
  readonly busy = new Map<string, number>();
  isAvailable(key: string): boolean {
    return !this.down.has(key);
  }
  inFlight(key: string): number {
    return this.busy.get(key) ?? 0;
  }
}

/** mulberry32: a small seeded PRNG so the random strategies are reproducible. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function counts(balancer: Balancer, picks: number): Map<string, number> {
  const seen = new Map<string, number>();
  for (let n = 0; n < picks; n++) {
    const t = balancer.pick();
    const name = t === undefined ? '(none)' : t.url.hostname;
    seen.set(name, (seen.get(name) ?? 0) + 1);
  }
  return seen;
}

const deterministic: ReadonlySet<Strategy> = new Set<Strategy>(['wrr', 'rr']);

// ---- the suite -----------------------------------------------------------------------------

describe('balancers: conformance (every strategy)', () => {
  it('covers all four strategies', () => {
    expect(Object.keys(balancerFactories).sort()).to.deep.equal(['p2c', 'random', 'rr', 'wrr']);
  });

  for (const [strategy, create] of Object.entries(balancerFactories) as [
    Strategy,
    (typeof balancerFactories)[Strategy],
  ][]) {
    describe(strategy, () => {
      it('returns undefined for a route without targets', () => {
        const b = create(route([]), alwaysAvailable, seeded(1));
        expect(b.pick()).to.equal(undefined);
        expect(b.peek()).to.equal(undefined);
        expect(b.pick()).to.equal(undefined);
      });

      it('returns undefined when every target is unavailable, and recovers', () => {
        for (const weights of [[1, 2, 3], [1000, 1, 5], Array.from({ length: 200 }, () => 3)]) {
          const r = route(weights);
          const health = new FakeHealth();
          for (const t of r.targets) health.down.add(t.key);
          const b = create(r, health, seeded(2));
          for (let n = 0; n < 10; n++) {
            expect(b.peek()).to.equal(undefined);
            expect(b.pick()).to.equal(undefined);
          }
          const last = r.targets[r.targets.length - 1] as RouteTarget;
          health.down.delete(last.key);
          expect(b.pick()).to.equal(last);
        }
      });

      it('only returns available targets', () => {
        const r = route([5, 1, 1, 3, 8, 2, 2, 1, 9, 4]);
        const health = new FakeHealth();
        const random = seeded(3);
        const b = create(r, health, seeded(4));
        for (let round = 0; round < 50; round++) {
          health.down.clear();
          for (const t of r.targets) if (random() < 0.6) health.down.add(t.key);
          for (let n = 0; n < 40; n++) {
            const t = b.pick();
            if (health.down.size === r.targets.length) expect(t).to.equal(undefined);
            else {
              expect(t).to.not.equal(undefined);
              expect(health.down.has((t as RouteTarget).key)).to.equal(false);
            }
          }
        }
      });

      it('always returns the single target of a one-target route', () => {
        for (const weight of [1, 7, 10_000]) {
          const r = route([weight]);
          const b = create(r, alwaysAvailable, seeded(5));
          for (let n = 0; n < 100; n++) {
            expect(b.peek()).to.equal(r.targets[0]);
            expect(b.pick()).to.equal(r.targets[0]);
          }
        }
      });

      it('never throws on odd weights, a broken random source or odd in-flight counts', () => {
        const weird = route([Number.NaN, 0, -3, 1.5, Number.POSITIVE_INFINITY, 2 ** 40]);
        const sources: (() => number)[] = [() => Number.NaN, () => 1, () => -0.5, () => 0, seeded(6)];
        const health: TargetHealthView = { isAvailable: () => true, inFlight: () => Number.NaN };
        for (const random of sources) {
          const b = create(weird, health, random);
          for (let n = 0; n < 50; n++) {
            expect(weird.targets).to.include(b.pick());
            expect(weird.targets).to.include(b.peek());
          }
        }
      });

      it('distributes picks in proportion to the weights', () => {
        const weights = [1, 2, 3, 4, 10];
        const r = route(weights);
        const total = r.totalWeight;
        if (deterministic.has(strategy)) {
          // Exact over every period of W picks.
          const b = create(r, alwaysAvailable);
          for (let period = 0; period < 3; period++) {
            const seen = counts(b, total);
            weights.forEach((w, i) => {
              expect(seen.get(r.targets[i]?.url.hostname ?? '')).to.equal(w);
            });
          }
        } else {
          const picks = 50_000;
          const seen = counts(create(r, alwaysAvailable, seeded(7)), picks);
          weights.forEach((w, i) => {
            const p = w / total;
            const expected = picks * p;
            const sigma = Math.sqrt(picks * p * (1 - p));
            const got = seen.get(r.targets[i]?.url.hostname ?? '') ?? 0;
            expect(Math.abs(got - expected), `target ${i}`).to.be.below(5 * sigma);
          });
        }
      });

      it('respects availability changes between picks', () => {
        const r = route([3, 1, 2]);
        const [a, b, c] = r.targets as [RouteTarget, RouteTarget, RouteTarget];
        const health = new FakeHealth();
        const bal = create(r, health, seeded(8));
        health.down.add(a.key);
        for (let n = 0; n < 100; n++) expect(bal.pick()).to.be.oneOf([b, c]);
        health.down.add(c.key);
        for (let n = 0; n < 100; n++) expect(bal.pick()).to.equal(b);
        health.down.clear();
        const seen = new Set<RouteTarget | undefined>();
        for (let n = 0; n < 200; n++) seen.add(bal.pick());
        expect([...seen]).to.have.members([a, b, c]);
      });

      it('peek() does not advance: it returns what the next pick() returns', () => {
        const r = route([5, 1, 1, 2]);
        const b = create(r, alwaysAvailable, seeded(9));
        for (let n = 0; n < 200; n++) {
          const first = b.peek();
          expect(b.peek()).to.equal(first);
          expect(b.pick()).to.equal(first);
        }
      });

      it('gives the same picks with or without peeks in between', () => {
        const r = route([4, 3, 2, 1, 7]);
        const plain = create(r, alwaysAvailable, seeded(10));
        const peeking = create(r, alwaysAvailable, seeded(10));
        for (let n = 0; n < 300; n++) {
          if (n % 3 === 0) peeking.peek();
          expect(peeking.pick()).to.equal(plain.pick());
        }
      });

      it('keeps its state in the balancer: two balancers of one route are independent', () => {
        const r = route([2, 1]);
        const one = create(r, alwaysAvailable, seeded(11));
        for (let n = 0; n < 5; n++) one.pick();
        const two = create(r, alwaysAvailable, seeded(11));
        const fresh = create(r, alwaysAvailable, seeded(11));
        for (let n = 0; n < 20; n++) expect(two.pick()).to.equal(fresh.pick());
        expect(Object.isFrozen(r)).to.equal(true);
        expect(r.targets.every((t) => Object.isFrozen(t))).to.equal(true);
      });
    });
  }
});
