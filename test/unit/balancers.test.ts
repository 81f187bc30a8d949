// Strategy-specific behaviour of the balancers (the shared contract is in
// balancers.conformance.test.ts), the fabio rr_sequence vectors, and index.ts.

import { expect } from 'chai';
import fc from 'fast-check';
import {
  alwaysAvailable,
  balancerFactories,
  buildFabioRing,
  buildSmoothSchedule,
  createBalancer,
  createP2cBalancer,
  createRandomBalancer,
  createRoundRobinBalancer,
  createSmoothWrrBalancer,
  defaultStrategy,
  isStrategy,
  parseStrategy,
  SmoothWrrSequence,
} from '../../routing/balancers/index.ts';
import { MAX_SCHEDULE_LENGTH, SCAN_LIMIT } from '../../routing/balancers/smooth-wrr.ts';
import type { Balancer, Route, RouteTarget, Strategy, TargetHealthView } from '../../routing/types.ts';

// ---- helpers ---------------------------------------------------------------------------------

function makeTarget(dst: string, weight: number, totalWeight: number): RouteTarget {
  const u = new URL(dst);
  const port = u.port === '' ? 80 : Number(u.port);
  return Object.freeze({
    key: `svc|${dst}|`,
    service: 'svc',
    dst,
    url: Object.freeze({
      protocol: u.protocol,
      hostname: u.hostname,
      port,
      host: u.host,
      pathname: u.pathname,
      search: u.search,
    }),
    tags: Object.freeze([]),
    fixedWeight: 0,
    instanceWeight: 1,
    share: weight / totalWeight,
    weight,
    opts: Object.freeze({ proto: 'http' as const }),
    rawOpts: Object.freeze({}),
  });
}

/** A frozen route; targets given as [dst, weight] in table order. */
function routeOf(entries: readonly (readonly [string, number])[]): Route {
  let total = 0;
  for (const [, w] of entries) total += w;
  return Object.freeze({
    src: '/',
    host: '',
    path: '/',
    port: 0,
    proto: 'http' as const,
    targets: Object.freeze(entries.map(([dst, w]) => makeTarget(dst, w, total))),
    starved: Object.freeze([]),
    totalWeight: total,
  });
}

/** Targets a, b, c, ... (t<i> past z) with the given weights. */
function route(weights: readonly number[]): Route {
  return routeOf(
    weights.map((w, i) => [`http://${i < 26 ? String.fromCharCode(97 + i) : `t${i}`}/`, w] as const),
  );
}

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

/** A "random" source replaying fixed values, for exact p2c / random assertions. */
function replay(values: readonly number[]): () => number {
  let n = 0;
  return () => values[n++ % values.length] as number;
}

/** Indices (into route.targets) of `picks` consecutive picks. */
function pickIndices(balancer: Balancer, r: Route, picks: number): number[] {
  const out = new Array<number>(picks);
  for (let n = 0; n < picks; n++) out[n] = r.targets.indexOf(balancer.pick() as RouteTarget);
  return out;
}

function letters(indices: readonly number[]): string {
  return indices.map((i) => String.fromCharCode(97 + i)).join('');
}

/**
 * Whether every window of `length` consecutive entries of `seq` holds target i exactly
 * weights[i] times (sliding counts, O(seq) overall).
 */
function everyWindowExact(seq: readonly number[], weights: readonly number[], length: number): boolean {
  const count = new Array<number>(weights.length).fill(0);
  for (let t = 0; t < length; t++) {
    const i = seq[t] as number;
    count[i] = (count[i] as number) + 1;
  }
  let wrong = 0;
  for (let i = 0; i < weights.length; i++) if (count[i] !== weights[i]) wrong++;
  if (wrong > 0) return false;
  for (let start = 1; start + length <= seq.length; start++) {
    for (const [i, delta] of [
      [seq[start - 1] as number, -1],
      [seq[start + length - 1] as number, 1],
    ] as const) {
      const before = count[i] === weights[i];
      count[i] = (count[i] as number) + delta;
      const after = count[i] === weights[i];
      if (before && !after) wrong++;
      if (!before && after) wrong--;
    }
    if (wrong > 0) return false;
  }
  return true;
}

