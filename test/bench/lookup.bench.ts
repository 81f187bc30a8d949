// HTTP route lookup micro-benchmark: `node test/bench/lookup.bench.ts [--quick]`.
//
// Tables of 5, 10, 100 and 500 routes follow fabio's own benchmark (route/route_bench_test.go
// makeRoutes: domains x paths x depth, each path extending the previous one); the 10,000-route
// tables cover many hosts, many paths under one host, and a mix with glob hosts and host-less
// fallbacks. Requests are random: about two thirds hit a route (with extra path segments
// appended), the rest miss (unknown host, unknown path, or a near miss like `/svc-12x`).
//
// Each figure is the median over many batches of the mean time of one lookup in the batch
// (process.hrtime.bigint around a batch of 4096 lookups), so timer overhead is negligible.

import { compileHttpRouter } from '../../routing/http-router.ts';
import type { HttpRequestInfo, HttpRouter, PathMatcher, Route, RouteTarget } from '../../routing/types.ts';

const quick = process.argv.includes('--quick');
const batchSize = 4096;
const batches = quick ? 30 : 200;

/** Deterministic PRNG (mulberry32) so runs are comparable. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const random = rng(42);
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)] as T;

function target(service: string, i: number): RouteTarget {
  const host = `10.0.${(i >> 8) & 255}.${i & 255}:8080`;
  return {
    key: `${service}|http://${host}/|`,
    service,
    dst: `http://${host}/`,
    url: {
      protocol: 'http:',
      hostname: host.split(':')[0] as string,
      port: 8080,
      host,
      pathname: '/',
      search: '',
    },
    tags: [],
    fixedWeight: 0,
    instanceWeight: 1,
    share: 1,
    weight: 1,
    opts: { proto: 'http' },
    rawOpts: {},
  };
}

function route(host: string, path: string, i: number): Route {
  return {
    src: host + path,
    host,
    path,
    port: 0,
    proto: 'http',
    targets: [target(`svc-${i}`, i)],
    starved: [],
    totalWeight: 1,
  };
}

interface Scenario {
  name: string;
  routes: Route[];
  requests: HttpRequestInfo[];
  matcher?: PathMatcher;
}

const suffixes = ['', '/', '/users', '/users/12345', '/v2/orders/987/items', '/static/app.js', '/health'];
const missPaths = ['/nope', '/favicon.ico', '/wp-login.php', '/a/b/c/d/e/f', '/.env', '/zzz/qqq'];

function requestsFor(routes: readonly Route[], extraHosts: readonly string[], n: number): HttpRequestInfo[] {
  const reqs: HttpRequestInfo[] = [];
  for (let i = 0; i < n; i++) {
    const r = pick(routes);
    const roll = random();
    if (roll < 0.66) {
      const host = r.host.startsWith('*.') ? `app${i % 7}${r.host.slice(1)}` : r.host;
      reqs.push({ host, path: r.path.replace(/\/$/, '') + pick(suffixes) });
    } else if (roll < 0.78) {
      reqs.push({ host: pick(extraHosts), path: r.path + pick(suffixes) });
    } else if (roll < 0.9) {
      reqs.push({ host: r.host.startsWith('*.') ? 'x.nowhere.net' : r.host, path: pick(missPaths) });
    } else {
      // Near miss: the route path with a character changed at the end.
      reqs.push({ host: r.host, path: `${r.path.replace(/\/$/, '')}x9${pick(suffixes)}` });
    }
  }
  return reqs;
}

/** fabio's makeRoutes(domains, paths, depth): routes = domains * paths * depth. */
function fabioMatrix(domains: number, paths: number, depth: number): Route[] {
  const routes: Route[] = [];
  let i = 0;
  for (let d = 0; d < domains; d++) {
    let prefix = '/';
    for (let p = 0; p < paths; p++) {
      for (let k = 0; k < depth; k++) {
        prefix += `path-${k}/`;
        routes.push(route(`www.host-${d}.com`, prefix, i++));
      }
    }
  }
  return routes;
}

function manyHosts(n: number): Route[] {
  const routes: Route[] = [];
  for (let i = 0; i < n; i++) routes.push(route(`svc-${i}.example.com`, '/', i));
  return routes;
}

