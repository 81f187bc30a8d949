// An instance SIGKILLed under load, without deregistering: the only requests allowed to fail are
// the ones in flight on it at that moment (counted from Cairn's per-target in-flight gauge just
// before the kill); every request started afterwards succeeds (retries move connect failures to
// another instance, passive ejection takes the dead one out). Restarted on the same port, it gets
// traffic again once its ejection ends.

import { expect } from 'chai';
import { setTimeout as sleep } from 'node:timers/promises';
import { type Cairn, startCairn, waitFor } from '../integration/helpers/cairn.ts';
import { dst } from '../integration/helpers/etcd.ts';
import {
  type ChildUpstream,
  describeFailures,
  report,
  startChildUpstream,
  startLoad,
  summarize,
} from './support/chaos.ts';

describe('chaos: instance SIGKILLed under load', function () {
  this.timeout(90_000);
  let ups: ChildUpstream[] = [];
  let cairn: Cairn | undefined;

  afterEach(async () => {
    await cairn?.stop();
    cairn = undefined;
    await Promise.all(ups.map((u) => u.stop()));
  });

  it('fails at most the requests in flight on it, then none; it returns after a restart', async () => {
    ups = await Promise.all(['k1', 'k2', 'k3'].map((n) => startChildUpstream(n, 0, 20)));
    const c = await startCairn(
      {
        services: [
          {
            name: 'kill',
            instances: ups.map((u) => ({
              id: u.name,
              address: '127.0.0.1',
              port: u.port,
              tags: ['urlprefix-/kill'],
            })),
          },
        ],
      },
      { args: ['--eject-after', '3', '--eject-time', '2s'] },
    );
    cairn = c;
    const victim = ups[0] as ChildUpstream;
    const key =
      c.server.controller.current.table.routes[0]?.targets.find((t) => t.dst === dst(victim.port))?.key ?? '';
    expect(key).to.not.equal('');

    const load = startLoad({
      origins: [c.origin],
      path: '/kill',
      concurrency: 8,
      maxRequests: 100_000,
      maxMs: 60_000,
      pauseMs: 2,
    });
    await sleep(1_000);
    // Wait for a moment with requests on the victim, so the kill really cuts some.
    await waitFor(() => c.server.health.inFlight(key) > 0, 5_000, 'requests in flight on the victim');
    const inFlightAtKill = c.server.health.inFlight(key);
    const killedAt = Date.now();
    await victim.kill();
    // Passive ejection after 3 consecutive connect failures (the ejection lasts 2 s).
    let ejected = false;
    await waitFor(() => (ejected = c.server.health.isEjected(key)), 1_500, 'the victim ejected').catch(
      () => {},
    );
    await sleep(500);

    const restarted = await startChildUpstream(victim.name, victim.port, 20);
    ups[0] = restarted;
    const restartedAt = Date.now();
    // Ejection (2 s, doubling at most 10x) ends and the instance is picked again.
    await waitFor(
      () => load.outcomes.some((o) => o.start > restartedAt && o.upstream === victim.name),
      30_000,
      'traffic on the restarted instance',
    );
    await sleep(500);
    const r = await load.stop();

    const before = summarize(r.outcomes.filter((o) => o.start < killedAt));
    const cut = summarize(r.outcomes.filter((o) => o.start < killedAt && o.end >= killedAt));
    const after = summarize(r.outcomes.filter((o) => o.start >= killedAt));
    report('SIGKILL: before the kill', before, 'failed 0');
    report('SIGKILL: in flight at the kill', cut, `failed <= ${inFlightAtKill} (in flight on the victim)`);
    report('SIGKILL: started after the kill', after, 'failed 0');
    expect(before.failed, describeFailures(before)).to.equal(0);
    expect(cut.failed, describeFailures(cut)).to.be.at.most(inFlightAtKill);
    expect(after.failed, describeFailures(after)).to.equal(0);
    expect(ejected, 'the dead instance was ejected').to.equal(true);
    expect(r.outcomes.filter((o) => o.start > restartedAt && o.upstream === victim.name).length).to.be.above(
      0,
    );
  });
});
