// The controller with its incremental builder: each swap's table equals a from-scratch build of
// the merged snapshots, unchanged routes are handed over as the same objects, and each table
// snapshot has balancers of its own (made on first use, only for its own routes).

import { expect } from 'chai';
import { Controller, type SwapEvent } from '../../lib/controller.ts';
import { TargetHealth } from '../../lib/health/target-health.ts';
import { buildTable } from '../../routing/table.ts';
import type { Route, ServiceInstance } from '../../routing/types.ts';

const inst = (service: string, id: string, tags: string[]): ServiceInstance => ({
  service,
  id,
  address: `10.0.0.${id}`,
  port: 80,
  tags,
});

function setup(): { c: Controller; swaps: SwapEvent[] } {
  const swaps: SwapEvent[] = [];
  const c = new Controller({
    build: {},
    strategy: 'rr',
    health: new TargetHealth(),
    onSwap: (e) => swaps.push(e),
  });
  return { c, swaps };
}

const routeOf = (routes: readonly Route[], src: string) => routes.find((r) => r.src === src);

describe('controller: incremental rebuilds', () => {
  const a = [inst('api', '1', ['urlprefix-/api']), inst('api', '2', ['urlprefix-/api'])];
  const w = [inst('web', '3', ['urlprefix-/web'])];

  it('swaps in what a full build of the merged snapshots gives, reusing unchanged routes', () => {
    const { c, swaps } = setup();
    c.updateSnapshot('one', { instances: a, manual: '' });
    c.updateSnapshot('two', { instances: w, manual: 'route add extra /x http://10.9.9.9:80/' });
    const first = c.current.table;
    const changed = [a[0] as ServiceInstance, inst('api', '2', ['urlprefix-/api', 'urlprefix-/v2'])];
    c.updateSnapshot('one', { instances: changed, manual: '' });
    const t = c.current.table;
    expect(swaps).to.have.length(3);
    expect(swaps[2]?.previous).to.equal(first);
    expect(swaps[2]?.current).to.equal(t);
    const full = buildTable({
      instances: [
        ...changed.map((i) => ({ ...i, registry: 'one' })),
        ...w.map((i) => ({ ...i, registry: 'two' })),
      ],
      manual: 'route add extra /x http://10.9.9.9:80/',
    });
    expect(t.version).to.equal(full.version);
    expect(t.routes).to.deep.equal(full.routes);
    expect(routeOf(t.routes, '/web')).to.equal(routeOf(first.routes, '/web'));
    expect(routeOf(t.routes, '/x')).to.equal(routeOf(first.routes, '/x'));
    expect(routeOf(t.routes, '/api')).to.not.equal(routeOf(first.routes, '/api'));
  });

  it('no swap when a snapshot changes nothing the table shows', () => {
    const { c, swaps } = setup();
    c.updateSnapshot('one', { instances: a, manual: '' });
    c.updateSnapshot('one', { instances: a.map((i) => ({ ...i, meta: { x: '1' } })), manual: '' });
    expect(swaps).to.have.length(1);
  });

  it('each table snapshot has its own balancers, for its own routes only', () => {
    const { c } = setup();
    c.updateSnapshot('one', { instances: [...a, ...w], manual: '' });
    const r1 = c.current;
    const api = routeOf(r1.table.routes, '/api') as Route;
    const b = r1.balancer(api);
    expect(b).to.not.equal(undefined);
    expect(r1.balancer(api)).to.equal(b);
    // Round robin state is the snapshot's: two picks, two targets.
    expect(new Set([b?.pick()?.dst, b?.pick()?.dst]).size).to.equal(2);

    c.updateSnapshot('one', { instances: [...a, inst('web', '4', ['urlprefix-/web'])], manual: '' });
    const r2 = c.current;
    // /api is the same Route object in both tables, with a fresh balancer in the new snapshot.
    expect(routeOf(r2.table.routes, '/api')).to.equal(api);
    expect(r2.balancer(api)).to.not.equal(b);
    // A route of the old table that is not in the new one has no balancer there.
    const oldWeb = routeOf(r1.table.routes, '/web') as Route;
    expect(routeOf(r2.table.routes, '/web')).to.not.equal(oldWeb);
    expect(r2.balancer(oldWeb)).to.equal(undefined);
    expect(r1.balancer(oldWeb)).to.not.equal(undefined);
  });
});
