// Consul KV overrides, ACL tokens and Cairn's self-registration, against real Consul agents,
// asserted on real traffic.

import { expect } from 'chai';
import { randomUUID } from 'node:crypto';
import { request } from 'undici';
import { type ConsulServer, freePort, startConsul } from '../support/servers.ts';
import {
  at,
  type ConsulCairn,
  ConsulApi,
  type ConsulTlsServer,
  eventually,
  startConsulCairn,
  startConsulTls,
} from './helpers/consul.ts';
import { closeAll, startUpstream, type Upstream } from './helpers/upstream.ts';

describe('consul registry (real agent): KV overrides under cairn/config', function () {
  this.timeout(60_000);
  let consul: ConsulServer;
  let api: ConsulApi;
  let ups: Upstream[] = [];
  let cairn: ConsulCairn;

  before(async () => {
    consul = await startConsul();
    api = new ConsulApi(consul.address);
    ups = await Promise.all(['a', 'b', 'c'].map((n) => startUpstream(n)));
    const [a, b] = ups as [Upstream, Upstream];
    await api.register({ ID: 'web-a', Name: 'web', Tags: ['urlprefix-/web'], ...at(a.port) });
    await api.register({ ID: 'web-b', Name: 'web', Tags: ['urlprefix-/web', 'canary'], ...at(b.port) });
    cairn = await startConsulCairn(consul.address);
    await eventually(
      () => cairn.tally('/web', 4),
      (t) => t.a === 2 && t.b === 2,
      'web routed',
    );
  });

  after(async () => {
    await cairn?.stop();
    await closeAll(ups);
    await consul?.stop();
  });

  it('a canary share via `route weight` in cairn/config', async () => {
    await api.kvPut('cairn/config', 'route weight web /web weight 0.25 tags "canary"');
    const r = await eventually(
      () => cairn.tally('/web', 8),
      (t) => t.a === 6 && t.b === 2,
      'canary at 25 %',
    );
    expect(r.ms).to.be.below(1_500);
  });

  it('reads every sub-key; a bad line is reported and skipped, the other lines apply', async () => {
    const c = ups[2] as Upstream;
    await api.kvPut('cairn/config/extra', `route add static /static http://127.0.0.1:${c.port}/`);
    await api.kvPut(
      'cairn/config/more',
      ['route add broken', `route add static2 /static2 http://127.0.0.1:${c.port}/`].join('\n'),
    );
    await eventually(
      () => cairn.get('/static2'),
      (x) => x.upstream === 'c',
      '/static2 from the key with a bad line',
    );
    expect((await cairn.get('/static')).upstream).to.equal('c');
    // The canary override of the parent key still applies.
    expect(await cairn.tally('/web', 8)).to.deep.equal({ a: 6, b: 2 });
    const status = await cairn.status();
    const bad = status.problems.filter((p) => p.source === 'manual');
    expect(bad.map((p) => p.input)).to.deep.equal(['route add broken']);
    expect(bad[0]?.reason).to.match(/syntax error/);
  });

  it('deleting a key removes its routes; keys merely sharing the prefix are ignored', async () => {
    await api.kvPut('cairn/configuration', `route add nope /nope http://127.0.0.1:1/`);
    await api.kvDelete('cairn/config/extra');
    await eventually(
      () => cairn.get('/static'),
      (x) => x.status === 404,
      '/static gone',
    );
    expect((await cairn.get('/nope')).status).to.equal(404);
  });

  it('writeManual is compare-and-swap on the key ModifyIndex', async () => {
    const current = await cairn.registry.readManual();
    expect(current.value).to.equal('route weight web /web weight 0.25 tags "canary"');
    const ok = await cairn.registry.writeManual(
      'route weight web /web weight 0.5 tags "canary"',
      current.version,
    );
    expect(ok.ok).to.equal(true);
    await eventually(
      () => cairn.tally('/web', 4),
      (t) => t.a === 2 && t.b === 2,
      'canary at 50 %',
    );
    const conflict = await cairn.registry.writeManual('route del web', current.version);
    expect(conflict.ok).to.equal(false);
    expect('conflict' in conflict && conflict.conflict.value).to.equal(
      'route weight web /web weight 0.5 tags "canary"',
    );
  });
});