/**
 * Smoothness: after every prefix of T picks, each target has floor(T·w/W) or ceil(T·w/W) picks,
 * i.e. it is never a whole pick ahead of or behind its ideal share. Returns the first violation.
 */
function lagViolation(seq: readonly number[], weights: readonly number[]): string | undefined {
  let total = 0;
  for (const w of weights) total += w;
  const count = new Array<number>(weights.length).fill(0);
  for (let t = 0; t < seq.length; t++) {
    const picked = seq[t] as number;
    count[picked] = (count[picked] as number) + 1;
    const picks = t + 1;
    for (let i = 0; i < weights.length; i++) {
      const ideal = (picks * (weights[i] as number)) / total;
      const c = count[i] as number;
      if (c < Math.floor(ideal) || c > Math.ceil(ideal))
        return `target ${i} has ${c} after ${picks} (ideal ${ideal})`;
    }
  }
  return undefined;
}

/** The documented skip rule, played naively on a whole schedule: next available slot from the cursor. */
class ScheduleModel {
  cursor = 0;
  readonly schedule: readonly number[];
  constructor(schedule: readonly number[]) {
    this.schedule = schedule;
  }
  pick(available: (i: number) => boolean): number {
    const n = this.schedule.length;
    for (let s = 0; s < n; s++) {
      const slot = (this.cursor + s) % n;
      const i = this.schedule[slot] as number;
      if (available(i)) {
        this.cursor = (slot + 1) % n;
        return i;
      }
    }
    return -1;
  }
}

function gcdReduced(weights: readonly number[]): number[] {
  const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));
  const g = weights.reduce(gcd, 0);
  return weights.map((w) => w / g);
}

// ---- wrr -------------------------------------------------------------------------------------

