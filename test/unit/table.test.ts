// Table building (fabio's NewTable + weighTargets + config), checked against cases recorded from
// fabio's route package (fixtures/fabio-table-config.json, suite `table_config`).
//
// The `ring` of each case is fabio's weighted round-robin ring (slot counts per target). Cairn's
// balancer weights are those slot counts reduced by their gcd, so the test compares proportions:
// weight / totalWeight === slots / ring_size for every target URL.

import { expect } from 'chai';
import { parseRouteCommands } from '../../routing/route-command.ts';
import { buildTable, buildTableFromCommands, tableConfig } from '../../routing/table.ts';
import type { ServiceInstance } from '../../routing/types.ts';
import vectors from './fixtures/fabio-table-config.json' with { type: 'json' };

interface Ring {
  ring_size: number;
  slots: Record<string, number>;
}

function tableOf(lines: string[]) {
  const parsed = parseRouteCommands(lines.join('\n'));
  expect(parsed.problems).to.deep.equal([]);
  return buildTableFromCommands(parsed.commands);
}

describe('table: fabio table_config vectors', () => {
  for (const v of vectors) {
    it(v.name, () => {
      const t = tableOf(v.input as string[]);
      const exp = v.expected as { config_with_weights: string[]; string: string; ring: Record<string, Ring> };
      expect(tableConfig(t, true)).to.deep.equal(exp.config_with_weights);
      expect(tableConfig(t, false).join('\n')).to.equal(exp.string);
      const rings: Record<string, Record<string, number>> = {};
      for (const r of t.routes) {
        const byDst: Record<string, number> = {};
        for (const tg of r.targets) byDst[tg.dst] = (byDst[tg.dst] ?? 0) + tg.weight / r.totalWeight;
        rings[r.src] = byDst;
      }
      const expRings: Record<string, Record<string, number>> = {};
      for (const [src, ring] of Object.entries(exp.ring)) {
        const byDst: Record<string, number> = {};
        for (const [dst, n] of Object.entries(ring.slots)) byDst[dst] = n / ring.ring_size;
        expRings[src] = byDst;
      }
      expect(Object.keys(rings).sort()).to.deep.equal(Object.keys(expRings).sort());
      for (const [src, byDst] of Object.entries(expRings)) {
        for (const [dst, p] of Object.entries(byDst)) expect(rings[src]?.[dst]).to.be.closeTo(p, 1e-9);
      }
    });
  }
});

