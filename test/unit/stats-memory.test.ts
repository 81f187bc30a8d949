// The memory cuts of issue 9 (10,000-route tables): cells share zeros until they count, windows
// create their error rings with the first error, a worker's cells keep no window (one latency log
// for its reports), and
// every process runs with the lean-heap V8 flags unless the user chose them.

import { expect } from 'chai';
import fc from 'fast-check';
import { LiveWindow, latencySamples, nearestRank, shortWindow } from '../../lib/stats/live-window.ts';
import { TrafficCell } from '../../lib/stats/traffic-cell.ts';
import { Traffic } from '../../lib/stats/traffic.ts';
import { buildTable } from '../../routing/table.ts';
import type { Route, RouteTarget } from '../../routing/types.ts';
import { leanHeapFlags, leanHeapFlagsFor, leanHeapHere } from '../../lib/workers/lean-heap.ts';

const labels = { route: 'r', service: 's', target: 't', key: 'k', tcp: false };

describe('stats memory', () => {
  it('cells without traffic share their zero counters; the first count gives a cell its own', () => {
    const idle = new TrafficCell(labels);
    const busy = new TrafficCell(labels);
    expect(idle.byClass).to.equal(busy.byClass);
    busy.record(200, 3, 1);
    busy.recordUpstreamError('connect', true);
    expect(idle.byClass).to.not.equal(busy.byClass);
    expect([...idle.byClass, ...idle.buckets, ...idle.upstreamErrors].every((v) => v === 0)).to.equal(true);
    expect(busy.byClass[2]).to.equal(1);
    expect(busy.connectErrors).to.equal(1);
    expect(busy.buckets.reduce((a, b) => a + b, 0)).to.equal(1);
  });

  it('a TCP cell synced before any window counts from its baseline', () => {
    const c = new TrafficCell({ ...labels, tcp: true });
    c.syncTcp(5, 1);
    expect(c.requests).to.equal(5);
    expect(c.connectErrors).to.equal(1);
    expect(c.window).to.not.equal(undefined);
  });

  it('error rings start with the first error, from the baselines', () => {
    const w = new LiveWindow(10, 2, 1);
    for (let s = 0; s < 5; s++) w.sample(10 + s, 2, 1);
    expect(w.lastMinute()).to.deep.equal({ requests: 4, errors5xx: 0, connectErrors: 0 });
    w.sample(20, 5, 1);
    w.sample(21, 6, 3);
    expect(w.lastMinute()).to.deep.equal({ requests: 11, errors5xx: 4, connectErrors: 2 });
    for (let s = 0; s < shortWindow + 5; s++) w.sample(21, 6, 3);
    expect(w.lastMinute()).to.deep.equal({ requests: 0, errors5xx: 0, connectErrors: 0 });
  });

  it('latency rings grow only to keep samples of the last minute: percentiles as with a full ring', () => {
    const stepArb = fc.record({
      advance: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 3 }), fc.integer({ min: 50, max: 70 })),
      samples: fc.array(fc.integer({ min: 0, max: 10_000 }), { maxLength: 60 }),
    });
    fc.assert(
      fc.property(fc.array(stepArb, { minLength: 1, maxLength: 60 }), (steps) => {
        const w = new LiveWindow(0, 0, 0);
        const all: { ms: number; second: number }[] = [];
        const scratch = new Float64Array(latencySamples);
        let second = 1;
        for (const step of steps) {
          second += step.advance;
          if (step.advance > 0) {
            // What a ring of latencySamples slots keeps, filtered as percentiles() filters.
            const kept = all
              .slice(-latencySamples)
              .filter((x) => x.second > second - shortWindow)
              .map((x) => x.ms)
              .sort((a, b) => a - b);
            expect(w.percentiles(second, scratch)).to.deep.equal({
              p50: nearestRank(kept, 0.5),
              p99: nearestRank(kept, 0.99),
            });
          }
          for (const ms of step.samples) {
            w.recordLatency(ms, second);
            all.push({ ms, second });
          }
          expect(w.latencySlots).to.be.at.most(latencySamples);
        }
      }),
      { numRuns: 300 },
    );
    // A quiet route keeps a small ring: one request a second for ten minutes.
    const quiet = new LiveWindow(0, 0, 0);
    for (let s = 1; s <= 600; s++) quiet.recordLatency(5, s);
    expect(quiet.latencySlots).to.equal(64);
  });

  it('a latency-only window keeps latencies and reads rates as 0', () => {
    const w = new LiveWindow(0, 0, 0, false);
    w.recordLatency(7, 1);
    w.recordLatency(9, 1);
    w.sample(2, 0, 0);
    expect(w.rate(60)).to.equal(0);
    expect(w.lastMinute().requests).to.equal(0);
    const out: number[] = [];
    w.latenciesSince(0, out);
    expect(out).to.deep.equal([7, 9]);
    expect(w.percentiles(1, new Float64Array(256)).p99).to.equal(9);
  });

  it("a worker's cells keep no live window: its latencies go to one log the reports drain", () => {
    const traffic = new Traffic();
    traffic.reportOnly();
    const t = buildTable({
      instances: [],
      manual: 'route add a / http://10.0.0.1:80/\nroute add b /b http://10.0.0.2:80/',
    });
    traffic.bind(t);
    const [a, b] = t.routes as [Route, Route];
    const ta = a.targets[0] as RouteTarget;
    const tb = b.targets[0] as RouteTarget;
    for (let i = 0; i < 300; i++) traffic.onResponse(a, ta, 200, i);
    traffic.onResponse(b, tb, 502, 7);
    const ca = traffic.cellOf(a, ta);
    expect(ca?.window).to.equal(undefined);
    expect(ca?.requests).to.equal(300);
    expect(traffic.cellOf(b, tb)?.errors5xx).to.equal(1);
    const got = traffic.takeLatencies();
    // The most recent ring's worth per cell, oldest first.
    expect(got.get(ca as TrafficCell)).to.deep.equal(Array.from({ length: 256 }, (_, i) => i + 44));
    expect(got.get(traffic.cellOf(b, tb) as TrafficCell)).to.deep.equal([7]);
    expect(traffic.takeLatencies().size).to.equal(0);
    traffic.onResponse(a, ta, 200, 1);
    expect([...traffic.takeLatencies().values()]).to.deep.equal([[1]]);
  });

  it('lean-heap flags are added unless the command line or NODE_OPTIONS chose them', () => {
    expect(leanHeapFlagsFor([], '')).to.deep.equal([...leanHeapFlags]);
    expect(leanHeapFlagsFor(['--no-optimize-for-size'], '')).to.deep.equal([]);
    expect(leanHeapFlagsFor([], '--optimize-for-size')).to.deep.equal([]);
    expect(leanHeapFlagsFor(['--max-semi-space-size=8'], '')).to.deep.equal([...leanHeapFlags]);
  });

  it('--lean-heap: by default only the control process of --workers N runs lean', () => {
    expect(leanHeapHere('control', 2)).to.equal(true);
    expect(leanHeapHere('control', 1)).to.equal(false); // a single process proxies: keep p99
    expect(leanHeapHere('all', 1)).to.equal(true);
    expect(leanHeapHere('off', 4)).to.equal(false);
  });
});
