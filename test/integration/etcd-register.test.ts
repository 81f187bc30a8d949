// `cairn register` (the real CLI, as a child process) and the library Registrar against a real
// etcd, observed through a Cairn that routes real traffic: registration, instant deregistration
// on SIGTERM, lease expiry after SIGKILL, the health check flipping the status, a revoked lease
// and etcd restarts.

import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import type { Etcd3 } from 'etcd3';
import { register, type RegistrarEvent } from '../../lib/register/registrar.ts';
import {
  type EtcdServer,
  freePort,
  type ManagedProcess,
  spawnManaged,
  startEtcd,
} from '../support/servers.ts';
import type { Cairn } from './helpers/cairn.ts';
import {
  dst,
  etcdClient,
  putInstance,
  route,
  startEtcdCairn,
  targets,
  waitFor,
  waitForTargets,
} from './helpers/etcd.ts';
import { closeAll, startUpstream, type Upstream } from './helpers/upstream.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const cli = join(root, 'lib', 'cli', 'main.ts');

function cleanEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env))
    if (!k.startsWith('CAIRN_') && v !== undefined) env[k] = v;
  return env;
}

describe('cairn register and the Registrar (real etcd)', function () {
  this.timeout(60_000);

  let etcd: EtcdServer;
  let client: Etcd3;
  let ups: Upstream[] = [];
  let cairn: Cairn | undefined;
  let procs: ManagedProcess[] = [];
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
    prefix = `/r${++n}`;
  });
  afterEach(async () => {
    await Promise.all(procs.map((p) => p.stop()));
    procs = [];
    await cairn?.stop();
    cairn = undefined;
    await closeAll(ups);
    ups = [];
  });

  function registrar(args: string[]): ManagedProcess {
    const p = spawnManaged(
      'cairn register',
      process.execPath,
      [cli, 'register', '--registry', `etcd:${etcd.endpoint}`, '--etcd-prefix', prefix, ...args],
      { env: cleanEnv() },
    );
    procs.push(p);
    return p;
  }

  async function keys(): Promise<Record<string, string>> {
    return client.getAll().prefix(`${prefix}/services/`).strings();
  }

  it('registers with a lease and deregisters at once on SIGTERM (exit 0)', async () => {
    const [a] = (ups = await Promise.all([startUpstream('a')])) as [Upstream];
    cairn = await startEtcdCairn(etcd.endpoint, prefix);
    const p = registrar([
      '--service',
      'api',
      '--address',
      '127.0.0.1',
      '--port',
      String(a.port),
      '--tag',
      'urlprefix-/api strip=/api',
      '--meta',
      'version=1.2',
      '--ttl',
      '5s',
    ]);
    await waitForTargets(cairn, '/api', [`api|${dst(a.port)}`], 10_000);
    const r = await cairn.fetch('/api/users');
    expect(JSON.parse(r.text)).to.include({ upstream: 'a', url: '/users' });

    const key = `${prefix}/services/api/127.0.0.1:${a.port}`;
    const kv = (await client.get(key).exec()).kvs[0];
    expect(kv?.lease, 'written with a lease').to.not.equal('0');
    expect(JSON.parse(kv?.value.toString() ?? '')).to.deep.equal({
      address: '127.0.0.1',
      port: a.port,
      tags: ['urlprefix-/api strip=/api'],
      meta: { version: '1.2' },
    });
    const ttl = await client.leaseClient.leaseTimeToLive({ ID: kv?.lease ?? '0' });
    expect(Number(ttl.grantedTTL)).to.equal(5);

    const t0 = Date.now();
    await p.stop();
    expect(await p.exited).to.equal(0);
    expect(await keys(), 'record gone').to.deep.equal({});
    await waitFor(() => route(cairn as Cairn, '/api') === undefined, 1000, 'route gone');
    expect(Date.now() - t0, 'SIGTERM -> out of the table').to.be.below(1000);
    expect(p.output()).to.match(/"msg":"deregistered"/);
  });

  it('an instance whose registrar is SIGKILLed disappears when its lease expires', async () => {
    const [a, b] = (ups = await Promise.all([startUpstream('a'), startUpstream('b')])) as [
      Upstream,
      Upstream,
    ];
    cairn = await startEtcdCairn(etcd.endpoint, prefix);
    await putInstance(client, prefix, 'api', 'b', { port: b.port, tags: ['urlprefix-/api'] });
    const p = registrar([
      '--service',
      'api',
      '--address',
      '127.0.0.1',
      '--port',
      String(a.port),
      '--tag',
      'urlprefix-/api',
      '--ttl',
      '2s',
    ]);
    await waitForTargets(cairn, '/api', [`api|${dst(a.port)}`, `api|${dst(b.port)}`], 10_000);

    process.kill(-p.pid, 'SIGKILL');
    const killedAt = Date.now();
    expect(await p.exited).to.equal('SIGKILL');
    // Nothing revoked the lease: the instance stays until the TTL runs out...
    expect(targets(cairn, '/api')).to.have.length(2);
    await waitForTargets(cairn, '/api', [`api|${dst(b.port)}`], 6000);
    const goneAfter = Date.now() - killedAt;
    expect(goneAfter, 'removed by lease expiry, not at once').to.be.above(500);
    expect(goneAfter, 'within TTL + etcd expiry slack').to.be.below(4500);
    // ...and traffic only goes to the live one.
    for (let i = 0; i < 4; i++) expect((await cairn.fetch('/api')).headers['x-upstream']).to.equal('b');
  });

  it('--check flips the status to critical while the health check fails, and back', async () => {
    let healthy = true;
    const a = await startUpstream('a', (req, res) => {
      if (req.url === '/health') {
        res.writeHead(healthy ? 200 : 503).end();
        return;
      }
      res.writeHead(200, { 'x-upstream': 'a' }).end('a');
    });
    const b = await startUpstream('b');
    ups = [a, b];
    cairn = await startEtcdCairn(etcd.endpoint, prefix);
    await putInstance(client, prefix, 'api', 'b', { port: b.port, tags: ['urlprefix-/api'] });
    const key = `${prefix}/services/api/a-1`;
    registrar([
      '--service',
      'api',
      '--id',
      'a-1',
      '--address',
      '127.0.0.1',
      '--port',
      String(a.port),
      '--tag',
      'urlprefix-/api',
      '--check',
      `http://127.0.0.1:${a.port}/health`,
      '--check-interval',
      '200ms',
      '--check-timeout',
      '500ms',
    ]);
    await waitForTargets(cairn, '/api', [`api|${dst(a.port)}`, `api|${dst(b.port)}`], 10_000);
    expect(JSON.parse((await keys())[key] ?? '{}')).to.include({ status: 'passing' });

    healthy = false;
    await waitForTargets(cairn, '/api', [`api|${dst(b.port)}`], 3000);
    expect(JSON.parse((await keys())[key] ?? '{}')).to.include({ status: 'critical' });
    expect(cairn.server.controller.current.table.excluded).to.deep.equal([
      { service: 'api', id: 'a-1', status: 'critical' },
    ]);
    for (let i = 0; i < 4; i++) expect((await cairn.fetch('/api')).headers['x-upstream']).to.equal('b');

    healthy = true;
    await waitForTargets(cairn, '/api', [`api|${dst(a.port)}`, `api|${dst(b.port)}`], 3000);
    expect(JSON.parse((await keys())[key] ?? '{}')).to.include({ status: 'passing' });
  });

  it('the library call registers, follows setStatus, survives a revoked lease and deregisters on stop', async () => {
    const [a] = (ups = await Promise.all([startUpstream('a')])) as [Upstream];
    cairn = await startEtcdCairn(etcd.endpoint, prefix);
    const events: RegistrarEvent[] = [];
    const reg = await register({
      endpoints: [etcd.endpoint],
      prefix,
      service: 'api',
      address: '127.0.0.1',
      port: a.port,
      tags: ['urlprefix-/lib'],
      weight: 2,
      ttlSeconds: 3,
      onEvent: (e) => events.push(e),
    });
    try {
      expect(reg.key).to.equal(`${prefix}/services/api/127.0.0.1:${a.port}`);
      // register() resolves once the record is stored.
      expect(Object.keys(await keys())).to.deep.equal([reg.key]);
      await waitForTargets(cairn, '/lib', [`api|${dst(a.port)}`], 1000);
      expect(route(cairn, '/lib')?.targets[0]?.instanceWeight).to.equal(2);

      reg.setStatus('maintenance');
      await waitFor(() => route(cairn as Cairn, '/lib') === undefined, 2000, 'maintenance');
      reg.setStatus('passing');
      await waitForTargets(cairn, '/lib', [`api|${dst(a.port)}`], 2000);

      // Someone revokes the lease (an operator, etcd losing it): the registrar registers again.
      const lease = (await client.get(reg.key).exec()).kvs[0]?.lease ?? '0';
      await client.leaseClient.leaseRevoke({ ID: lease });
      await waitFor(() => events.some((e) => e.type === 'lease-lost'), 5000, 'lease-lost');
      await waitFor(
        () => events.filter((e) => e.type === 'registered').length === 2,
        5000,
        'registered again',
      );
      const again = (await client.get(reg.key).exec()).kvs[0];
      expect(again?.lease).to.not.equal(lease);
      await waitForTargets(cairn, '/lib', [`api|${dst(a.port)}`], 2000);
    } finally {
      await reg.stop();
    }
    expect(await keys()).to.deep.equal({});
    expect(events.map((e) => e.type)).to.include('deregistered');
  });

  it('examples/etcd/node-service.ts registers itself and leaves on SIGTERM', async () => {
    cairn = await startEtcdCairn(etcd.endpoint, prefix);
    const port = await freePort();
    const p = spawnManaged(
      'node-service',
      process.execPath,
      [join(root, 'examples', 'etcd', 'node-service.ts')],
      {
        env: {
          ...cleanEnv(),
          ETCD: etcd.endpoint,
          ETCD_PREFIX: prefix,
          SERVICE: 'hello',
          NAME: 'example',
          ADDRESS: '127.0.0.1',
          LISTEN: '127.0.0.1',
          PORT: String(port),
          TAGS: 'urlprefix-/hello strip=/hello',
        },
      },
    );
    procs.push(p);
    await waitForTargets(cairn, '/hello', [`hello|${dst(port)}`], 10_000);
    const r = await cairn.fetch('/hello/there');
    expect([r.status, r.text, r.headers['x-upstream']]).to.deep.equal([
      200,
      'hello from example\n',
      'example',
    ]);
    await p.stop();
    expect(await p.exited).to.equal(0);
    expect(await keys()).to.deep.equal({});
    await waitFor(() => route(cairn as Cairn, '/hello') === undefined, 1000, 'route gone');
  });

  it('stays registered through an etcd restart and through etcd being away longer than the TTL', async () => {
    const [a] = (ups = await Promise.all([startUpstream('a')])) as [Upstream];
    const reg = await register({
      endpoints: [etcd.endpoint],
      prefix,
      service: 'api',
      address: '127.0.0.1',
      port: a.port,
      ttlSeconds: 2,
      retryMaxMs: 500,
    });
    const present = async () => {
      try {
        return Object.keys(await client.getAll().prefix(`${prefix}/services/`).strings()).length === 1;
      } catch {
        return false;
      }
    };
    const waitPresent = async (ms: number) => {
      const deadline = Date.now() + ms;
      while (!(await present())) {
        if (Date.now() > deadline) throw new Error('record not present');
        await new Promise((r) => setTimeout(r, 100));
      }
    };
    try {
      await etcd.restart();
      await waitPresent(5000);
      // Well past the TTL: keep-alives resumed after the restart.
      await new Promise((r) => setTimeout(r, 4500));
      expect(await present(), 'after restart + 2 TTLs').to.equal(true);

      await etcd.process().stop();
      await new Promise((r) => setTimeout(r, 6000)); // 3 TTLs away
      await etcd.restart();
      await waitPresent(5000);
      await new Promise((r) => setTimeout(r, 4500));
      expect(await present(), 'after a long outage + 2 TTLs').to.equal(true);
    } finally {
      await reg.stop();
    }
    expect(await present()).to.equal(false);
  });
});