describe('table: Cairn behaviour', () => {
  const inst = (over: Partial<ServiceInstance> & { id: string }): ServiceInstance => ({
    service: 'api',
    address: '10.0.0.1',
    port: 8080,
    tags: ['urlprefix-/api'],
    ...over,
  });

  it('builds routes from instance tags, then applies manual commands', () => {
    const t = buildTable({
      instances: [inst({ id: 'a', port: 1 }), inst({ id: 'b', port: 2, tags: ['urlprefix-/api', 'canary'] })],
      manual: 'route weight api /api weight 0.1 tags "canary"',
    });
    expect(tableConfig(t, true)).to.deep.equal([
      'route add api /api http://10.0.0.1:1/ weight 0.9000',
      'route add api /api http://10.0.0.1:2/ weight 0.1000 tags "canary"',
    ]);
    expect(t.problems).to.deep.equal([]);
  });

  it('uses instance weights inside a share (lbweight)', () => {
    const t = buildTable({
      instances: [inst({ id: 'a', port: 1, weight: 3 }), inst({ id: 'b', port: 2, weight: 1 })],
      manual: '',
    });
    const r = t.routes[0];
    expect(r?.targets.map((x) => [x.weight, x.share])).to.deep.equal([
      [3, 0.75],
      [1, 0.25],
    ]);
  });

  it('splits a route weight over matching targets by instance weight', () => {
    const t = buildTable({
      instances: [
        inst({ id: 'a', port: 1 }),
        inst({ id: 'b', port: 2, weight: 1, tags: ['urlprefix-/api', 'v2'] }),
        inst({ id: 'c', port: 3, weight: 3, tags: ['urlprefix-/api', 'v2'] }),
      ],
      manual: 'route weight api /api weight 0.2 tags "v2"',
    });
    expect(t.routes[0]?.targets.map((x) => x.share.toFixed(3))).to.deep.equal(['0.800', '0.050', '0.150']);
  });

  it('excludes instances whose status is not accepted, and lists them', () => {
    const snap = {
      instances: [inst({ id: 'a', port: 1 }), inst({ id: 'b', port: 2, status: 'warning' as const })],
      manual: '',
    };
    const strict = buildTable(snap);
    expect(strict.routes[0]?.targets.map((x) => x.dst)).to.deep.equal(['http://10.0.0.1:1/']);
    expect(strict.excluded).to.deep.equal([{ service: 'api', id: 'b', status: 'warning' }]);
    const lenient = buildTable(snap, { acceptedStatus: ['passing', 'warning'] });
    expect(lenient.routes[0]?.targets).to.have.length(2);
  });

  it('skips and reports a bad manual line; the rest of the table still builds', () => {
    const t = buildTable({
      instances: [inst({ id: 'a' })],
      manual: 'route add x /x http://1.2.3.4/\nroute ad y /y http://5.6.7.8/\nroute add z /z nota-url',
    });
    expect(t.routes.map((r) => r.src)).to.deep.equal(['/x', '/api']);
    expect(t.problems.map((p) => [p.line, p.severity])).to.deep.equal([
      [2, 'error'],
      [3, 'error'],
    ]);
  });

  it('reports a route weight that matches nothing as a warning', () => {
    const t = buildTable({ instances: [], manual: 'route weight api /api weight 0.1 tags "canary"' });
    expect(t.problems).to.have.length(1);
    expect(t.problems[0]?.severity).to.equal('warning');
  });

  it('is deterministic: instance order does not change the table or its version', () => {
    const a = inst({ id: 'a', port: 1 });
    const b = inst({ id: 'b', port: 2 });
    const t1 = buildTable({ instances: [a, b], manual: '' });
    const t2 = buildTable({ instances: [b, a], manual: '' });
    expect(tableConfig(t1, true)).to.deep.equal(tableConfig(t2, true));
    expect(t1.version).to.equal(t2.version);
    const t3 = buildTable({ instances: [a], manual: '' });
    expect(t3.version).to.not.equal(t1.version);
  });

  it('is immutable', () => {
    const t = buildTable({ instances: [inst({ id: 'a' })], manual: '' });
    expect(Object.isFrozen(t)).to.equal(true);
    expect(Object.isFrozen(t.routes)).to.equal(true);
    expect(Object.isFrozen(t.routes[0])).to.equal(true);
    expect(Object.isFrozen(t.routes[0]?.targets[0])).to.equal(true);
  });

  it('keeps TCP routes as :port and host:port', () => {
    const t = buildTable({
      instances: [
        inst({ id: 'db', service: 'db', port: 5432, tags: ['urlprefix-:5432 proto=tcp'] }),
        inst({ id: 'sni', service: 'sni', port: 8443, tags: ['urlprefix-db.example.com:443 proto=tcp+sni'] }),
      ],
      manual: '',
    });
    const bySrc = Object.fromEntries(t.routes.map((r) => [r.src, r]));
    expect(bySrc[':5432']).to.include({ host: '', path: '', port: 5432, proto: 'tcp' });
    expect(bySrc['db.example.com:443']).to.include({
      host: 'db.example.com',
      path: '',
      port: 443,
      proto: 'tcp+sni',
    });
    expect(t.tcp.lookupPort(5432)?.src).to.equal(':5432');
    expect(t.tcp.lookupSni('DB.example.com', 443)?.src).to.equal('db.example.com:443');
  });

  it("shares one parsed destination among an instance's route tags (issue #9's memory bar)", () => {
    const t = buildTable({
      instances: [
        inst({ id: 'a', tags: ['urlprefix-a.com/', 'urlprefix-b.com/x', 'urlprefix-c.com/ strip=/x'] }),
      ],
      manual: '',
    });
    const bySrc = (src: string) => t.routes.find((r) => r.src === src)?.targets[0];
    const [x, y, z] = [bySrc('a.com/'), bySrc('b.com/x'), bySrc('c.com/')];
    expect(x?.dst).to.equal('http://10.0.0.1:8080/');
    expect(y?.url).to.equal(x?.url);
    expect(z?.url).to.equal(x?.url);
    expect(y?.key).to.equal(x?.key);
    expect(y?.opts).to.not.equal(z?.opts);
    expect(z?.opts.strip).to.equal('/x');
  });

  it('keeps the same routes, targets and version whatever the host and route sharing', () => {
    // One route per host (kept without a path map), several paths on one host, a :80 pattern
    // (separate plain and TLS host indexes), duplicates (two target lists) and a weight rule.
    const instances = [
      inst({
        id: 'a',
        service: 's1',
        tags: ['urlprefix-one.com/', 'urlprefix-two.com/a', 'urlprefix-two.com/b'],
      }),
      inst({ id: 'b', service: 's1', tags: ['urlprefix-two.com/a', 'urlprefix-three.com:80/'] }),
      inst({ id: 'c', service: 's2', tags: ['urlprefix-two.com/a'] }),
    ];
    const manual = 'route add s1 two.com/a http://127.0.0.1:1/\nroute add s1 two.com/a http://127.0.0.1:1/';
    const t = buildTable({ instances, manual });
    expect(tableConfig(t, true)).to.deep.equal([
      'route add s1 two.com/b http://10.0.0.1:8080/ weight 1.0000',
      'route add s1 two.com/a http://10.0.0.1:8080/ weight 0.3333',
      'route add s2 two.com/a http://10.0.0.1:8080/ weight 0.3333',
      'route add s1 two.com/a http://127.0.0.1:1/ weight 0.3333',
      'route add s1 three.com:80/ http://10.0.0.1:8080/ weight 1.0000',
      'route add s1 one.com/ http://10.0.0.1:8080/ weight 1.0000',
    ]);
    expect(t.http.lookup({ host: 'three.com', path: '/' })?.src).to.equal('three.com:80/');
    expect(t.http.lookup({ host: 'three.com', path: '/', tls: true })).to.equal(undefined);
    expect(t.http.lookup({ host: 'one.com', path: '/x' })?.src).to.equal('one.com/');
    expect(t.http.lookup({ host: 'two.com', path: '/b/c' })?.src).to.equal('two.com/b');
    expect(t.http.lookup({ host: 'two.com', path: '/c' })).to.equal(undefined);
    const weighed = buildTable({ instances, manual: `${manual}\nroute weight s1 two.com/a weight 0.5` });
    const a = weighed.routes.find((r) => r.src === 'two.com/a');
    expect(a?.targets.map((x) => [x.service, x.dst, x.share])).to.deep.equal([
      ['s1', 'http://10.0.0.1:8080/', 0.25],
      ['s2', 'http://10.0.0.1:8080/', 0.5],
      ['s1', 'http://127.0.0.1:1/', 0.25],
    ]);
  });
});