describe('balancers: wrr (smooth weighted round-robin)', () => {
  const weightSets: number[][] = [
    [1],
    [1, 1],
    [5, 1, 1],
    [3, 2],
    [6, 4],
    [1, 2, 3, 4, 5],
    [10, 1],
    [7, 7, 7],
    [100, 1, 1, 50],
    [8000, 2000],
    [9000, 1000],
    [13, 17, 19, 23, 29, 31],
  ];

  it('picks each target exactly its weight times in every window of W = totalWeight picks', () => {
    for (const weights of weightSets) {
      const r = route(weights);
      const seq = pickIndices(createSmoothWrrBalancer(r, alwaysAvailable), r, 3 * r.totalWeight);
      expect(everyWindowExact(seq, weights, r.totalWeight), `weights ${weights}`).to.equal(true);
    }
  });

  it('never lets a target get a whole pick ahead or behind its share (floor/ceil after every prefix)', () => {
    for (const weights of weightSets) {
      const r = route(weights);
      const seq = pickIndices(createSmoothWrrBalancer(r, alwaysAvailable), r, 2 * r.totalWeight);
      expect(lagViolation(seq, weights), `weights ${weights}`).to.equal(undefined);
    }
  });

  it('interleaves 5,1,1 without bursts: a b a a c a a', () => {
    const r = route([5, 1, 1]);
    const seq = letters(pickIndices(createSmoothWrrBalancer(r, alwaysAvailable), r, 21));
    expect(seq).to.equal('abaacaa'.repeat(3));
    // Read cyclically: b and c are never adjacent (at least 2 a's between them either way) and a
    // never runs more than 3 picks (5 a's around only 2 other picks cannot do better).
    const cyclic = seq + seq;
    expect(cyclic).to.not.match(/bc|cb|bac|cab/);
    expect(cyclic).to.not.match(/aaaa/);
  });

  it('equal weights give plain table order', () => {
    const r = route([2, 2, 2, 2]);
    expect(letters(pickIndices(createSmoothWrrBalancer(r, alwaysAvailable), r, 8))).to.equal('abcdabcd');
  });

  it('skips an ejected target by advancing to the next available slot', () => {
    const r = route([5, 1, 1]);
    const [, b] = r.targets as [RouteTarget, RouteTarget, RouteTarget];
    const health = new FakeHealth();
    health.down.add(b.key);
    const bal = createSmoothWrrBalancer(r, health);
    // Schedule a b a a c a a: b's slot is skipped, so each period of 7 slots gives 6 picks.
    expect(letters(pickIndices(bal, r, 12))).to.equal('aaacaa'.repeat(2));
    health.down.clear();
    // Back in rotation at its own slot (the cursor is at the period start again).
    expect(letters(pickIndices(bal, r, 7))).to.equal('abaacaa');
  });

  it('follows the skip rule exactly also when most targets are out (per-target search past the scan limit)', () => {
    const weights = Array.from({ length: 40 }, (_, i) => 1 + ((i * 37) % 23));
    const r = route(weights);
    const schedule = Array.from(buildSmoothSchedule(new Float64Array(gcdReduced(weights))));
    expect(schedule.length).to.be.above(SCAN_LIMIT);
    const health = new FakeHealth();
    const model = new ScheduleModel(schedule);
    const bal = createSmoothWrrBalancer(r, health);
    const random = seeded(21);
    for (let round = 0; round < 200; round++) {
      health.down.clear();
      const keep = random() < 0.5 ? 0.05 : 0.7; // sometimes almost everything is down
      for (const t of r.targets) if (random() >= keep) health.down.add(t.key);
      for (let n = 0; n < 5; n++) {
        const expected = model.pick((i) => health.isAvailable((r.targets[i] as RouteTarget).key));
        const got = bal.pick();
        expect(got === undefined ? -1 : r.targets.indexOf(got)).to.equal(expected);
      }
    }
  });

  it('runs periods too long to precompute on the heap sequence, with the same picks', () => {
    // gcd 1 and W > MAX_SCHEDULE_LENGTH: no precomputed schedule.
    const weights = Array.from({ length: 20 }, (_, i) => 5000 + i);
    const r = route(weights);
    expect(r.totalWeight).to.be.above(MAX_SCHEDULE_LENGTH);
    const reference = Array.from(buildSmoothSchedule(new Float64Array(weights)));
    const bal = createSmoothWrrBalancer(r, alwaysAvailable);
    const seq = pickIndices(bal, r, r.totalWeight + 5000);
    expect(seq.slice(0, r.totalWeight)).to.deep.equal(reference);
    expect(seq.slice(r.totalWeight)).to.deep.equal(reference.slice(0, 5000));
    expect(everyWindowExact(seq, weights, r.totalWeight)).to.equal(true);
    expect(lagViolation(seq.slice(0, r.totalWeight), weights)).to.equal(undefined);
  });

  it('heap sequence mode skips ejected targets like the schedule and stays available-only when most are out', () => {
    const weights = Array.from({ length: 20 }, (_, i) => 5000 + i);
    const r = route(weights);
    const health = new FakeHealth();
    const bal = createSmoothWrrBalancer(r, health);
    const model = new ScheduleModel(Array.from(buildSmoothSchedule(new Float64Array(weights))));
    // A few out: the next available slot is always within the lookahead, so picks match the model.
    const out = [3, 7, 11];
    for (const i of out) health.down.add((r.targets[i] as RouteTarget).key);
    for (let n = 0; n < 5000; n++) {
      const expected = model.pick((i) => !out.includes(i));
      expect(r.targets.indexOf(bal.pick() as RouteTarget)).to.equal(expected);
    }
    // All but one out: every pick is that one, without scanning a whole period.
    for (const t of r.targets) health.down.add(t.key);
    const last = r.targets[19] as RouteTarget;
    health.down.delete(last.key);
    for (let n = 0; n < 100; n++) expect(bal.pick()).to.equal(last);
    health.down.add(last.key);
    expect(bal.pick()).to.equal(undefined);
  });

  it('the heap sequence is periodic and matches the precomputed schedule', () => {
    const weights = [5, 1, 1, 9, 4];
    const seq = new SmoothWrrSequence(new Float64Array(weights));
    const schedule = Array.from(buildSmoothSchedule(new Float64Array(weights)));
    const played = Array.from({ length: 3 * seq.period }, () => seq.next());
    expect(played).to.deep.equal([...schedule, ...schedule, ...schedule]);
  });

  it('property: random weight sets are exact over every window of W and within one pick of their share', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 100 }), { minLength: 1, maxLength: 50 }), (weights) => {
        const r = route(weights);
        const total = r.totalWeight;
        const seq = pickIndices(createSmoothWrrBalancer(r, alwaysAvailable), r, 2 * total);
        if (!everyWindowExact(seq, weights, total)) return false;
        // The observed share after T picks is within 1/T of w/W for every T (so within 1/W over W picks).
        return lagViolation(seq, weights) === undefined;
      }),
      { numRuns: 150 },
    );
  });

  it('property: the skip rule holds for random weights and random availability', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 1, max: 100 }), { minLength: 1, maxLength: 50 }),
        fc.array(fc.array(fc.boolean(), { minLength: 50, maxLength: 50 }), { minLength: 1, maxLength: 20 }),
        (weights, rounds) => {
          const r = route(weights);
          const health = new FakeHealth();
          const model = new ScheduleModel(
            Array.from(buildSmoothSchedule(new Float64Array(gcdReduced(weights)))),
          );
          const bal = createSmoothWrrBalancer(r, health);
          for (const up of rounds) {
            health.down.clear();
            r.targets.forEach((t, i) => {
              if (!up[i]) health.down.add(t.key);
            });
            for (let n = 0; n < 3; n++) {
              const expected = model.pick((i) => up[i] === true);
              const got = bal.pick();
              if ((got === undefined ? -1 : r.targets.indexOf(got)) !== expected) return false;
            }
          }
          return true;
        },
      ),
      { numRuns: 100 },
    );
  });
});

