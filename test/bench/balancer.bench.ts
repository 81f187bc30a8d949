// Balancer micro-benchmark: nanoseconds per pick() for every strategy, 2 to 1,000 targets, equal
// weights and random weights 1..10,000. Standalone: `node test/bench/balancer.bench.ts`
// (optional argument: picks per measurement, default 1,000,000).
//
// Columns: `build` is creating the balancer plus its first pick (the wrr/rr schedule is built
// lazily then); `ns/pick` is the best of three runs of steady-state picks; `1/4 out` repeats it
// with every fourth target ejected, which exercises the skip path. `period` is the gcd-reduced
// sum of weights; `mode` says whether wrr plays a precomputed schedule or runs the heaps.

import { alwaysAvailable, balancerFactories } from '../../routing/balancers/index.ts';
import { MAX_SCHEDULE_LENGTH } from '../../routing/balancers/smooth-wrr.ts';
import type { Balancer, Route, RouteTarget, Strategy, TargetHealthView } from '../../routing/types.ts';

const picksPerRun = Number(process.argv[2] ?? 1_000_000) || 1_000_000;

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

function route(weights: readonly number[]): Route {
  let total = 0;
  for (const w of weights) total += w;
  const targets = weights.map((weight, i): RouteTarget => {
    const host = `10.0.${i >> 8}.${i & 255}:8080`;
    const dst = `http://${host}/`;
    return Object.freeze({
      key: `svc|${dst}|`,
      service: 'svc',
      dst,
      url: Object.freeze({
        protocol: 'http:',
        hostname: host.slice(0, -5),
        port: 8080,
        host,
        pathname: '/',
        search: '',
      }),
      tags: Object.freeze([]),
      fixedWeight: 0,
      instanceWeight: 1,
      share: weight / total,
      weight,
      opts: Object.freeze({ proto: 'http' as const }),
      rawOpts: Object.freeze({}),
    });
  });
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

/** A Set-backed view like the data plane's: a hash lookup per availability check. */
function healthWithEveryFourthOut(r: Route): TargetHealthView {
  const down = new Set<string>();
  r.targets.forEach((t, i) => {
    if (i % 4 === 3) down.add(t.key);
  });
  return { isAvailable: (key) => !down.has(key), inFlight: () => 0 };
}

function gcd(a: number, b: number): number {
  return b === 0 ? a : gcd(b, a % b);
}

let sink = 0;

function nsPerPick(balancer: Balancer): number {
  for (let n = 0; n < 10_000; n++) sink += balancer.pick()?.weight ?? 0; // warm-up
  let best = Number.POSITIVE_INFINITY;
  for (let run = 0; run < 3; run++) {
    const start = process.hrtime.bigint();
    for (let n = 0; n < picksPerRun; n++) sink += balancer.pick()?.weight ?? 0;
    const ns = Number(process.hrtime.bigint() - start) / picksPerRun;
    if (ns < best) best = ns;
  }
  return best;
}

function buildMs(strategy: Strategy, r: Route): number {
  const start = process.hrtime.bigint();
  const b = balancerFactories[strategy](r, alwaysAvailable, seeded(1));
  sink += b.pick()?.weight ?? 0;
  return Number(process.hrtime.bigint() - start) / 1e6;
}

const strategies = Object.keys(balancerFactories) as Strategy[];
const rows: string[][] = [
  ['strategy', 'targets', 'weights', 'period', 'mode', 'build ms', 'ns/pick', '1/4 out'],
];

for (const strategy of strategies) {
  for (const n of [2, 10, 100, 1000]) {
    for (const kind of ['equal', 'random'] as const) {
      const random = seeded(n * 7 + (kind === 'equal' ? 0 : 1));
      const weights = Array.from({ length: n }, () =>
        kind === 'equal' ? 1 : 1 + Math.floor(random() * 10_000),
      );
      const r = route(weights);
      const g = weights.reduce(gcd, 0);
      const period = r.totalWeight / g;
      const mode =
        strategy === 'wrr' || strategy === 'rr'
          ? period <= MAX_SCHEDULE_LENGTH
            ? 'schedule'
            : 'heaps'
          : '-';
      const build = buildMs(strategy, r);
      const all = nsPerPick(balancerFactories[strategy](r, alwaysAvailable, seeded(2)));
      const someOut = nsPerPick(balancerFactories[strategy](r, healthWithEveryFourthOut(r), seeded(3)));
      rows.push([
        strategy,
        String(n),
        kind === 'equal' ? 'equal' : '1..10000',
        String(period),
        mode,
        build.toFixed(2),
        all.toFixed(1),
        someOut.toFixed(1),
      ]);
    }
  }
}

const widths = (rows[0] as string[]).map((_, c) => Math.max(...rows.map((row) => (row[c] as string).length)));
for (const row of rows) console.log(row.map((cell, c) => cell.padStart(widths[c] as number)).join('  '));
console.log(
  `\n${picksPerRun} picks per run, best of 3; Node ${process.version}; (sink ${sink > 0 ? 'ok' : '0'})`,
);
