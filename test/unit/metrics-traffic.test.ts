import { PerformanceObserver } from 'node:perf_hooks';
import { expect } from 'chai';
import { buildTable } from '../../routing/table.ts';
import type { Route, RouteTable, RouteTarget } from '../../routing/types.ts';
import { LiveWindow, latencySamples, nearestRank } from '../../lib/stats/live-window.ts';
import { durationBuckets, TrafficCell } from '../../lib/stats/traffic-cell.ts';
import { Traffic } from '../../lib/stats/traffic.ts';

function table(manual: string): RouteTable {
  return buildTable({ instances: [], manual });
}

function route(t: RouteTable, src: string): Route {
  const r = t.routes.find((x) => x.src === src);
  if (r === undefined) throw new Error(`no route ${src}`);
  return r;
}

function target(r: Route, dst: string): RouteTarget {
  const t = r.targets.find((x) => x.dst === dst);
  if (t === undefined) throw new Error(`no target ${dst}`);
  return t;
}

const twoRoutes = `route add api /api http://10.0.0.1:80/
route add api /api http://10.0.0.2:80/
route add web / http://10.0.0.3:80/`;

describe('stats: nearest-rank percentiles', () => {
  it('picks the nearest rank', () => {
    const v = Float64Array.from({ length: 100 }, (_, i) => i + 1);
    expect(nearestRank(v, 0.5)).to.equal(50);
    expect(nearestRank(v, 0.99)).to.equal(99);
    expect(nearestRank([7], 0.99)).to.equal(7);
    expect(nearestRank([], 0.5)).to.equal(0);
  });
});

describe('stats: live window', () => {
  it('rates over the window age until the window is full', () => {
    const w = new LiveWindow(0, 0, 0);
    expect(w.rate(60)).to.equal(0);
    w.sample(10, 0, 0); // 10 requests in the first second
    expect(w.rate(60)).to.equal(10);
    w.sample(30, 0, 0); // 20 in the second
    expect(w.rate(60)).to.equal(15);
    expect(w.rate(300)).to.equal(15);
  });

  it('forgets what is older than the window', () => {
    const w = new LiveWindow(0, 0, 0);
    let total = 0;
    for (let s = 0; s < 60; s++) w.sample((total += 100), 0, 0); // 100/s for a minute
    for (let s = 0; s < 60; s++) w.sample((total += 10), 0, 0); // then 10/s for a minute
    expect(w.rate(60)).to.equal(10);
    expect(w.rate(300)).to.equal(55);
  });

  it('survives a wrapping 32-bit counter', () => {
    const w = new LiveWindow(2 ** 32 - 5, 0, 0);
    w.sample(2 ** 32 + 5, 0, 0);
    expect(w.rate(60)).to.equal(10);
  });

  it('counts 5xx and connect errors over the last minute', () => {
    const w = new LiveWindow(0, 0, 0);
    w.sample(100, 5, 2);
    expect(w.lastMinute()).to.deep.equal({ requests: 100, errors5xx: 5, connectErrors: 2 });
  });

  it('percentiles cover the last minute of samples only', () => {
    const w = new LiveWindow(0, 0, 0);
    const scratch = new Float64Array(latencySamples);
    for (let i = 1; i <= 100; i++) w.recordLatency(i, 10);
    expect(w.percentiles(10, scratch)).to.deep.equal({ p50: 50, p99: 99 });
    w.recordLatency(1000, 80);
    // At second 80 the samples of second 10 are older than a minute.
    expect(w.percentiles(80, scratch)).to.deep.equal({ p50: 1000, p99: 1000 });
  });

  it('keeps the most recent samples when more arrive than it holds', () => {
    const w = new LiveWindow(0, 0, 0);
    const scratch = new Float64Array(latencySamples);
    for (let i = 0; i < latencySamples; i++) w.recordLatency(1000, 1);
    for (let i = 0; i < latencySamples; i++) w.recordLatency(2, 1);
    expect(w.percentiles(1, scratch)).to.deep.equal({ p50: 2, p99: 2 });
  });
});

