// The registry goes away under load: etcd, then Consul, stopped for a while (CI ~8 s, soak 30 s).
// Cairn keeps the last good table (no request fails, the table version does not move), reports
// the registry stale in /api/status, and once the registry is back it follows what changed:
// an instance added and one removed right after the restart.

import { expect } from 'chai';
import type { Etcd3 } from 'etcd3';
import { setTimeout as sleep } from 'node:timers/promises';
import { type EtcdServer, startEtcd } from '../support/servers.ts';
import { startCairn, waitFor } from '../integration/helpers/cairn.ts';
import { at, ConsulApi } from '../integration/helpers/consul.ts';
import { dst, etcdClient, putInstance, waitForTargets } from '../integration/helpers/etcd.ts';
import { closeAll, startUpstream, type Upstream } from '../integration/helpers/upstream.ts';
import type { CairnServer } from '../../lib/server.ts';
import { startPersistentConsul, type PersistentConsul } from './support/consul-persistent.ts';
import { describeFailures, report, scaled, startLoad } from './support/chaos.ts';

const outageMs = scaled(8_000, 30_000);
const tags = ['urlprefix-/out'];

async function registryState(server: CairnServer, name: string): Promise<string> {
  const admin = server.adminAddress();
  const r = await fetch(`http://127.0.0.1:${admin?.port ?? 0}/api/status`);
  const body = (await r.json()) as { registries: { name: string; state: string }[] };
  return body.registries.find((x) => x.name === name)?.state ?? 'missing';
}

/** Polls /api/status until the registry is in `want` (10 s at most); returns the last state seen. */
async function stateBecomes(server: CairnServer, name: string, want: string): Promise<string> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const state = await registryState(server, name);
    if (state === want || Date.now() > deadline) return state;
    await sleep(100);
  }
}

async function retrying(f: () => Promise<unknown>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await f();
      return;
    } catch (e) {
      if (Date.now() > deadline) throw e;
      await sleep(200);
    }
  }
}

interface Outage {
  /** The registry's name in Cairn. */
  readonly name: string;
  stopRegistry(): Promise<void>;
  startRegistry(): Promise<void>;
  register(u: Upstream): Promise<void>;
  deregister(u: Upstream): Promise<void>;
}

async function outageScenario(
  label: string,
  server: CairnServer,
  origin: string,
  o: Outage,
  ups: Upstream[],
): Promise<void> {
  const [a, b, c] = ups as [Upstream, Upstream, Upstream];
  const view = { server };
  await waitForTargets(view, '/out', [`out|${dst(a.port)}`, `out|${dst(b.port)}`], 10_000);
  const load = startLoad({
    origins: [origin],
    path: '/out',
    concurrency: 6,
    maxRequests: 500_000,
    maxMs: outageMs + 60_000,
    pauseMs: 5,
  });
  await sleep(500);
  const versionBefore = server.controller.current.table.version;

  await o.stopRegistry();
  const staleState = await stateBecomes(server, o.name, 'stale');
  await sleep(outageMs);
  const versionDuring = server.controller.current.table.version;
  const stateAtEnd = await registryState(server, o.name);

  await o.startRegistry();
  // Changed right after the registry came back: c joins, b leaves.
  await retrying(() => o.register(c));
  await retrying(() => o.deregister(b));
  await waitForTargets(view, '/out', [`out|${dst(a.port)}`, `out|${dst(c.port)}`], 20_000);
  const changedAt = Date.now();
  await waitFor(
    () => load.outcomes.some((x) => x.start > changedAt && x.upstream === 'c'),
    5_000,
    'traffic on c',
  );
  const upAgain = await stateBecomes(server, o.name, 'up');
  await sleep(300);
  const r = await load.stop();

  report(`${label} down ${outageMs / 1000} s`, r, 'failed 0');
  expect(r.failed, describeFailures(r)).to.equal(0);
  expect(r.sent).to.be.above(outageMs / 100);
  expect(staleState, '/api/status during the outage').to.equal('stale');
  expect(stateAtEnd, '/api/status at the end of the outage').to.equal('stale');
  expect(versionDuring, 'table kept during the outage').to.equal(versionBefore);
  expect(upAgain, '/api/status after the restart').to.equal('up');
}

describe('chaos: registry outages under load', function () {
  this.timeout(outageMs + 120_000);
  let ups: Upstream[] = [];

  beforeEach(async () => {
    ups = await Promise.all(['a', 'b', 'c'].map((n) => startUpstream(n)));
  });
  afterEach(async () => {
    await closeAll(ups);
  });

  describe('etcd', () => {
    let etcd: EtcdServer | undefined;
    let client: Etcd3 | undefined;
    after(async () => {
      client?.close();
      await etcd?.stop();
    });

    it('etcd stopped under load: zero failed, table kept, stale reported, changes followed after', async () => {
      etcd = await startEtcd();
      const e = etcd;
      const cl = etcdClient(e.endpoint);
      client = cl;
      const prefix = '/outage';
      const [a, b] = ups as [Upstream, Upstream];
      await putInstance(cl, prefix, 'out', 'a', { port: a.port, tags });
      await putInstance(cl, prefix, 'out', 'b', { port: b.port, tags });
      const cairn = await startCairn(
        { services: [] },
        { args: ['--registry', `etcd:${e.endpoint}`, '--etcd-prefix', prefix] },
      );
      try {
        await outageScenario(
          'registry outage: etcd',
          cairn.server,
          cairn.origin,
          {
            name: `etcd:${e.endpoint}`,
            stopRegistry: () => e.process().stop(),
            startRegistry: () => e.restart(),
            register: (u) => putInstance(cl, prefix, 'out', u.name, { port: u.port, tags }),
            deregister: async (u) => {
              await cl.delete().key(`${prefix}/services/out/${u.name}`);
            },
          },
          ups,
        );
      } finally {
        await cairn.stop();
      }
    });
  });

  describe('Consul', () => {
    let consul: PersistentConsul | undefined;
    after(async () => {
      await consul?.stop();
    });

    it('Consul stopped under load: zero failed, table kept, stale reported, changes followed after', async () => {
      consul = await startPersistentConsul();
      const co = consul;
      const api = new ConsulApi(co.address);
      const register = (u: Upstream) =>
        api.register({ ID: `out-${u.name}`, Name: 'out', Tags: tags, ...at(u.port) });
      const [a, b] = ups as [Upstream, Upstream];
      await register(a);
      await register(b);
      const cairn = await startCairn({ services: [] }, { args: ['--registry', `consul:${co.address}`] });
      try {
        await outageScenario(
          'registry outage: Consul',
          cairn.server,
          cairn.origin,
          {
            name: `consul:${co.address}`,
            stopRegistry: () => co.process().stop(),
            startRegistry: () => co.start(),
            register: async (u) => {
              await register(u);
            },
            deregister: async (u) => {
              await api.deregister(`out-${u.name}`);
            },
          },
          ups,
        );
      } finally {
        await cairn.stop();
      }
    });
  });
});
