// Consul registry against a real Consul agent (a fresh -dev agent for this file), asserting on
// real traffic through Cairn: services registered through the agent API with real HTTP, TCP and
// TTL checks are routed, follow health, tags and Weights, and go away on deregistration.

import { expect } from 'chai';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { request } from 'undici';
import { type ConsulServer, startConsul } from '../support/servers.ts';
import { at, type ConsulCairn, ConsulApi, eventually, startConsulCairn } from './helpers/consul.ts';
import { closeAll, startUpstream, type Upstream } from './helpers/upstream.ts';

describe('consul registry (real agent): routing follows the catalog', function () {
  this.timeout(60_000);
  let consul: ConsulServer;
  let api: ConsulApi;
  let cairn: ConsulCairn;
  let ups: Upstream[] = [];
  let a: Upstream;
  let b: Upstream;
  let c: Upstream;

  before(async () => {
    consul = await startConsul();
    api = new ConsulApi(consul.address);
    ups = await Promise.all(['a', 'b', 'c'].map((n) => startUpstream(n)));
    [a, b, c] = ups as [Upstream, Upstream, Upstream];
    cairn = await startConsulCairn(consul.address);
  });

  after(async () => {
    await cairn?.stop();
    await closeAll(ups);
    await consul?.stop();
  });

  afterEach(async () => {
    for (const id of ['web-a', 'web-b', 'web-c', 'tcp-a', 'tagged-a', 'nochk-a'])
      await api.deregister(id).catch(() => {});
  });

  it('routes a service tagged urlprefix- once its HTTP check passes, and stops when it is deregistered', async () => {
    expect((await cairn.get('/web')).status).to.equal(404);
    await api.register({
      ID: 'web-a',
      Name: 'web',
      Tags: ['urlprefix-/web'],
      ...at(a.port),
      Check: { HTTP: `${a.origin}/health`, Interval: '500ms' },
    });
    // The agent runs the first HTTP check after a random stagger of up to one interval, and on
    // a loaded CI box later still: that part is Consul's. What Cairn adds on top of the check
    // passing in the catalog is what this test bounds.
    await eventually(
      () => api.checks('web'),
      (cs) => cs.some((c) => c.Status === 'passing'),
      'the HTTP check passing in Consul',
      10_000,
    );
    const routed = await eventually(
      () => cairn.get('/web'),
      (r) => r.status === 200,
      'web routed',
    );
    expect(routed.value.upstream).to.equal('a');
    expect(routed.ms).to.be.below(1_500);
    const seen = await cairn.status();
    expect(seen.registries.find((r) => r.name.startsWith('consul:'))?.state).to.equal('up');

    await api.deregister('web-a');
    const gone = await eventually(
      () => cairn.get('/web'),
      (r) => r.status === 404,
      'web gone',
    );
    expect(gone.ms).to.be.below(1_500);
  });

  it('routes TCP-checked and TTL-checked instances, never one whose check has not passed', async () => {
    await api.register({
      ID: 'web-a',
      Name: 'web',
      Tags: ['urlprefix-/web'],
      ...at(a.port),
      Check: { TCP: `127.0.0.1:${a.port}`, Interval: '500ms' },
    });
    await api.register({
      ID: 'web-b',
      Name: 'web',
      Tags: ['urlprefix-/web'],
      ...at(b.port),
      Check: { CheckID: 'web-b-ttl', TTL: '60s' },
    });
    await eventually(
      () => cairn.tally('/web', 6),
      (t) => t.a === 6,
      'only the TCP-checked instance',
    );
    // A TTL check starts critical: b gets nothing until it reports in.
    await api.ttl('web-b-ttl', 'pass');
    const both = await eventually(
      () => cairn.tally('/web', 10),
      (t) => t.a === 5 && t.b === 5,
      'both instances',
    );
    expect(both.ms).to.be.below(1_500);
  });

  it('follows TTL flips to warning and critical within a second', async () => {
    await api.register({ ID: 'web-a', Name: 'web', Tags: ['urlprefix-/web'], ...at(a.port) });
    await api.register({
      ID: 'web-b',
      Name: 'web',
      Tags: ['urlprefix-/web'],
      ...at(b.port),
      Check: { CheckID: 'web-b-ttl', TTL: '60s', Status: 'passing' },
    });
    await eventually(
      () => cairn.tally('/web', 10),
      (t) => t.a === 5 && t.b === 5,
      'both instances',
    );

    await api.ttl('web-b-ttl', 'warn');
    const warn = await eventually(
      () => cairn.tally('/web', 6),
      (t) => t.a === 6,
      'b out while warning',
    );
    expect(warn.ms).to.be.below(1_000);
    const st = await cairn.status();
    expect(st.excluded).to.deep.include({ service: 'web', id: 'web-b', status: 'warning' });

    await api.ttl('web-b-ttl', 'pass');
    await eventually(
      () => cairn.tally('/web', 10),
      (t) => t.b === 5,
      'b back',
    );
    await api.ttl('web-b-ttl', 'fail');
    const fail = await eventually(
      () => cairn.tally('/web', 6),
      (t) => t.a === 6,
      'b out while critical',
    );
    expect(fail.ms).to.be.below(1_000);
  });

  it('maintenance mode takes an instance out', async () => {
    await api.register({ ID: 'web-a', Name: 'web', Tags: ['urlprefix-/web'], ...at(a.port) });
    await api.register({ ID: 'web-b', Name: 'web', Tags: ['urlprefix-/web'], ...at(b.port) });
    await eventually(
      () => cairn.tally('/web', 10),
      (t) => t.a === 5 && t.b === 5,
      'both instances',
    );
    await api.maintenance('web-b', true);
    await eventually(
      () => cairn.tally('/web', 6),
      (t) => t.a === 6,
      'b in maintenance',
    );
    await api.maintenance('web-b', false);
    await eventually(
      () => cairn.tally('/web', 10),
      (t) => t.b === 5,
      'b back',
    );
  });

  it('Weights.Passing is each instance weight, and a re-registration with new Weights applies', async () => {
    await api.register({
      ID: 'web-a',
      Name: 'web',
      Tags: ['urlprefix-/web'],
      ...at(a.port),
      Weights: { Passing: 3, Warning: 1 },
      Check: { CheckID: 'web-a-ttl', TTL: '60s', Status: 'passing' },
    });
    await api.register({
      ID: 'web-b',
      Name: 'web',
      Tags: ['urlprefix-/web'],
      ...at(b.port),
      Weights: { Passing: 1, Warning: 1 },
      Check: { CheckID: 'web-b-ttl', TTL: '60s', Status: 'passing' },
    });
    // Smooth weighted round-robin: every window of 4 picks has 3 a and 1 b.
    await eventually(
      () => cairn.tally('/web', 8),
      (t) => t.a === 6 && t.b === 2,
      'weights 3:1',
    );

    // Same checks, new Weights: no check moves, only the catalog (found by the sweep).
    const t0 = Date.now();
    await api.register({
      ID: 'web-a',
      Name: 'web',
      Tags: ['urlprefix-/web'],
      ...at(a.port),
      Weights: { Passing: 1, Warning: 1 },
      Check: { CheckID: 'web-a-ttl', TTL: '60s', Status: 'passing' },
    });
    await eventually(
      () => cairn.tally('/web', 8),
      (t) => t.a === 4 && t.b === 4,
      'weights 1:1',
    );
    // The sweep runs at least every second, and less often while sweeps are slow (five times
    // the last one): on a loaded CI box that is up to ~1.5 s, plus the sweep itself.
    expect(Date.now() - t0).to.be.below(3_000);
  });

  it('tag changes move the route', async () => {
    await api.register({ ID: 'tagged-a', Name: 'tagged', Tags: ['urlprefix-/v1'], ...at(c.port) });
    await eventually(
      () => cairn.get('/v1'),
      (r) => r.status === 200 && r.upstream === 'c',
      '/v1',
    );
    await api.register({
      ID: 'tagged-a',
      Name: 'tagged',
      Tags: ['urlprefix-/v2 strip=/v2', 'blue'],
      ...at(c.port),
    });
    const moved = await eventually(
      async () => [await cairn.get('/v1'), await cairn.get('/v2/x')] as const,
      ([v1, v2]) => v1.status === 404 && v2.status === 200,
      '/v2',
    );
    expect(JSON.parse(moved.value[1].body).url).to.equal('/x');
    expect(moved.ms).to.be.below(1_500);
  });

  it('instances without checks are routed (their node is healthy), and follow the catalog', async () => {
    await api.register({ ID: 'nochk-a', Name: 'nochk', Tags: ['urlprefix-/nochk'], ...at(a.port) });
    await eventually(
      () => cairn.get('/nochk'),
      (r) => r.upstream === 'a',
      'check-less instance',
    );
    // A port change moves no check: the sweep finds it.
    await api.register({ ID: 'nochk-a', Name: 'nochk', Tags: ['urlprefix-/nochk'], ...at(b.port) });
    await eventually(
      () => cairn.get('/nochk'),
      (r) => r.upstream === 'b',
      'new port',
    );
  });

  it('an instance with an empty Service.Address uses the node address', async () => {
    await api.register({ ID: 'web-c', Name: 'web', Tags: ['urlprefix-/web'], Port: c.port });
    const r = await eventually(
      () => cairn.get('/web'),
      (x) => x.status === 200,
      'node address',
    );
    expect(r.value.upstream).to.equal('c');
  });

  it('an IPv6 service address is routed (bracketed in the target URL)', async function () {
    const v6 = http.createServer((_req, res) => {
      res.writeHead(200, { 'x-upstream': 'v6' });
      res.end('ok');
    });
    try {
      await new Promise<void>((resolve, reject) => {
        v6.once('error', reject);
        v6.listen(0, '::1', resolve);
      });
    } catch {
      this.skip();
    }
    try {
      const port = (v6.address() as AddressInfo).port;
      await api.register({ ID: 'web-c', Name: 'v6', Tags: ['urlprefix-/v6'], Address: '::1', Port: port });
      await eventually(
        () => cairn.get('/v6'),
        (r) => r.upstream === 'v6',
        'routed to [::1]',
      );
      const routes = (await (await request(`${cairn.adminOrigin}/api/routes`)).body.json()) as {
        dst: string;
      }[];
      expect(routes.map((r) => r.dst)).to.include(`http://[::1]:${port}/`);
    } finally {
      v6.closeAllConnections();
      v6.close();
    }
  });

  it('watches with few requests: nothing but the open long-polls while the catalog is quiet', async () => {
    // Let the deregistrations of the previous test settle.
    await new Promise((r) => setTimeout(r, 1500));
    const before = cairn.registry.stats();
    await new Promise((r) => setTimeout(r, 2000));
    const after = cairn.registry.stats();
    const moved = Object.entries(after.endpoints)
      .filter(([k, v]) => v.requests !== before.endpoints[k]?.requests)
      .map(([k, v]) => `${k}: +${v.requests - (before.endpoints[k]?.requests ?? 0)}`);
    expect(moved, moved.join(', ')).to.deep.equal([]);
  });
});

