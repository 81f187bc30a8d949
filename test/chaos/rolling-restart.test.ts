// Rolling restart of every instance of a service under steady load, the way a deploy does it:
// deregister, let the requests in flight on it finish, stop it (SIGTERM), start it again on the
// same port, register it again. Idempotent requests must never fail. Upstreams are separate
// processes; the registry is the file registry, then a real etcd.

import { expect } from 'chai';
import type { Etcd3 } from 'etcd3';
import { setTimeout as sleep } from 'node:timers/promises';
import { type EtcdServer, startEtcd } from '../support/servers.ts';
import { type Cairn, type RegistryContent, startCairn, waitFor } from '../integration/helpers/cairn.ts';
import { dst, etcdClient, putInstance, startEtcdCairn, waitForTargets } from '../integration/helpers/etcd.ts';
import {
  type ChildUpstream,
  describeFailures,
  type LoadResult,
  report,
  startChildUpstream,
  startLoad,
} from './support/chaos.ts';

const tags = ['urlprefix-/roll'];

/** The health key of the live target with this port ('' if none). */
function targetKey(cairn: Cairn, port: number): string {
  for (const r of cairn.server.controller.current.table.routes) {
    for (const t of r.targets) if (t.dst === dst(port)) return t.key;
  }
  return '';
}

/** Waits until no request of Cairn is in flight on the target with this key. */
async function drained(cairn: Cairn, key: string): Promise<void> {
  await waitFor(() => cairn.server.health.inFlight(key) === 0, 10_000, `requests on ${key} to finish`);
}

interface Registry {
  set(live: readonly ChildUpstream[]): Promise<void>;
}

async function rollAll(cairn: Cairn, ups: ChildUpstream[], registry: Registry): Promise<number> {
  let restarts = 0;
  for (let i = 0; i < ups.length; i++) {
    const old = ups[i] as ChildUpstream;
    const others = ups.filter((u) => u !== old);
    const key = targetKey(cairn, old.port);
    await registry.set(others);
    await drained(cairn, key);
    await old.stop();
    const fresh = await startChildUpstream(old.name, old.port, 5);
    ups[i] = fresh;
    await registry.set(ups);
    restarts++;
    // Steady state for a moment before the next instance goes.
    await sleep(300);
  }
  return restarts;
}

describe('chaos: rolling restart of all instances under load', function () {
  this.timeout(120_000);
  let ups: ChildUpstream[] = [];
  let cairn: Cairn | undefined;
  let etcd: EtcdServer | undefined;
  let client: Etcd3 | undefined;

  beforeEach(async () => {
    ups = await Promise.all(['r1', 'r2', 'r3'].map((n) => startChildUpstream(n, 0, 5)));
  });
  afterEach(async () => {
    await cairn?.stop();
    cairn = undefined;
    client?.close();
    client = undefined;
    await etcd?.stop();
    etcd = undefined;
    await Promise.all(ups.map((u) => u.stop()));
  });

  const fileContent = (live: readonly ChildUpstream[]): RegistryContent => ({
    services: [
      {
        name: 'roll',
        instances: live.map((u) => ({ id: u.name, address: '127.0.0.1', port: u.port, tags })),
      },
    ],
  });

  /** Steady load on /roll while every instance is restarted in turn; asserts none failed. */
  async function rollUnderLoad(
    c: Cairn,
    label: string,
    set: (live: ChildUpstream[]) => Promise<void>,
  ): Promise<LoadResult> {
    const load = startLoad({
      origins: [c.origin],
      path: '/roll',
      concurrency: 6,
      maxRequests: 200_000,
      maxMs: 60_000,
      pauseMs: 2,
    });
    await sleep(500);
    const restarts = await rollAll(c, ups, { set });
    await sleep(500);
    const r = await load.stop();
    report(label, r, 'failed 0');
    expect(restarts).to.equal(3);
    expect(r.sent).to.be.above(200);
    expect(r.failed, describeFailures(r)).to.equal(0);
    return r;
  }

  it('file registry: zero failed idempotent requests', async () => {
    const c = await startCairn(fileContent(ups));
    cairn = c;
    const r = await rollUnderLoad(c, 'rolling restart (file registry, 3 instances)', async (live) => {
      await c.update(fileContent(live));
      await waitForTargets(
        c,
        '/roll',
        live.map((u) => `roll|${dst(u.port)}`),
        5_000,
      );
    });
    // Every instance served traffic after its restart.
    const lateUpstreams = new Set(r.outcomes.slice(-200).map((o) => o.upstream));
    expect([...lateUpstreams].sort()).to.deep.equal(['r1', 'r2', 'r3']);
  });

  it('etcd registry: zero failed idempotent requests', async () => {
    etcd = await startEtcd();
    const cl = etcdClient(etcd.endpoint);
    client = cl;
    const prefix = '/roll';
    for (const u of ups) await putInstance(cl, prefix, 'roll', u.name, { port: u.port, tags });
    const c = await startEtcdCairn(etcd.endpoint, prefix);
    cairn = c;
    await waitForTargets(
      c,
      '/roll',
      ups.map((u) => `roll|${dst(u.port)}`),
      5_000,
    );
    let registered = new Set(ups.map((u) => u.name));
    await rollUnderLoad(c, 'rolling restart (etcd registry, 3 instances)', async (live) => {
      const want = new Set(live.map((u) => u.name));
      for (const name of registered)
        if (!want.has(name)) await cl.delete().key(`${prefix}/services/roll/${name}`);
      for (const u of live)
        if (!registered.has(u.name)) await putInstance(cl, prefix, 'roll', u.name, { port: u.port, tags });
      registered = want;
      await waitForTargets(
        c,
        '/roll',
        live.map((u) => `roll|${dst(u.port)}`),
        5_000,
      );
    });
  });
});
