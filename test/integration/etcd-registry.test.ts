// Cairn reading a real etcd (fresh per file, startEtcd()) with real traffic through the proxy:
// register, deregister, tag and weight changes, bad records, manual overrides (with
// compare-and-swap), gRPC naming records, bursts, and two Cairns converging on one table version.
// Each test works under its own key prefix, so tests do not see each other's records.

import { expect } from 'chai';
import type { Etcd3 } from 'etcd3';
import { EtcdRegistry } from '../../registry-adapters/etcd/index.ts';
import { type EtcdServer, startEtcd } from '../support/servers.ts';
import type { Cairn } from './helpers/cairn.ts';
import {
  dst,
  etcdClient,
  putInstance,
  registryStatus,
  route,
  startEtcdCairn,
  targets,
  waitFor,
  waitForTargets,
} from './helpers/etcd.ts';
import { closeAll, startUpstream, type Upstream } from './helpers/upstream.ts';

describe('etcd registry: routing from a real etcd', function () {
  this.timeout(30_000);

  let etcd: EtcdServer;
  let client: Etcd3;
  let ups: Upstream[] = [];
  let cairns: Cairn[] = [];
  let n = 0;
  let prefix = '';

  before(async () => {
    etcd = await startEtcd();
    client = etcdClient(etcd.endpoint);
  });
  after(async () => {
    client?.close();
    await etcd?.stop();
  });
  beforeEach(() => {
    prefix = `/t${++n}`;
  });
  afterEach(async () => {
    await Promise.all(cairns.map((c) => c.stop()));
    cairns = [];
    await closeAll(ups);
    ups = [];
  });

  async function cairn(args: string[] = []): Promise<Cairn> {
    const c = await startEtcdCairn(etcd.endpoint, prefix, { args });
    cairns.push(c);
    return c;
  }

  async function upstreams(...names: string[]): Promise<Upstream[]> {
    const list = await Promise.all(names.map((name) => startUpstream(name)));
    ups.push(...list);
    return list;
  }

  /** Which upstream answered each of `count` requests to `path`. */
  async function hits(c: Cairn, path: string, count: number): Promise<Record<string, number>> {
    const out: Record<string, number> = {};
    for (let i = 0; i < count; i++) {
      const r = await c.fetch(path);
      const who = r.status === 200 ? String(r.headers['x-upstream']) : `status ${r.status}`;
      out[who] = (out[who] ?? 0) + 1;
    }
    return out;
  }

  it('routes instances registered before start, follows new ones and removals within a second', async () => {
    const [a, b] = (await upstreams('a', 'b')) as [Upstream, Upstream];
    await putInstance(client, prefix, 'api', 'a', { port: a.port, tags: ['urlprefix-/api strip=/api'] });
    const c = await cairn();
    expect(targets(c, '/api')).to.deep.equal([`api|${dst(a.port)}`]);
    const first = await c.fetch('/api/users');
    expect(first.status).to.equal(200);
    expect(JSON.parse(first.text)).to.include({ upstream: 'a', url: '/users' });
    expect(registryStatus(c, `etcd:${etcd.endpoint}`).status).to.equal('up');

    const t0 = Date.now();
    await putInstance(client, prefix, 'api', 'b', { port: b.port, tags: ['urlprefix-/api strip=/api'] });
    await waitForTargets(c, '/api', [`api|${dst(a.port)}`, `api|${dst(b.port)}`], 1000);
    expect(Date.now() - t0).to.be.below(1000);
    expect(await hits(c, '/api/x', 10)).to.deep.equal({ a: 5, b: 5 });

    await client.delete().key(`${prefix}/services/api/a`);
    await waitForTargets(c, '/api', [`api|${dst(b.port)}`], 1000);
    expect(await hits(c, '/api/x', 4)).to.deep.equal({ b: 4 });

    await client.delete().key(`${prefix}/services/api/b`);
    await waitFor(() => route(c, '/api') === undefined, 1000, 'route gone');
    expect((await c.fetch('/api/x')).status).to.equal(404);
  });

  it('applies tag changes and per-instance weights to real traffic', async () => {
    const [a, b] = (await upstreams('a', 'b')) as [Upstream, Upstream];
    await putInstance(client, prefix, 'web', 'a', { port: a.port, tags: ['urlprefix-/old'] });
    await putInstance(client, prefix, 'web', 'b', { port: b.port, tags: ['urlprefix-/old'] });
    const c = await cairn();
    expect(await hits(c, '/old', 4)).to.deep.equal({ a: 2, b: 2 });

    // Retag: /old goes away, /new appears.
    await putInstance(client, prefix, 'web', 'a', { port: a.port, tags: ['urlprefix-/new'] });
    await putInstance(client, prefix, 'web', 'b', { port: b.port, tags: ['urlprefix-/new'] });
    await waitFor(
      () => route(c, '/old') === undefined && route(c, '/new')?.targets.length === 2,
      1000,
      'retag',
    );
    expect((await c.fetch('/old')).status).to.equal(404);

    // weight 3 vs 1: smooth weighted round-robin gives exactly 3:1 over every 4 picks.
    await putInstance(client, prefix, 'web', 'a', { port: a.port, tags: ['urlprefix-/new'], weight: 3 });
    await waitFor(() => route(c, '/new')?.totalWeight === 4, 1000, 'weights 3+1');
    expect(await hits(c, '/new', 8)).to.deep.equal({ a: 6, b: 2 });

    // A critical instance gets no traffic; back to passing, it does again.
    await putInstance(client, prefix, 'web', 'a', {
      port: a.port,
      tags: ['urlprefix-/new'],
      status: 'critical',
    });
    await waitForTargets(c, '/new', [`web|${dst(b.port)}`], 1000);
    expect(await hits(c, '/new', 3)).to.deep.equal({ b: 3 });
    expect(c.server.controller.current.table.excluded).to.deep.equal([
      { service: 'web', id: 'a', status: 'critical' },
    ]);
  });

  it('reports bad records as problems and routes the rest', async () => {
    const [a] = (await upstreams('a')) as [Upstream];
    await putInstance(client, prefix, 'api', 'good', { port: a.port, tags: ['urlprefix-/api'] });
    await client
      .put(`${prefix}/services/api/no-port`)
      .value('{"address":"127.0.0.1","tags":["urlprefix-/api"]}');
    await client.put(`${prefix}/services/api/not-json`).value('127.0.0.1:8080');
    await client.put(`${prefix}/services/orphan`).value('{"address":"127.0.0.1","port":1}');
    const c = await cairn();
    const problems = c.server.controller.current.table.problems.filter((p) => p.source === 'registry');
    // The JSON parser's own words follow "not valid JSON: " (V8's wording, not ours).
    expect(problems.map((p) => p.reason.replace(/(not valid JSON: ).*/, '$1...'))).to.deep.equal([
      `${prefix}/services/api/no-port: port: expected an integer from 1 to 65535, got nothing`,
      `${prefix}/services/api/not-json: not valid JSON: ...`,
      `${prefix}/services/orphan: expected a key ${prefix}/services/<service>/<instance-id>`,
    ]);
    expect(problems.map((p) => p.input)).to.deep.equal([
      '{"address":"127.0.0.1","tags":["urlprefix-/api"]}',
      '127.0.0.1:8080',
      '{"address":"127.0.0.1","port":1}',
    ]);
    expect(problems.map((p) => p.severity)).to.deep.equal(['error', 'error', 'error']);
    expect(targets(c, '/api')).to.deep.equal([`api|${dst(a.port)}`]);
    expect((await c.fetch('/api')).status).to.equal(200);

    // Fixing a record removes its problem and adds the instance.
    const [b] = (await upstreams('b')) as [Upstream];
    await putInstance(client, prefix, 'api', 'no-port', { port: b.port, tags: ['urlprefix-/api'] });
    await waitForTargets(c, '/api', [`api|${dst(a.port)}`, `api|${dst(b.port)}`], 1000);
    expect(c.server.controller.current.table.problems.filter((p) => p.source === 'registry')).to.have.length(
      2,
    );
  });

  it('applies manual overrides from <prefix>/config, watched, and writes them with compare-and-swap', async () => {
    const [stable, canary] = (await upstreams('stable', 'canary')) as [Upstream, Upstream];
    await putInstance(client, prefix, 'api', 's', { port: stable.port, tags: ['urlprefix-/api'] });
    await putInstance(client, prefix, 'api', 'c', { port: canary.port, tags: ['urlprefix-/api', 'canary'] });
    await client.put(`${prefix}/config`).value('route weight api /api weight 0.25 tags "canary"');
    const c = await cairn();
    expect(await hits(c, '/api', 8)).to.deep.equal({ stable: 6, canary: 2 });

    // Change the key: watched, applied live.
    await client.put(`${prefix}/config`).value('route weight api /api weight 0.5 tags "canary"');
    await waitFor(
      () => route(c, '/api')?.targets.find((t) => t.tags.includes('canary'))?.share === 0.5,
      1000,
      'share',
    );
    expect(await hits(c, '/api', 8)).to.deep.equal({ stable: 4, canary: 4 });

    // A bad line is reported, the good ones still apply.
    await client
      .put(`${prefix}/config`)
      .value('route frobnicate\nroute del api /api http://127.0.0.1:' + canary.port + '/');
    await waitForTargets(c, '/api', [`api|${dst(stable.port)}`], 1000);
    expect(
      c.server.controller.current.table.problems.some((p) => p.source === 'manual' && p.line === 1),
    ).to.equal(true);

    // readManual / writeManual through the adapter Cairn runs.
    const adapter = c.server.registries.find((r) => r.name === `etcd:${etcd.endpoint}`) as EtcdRegistry;
    const read = await adapter.readManual();
    expect(read.value).to.match(/^route frobnicate/);
    const written = await adapter.writeManual(
      'route weight api /api weight 0.25 tags "canary"',
      read.version,
    );
    expect(written).to.have.property('ok', true);
    // A writer still holding the old version loses, and is told what is stored now.
    const stale = await adapter.writeManual('route del api', read.version);
    expect(stale).to.deep.equal({
      ok: false,
      conflict: {
        value: 'route weight api /api weight 0.25 tags "canary"',
        version: (written as { version: string }).version,
      },
    });
    await waitFor(() => route(c, '/api')?.targets.length === 2, 1000, 'override rewritten');
    expect(await hits(c, '/api', 8)).to.deep.equal({ stable: 6, canary: 2 });

    // Deleting the key drops the overrides.
    await client.delete().key(`${prefix}/config`);
    await waitFor(
      () => route(c, '/api')?.targets.every((t) => t.share === 0.5) === true,
      1000,
      'no overrides',
    );
    expect(await adapter.readManual()).to.deep.equal({ value: '', version: '0' });
    // Version "0" creates the key only if it does not exist.
    expect(await adapter.writeManual('route del api', '0')).to.have.property('ok', true);
    expect(await adapter.writeManual('route del api', '0')).to.have.property('ok', false);
  });

  it('routes etcd gRPC naming records under --etcd-naming-prefix', async () => {
    const [g1, g2] = (await upstreams('g1', 'g2')) as [Upstream, Upstream];
    const naming = `${prefix}-naming/greeter`;
    await client
      .put(`${naming}/127.0.0.1:${g1.port}`)
      .value(
        JSON.stringify({ Op: 0, Addr: `127.0.0.1:${g1.port}`, Metadata: { tags: ['urlprefix-/greet'] } }),
      );
    const c = await cairn(['--etcd-naming-prefix', naming]);
    expect(targets(c, '/greet')).to.deep.equal([`greeter|${dst(g1.port)}`]);
    expect((await c.fetch('/greet')).headers['x-upstream']).to.equal('g1');

    await client
      .put(`${naming}/127.0.0.1:${g2.port}`)
      .value(JSON.stringify({ Addr: `127.0.0.1:${g2.port}`, Metadata: { tags: ['urlprefix-/greet'] } }));
    await waitForTargets(c, '/greet', [`greeter|${dst(g1.port)}`, `greeter|${dst(g2.port)}`], 1000);
    // Op 1 marks a deleted endpoint.
    await client
      .put(`${naming}/127.0.0.1:${g1.port}`)
      .value(JSON.stringify({ Op: 1, Addr: `127.0.0.1:${g1.port}` }));
    await waitForTargets(c, '/greet', [`greeter|${dst(g2.port)}`], 1000);
    expect(await hits(c, '/greet', 2)).to.deep.equal({ g2: 2 });
  });

  it('turns a burst of changes into few table swaps, all of it applied', async () => {
    const [a] = (await upstreams('a')) as [Upstream];
    const c = await cairn();
    const swapsBefore = c.server.controller.swapCount;
    const writes: Promise<unknown>[] = [];
    for (let i = 0; i < 200; i++) {
      writes.push(putInstance(client, prefix, `svc${i}`, 'x', { port: a.port, tags: [`urlprefix-/s${i}`] }));
    }
    await Promise.all(writes);
    await waitFor(() => c.server.controller.current.table.routes.length === 200, 3000, '200 routes');
    const swaps = c.server.controller.swapCount - swapsBefore;
    expect(swaps, 'swaps for 200 writes').to.be.at.most(20);
    expect((await c.fetch('/s199')).status).to.equal(200);
  });

  it('two Cairns on one etcd converge to the same table version', async () => {
    const [a, b] = (await upstreams('a', 'b')) as [Upstream, Upstream];
    await putInstance(client, prefix, 'api', '1', { port: a.port, tags: ['urlprefix-/api'] });
    const one = await cairn();
    // The second starts later and so sees a different history (a relist, not these events).
    await putInstance(client, prefix, 'api', '2', { port: b.port, tags: ['urlprefix-/api'] });
    await putInstance(client, prefix, 'web', '1', { port: a.port, tags: ['urlprefix-web.example.com/'] });
    const two = await cairn();
    const version = (c: Cairn) => c.server.controller.current.table.version;
    await waitFor(() => version(one) === version(two), 2000, 'same version');
    for (let i = 0; i < 20; i++) {
      await putInstance(client, prefix, 'api', String(i % 5), {
        port: i % 2 === 0 ? a.port : b.port,
        tags: ['urlprefix-/api'],
        weight: 1 + (i % 3),
      });
    }
    await client.delete().key(`${prefix}/services/web/1`);
    await waitFor(
      () =>
        version(one) === version(two) &&
        route(one, 'web.example.com/') === undefined &&
        targets(one, '/api').length === 2,
      3000,
      'converged after changes',
    );
    expect(one.server.controller.current.table.routes.map((r) => r.src)).to.deep.equal(['/api']);
    // And both send the same requests to the same upstreams.
    expect(await hits(one, '/api', 6)).to.deep.equal(await hits(two, '/api', 6));
  });

  it('cairn routes reads an etcd registry once through the factory', async () => {
    const { runCli } = await import('../../lib/cli/run.ts');
    await putInstance(client, prefix, 'api', '1', {
      address: '10.0.0.1',
      port: 8080,
      tags: ['urlprefix-/api'],
    });
    await client.put(`${prefix}/services/api/2`).value('{"address":"10.0.0.2"}');
    const out: string[] = [];
    const code = await runCli(['routes', '--registry', `etcd:${etcd.endpoint}`, '--etcd-prefix', prefix], {
      stdout: (t) => out.push(t),
      stderr: (t) => out.push(`stderr: ${t}`),
      env: {},
    });
    expect(code).to.equal(0);
    expect(out).to.deep.equal([
      'route add api /api http://10.0.0.1:8080/ weight 1.0000',
      `# problem: registry api/2: ${prefix}/services/api/2: port: expected an integer from 1 to 65535, got nothing ({"address":"10.0.0.2"})`,
    ]);
  });

  it('a standalone adapter reports down (never an empty snapshot) when etcd is unreachable', async () => {
    const r = new EtcdRegistry({ endpoints: ['http://127.0.0.1:1'], prefix, timeoutMs: 1000 });
    const snapshots: unknown[] = [];
    const states: string[] = [];
    await r.start(
      (s) => snapshots.push(s),
      (s) => states.push(`${s.state}: ${s.error ?? ''}`),
    );
    await r.stop();
    expect(snapshots).to.deep.equal([]);
    expect(states).to.have.length(1);
    expect(states[0]).to.match(/^down: etcd etcd:http:\/\/127\.0\.0\.1:1: 14 UNAVAILABLE/);
  });
});