describe('consul registry (real agent): datacenters', function () {
  this.timeout(60_000);
  let consul: ConsulServer;
  let up: Upstream;
  const cairns: ConsulCairn[] = [];

  before(async () => {
    consul = await startConsul();
    up = await startUpstream('a');
    await new ConsulApi(consul.address).register({
      ID: 'dc-a',
      Name: 'dcweb',
      Tags: ['urlprefix-${DC}.example.com/'],
      ...at(up.port),
    });
  });

  after(async () => {
    for (const c of cairns) await c.stop();
    await up?.close();
    await consul?.stop();
  });

  it('?dc= names the datacenter, and $DC in a tag is that datacenter', async () => {
    const c = await startConsulCairn(`${consul.address}?dc=dc1`);
    cairns.push(c);
    const r = await eventually(
      () => c.get('/', { host: 'dc1.example.com' }),
      (x) => x.status === 200,
      'dc1 host',
    );
    expect(r.value.upstream).to.equal('a');
  });

  it('an unknown datacenter is a 500 from Consul: the registry is down with the reason', async () => {
    const c = await startConsulCairn(`${consul.address}?dc=nowhere`);
    cairns.push(c);
    const s = await eventually(
      () => c.registryStatus(),
      (x) => x.state === 'down',
      'down',
    );
    expect(s.value.error).to.match(/HTTP 500: No path to datacenter/);
  });
});