describe('stats: traffic cell', () => {
  it('counts status classes, duration buckets and the duration sum', () => {
    const c = new TrafficCell({ route: '/', service: 's', target: 'http://x/', key: 'k', tcp: false });
    c.record(200, 0.5, 0);
    c.record(204, 3, 0);
    c.record(503, 20_000, 0);
    c.record(0, 1, 0); // client left before a response
    expect(Array.from(c.byClass)).to.deep.equal([1, 0, 2, 0, 0, 1]);
    expect(c.requests).to.equal(4);
    expect(c.buckets[0]).to.equal(2); // 0.5 ms and 1 ms are <= 1 ms
    expect(c.buckets[durationBuckets.indexOf(0.005)]).to.equal(1); // 3 ms
    expect(c.buckets[durationBuckets.length]).to.equal(1); // 20 s: +Inf
    expect(c.durationSeconds).to.be.closeTo(20.0045, 1e-9);
  });

  it('counts upstream errors by kind and retries', () => {
    const c = new TrafficCell({ route: '/', service: 's', target: 'http://x/', key: 'k', tcp: false });
    c.recordUpstreamError('connect', true);
    c.recordUpstreamError('connect', false);
    c.recordUpstreamError('timeout', false);
    expect(Array.from(c.upstreamErrors)).to.deep.equal([2, 0, 1, 0]);
    expect(c.retries).to.equal(1);
    expect(c.connectErrors).to.equal(2);
  });
});