describe('consul registry (real agent): ACL tokens', function () {
  this.timeout(60_000);
  const master = randomUUID();
  let consul: ConsulServer;
  let admin: ConsulApi;
  let ups: Upstream[] = [];
  const cairns: ConsulCairn[] = [];

  before(async () => {
    consul = await startConsul({ aclMasterToken: master });
    admin = new ConsulApi(consul.address, master);
    ups = await Promise.all(['a'].map((n) => startUpstream(n)));
    await admin.register({
      ID: 'web-a',
      Name: 'web',
      Tags: ['urlprefix-/web'],
      ...at((ups[0] as Upstream).port),
    });
    await admin.kvPut('cairn/config', 'route add kv /kv http://127.0.0.1:1/');
  });

  after(async () => {
    for (const c of cairns) await c.stop();
    await closeAll(ups);
    await consul?.stop();
  });

  const start = async (token: string): Promise<ConsulCairn> => {
    const c = await startConsulCairn(consul.address, ['--consul-token', token]);
    cairns.push(c);
    return c;
  };

  it('a token that may read services and nodes routes them', async () => {
    const token = await admin.createToken(
      'reader',
      'service_prefix "" { policy = "read" }\nnode_prefix "" { policy = "read" }\nkey_prefix "cairn/" { policy = "read" }',
    );
    const c = await start(token);
    await eventually(
      () => c.get('/web'),
      (r) => r.upstream === 'a',
      'routed with the token',
    );
    expect((await c.registryStatus()).state).to.equal('up');
    expect((await c.status()).problems).to.deep.equal([]);
  });

  it('a token that sees nothing is reported as such (Consul answers {}, not 403)', async () => {
    const token = await admin.createToken('nothing');
    const c = await start(token);
    const s = await eventually(
      () => c.status(),
      (x) => x.problems.some((p) => /no services at all for this ACL token/.test(p.reason)),
      'the ACL problem',
    );
    expect((await c.get('/web')).status).to.equal(404);
    expect(s.value.registries.find((r) => r.name.startsWith('consul:'))?.state).to.equal('up');
  });

  it('a token without key:read still routes services and reports the KV path as unreadable', async () => {
    const token = await admin.createToken(
      'no-kv',
      'service_prefix "" { policy = "read" }\nnode_prefix "" { policy = "read" }',
    );
    const c = await start(token);
    await eventually(
      () => c.get('/web'),
      (r) => r.upstream === 'a',
      'routed without KV',
    );
    const s = await c.status();
    expect(s.problems.map((p) => p.reason)).to.deep.equal([
      'the Consul ACL token may not read the KV path "cairn/config" (403): its manual route commands are ignored',
    ]);
  });

  it('an unknown token is refused: the registry is down with the reason', async () => {
    const c = await start(randomUUID());
    const r = await eventually(
      () => c.registryStatus(),
      (x) => x.state === 'down',
      'down',
    );
    expect(r.value.error).to.match(/403 \(the ACL token was refused\): ACL not found/);
  });
});

describe('consul registry (real agent): self-registration', function () {
  this.timeout(60_000);
  let consul: ConsulServer;
  let api: ConsulApi;

  before(async () => {
    consul = await startConsul();
    api = new ConsulApi(consul.address);
  });

  after(async () => {
    await consul?.stop();
  });

  it('registers Cairn with an HTTP check on the admin /health, and deregisters it on shutdown', async () => {
    const adminPort = await freePort();
    const c = await startConsulCairn(consul.address, [
      '--admin',
      `127.0.0.1:${adminPort}`,
      '--consul-register',
      '--consul-register-tags',
      'lb,edge',
    ]);
    const id = c.registry.selfId ?? '';
    expect(id).to.match(new RegExp(`^cairn-.+-${adminPort}$`));
    await eventually(
      () => api.checks('cairn'),
      (checks) => checks.length === 1 && checks[0]?.Status === 'passing',
      'a passing check on /health',
    );
    const services = (await api.call('GET', '/v1/catalog/service/cairn')) as {
      ServiceTags: string[];
      ServicePort: number;
    }[];
    expect(services.map((s) => [s.ServiceTags, s.ServicePort])).to.deep.equal([[['lb', 'edge'], adminPort]]);
    const health = await request(`http://127.0.0.1:${adminPort}/health`);
    expect(health.statusCode).to.equal(200);
    await health.body.dump();

    await c.stop();
    await eventually(
      () => api.catalogService('cairn'),
      (s) => s.length === 0,
      'deregistered',
    );
  });
});

describe('consul registry (real agent): https', function () {
  this.timeout(60_000);
  let consul: ConsulTlsServer;
  let up: Upstream;
  const cairns: ConsulCairn[] = [];

  before(async () => {
    consul = await startConsulTls();
    up = await startUpstream('a');
    await new ConsulApi(consul.address).register({
      ID: 'web-a',
      Name: 'web',
      Tags: ['urlprefix-/web'],
      ...at(up.port),
    });
  });

  after(async () => {
    for (const c of cairns) await c.stop();
    await up?.close();
    await consul?.stop();
  });

  it('routes through an https:// Consul with --consul-ca-file and a client certificate', async () => {
    const c = await startConsulCairn(consul.httpsAddress, [
      '--consul-ca-file',
      consul.caFile,
      '--consul-cert-file',
      consul.certFile,
      '--consul-key-file',
      consul.keyFile,
    ]);
    cairns.push(c);
    await eventually(
      () => c.get('/web'),
      (r) => r.upstream === 'a',
      'routed over https',
    );
    expect((await c.registryStatus()).state).to.equal('up');
  });

  it('without the CA the server certificate is refused: down, with the reason', async () => {
    const c = await startConsulCairn(consul.httpsAddress);
    cairns.push(c);
    const s = await eventually(
      () => c.registryStatus(),
      (r) => r.state === 'down',
      'down',
    );
    expect(s.value.error).to.match(/certificate/i);
  });
});