// ---- rr --------------------------------------------------------------------------------------

/**
 * fabio's rr_sequence vectors (fabio HEAD 2456d96, route package). ringCounts are the slots each
 * target holds on fabio's ring, in table order; they become the targets' integer weights.
 */
const rrSequenceVectors: readonly {
  name: string;
  routes: readonly string[];
  ringCounts: readonly (readonly [string, number])[];
  ringSize: number;
  sequence: readonly string[];
}[] = [
  {
    name: 'rr two equal targets alternate',
    routes: ['route add svc /foo http://foo.com/', 'route add svc /foo http://bar.com/'],
    ringCounts: [
      ['http://foo.com/', 1],
      ['http://bar.com/', 1],
    ],
    ringSize: 2,
    sequence: [
      'http://foo.com/',
      'http://bar.com/',
      'http://foo.com/',
      'http://bar.com/',
      'http://foo.com/',
      'http://bar.com/',
    ],
  },
  {
    name: 'rr three equal targets',
    routes: ['route add svc / http://a/', 'route add svc / http://b/', 'route add svc / http://c/'],
    ringCounts: [
      ['http://a/', 1],
      ['http://b/', 1],
      ['http://c/', 1],
    ],
    ringSize: 3,
    sequence: ['http://a/', 'http://b/', 'http://c/', 'http://a/', 'http://b/', 'http://c/'],
  },
  {
    name: 'rr 80/20 weighted ring',
    routes: [
      'route add svc-a /app http://a/ tags "v1"',
      'route add svc-b /app http://b/ tags "v2"',
      'route weight svc-b /app weight 0.2 tags "v2"',
    ],
    ringCounts: [
      ['http://a/', 8000],
      ['http://b/', 2000],
    ],
    ringSize: 10000,
    sequence: [
      'http://b/',
      'http://a/',
      'http://a/',
      'http://a/',
      'http://a/',
      'http://b/',
      'http://a/',
      'http://a/',
      'http://a/',
      'http://a/',
      'http://b/',
      'http://a/',
    ],
  },
  {
    name: 'rr 50/50 fixed weights spaced evenly',
    routes: ['route add svc / http://a/ weight 0.5', 'route add svc / http://b/ weight 0.5'],
    ringCounts: [
      ['http://a/', 5000],
      ['http://b/', 5000],
    ],
    ringSize: 10000,
    sequence: ['http://a/', 'http://b/', 'http://a/', 'http://b/', 'http://a/', 'http://b/'],
  },
  {
    name: 'rr 90/10',
    routes: ['route add svc / http://a/ weight 0.9', 'route add svc / http://b/ weight 0.1'],
    ringCounts: [
      ['http://a/', 9000],
      ['http://b/', 1000],
    ],
    ringSize: 10000,
    sequence: [
      'http://b/',
      'http://a/',
      'http://a/',
      'http://a/',
      'http://a/',
      'http://a/',
      'http://a/',
      'http://a/',
      'http://a/',
      'http://a/',
      'http://b/',
      'http://a/',
    ],
  },
];