describe('consul registry (real agent): --health-status passing,warning and checks-required', function () {
  this.timeout(60_000);
  let consul: ConsulServer;
  let api: ConsulApi;
  let ups: Upstream[] = [];
  let lenient: ConsulCairn;
  let fabioLike: ConsulCairn;

  before(async () => {
    consul = await startConsul();
    api = new ConsulApi(consul.address);
    ups = await Promise.all(['a', 'b'].map((n) => startUpstream(n)));
    lenient = await startConsulCairn(consul.address, ['--health-status', 'passing,warning']);
    fabioLike = await startConsulCairn(consul.address, ['--consul-checks-required', 'one']);
  });

  after(async () => {
    await lenient?.stop();
    await fabioLike?.stop();
    await closeAll(ups);
    await consul?.stop();
  });

  it('passing,warning keeps a warning instance (with Weights.Warning) and drops a critical one', async () => {
    const [a, b] = ups as [Upstream, Upstream];
    await api.register({ ID: 'web-a', Name: 'web', Tags: ['urlprefix-/web'], ...at(a.port) });
    await api.register({
      ID: 'web-b',
      Name: 'web',
      Tags: ['urlprefix-/web'],
      ...at(b.port),
      Weights: { Passing: 1, Warning: 3 },
      Check: { CheckID: 'b-ttl', TTL: '60s', Status: 'passing' },
    });
    await eventually(
      () => lenient.tally('/web', 10),
      (t) => t.a === 5 && t.b === 5,
      'both',
    );
    await api.ttl('b-ttl', 'warn');
    // Warning: still routed, now with Weights.Warning = 3.
    await eventually(
      () => lenient.tally('/web', 8),
      (t) => t.a === 2 && t.b === 6,
      'b at its warning weight',
    );
    await api.ttl('b-ttl', 'fail');
    await eventually(
      () => lenient.tally('/web', 6),
      (t) => t.a === 6,
      'b out when critical',
    );
  });

  it('checks-required=one routes an instance with one passing check of two (fabio), all does not', async () => {
    const [, b] = ups as [Upstream, Upstream];
    await api.register({
      ID: 'two-b',
      Name: 'two',
      Tags: ['urlprefix-/two'],
      ...at(b.port),
      Checks: [
        { CheckID: 'two-ok', TTL: '60s', Status: 'passing' },
        { CheckID: 'two-bad', TTL: '60s', Status: 'critical' },
      ],
    });
    await eventually(
      () => fabioLike.get('/two'),
      (r) => r.upstream === 'b',
      'one: routed',
    );
    expect((await lenient.get('/two')).status).to.equal(404);
  });
});