function manyPaths(n: number): Route[] {
  const routes: Route[] = [];
  const verbs = ['api', 'v1', 'v2', 'internal', 'public'];
  for (let i = 0; i < n; i++)
    routes.push(route('api.example.com', `/svc-${i}/${verbs[i % verbs.length]}`, i));
  routes.push(route('api.example.com', '/', n));
  return routes;
}

function mixed(n: number): Route[] {
  const routes: Route[] = [];
  let i = 0;
  const hosts = 100;
  const perHost = Math.floor((n - 20) / hosts);
  for (let h = 0; h < hosts; h++) {
    for (let p = 0; p < perHost; p++)
      routes.push(route(`h${h}.corp.example`, `/team-${p}/svc-${h}-${p}`, i++));
  }
  for (let g = 0; g < 10; g++) routes.push(route(`*.tenant${g}.example`, '/', i++));
  for (let f = 0; f < 10; f++) routes.push(route('', `/shared-${f}`, i++));
  return routes;
}

const hostsOnly = (routes: readonly Route[]) => [...new Set(routes.map((r) => r.host))];

function scenario(name: string, routes: Route[], matcher?: PathMatcher): Scenario {
  const extra = ['unknown.example.com', 'localhost:9999', '10.1.2.3', ...hostsOnly(routes).slice(0, 3)];
  return { name, routes, requests: requestsFor(routes, extra, 8192), ...(matcher ? { matcher } : {}) };
}

const scenarios: Scenario[] = [
  scenario('fabio 1x5x1', fabioMatrix(1, 5, 1)),
  scenario('fabio 1x5x2', fabioMatrix(1, 5, 2)),
  scenario('fabio 10x5x2', fabioMatrix(10, 5, 2)),
  scenario('fabio 10x10x5', fabioMatrix(10, 10, 5)),
  scenario('many hosts', manyHosts(10_000)),
  scenario('one host, many paths', manyPaths(10_000)),
  scenario('mixed + globs + host-less', mixed(10_000)),
  scenario('one host, many paths (segment)', manyPaths(10_000), 'segment'),
  scenario('one host, many paths (iprefix)', manyPaths(10_000), 'iprefix'),
  scenario('fabio 10x10x5 (glob)', fabioMatrix(10, 10, 5), 'glob'),
];

function measure(
  router: HttpRouter,
  reqs: readonly HttpRequestInfo[],
): { median: number; p90: number; hits: number } {
  const n = reqs.length;
  let hits = 0;
  let at = 0;
  // Warm-up: let the JIT settle on the hot path.
  for (let i = 0; i < 20 * batchSize; i++)
    if (router.lookup(reqs[i % n] as HttpRequestInfo) !== undefined) hits++;
  hits = 0;
  const perLookup: number[] = [];
  for (let b = 0; b < batches; b++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < batchSize; i++) {
      if (router.lookup(reqs[at] as HttpRequestInfo) !== undefined) hits++;
      at = at + 1 === n ? 0 : at + 1;
    }
    const t1 = process.hrtime.bigint();
    perLookup.push(Number(t1 - t0) / batchSize);
  }
  perLookup.sort((a, b) => a - b);
  return {
    median: perLookup[Math.floor(perLookup.length / 2)] as number,
    p90: perLookup[Math.floor(perLookup.length * 0.9)] as number,
    hits: hits / (batches * batchSize),
  };
}

const rows: string[][] = [
  ['scenario', 'routes', 'hosts', 'matcher', 'build ms', 'median ns', 'p90 ns', 'hit %'],
];
for (const s of scenarios) {
  const matcher = s.matcher ?? 'prefix';
  const b0 = process.hrtime.bigint();
  const router = compileHttpRouter(s.routes, { matcher, globMatching: true });
  const buildMs = Number(process.hrtime.bigint() - b0) / 1e6;
  const m = measure(router, s.requests);
  rows.push([
    s.name,
    String(s.routes.length),
    String(hostsOnly(s.routes).length),
    matcher,
    buildMs.toFixed(1),
    m.median.toFixed(0),
    m.p90.toFixed(0),
    (m.hits * 100).toFixed(0),
  ]);
}

const widths = (rows[0] as string[]).map((_, c) => Math.max(...rows.map((r) => (r[c] as string).length)));
for (const r of rows) {
  console.log(
    r
      .map((cell, c) => (c === 0 ? cell.padEnd(widths[c] as number) : cell.padStart(widths[c] as number)))
      .join('  '),
  );
}
console.log(`\nnode ${process.version}, ${batches} batches x ${batchSize} lookups per scenario`);