describe('balancers: rr (fabio round-robin ring)', () => {
  describe('fabio rr_sequence vectors', () => {
    for (const v of rrSequenceVectors) {
      const reduced = gcdReduced(v.ringCounts.map(([, n]) => n));
      const variants: [string, Route][] = [
        ['slot counts as weights', routeOf(v.ringCounts)],
        // What buildTable produces: the same proportions, gcd-reduced.
        [
          'gcd-reduced weights',
          routeOf(v.ringCounts.map(([dst], i) => [dst, reduced[i] as number] as const)),
        ],
      ];
      for (const [label, r] of variants) {
        it(`${v.name} (${label}): counts over ring_size picks equal ring_counts`, () => {
          const bal = createRoundRobinBalancer(r, alwaysAvailable);
          const seen = new Map<string, number>();
          for (let n = 0; n < v.ringSize; n++) {
            const dst = (bal.pick() as RouteTarget).dst;
            seen.set(dst, (seen.get(dst) ?? 0) + 1);
          }
          const periods = v.ringSize / r.totalWeight;
          for (const [dst, count] of v.ringCounts) {
            expect(seen.get(dst), dst).to.equal(count);
          }
          expect(Number.isInteger(periods)).to.equal(true);
        });

        // Distribution is the contract; the order also matches here because Cairn lays out
        // fabio's ring (the default `wrr` deliberately interleaves instead).
        it(`${v.name} (${label}): first picks in fabio's order`, () => {
          const bal = createRoundRobinBalancer(r, alwaysAvailable);
          const seq = v.sequence.map(() => (bal.pick() as RouteTarget).dst);
          expect(seq).to.deep.equal(v.sequence);
        });
      }
    }
  });

  it("lays out fabio's ring: smallest counts first, stepped, next free slot on collision", () => {
    const ring = (w: number[]) => letters(Array.from(buildFabioRing(new Float64Array(w))));
    expect(ring([1, 1, 1])).to.equal('abc');
    expect(ring([3, 2])).to.equal('babaa');
    expect(ring([4, 1])).to.equal('baaaa');
    expect(ring([2, 2, 1])).to.equal('cabab');
    // Clusters that wrr avoids: the surplus of a larger weight ends up in one run.
    expect(ring([6, 4])).to.equal('babababaaa');
  });

  it('counts are exact over every window of the ring size', () => {
    for (const weights of [
      [1, 2, 3, 4, 5],
      [13, 17, 19],
      [100, 1, 1, 50],
    ]) {
      const r = route(weights);
      const seq = pickIndices(createRoundRobinBalancer(r, alwaysAvailable), r, 3 * r.totalWeight);
      expect(everyWindowExact(seq, weights, r.totalWeight), `weights ${weights}`).to.equal(true);
    }
  });

  it('skips ejected targets to the next available ring slot', () => {
    const r = route([3, 2]);
    const health = new FakeHealth();
    health.down.add((r.targets[1] as RouteTarget).key);
    expect(letters(pickIndices(createRoundRobinBalancer(r, health), r, 6))).to.equal('aaaaaa');
    const model = new ScheduleModel(Array.from(buildFabioRing(new Float64Array([3, 2]))));
    const bal = createRoundRobinBalancer(r, health);
    health.down.clear();
    const up = [true, true];
    for (let n = 0; n < 20; n++) {
      up[1] = n % 3 !== 0;
      if (up[1]) health.down.delete((r.targets[1] as RouteTarget).key);
      else health.down.add((r.targets[1] as RouteTarget).key);
      expect(r.targets.indexOf(bal.pick() as RouteTarget)).to.equal(model.pick((i) => up[i] === true));
    }
  });

  it('falls back to the smooth sequence when the ring would be too long even after gcd reduction', () => {
    const weights = Array.from({ length: 20 }, (_, i) => 5000 + i);
    const r = route(weights);
    const rr = pickIndices(createRoundRobinBalancer(r, alwaysAvailable), r, 3000);
    const wrr = pickIndices(createSmoothWrrBalancer(r, alwaysAvailable), r, 3000);
    expect(rr).to.deep.equal(wrr);
  });
});

