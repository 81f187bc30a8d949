// The swap hooks that work only on what changed (Traffic.bind, trackLeaving, the table diff) against
// what a swap means: after every swap of a random sequence of incrementally built tables, the
// live cells are those of routes and (route, target key) pairs of the new table that saw traffic
// (and all of them once every pair was asked for), a pair that stayed keeps its cell (counters
// continue), a pair that is new gets a new cell; the leaving keys are those live before and not
// now; the diff is that of tables that share no objects.

import { expect } from 'chai';
import fc from 'fast-check';
import { type LeavingTarget, trackLeaving } from '../../lib/stats/leaving.ts';
import { diffTables } from '../../lib/stats/table-diff.ts';
import type { TrafficCell } from '../../lib/stats/traffic-cell.ts';
import { Traffic } from '../../lib/stats/traffic.ts';
import { buildTable, IncrementalTableBuilder } from '../../routing/table.ts';
import type { Route, RouteTable, ServiceInstance } from '../../routing/types.ts';

const tagsArb = fc.array(
  fc.constantFrom(
    'urlprefix-/a',
    'urlprefix-/b',
    'urlprefix-/b weight=0.5',
    'urlprefix-h.example.com/',
    'urlprefix-:3306 proto=tcp',
    'v1',
    'v2',
  ),
  { maxLength: 3 },
);

const instancesArb: fc.Arbitrary<ServiceInstance[]> = fc.array(
  fc.record({
    service: fc.constantFrom('s1', 's2', 's3'),
    id: fc.constantFrom('1', '2', '3'),
    address: fc.constantFrom('10.0.0.1', '10.0.0.2'),
    port: fc.constantFrom(80, 81),
    tags: tagsArb,
  }),
  { maxLength: 8 },
);

/** A sequence of snapshots where each step changes a few instances of the one before. */
const sequenceArb = fc
  .tuple(
    instancesArb,
    fc.array(fc.tuple(fc.nat(), fc.option(tagsArb, { nil: undefined })), { minLength: 1, maxLength: 10 }),
  )
  .map(([first, edits]) => {
    const out = [first];
    let cur = first;
    for (const [at, tags] of edits) {
      const next = cur.slice();
      if (next.length > 0) {
        const i = at % next.length;
        if (tags === undefined) next.splice(i, 1);
        else next[i] = { ...(next[i] as ServiceInstance), tags };
      }
      out.push((cur = next));
    }
    return out;
  });

const labels = (c: TrafficCell) => `${c.route}\u0000${c.service}\u0000${c.target}\u0000${c.key}`;

/** The cells a bound table must have, in order: each route's cell, then its distinct target keys. */
function expectedCells(t: RouteTable): string[] {
  const out: string[] = [];
  for (const r of t.routes) {
    const service = (r.targets[0] ?? r.starved[0])?.service ?? '';
    out.push(`${r.src}\u0000${service}\u0000\u0000`);
    const seen = new Set<string>();
    for (const tg of [...r.targets, ...r.starved]) {
      if (seen.has(tg.key)) continue;
      seen.add(tg.key);
      out.push(`${r.src}\u0000${tg.service}\u0000${tg.dst}\u0000${tg.key}`);
    }
  }
  return out;
}

