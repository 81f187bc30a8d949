// Cairn against a real etcd that goes away: a restart with the same data dir, 10 s down, and a
// compaction that invalidates the revision a watch starts from. Throughout, the last good table
// keeps serving real traffic and the registry is reported down; afterwards changes flow again.

import { expect } from 'chai';
import type { Etcd3 } from 'etcd3';
import { EtcdRegistry } from '../../registry-adapters/etcd/index.ts';
import { type EtcdServer, startEtcd } from '../support/servers.ts';
import type { Cairn } from './helpers/cairn.ts';
import {
  type BareCairn,
  dst,
  etcdClient,
  putInstance,
  registryStatus,
  startCairnWithAdapter,
  startEtcdCairn,
  targets,
  waitFor,
  waitForTargets,
} from './helpers/etcd.ts';
import { closeAll, startUpstream, type Upstream } from './helpers/upstream.ts';

/** Sends a request every `everyMs` until stopped; collects the statuses. */
function trafficLoop(c: Cairn, path: string, everyMs = 50): { stop(): Promise<number[]> } {
  const statuses: number[] = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      try {
        statuses.push((await c.fetch(path)).status);
      } catch {
        statuses.push(-1);
      }
      await new Promise((r) => setTimeout(r, everyMs));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return statuses;
    },
  };
}

