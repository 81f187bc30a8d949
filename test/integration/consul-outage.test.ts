// Consul failures against a real agent: unreachable at start, stopped while Cairn runs, and
// restarted (a -dev agent comes back empty with its Raft index starting over, which is what a
// rebuilt cluster looks like to a client: the index goes backwards). Asserted on real traffic
// and on the admin API.

import { expect } from 'chai';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';
import { type ConsulServer, startConsul } from '../support/servers.ts';
import {
  at,
  type ConsulCairn,
  ConsulApi,
  eventually,
  startConsulCairn,
  startConsulClientAgent,
} from './helpers/consul.ts';
import { closeAll, startUpstream, type Upstream } from './helpers/upstream.ts';

describe('consul registry (real agent): outages', function () {
  this.timeout(90_000);
  let consul: ConsulServer;
  let api: ConsulApi;
  let ups: Upstream[] = [];
  let cairn: ConsulCairn | undefined;

  before(async () => {
    consul = await startConsul();
    api = new ConsulApi(consul.address);
    ups = await Promise.all(['a', 'b'].map((n) => startUpstream(n)));
  });

  after(async () => {
    await closeAll(ups);
    await consul?.stop();
  });

  afterEach(async () => {
    await cairn?.stop();
    cairn = undefined;
  });

  const registerWeb = async (u: Upstream, id = `web-${u.name}`): Promise<void> => {
    await api.register({ ID: id, Name: 'web', Tags: ['urlprefix-/web'], ...at(u.port) });
  };

  it('Consul unreachable at start: Cairn starts, serves nothing, reports down, fills the table when Consul answers', async () => {
    await consul.process().stop();
    const started = Date.now();
    cairn = await startConsulCairn(consul.address);
    expect(Date.now() - started).to.be.below(5_000);
    const c = cairn;
    expect((await c.get('/web')).status).to.equal(404);
    const down = await c.registryStatus();
    expect(down.state).to.equal('down');
    expect(down.error).to.match(/ECONNREFUSED/);

    await consul.restart();
    await registerWeb(ups[0] as Upstream);
    await eventually(
      () => c.get('/web'),
      (r) => r.upstream === 'a',
      'routed once Consul answers',
      10_000,
    );
    expect((await c.registryStatus()).state).to.equal('up');
  });

  it('Consul unreachable at start with a file registry too: the file routes serve meanwhile', async () => {
    await consul.process().stop();
    const dir = await mkdtemp(join(tmpdir(), 'cairn-consul-file-'));
    const file = join(dir, 'routes.yaml');
    const b = ups[1] as Upstream;
    await writeFile(
      file,
      `services:\n  - name: static\n    instances:\n      - { id: s1, address: 127.0.0.1, port: ${b.port}, tags: ["urlprefix-/static"] }\n`,
    );
    try {
      cairn = await startConsulCairn(consul.address, ['--registry', `file:${file}`]);
      const c = cairn;
      expect((await c.get('/static')).upstream).to.equal('b');
      expect((await c.registryStatus()).state).to.equal('down');
      await consul.restart();
      await registerWeb(ups[0] as Upstream);
      await eventually(
        () => c.get('/web'),
        (r) => r.upstream === 'a',
        'consul routes added',
        10_000,
      );
      expect((await c.get('/static')).upstream).to.equal('b');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('Consul stops while Cairn runs: the last good table keeps serving, stale is reported, watches resume without duplicates', async () => {
    await registerWeb(ups[0] as Upstream);
    await registerWeb(ups[1] as Upstream);
    cairn = await startConsulCairn(consul.address);
    const c = cairn;
    await eventually(
      () => c.tally('/web', 10),
      (t) => t.a === 5 && t.b === 5,
      'both routed',
    );

    await consul.process().stop();
    const stale = await eventually(
      () => c.registryStatus(),
      (r) => r.state === 'stale',
      'stale',
    );
    expect(stale.value.error).to.match(/ECONNREFUSED|socket|closed|terminated/i);
    const metrics = await (await request(`${c.adminOrigin}/metrics`)).body.text();
    expect(metrics).to.include(`cairn_registry_up{registry="${c.registry.name}"} 0`);
    // The last good table serves for as long as Consul is away.
    for (let i = 0; i < 3; i++) {
      expect(await c.tally('/web', 10)).to.deep.equal({ a: 5, b: 5 });
      await sleep(500);
    }

    await consul.restart();
    // The -dev agent came back empty: Cairn follows the (now authoritative) empty catalog...
    await eventually(
      () => c.registryStatus(),
      (r) => r.state === 'up',
      'up again',
      15_000,
    );
    await eventually(
      () => c.get('/web'),
      (r) => r.status === 404,
      'empty catalog followed',
    );
    // ...and everything registered from now on.
    await registerWeb(ups[1] as Upstream);
    await eventually(
      () => c.get('/web'),
      (r) => r.upstream === 'b',
      'routed after recovery',
    );

    // One long-poll per loop: a quiet catalog costs no request (a duplicate watch would).
    await sleep(1500);
    const before = c.registry.stats().requests;
    await sleep(2000);
    expect(c.registry.stats().requests - before).to.equal(0);
  });

  it('a client agent without servers answers 500: down with the reason, then routed once it joins', async () => {
    const agent = await startConsulClientAgent();
    try {
      cairn = await startConsulCairn(agent.address);
      const c = cairn;
      const down = await eventually(
        () => c.registryStatus(),
        (r) => r.state === 'down',
        'down',
      );
      expect(down.value.error).to.match(/HTTP 500: No known Consul servers/);
      await agent.join(consul.address);
      // Registered through the local (client) agent, as services usually do.
      const local = new ConsulApi(agent.address);
      await local.register({
        ID: 'web-via-client',
        Name: 'web',
        Tags: ['urlprefix-/web'],
        ...at((ups[0] as Upstream).port),
        Check: { HTTP: `${(ups[0] as Upstream).origin}/health`, Interval: '500ms' },
      });
      await eventually(
        () => c.get('/web'),
        (r) => r.upstream === 'a',
        'routed through the client agent',
        20_000,
      );
      expect((await c.registryStatus()).state).to.equal('up');
    } finally {
      await cairn?.stop();
      cairn = undefined;
      await agent.stop();
    }
  });

  it('agent restart while running (index goes backwards): everything is fetched again, re-registrations route', async () => {
    await registerWeb(ups[0] as Upstream);
    cairn = await startConsulCairn(consul.address);
    const c = cairn;
    await eventually(
      () => c.get('/web'),
      (r) => r.upstream === 'a',
      'routed',
    );
    const fetchesBefore = Object.values(c.registry.stats().watches)[0]?.fetches ?? 0;

    await consul.restart();
    await registerWeb(ups[1] as Upstream);
    await eventually(
      () => c.tally('/web', 4),
      (t) => t.b === 4,
      'the new catalog, not the old one',
      15_000,
    );
    expect(Object.values(c.registry.stats().watches)[0]?.fetches ?? 0).to.be.greaterThan(fetchesBefore);
    await eventually(
      () => c.registryStatus(),
      (r) => r.state === 'up',
      'up',
      10_000,
    );
  });
});