// ---- random ----------------------------------------------------------------------------------

describe('balancers: random (fabio rnd)', () => {
  it('is deterministic for a seeded random source', () => {
    const r = route([5, 1, 1, 3, 9]);
    const one = pickIndices(createRandomBalancer(r, alwaysAvailable, seeded(42)), r, 1000);
    const two = pickIndices(createRandomBalancer(r, alwaysAvailable, seeded(42)), r, 1000);
    const other = pickIndices(createRandomBalancer(r, alwaysAvailable, seeded(43)), r, 1000);
    expect(one).to.deep.equal(two);
    expect(one).to.not.deep.equal(other);
  });

  it('maps the random number onto the weights laid end to end', () => {
    // Weights 1 and 3: [0, 0.25) -> a, [0.25, 1) -> b.
    const r = route([1, 3]);
    const bal = createRandomBalancer(r, alwaysAvailable, replay([0, 0.2499, 0.25, 0.9999]));
    expect(letters(pickIndices(bal, r, 4))).to.equal('aabb');
  });

  it('redistributes an ejected target in proportion to the others', () => {
    const r = route([1, 1000, 3]);
    const health = new FakeHealth();
    health.down.add((r.targets[1] as RouteTarget).key);
    const seq = pickIndices(createRandomBalancer(r, health, seeded(5)), r, 40_000);
    const a = seq.filter((i) => i === 0).length;
    expect(seq.includes(1)).to.equal(false);
    // Expected a share: 1/4; sigma over 40,000 picks is about 87.
    expect(Math.abs(a - 10_000)).to.be.below(500);
  });

  it('uses Math.random when no source is given', () => {
    const r = route([1, 1]);
    const seen = new Set(pickIndices(createRandomBalancer(r, alwaysAvailable), r, 200));
    expect([...seen].sort()).to.deep.equal([0, 1]);
  });
});

// ---- p2c -------------------------------------------------------------------------------------

describe('balancers: p2c (power of two choices)', () => {
  it('sends to the candidate with fewer requests in flight', () => {
    const r = route([1, 1]);
    const [a, b] = r.targets as [RouteTarget, RouteTarget];
    const health = new FakeHealth();
    health.busy.set(a.key, 3);
    const bal = createP2cBalancer(r, health, seeded(1));
    for (let n = 0; n < 50; n++) expect(bal.pick()).to.equal(b);
    health.busy.set(b.key, 4);
    for (let n = 0; n < 50; n++) expect(bal.pick()).to.equal(a);
  });

  it('never picks the busiest target while two or more are available', () => {
    const r = route([1, 1, 1]);
    const [a, b, c] = r.targets as [RouteTarget, RouteTarget, RouteTarget];
    const health = new FakeHealth();
    health.busy.set(a.key, 5);
    health.busy.set(c.key, 2);
    const seq = pickIndices(createP2cBalancer(r, health, seeded(2)), r, 3000);
    const count = (i: number) => seq.filter((x) => x === i).length;
    expect(count(0)).to.equal(0);
    // b wins every pair it is in (2 of 3 pairs), c only the pair {a, c}.
    expect(count(1)).to.be.within(1800, 2200);
    expect(count(2)).to.be.within(800, 1200);
    health.down.add(b.key);
    health.down.add(c.key);
    expect(createP2cBalancer(r, health, seeded(3)).pick()).to.equal(a);
  });

  it('breaks ties in favour of the first candidate drawn', () => {
    const r = route([1, 1]);
    const [a, b] = r.targets as [RouteTarget, RouteTarget];
    // First draw 0.1 -> a, second (a cut out) -> b; then 0.9 -> b first, a second.
    expect(createP2cBalancer(r, alwaysAvailable, replay([0.1, 0.9])).pick()).to.equal(a);
    expect(createP2cBalancer(r, alwaysAvailable, replay([0.9, 0.1])).pick()).to.equal(b);
  });

  it('draws both candidates by weight', () => {
    // Nothing in flight: the first candidate always wins, so picks follow the weights.
    const r = route([1, 9]);
    const seq = pickIndices(createP2cBalancer(r, alwaysAvailable, seeded(4)), r, 20_000);
    const a = seq.filter((i) => i === 0).length;
    expect(Math.abs(a - 2000)).to.be.below(300);
  });

  it('is deterministic for a seeded random source', () => {
    const r = route([3, 1, 4, 1, 5]);
    const health = new FakeHealth();
    r.targets.forEach((t, i) => {
      health.busy.set(t.key, i % 3);
    });
    const one = pickIndices(createP2cBalancer(r, health, seeded(9)), r, 500);
    const two = pickIndices(createP2cBalancer(r, health, seeded(9)), r, 500);
    expect(one).to.deep.equal(two);
  });
});