async function etcdWrite(client: Etcd3, f: () => Promise<unknown>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await f();
      return;
    } catch (e) {
      if (Date.now() > deadline) throw e;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

describe('etcd registry: outages and compaction (real etcd)', function () {
  this.timeout(60_000);

  let etcd: EtcdServer;
  let client: Etcd3;
  let ups: Upstream[] = [];
  let cairn: Cairn | undefined;
  let bare: BareCairn | undefined;
  let n = 0;
  let prefix = '';

  beforeEach(async () => {
    prefix = `/o${++n}`;
    etcd = await startEtcd();
    client = etcdClient(etcd.endpoint);
    ups = await Promise.all(['a', 'b'].map((name) => startUpstream(name)));
  });
  afterEach(async () => {
    await cairn?.stop();
    cairn = undefined;
    await bare?.stop();
    bare = undefined;
    client.close();
    await etcd.stop();
    await closeAll(ups);
  });

  it('keeps serving through an etcd restart (same data dir) and follows changes afterwards', async () => {
    const [a, b] = ups as [Upstream, Upstream];
    await putInstance(client, prefix, 'api', 'a', { port: a.port, tags: ['urlprefix-/api'] });
    cairn = await startEtcdCairn(etcd.endpoint, prefix);
    const name = `etcd:${etcd.endpoint}`;
    const traffic = trafficLoop(cairn, '/api');
    const adapter = cairn.server.registries.find((r) => r.name === name) as EtcdRegistry;
    const listsBefore = adapter.stats().lists;

    await etcd.restart();
    // Writes go to the restarted etcd (the test's client reconnects on its own).
    await etcdWrite(client, () =>
      putInstance(client, prefix, 'api', 'b', { port: b.port, tags: ['urlprefix-/api'] }),
    );
    const t0 = Date.now();
    await waitForTargets(cairn, '/api', [`api|${dst(a.port)}`, `api|${dst(b.port)}`], 5000);
    const statuses = await traffic.stop();

    expect(statuses.length).to.be.above(5);
    expect(
      statuses.filter((s) => s !== 200),
      'failed requests',
    ).to.deep.equal([]);
    expect(registryStatus(cairn, name).status).to.equal('up');
    expect(adapter.stats().lists, 'relisted after the restart').to.be.above(listsBefore);
    expect(Date.now() - t0, 'change after restart reached the table').to.be.below(3000);
  });

  it('serves the last good table while etcd is down for 10 s, reports it down, recovers after', async () => {
    const [a, b] = ups as [Upstream, Upstream];
    await putInstance(client, prefix, 'api', 'a', { port: a.port, tags: ['urlprefix-/api'] });
    cairn = await startEtcdCairn(etcd.endpoint, prefix);
    const name = `etcd:${etcd.endpoint}`;
    const adapter = cairn.server.registries.find((r) => r.name === name) as EtcdRegistry;
    const versionBefore = cairn.server.controller.current.table.version;
    const traffic = trafficLoop(cairn, '/api', 100);

    await etcd.process().stop();
    await waitFor(() => registryStatus(cairn as Cairn, name).status === 'down', 3000, 'registry down');
    expect(registryStatus(cairn, name).error).to.match(/UNAVAILABLE|ECONNREFUSED/);
    expect(adapter.currentState()?.state).to.equal('stale');
    await new Promise((r) => setTimeout(r, 10_000));
    // Still down, still the same table.
    expect(registryStatus(cairn, name).status).to.equal('down');
    expect(cairn.server.controller.current.table.version).to.equal(versionBefore);
    expect(targets(cairn, '/api')).to.deep.equal([`api|${dst(a.port)}`]);

    await etcd.restart(); // starts it again on the same ports and data
    const healthyAt = Date.now();
    await etcdWrite(client, () =>
      putInstance(client, prefix, 'api', 'b', { port: b.port, tags: ['urlprefix-/api'] }),
    );
    await waitForTargets(cairn, '/api', [`api|${dst(a.port)}`, `api|${dst(b.port)}`], 5000);
    const recoveredMs = Date.now() - healthyAt;
    const statuses = await traffic.stop();

    expect(registryStatus(cairn, name)).to.deep.equal({ status: 'up', error: '' });
    expect(statuses.length, 'requests during the outage').to.be.above(80);
    expect(
      statuses.filter((s) => s !== 200),
      'failed requests',
    ).to.deep.equal([]);
    expect(recoveredMs, 'etcd healthy -> change in the table').to.be.below(3000);
  });

  it('relists when the watch start revision was compacted away, and misses nothing', async () => {
    const [a, b] = ups as [Upstream, Upstream];
    await putInstance(client, prefix, 'api', 'a', { port: a.port, tags: ['urlprefix-/api'] });
    let compactions = 0;
    const adapter = new EtcdRegistry({
      endpoints: [etcd.endpoint],
      prefix,
      // Between the first list and its watch: change the data and compact past the list revision,
      // so etcd cancels the watch (it cannot replay compacted revisions).
      beforeWatch: async (listRevision) => {
        if (compactions > 0) return;
        compactions++;
        await putInstance(client, prefix, 'api', 'b', { port: b.port, tags: ['urlprefix-/api'] });
        await client.delete().key(`${prefix}/services/api/a`);
        const rev = (await client.get('x').exec()).header.revision;
        expect(BigInt(rev) > BigInt(listRevision) + 1n, 'compacting past the watch start').to.equal(true);
        await client.kv.compact({ revision: rev, physical: true });
      },
    });
    bare = await startCairnWithAdapter(adapter);
    const view = { server: bare.server };
    // The first list saw only a; the cancelled watch made it relist, which sees only b.
    await waitForTargets(view, '/api', [`api|${dst(b.port)}`], 3000);
    expect(compactions).to.equal(1);
    expect(adapter.stats().lists).to.equal(2);
    const r = await fetch(`${bare.origin}/api`);
    expect(r.headers.get('x-upstream')).to.equal('b');

    // A compaction under a watch that is caught up changes nothing: events keep flowing.
    const rev = (await client.put('unrelated').value('1')).header.revision;
    await client.kv.compact({ revision: rev, physical: true });
    await putInstance(client, prefix, 'api', 'a', { port: a.port, tags: ['urlprefix-/api'] });
    await waitForTargets(view, '/api', [`api|${dst(a.port)}`, `api|${dst(b.port)}`], 1000);
    expect(adapter.stats().lists).to.equal(2);
  });

  it('etcd3 1.1.2 reports a compacted watch start as a bare error (why no error text is trusted)', async () => {
    await client.put('k').value('1');
    const first = (await client.get('k').exec()).header.revision;
    await client.put('k').value('2');
    await client.put('k').value('3');
    const rev = (await client.get('k').exec()).header.revision;
    await client.kv.compact({ revision: rev, physical: true });
    const w = client.watch().key('k').startRevision(first).watcher();
    const err = await new Promise<Error>((resolve) => w.once('error', resolve));
    // No cancel(): etcd3 already dropped the watcher, and cancelling it would wait forever.
    // If a later etcd3 starts reporting the compact revision, the adapter still relists.
    expect(err.message).to.match(/^Watcher canceled/);
    expect(err.message).to.not.match(/compact/i);
  });
});
