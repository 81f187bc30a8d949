// Upstreams.retain(): after a swap, pools of origins the live targets still use stay (the same
// pool objects, so keep-alive connections survive the swap), the others are closed, and a target
// that maps to a closed pool gets an open one again.

import { expect } from 'chai';
import { Upstreams } from '../../lib/proxy/upstreams.ts';
import { buildTable } from '../../routing/table.ts';
import type { RouteTarget } from '../../routing/types.ts';

function targets(manual: string): RouteTarget[] {
  return buildTable({ instances: [], manual }).routes.flatMap((r) => [...r.targets]);
}

describe('upstreams: retain after a swap', () => {
  it('keeps the pools still in use, closes the rest', async () => {
    const u = new Upstreams();
    const [a, b, c] = targets(
      'route add s /a http://127.0.0.1:9001/\nroute add s /b http://127.0.0.1:9002/\nroute add s /c http://127.0.0.1:9003/',
    ) as [RouteTarget, RouteTarget, RouteTarget];
    const pa = u.pool(a);
    const pb = u.pool(b);
    expect(u.size).to.equal(2);
    // c has no pool yet (no request went there): nothing to keep or close for it.
    u.retain([a, b, c]);
    expect(u.size).to.equal(2);
    expect(u.pool(a)).to.equal(pa);
    expect(pb.closed).to.equal(false);
    u.retain([a, c]);
    expect(u.size).to.equal(1);
    expect(pb.closed).to.equal(true);
    expect(u.pool(a)).to.equal(pa);
    // A request still running on the old table gets an open pool for b, not the closed one.
    const again = u.pool(b);
    expect(again).to.not.equal(pb);
    expect(again.closed).to.equal(false);
    await u.close();
  });

  it('targets of a new table with the same origin share the pool', async () => {
    const u = new Upstreams();
    const [a1] = targets('route add s /a http://127.0.0.1:9001/') as [RouteTarget];
    const [a2] = targets('route add t /other http://127.0.0.1:9001/') as [RouteTarget];
    const p = u.pool(a1);
    u.retain([a2]);
    expect(u.size).to.equal(1);
    expect(u.pool(a2)).to.equal(p);
    u.retain([]);
    expect(u.size).to.equal(0);
    expect(p.closed).to.equal(true);
    await u.close();
  });
});