// ---- index -----------------------------------------------------------------------------------

describe('balancers: index', () => {
  it('parses strategy names, with fabio rnd as random', () => {
    const cases: [string, Strategy | undefined][] = [
      ['wrr', 'wrr'],
      ['rr', 'rr'],
      ['random', 'random'],
      ['rnd', 'random'],
      ['p2c', 'p2c'],
      [' WRR ', 'wrr'],
      ['RND', 'random'],
      ['least-conn', undefined],
      ['', undefined],
      ['toString', undefined],
      ['__proto__', undefined],
    ];
    for (const [input, expected] of cases)
      expect(parseStrategy(input), JSON.stringify(input)).to.equal(expected);
  });

  it('isStrategy accepts exactly the four names', () => {
    expect(['wrr', 'rr', 'random', 'p2c'].every(isStrategy)).to.equal(true);
    expect(['rnd', 'WRR', 'constructor', ''].some(isStrategy)).to.equal(false);
  });

  it('createBalancer uses the named factory, and wrr for an unknown name from untyped code', () => {
    const r = route([2, 1]);
    const names = (b: Balancer) => letters(pickIndices(b, r, 6));
    expect(defaultStrategy).to.equal('wrr');
    expect(names(createBalancer('wrr', r, alwaysAvailable))).to.equal(
      names(createSmoothWrrBalancer(r, alwaysAvailable)),
    );
    expect(names(createBalancer('rr', r, alwaysAvailable))).to.equal(
      names(createRoundRobinBalancer(r, alwaysAvailable)),
    );
    expect(names(createBalancer('random', r, alwaysAvailable, seeded(1)))).to.equal(
      names(balancerFactories.random(r, alwaysAvailable, seeded(1))),
    );
    expect(names(createBalancer('bogus' as Strategy, r, alwaysAvailable))).to.equal('abaaba');
  });

  it('a one-target route: every strategy picks that target while it is available, and nothing when it is not', () => {
    const r = route([3]);
    const only = r.targets[0] as RouteTarget;
    for (const strategy of ['wrr', 'rr', 'random', 'p2c'] as const) {
      const health = new FakeHealth();
      // The same picks as the strategy's own balancer, with none of its state.
      const own = balancerFactories[strategy](r, health, seeded(3));
      const b = createBalancer(strategy, r, health, seeded(3));
      for (let i = 0; i < 4; i++) {
        expect(b.peek(), strategy).to.equal(only);
        expect(b.pick(), strategy).to.equal(only);
        expect(own.pick(), strategy).to.equal(only);
      }
      health.down.add(only.key);
      expect(b.pick(), strategy).to.equal(undefined);
      expect(b.peek(), strategy).to.equal(undefined);
      expect(own.pick(), strategy).to.equal(undefined);
      health.down.delete(only.key);
      expect(b.pick(), strategy).to.equal(only);
    }
  });

  it('alwaysAvailable reports everything up and idle', () => {
    expect(alwaysAvailable.isAvailable('anything')).to.equal(true);
    expect(alwaysAvailable.inFlight('anything')).to.equal(0);
    expect(Object.isFrozen(alwaysAvailable)).to.equal(true);
  });
});