describe('stats: swap hooks that look only at changed routes', () => {
  it('Traffic: cells on first traffic, one per route and pair; pairs that stay keep theirs; new pairs get new ones', function () {
    this.timeout(30_000);
    fc.assert(
      fc.property(sequenceArb, fc.array(fc.nat(), { minLength: 11, maxLength: 11 }), (snapshots, picks) => {
        const builder = new IncrementalTableBuilder();
        const traffic = new Traffic();
        let before = new Map<string, TrafficCell>();
        const everSeen = new Set<TrafficCell>();
        let previous: RouteTable | undefined;
        for (let step = 0; step < snapshots.length; step++) {
          const t = builder.build({ instances: snapshots[step] as ServiceInstance[], manual: '' });
          traffic.bind(t);
          const expected = expectedCells(t);
          const want = new Set(expected);
          const live = (): TrafficCell[] => [...traffic.cells()].slice(0, -1); // the no-route cell is last
          // After the swap: only cells of pairs of the new table, each once, the old ones kept.
          const kept = live().map(labels);
          expect(new Set(kept).size).to.equal(kept.length);
          expect(
            kept.filter((k) => !want.has(k)),
            'cells of pairs the live table lacks',
          ).to.deep.equal([]);
          for (const c of live()) expect(before.get(labels(c)), `cell ${labels(c)} kept`).to.equal(c);
          // Traffic on some routes and targets (a pick per step): it makes their cells.
          const pick = picks[step] ?? 0;
          for (let i = 0; i < t.routes.length; i++) {
            const r = t.routes[i] as Route;
            if ((pick >> i) % 2 === 1) traffic.onResponse(r, undefined, 503, 1);
            r.targets.forEach((tg, j) => {
              if ((pick >> (i + j + 1)) % 2 === 1) traffic.onResponse(r, tg, 200, 1);
            });
          }
          // A request still in flight on the previous table counts on a live cell or on none.
          const old = previous?.routes[0];
          const oldTarget = old?.targets[0];
          if (old !== undefined && oldTarget !== undefined) traffic.onResponse(old, oldTarget, 200, 1);
          expect(live().filter((c) => !want.has(labels(c)))).to.deep.equal([]);
          // The admin's rows make the cell of every target; then the live cells are all the pairs.
          for (const r of t.routes) {
            for (const tg of [...r.targets, ...r.starved]) {
              const c = traffic.cellOf(r, tg);
              expect(c && labels(c)).to.equal(`${r.src}\u0000${tg.service}\u0000${tg.dst}\u0000${tg.key}`);
            }
            traffic.onResponse(r, undefined, 503, 1);
          }
          const cells = live();
          expect(cells.map(labels)).to.have.members(expected);
          expect(cells).to.have.length(expected.length);
          const now = new Map(cells.map((c) => [labels(c), c]));
          for (const [k, c] of now) {
            const was = before.get(k);
            if (was !== undefined) expect(c, `cell ${k} kept`).to.equal(was);
            else expect(everSeen.has(c), `cell ${k} is new`).to.equal(false);
          }
          for (const c of cells) everSeen.add(c);
          before = now;
          previous = t;
        }
      }),
      { numRuns: 300 },
    );
  });

  it('trackLeaving: exactly the keys that were live before and are not now; those that come back leave it', () => {
    fc.assert(
      fc.property(sequenceArb, (snapshots) => {
        const builder = new IncrementalTableBuilder();
        const leaving = new Map<string, LeavingTarget>();
        const everLive = new Map<string, LeavingTarget>();
        let previous = builder.build({ instances: [], manual: '' });
        for (const instances of snapshots) {
          const t = builder.build({ instances, manual: '' });
          trackLeaving(previous, t, leaving);
          const keys = new Set(t.routes.flatMap((r) => r.targets.map((x) => x.key)));
          // Nothing drains here, so every key that was ever live and is not now is leaving.
          const expected = [...everLive.keys()].filter((k) => !keys.has(k)).sort();
          expect([...leaving.keys()].sort()).to.deep.equal(expected);
          for (const [k, v] of leaving) expect(v).to.deep.equal(everLive.get(k));
          for (const r of t.routes)
            for (const x of r.targets) everLive.set(x.key, { service: x.service, dst: x.dst });
          previous = t;
        }
      }),
      { numRuns: 300 },
    );
  });

  it('trackLeaving: a target that left and is drained is not reported again', () => {
    const builder = new IncrementalTableBuilder();
    const leaving = new Map<string, LeavingTarget>();
    const a = builder.build({ instances: [], manual: 'route add s /a http://10.0.0.1:80/' });
    const b = builder.build({ instances: [], manual: 'route add s /b http://10.0.0.2:80/' });
    trackLeaving(a, b, leaving);
    expect([...leaving.keys()]).to.deep.equal(['s|http://10.0.0.1:80/|']);
    leaving.clear(); // nothing in flight any more (Telemetry.draining)
    const c = builder.build({
      instances: [],
      manual: 'route add s /b http://10.0.0.2:80/\nroute add s /c http://10.0.0.3:80/',
    });
    trackLeaving(b, c, leaving);
    expect(leaving.size).to.equal(0);
    trackLeaving(c, a, leaving);
    expect([...leaving.keys()].sort()).to.deep.equal(['s|http://10.0.0.2:80/|', 's|http://10.0.0.3:80/|']);
  });

  it('diffTables: shared routes (skipped by identity) give the diff of tables that share nothing', () => {
    fc.assert(
      fc.property(sequenceArb, (snapshots) => {
        const builder = new IncrementalTableBuilder();
        let previous: RouteTable | undefined;
        let previousFresh: RouteTable | undefined;
        for (const instances of snapshots) {
          const t = builder.build({ instances, manual: '' });
          const fresh = buildTable({ instances, manual: '' });
          expect(diffTables(previous, t, 10_000)).to.deep.equal(diffTables(previousFresh, fresh, 10_000));
          previous = t;
          previousFresh = fresh;
        }
      }),
      { numRuns: 300 },
    );
  });
});