describe('stats: traffic', () => {
  it('records on the cell of the target, the route, or the no-route cell', () => {
    const traffic = new Traffic();
    const t = table(twoRoutes);
    traffic.bind(t);
    const api = route(t, '/api');
    const a = target(api, 'http://10.0.0.1:80/');
    traffic.onResponse(api, a, 200, 1);
    traffic.onResponse(api, a, 200, 1);
    traffic.onResponse(api, undefined, 503, 0.1); // no healthy target: the route's own cell
    traffic.onResponse(undefined, undefined, 404, 0.1);
    expect(traffic.cellOf(api, a)?.requests).to.equal(2);
    expect(traffic.noRoute.requests).to.equal(1);
    const routeCell = [...traffic.cells()].find((c) => c.route === '/api' && c.target === '');
    expect(routeCell?.requests).to.equal(1);
    // Pairs without traffic have no cell until asked for one (the admin's rows ask).
    expect([...traffic.cells()].map((c) => `${c.route} ${c.target}`)).to.deep.equal([
      '/api ',
      '/api http://10.0.0.1:80/',
      ' ',
    ]);
    expect(traffic.cellOf(api, target(api, 'http://10.0.0.2:80/'))?.requests).to.equal(0);
    expect([...traffic.cells()]).to.have.length(4);
  });

  it('makes cells on first traffic only, and only for pairs of the live table', () => {
    const traffic = new Traffic();
    const t1 = table(twoRoutes);
    traffic.bind(t1);
    expect([...traffic.cells()]).to.deep.equal([traffic.noRoute]);
    const web1 = route(t1, '/');
    const w1 = target(web1, 'http://10.0.0.3:80/');
    // t2 drops web's target 10.0.0.3 (the route now goes to 10.0.0.4) and the api route.
    const t2 = table('route add web / http://10.0.0.4:80/');
    traffic.bind(t2);
    // A request that started on t1 to a pair t2 does not have: counted on no live series.
    traffic.onResponse(web1, w1, 200, 1);
    traffic.onResponse(route(t1, '/api'), undefined, 503, 1);
    expect([...traffic.cells()]).to.deep.equal([traffic.noRoute]);
    expect(traffic.noRoute.requests).to.equal(0);
    expect(traffic.cellOf(web1, w1)).to.equal(undefined);
    // The route's own cell is the pair (source, first target's service): t1's web route has it.
    traffic.onResponse(web1, undefined, 503, 1);
    const web2 = route(t2, '/');
    const own = [...traffic.cells()].find((c) => c.route === '/' && c.target === '');
    expect(own?.requests).to.equal(1);
    traffic.onResponse(web2, undefined, 503, 1);
    expect(own?.requests).to.equal(2);
  });

  it('keeps a cell across a swap while its route and target stay, drops it when they leave', () => {
    const traffic = new Traffic();
    const t1 = table(twoRoutes);
    traffic.bind(t1);
    const a1 = target(route(t1, '/api'), 'http://10.0.0.1:80/');
    traffic.onResponse(route(t1, '/api'), a1, 200, 1);
    const cell = traffic.cellOf(route(t1, '/api'), a1);
    // A pair that leaves loses its cell.
    const a1b = target(route(t1, '/api'), 'http://10.0.0.2:80/');
    traffic.onResponse(route(t1, '/api'), a1b, 200, 1);

    const t2 = table('route add api /api http://10.0.0.1:80/\nroute add web / http://10.0.0.3:80/');
    traffic.bind(t2);
    const a2 = target(route(t2, '/api'), 'http://10.0.0.1:80/');
    expect(a2).to.not.equal(a1);
    expect(traffic.cellOf(route(t2, '/api'), a2)).to.equal(cell);
    expect(traffic.cellOf(route(t2, '/api'), a2)?.requests).to.equal(1);
    traffic.onResponse(route(t2, '/'), target(route(t2, '/'), 'http://10.0.0.3:80/'), 200, 1);
    const targets = [...traffic.cells()].filter((c) => c.target !== '').map((c) => c.target);
    expect(targets).to.have.members(['http://10.0.0.1:80/', 'http://10.0.0.3:80/']);

    // A request that started on the old table still counts on the cell it started with.
    traffic.onResponse(route(t1, '/api'), a1, 200, 1);
    expect(cell?.requests).to.equal(2);
  });

  it('live stats: rates, percentiles and ratios after ticks', () => {
    const traffic = new Traffic();
    const t = table(twoRoutes);
    traffic.bind(t);
    const web = route(t, '/');
    const w = target(web, 'http://10.0.0.3:80/');
    for (let i = 0; i < 9; i++) traffic.onResponse(web, w, 200, 10);
    traffic.onResponse(web, w, 502, 100);
    traffic.onUpstreamError(web, w, 'connect', false);
    traffic.tick();
    const s = traffic.stats(traffic.cellOf(web, w));
    expect(s.rate1m).to.equal(10);
    expect(s.requests).to.equal(10);
    expect(s.p50ms).to.equal(10);
    expect(s.p99ms).to.equal(100);
    expect(s.errors5xx).to.equal(0.1);
    expect(s.connectErrors).to.equal(0.1);
    const api = route(t, '/api');
    const idle = traffic.stats(traffic.cellOf(api, target(api, 'http://10.0.0.2:80/')));
    expect(idle).to.deep.include({ rate1m: 0, p50ms: null, p99ms: null, requests: 0 });
  });

  it('TCP cells take the engine counters at the tick', () => {
    const traffic = new Traffic();
    const t = table('route add db :5432 tcp://10.0.0.9:5432');
    traffic.bind(t);
    const r = route(t, ':5432');
    const dst = r.targets[0] as RouteTarget;
    traffic.tick({
      targets: () => [{ route: ':5432', key: dst.key, counters: { total: 4, connectErrors: 1 } }],
    });
    traffic.tick({
      targets: () => [{ route: ':5432', key: dst.key, counters: { total: 6, connectErrors: 1 } }],
    });
    const s = traffic.stats(traffic.cellOf(r, dst));
    expect(s.requests).to.equal(6);
    expect(s.rate1m).to.equal(3); // 6 connections over 2 seconds
    expect(s.p50ms).to.equal(null);
  });

  it('the request path does not allocate: no young-generation GC in 2 million requests', async function () {
    this.timeout(20_000);
    const traffic = new Traffic();
    const t = table(twoRoutes);
    traffic.bind(t);
    const api = route(t, '/api');
    const a = target(api, 'http://10.0.0.1:80/');
    const drive = (n: number): void => {
      const onResponse = traffic.onResponse;
      const onError = traffic.onUpstreamError;
      for (let i = 0; i < n; i++) {
        onResponse(api, a, 200 + (i & 3) * 100, (i & 63) * 0.5);
        if ((i & 1023) === 0) onError(api, a, 'connect', true);
      }
    };
    // Warm up: JIT compilation and the cell's live window (allocated once) happen here.
    drive(300_000);
    const gcs: number[] = [];
    const obs = new PerformanceObserver((list) => {
      for (const e of list.getEntries()) gcs.push(e.startTime);
    });
    obs.observe({ entryTypes: ['gc'] });
    await new Promise((r) => setImmediate(r));
    const start = performance.now();
    drive(2_000_000);
    const end = performance.now();
    await new Promise((r) => setTimeout(r, 50));
    obs.disconnect();
    const during = gcs.filter((s) => s >= start && s <= end);
    // One collection may already have been due when the loop began; 16 bytes per call would
    // cause several (2 million x 16 B = 32 MB through a 16 MB young generation).
    expect(during.length, `GCs during the loop at ${during.join(', ')}`).to.be.at.most(1);
  });
});
