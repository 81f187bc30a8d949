// The Consul adapter against a fake Consul (test/unit/consul-fake-server.ts), for the edge cases
// a real agent will not produce on demand: an index going backwards, 500s, 429s, malformed
// bodies, a server that vanishes. The same behaviours are proven against a real Consul agent in
// test/integration/consul*.test.ts.

import { expect } from 'chai';
import { setTimeout as sleep } from 'node:timers/promises';
import { ConsulRegistry, type ConsulRegistryOptions } from '../../registry-adapters/consul/index.ts';
import type { RegistryState } from '../../registry-adapters/types.ts';
import type { ServiceInstance, Snapshot } from '../../routing/types.ts';
import { FakeConsul, type FakeInstance } from './consul-fake-server.ts';

async function until(cond: () => boolean, what: string, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

function inst(id: string, service: string, extra: Partial<FakeInstance> = {}): FakeInstance {
  return {
    node: 'n1',
    id,
    service,
    tags: [`urlprefix-/${service}`],
    port: 8000,
    checks: [{ CheckID: `${id}-check`, Status: 'passing' }],
    ...extra,
  };
}

interface Harness {
  readonly fake: FakeConsul;
  readonly registry: ConsulRegistry;
  readonly snapshots: Snapshot[];
  readonly states: RegistryState[];
  last(): Snapshot;
  instances(service?: string): ServiceInstance[];
  stop(): Promise<void>;
}

const fast: Partial<ConsulRegistryOptions> = {
  waitMs: 2000,
  minIntervalMs: 10,
  retryMinMs: 20,
  retryMaxMs: 200,
  sweepMinIntervalMs: 30,
  requestTimeoutMs: 2000,
};

async function harness(
  setup: (f: FakeConsul) => void,
  options: Partial<ConsulRegistryOptions> = {},
  startFake = true,
): Promise<Harness> {
  const fake = new FakeConsul();
  setup(fake);
  if (startFake) await fake.start();
  else await fake.start().then(() => fake.stop());
  const registry = new ConsulRegistry({ address: fake.address, ...fast, ...options });
  const snapshots: Snapshot[] = [];
  const states: RegistryState[] = [];
  await registry.start(
    (s) => snapshots.push(s),
    (s) => states.push(s),
  );
  return {
    fake,
    registry,
    snapshots,
    states,
    last: () => {
      const s = snapshots[snapshots.length - 1];
      if (s === undefined) throw new Error('no snapshot yet');
      return s;
    },
    instances: (service) =>
      (snapshots[snapshots.length - 1]?.instances ?? []).filter(
        (i) => service === undefined || i.service === service,
      ),
    stop: async () => {
      await registry.stop();
      await fake.stop();
    },
  };
}

describe('consul adapter (fake Consul): watching', function () {
  this.timeout(10_000);
  let h: Harness | undefined;
  afterEach(async () => {
    await h?.stop();
    h = undefined;
  });

  it('delivers the routed services on start, reads ?stale with the token, then blocks with index and wait', async () => {
    h = await harness(
      (f) => {
        f.register(inst('web-1', 'web', { weights: { Passing: 3, Warning: 1 } }));
        f.register(inst('db-1', 'db', { tags: ['primary'] }));
        f.putKv('cairn/config', 'route weight web /web weight 1');
      },
      { token: 'sekrit' },
    );
    expect(h.snapshots).to.have.length(1);
    expect(
      h.last().instances.map((i) => `${i.service}/${i.id}@${i.address}:${i.port} w${i.weight}`),
    ).to.deep.equal(['web/web-1@10.0.0.1:8000 w3']);
    expect(h.last().manual).to.equal('# --- cairn/config\nroute weight web /web weight 1');
    expect(h.states.at(-1)?.state).to.equal('up');
    const fake = h.fake;
    await until(
      () => fake.requests.some((r) => r.path === '/v1/catalog/services' && r.query.has('index')),
      'a blocking call',
    );
    const blocking = fake.requests.find((r) => r.path === '/v1/catalog/services' && r.query.has('index'));
    expect(blocking?.query.get('wait')).to.equal('2s');
    expect(blocking?.query.has('stale')).to.equal(true);
    expect(fake.requests.every((r) => r.token === 'sekrit')).to.equal(true);
    // db has no route tag: never fetched.
    expect(fake.count('/v1/health/service/db')).to.equal(0);
  });

  it('a health change refetches only that service', async () => {
    h = await harness((f) => {
      for (let i = 0; i < 20; i++) f.register(inst(`s${i}-1`, `s${i}`));
    });
    const fake = h.fake;
    const before = fake.count('/v1/health/service/');
    fake.setCheck('n1', 's7-1', 's7-1-check', 'critical');
    await until(() => h?.instances('s7')[0]?.status === 'critical', 's7 critical');
    expect(fake.count('/v1/health/service/') - before).to.equal(1);
    expect(fake.count('/v1/health/service/s7')).to.equal(2);
  });

  it('watches only non-passing checks (checks-required=all): a check leaving that set is a change too', async () => {
    h = await harness((f) => {
      f.register(inst('a-1', 'a', { checks: [{ CheckID: 'a-1-check', Status: 'critical' }] }));
      f.register(inst('b-1', 'b'));
    });
    const q = h.fake.requests.find((r) => r.path === '/v1/health/state/any');
    expect(q?.query.get('filter')).to.equal('Status != "passing"');
    expect(h.instances('a')[0]?.status).to.equal('critical');
    h.fake.setCheck('n1', 'a-1', 'a-1-check', 'passing');
    await until(() => h?.instances('a')[0]?.status === 'passing', 'a passing');
  });

  it('checks-required=one watches every check (one passing check added can flip an instance)', async () => {
    h = await harness((f) => f.register(inst('a-1', 'a')), { checksRequired: 'one' });
    const q = h.fake.requests.find((r) => r.path === '/v1/health/state/any');
    expect(q?.query.has('filter')).to.equal(false);
  });

  it('a node check change refetches the services on that node', async () => {
    h = await harness((f) => {
      f.register(inst('a-1', 'a'));
      f.register(inst('b-1', 'b', { node: 'n2' }));
    });
    h.fake.setNodeCheck('n2', 'serfHealth', 'critical');
    await until(() => h?.instances('b')[0]?.status === 'critical', 'b critical');
    expect(h.instances('a')[0]?.status).to.equal('passing');
    expect(h.fake.count('/v1/health/service/a')).to.equal(1);
  });

  it('a change that moves no check (Weights) is found by the sweep', async () => {
    h = await harness((f) => {
      f.register(inst('web-1', 'web', { weights: { Passing: 1, Warning: 1 } }));
      f.register(inst('api-1', 'api'));
    });
    h.fake.modify('n1', 'web-1', { weights: { Passing: 7, Warning: 1 } });
    await until(() => h?.instances('web')[0]?.weight === 7, 'weight 7');
    expect(h.fake.count('/v1/catalog/node/n1')).to.be.greaterThan(0);
    expect(h.fake.count('/v1/health/service/api')).to.equal(1);
  });

  it('instances without checks are followed through the catalog and the sweep', async () => {
    h = await harness((f) => f.register(inst('x-1', 'x', { checks: [] })));
    expect(h.instances('x').map((i) => i.status)).to.deep.equal(['passing']);
    h.fake.register(inst('x-2', 'x', { checks: [] }));
    await until(() => h?.instances('x').length === 2, 'second instance');
    h.fake.deregister('n1', 'x-1');
    await until(
      () =>
        h
          ?.instances('x')
          .map((i) => i.id)
          .join() === 'x-2',
      'x-1 gone',
    );
  });

  it('services appear and disappear with their route tags', async () => {
    h = await harness((f) => f.register(inst('a-1', 'a')));
    h.fake.register(inst('b-1', 'b'));
    await until(() => h?.instances('b').length === 1, 'b routed');
    h.fake.deregister('n1', 'a-1');
    await until(() => h?.instances('a').length === 0, 'a gone');
    expect(h.last().instances.map((i) => i.id)).to.deep.equal(['b-1']);
  });

  it('an answer with the same index (wait expired) is not a change: nothing is fetched or emitted', async () => {
    h = await harness((f) => f.register(inst('a-1', 'a')), { waitMs: 1000 });
    const snapshots = h.snapshots.length;
    const fetches = h.fake.count('/v1/health/service/');
    await sleep(2300);
    expect(h.fake.count('/v1/catalog/services')).to.be.at.least(3);
    expect(h.fake.count('/v1/health/service/')).to.equal(fetches);
    expect(h.snapshots.length).to.equal(snapshots);
  });

  it('an index going backwards resets to 0 and everything is fetched again', async () => {
    h = await harness((f) => {
      f.register(inst('a-1', 'a'));
      f.register(inst('b-1', 'b'));
    });
    const fake = h.fake;
    const before = fake.count('/v1/health/service/');
    fake.restart();
    await until(() => fake.count('/v1/health/service/') - before >= 2, 'refetch of every service');
    // The request after the reset does not block (index 0), later ones block again from the new index.
    await until(
      () => fake.requests.some((r) => r.path === '/v1/catalog/services' && r.query.get('index') === '5'),
      'new index',
    );
    const after = fake.requests
      .filter((r) => r.path === '/v1/catalog/services')
      .map((r) => r.query.get('index'));
    expect(after).to.include(null);
    expect(h.states.at(-1)?.state).to.equal('up');
  });
});

describe('consul adapter (fake Consul): failures', function () {
  this.timeout(15_000);
  let h: Harness | undefined;
  afterEach(async () => {
    await h?.stop();
    h = undefined;
  });

  it('500s: the last snapshot stays, the state is stale with the error, then up again', async () => {
    h = await harness((f) => f.register(inst('a-1', 'a')));
    const good = h.snapshots.length;
    h.fake.fault('/v1/health/state/any', { status: 500, body: 'No cluster leader' }, 3);
    h.fake.setCheck('n1', 'a-1', 'a-1-check', 'warning');
    await until(() => h?.states.some((s) => s.state === 'stale') === true, 'stale');
    const stale = h.states.find((s) => s.state === 'stale');
    expect(stale?.error).to.match(/HTTP 500: No cluster leader/);
    await until(() => h?.states.at(-1)?.state === 'up', 'up again');
    await until(() => h?.instances('a')[0]?.status === 'warning', 'warning seen after recovery');
    // No snapshot was ever emitted empty.
    expect(h.snapshots.slice(good).every((s) => s.instances.length === 1)).to.equal(true);
  });

  it('429: backs off (Retry-After honoured) instead of hammering', async () => {
    h = await harness((f) => f.register(inst('a-1', 'a')));
    const fake = h.fake;
    fake.fault('/v1/catalog/services', { status: 429, headers: { 'retry-after': '1' } }, -1);
    fake.register(inst('b-1', 'b'));
    await sleep(1500);
    const n = fake.count('/v1/catalog/services');
    await sleep(1500);
    expect(fake.count('/v1/catalog/services') - n).to.be.at.most(2);
    expect(h.states.at(-1)?.error).to.match(/429/);
    fake.clearFaults();
    await until(() => h?.instances('b').length === 1, 'b after the 429s', 5000);
  });

  it('malformed JSON and wrong shapes are errors; extra fields are ignored', async () => {
    h = await harness((f) => f.register(inst('a-1', 'a')));
    h.fake.fault('/v1/catalog/services', { malformed: '{"a": [' }, 1);
    h.fake.fault('/v1/catalog/services', { malformed: '[1,2,3]' }, 1);
    h.fake.register(inst('b-1', 'b'));
    await until(() => h?.states.some((s) => /not JSON/.test(s.error ?? '')) === true, 'JSON error');
    await until(
      () => h?.states.some((s) => /expected an object/.test(s.error ?? '')) === true,
      'shape error',
    );
    await until(() => h?.instances('b').length === 1, 'recovered');
  });

  it('a malformed service answer keeps the previous instances and reports a problem', async () => {
    h = await harness((f) => f.register(inst('a-1', 'a')));
    h.fake.fault('/v1/health/service/a', { malformed: '{"not":"a list"}' }, 1);
    h.fake.setCheck('n1', 'a-1', 'a-1-check', 'warning');
    await until(() => (h?.last().problems ?? []).some((p) => /expected a list/.test(p.reason)), 'problem');
    expect(h.instances('a')).to.have.length(1);
  });

  it('Consul unreachable at start: start resolves, state down, the table fills once Consul answers', async () => {
    const fake = new FakeConsul();
    fake.register(inst('a-1', 'a'));
    await fake.start();
    const port = fake.port;
    await fake.stop();
    const registry = new ConsulRegistry({ address: fake.address, ...fast });
    const snapshots: Snapshot[] = [];
    const states: RegistryState[] = [];
    await registry.start(
      (s) => snapshots.push(s),
      (s) => states.push(s),
    );
    h = {
      fake,
      registry,
      snapshots,
      states,
      last: () => snapshots.at(-1) as Snapshot,
      instances: () => [],
      stop: async () => {
        await registry.stop();
        await fake.stop();
      },
    };
    expect(snapshots).to.have.length(0);
    expect(states.at(-1)?.state).to.equal('down');
    expect(states.at(-1)?.error).to.match(/ECONNREFUSED/);
    await fake.start(port);
    await until(() => snapshots.length === 1, 'first snapshot');
    expect(snapshots[0]?.instances.map((i) => i.id)).to.deep.equal(['a-1']);
    expect(states.at(-1)?.state).to.equal('up');
  });

  it('Consul stops while running: stale, last table kept; back: up, one long-poll per loop, no leak', async () => {
    h = await harness((f) => f.register(inst('a-1', 'a')));
    const fake = h.fake;
    const port = fake.port;
    const emitted = h.snapshots.length;
    await fake.stop();
    await until(() => h?.states.at(-1)?.state === 'stale', 'stale');
    await sleep(600);
    expect(h.snapshots.length).to.equal(emitted);
    fake.register(inst('b-1', 'b'));
    await fake.start(port);
    await until(() => h?.instances('b').length === 1, 'b after recovery', 5000);
    await until(
      () => h?.states.at(-1)?.state === 'up',
      `up (last: ${JSON.stringify(h?.states.at(-1))})`,
      5000,
    );
    await sleep(300);
    // catalog, checks and KV: one long-poll each, not one more per outage.
    expect(fake.waiting.get('/v1/catalog/services')).to.equal(1);
    expect(fake.waiting.get('/v1/health/state/any')).to.equal(1);
    expect(fake.waiting.get('/v1/kv/cairn/config')).to.equal(1);
    const since = fake.requests.length;
    await sleep(500);
    expect(fake.requests.length - since, 'requests while nothing changes').to.equal(0);
  });

  it('after a failure the next request does not block, so a restarted Consul (lower index) is seen at once', async () => {
    h = await harness((f) => f.register(inst('a-1', 'a')), { waitMs: 10_000 });
    const fake = h.fake;
    const port = fake.port;
    await fake.stop();
    await until(() => h?.states.at(-1)?.state === 'stale', 'stale');
    fake.restart();
    fake.deregister('n1', 'a-1');
    fake.register(inst('b-1', 'b'));
    await fake.start(port);
    const t0 = Date.now();
    // Blocking on the old (higher) index would hang for the whole 10 s wait.
    await until(() => h?.instances('b').length === 1 && h.instances('a').length === 0, 'new catalog', 3000);
    expect(Date.now() - t0).to.be.below(2000);
  });

  it('stop(): no callback afterwards and every connection closed', async () => {
    h = await harness((f) => f.register(inst('a-1', 'a')));
    const fake = h.fake;
    const registry = h.registry;
    const n = h.snapshots.length + h.states.length;
    await registry.stop();
    fake.register(inst('b-1', 'b'));
    await sleep(200);
    expect(h.snapshots.length + h.states.length).to.equal(n);
    await until(() => fake.openConnections === 0, 'connections closed');
  });
});

describe('consul adapter (fake Consul): ACL, KV, datacenters', function () {
  this.timeout(10_000);
  let h: Harness | undefined;
  afterEach(async () => {
    await h?.stop();
    h = undefined;
  });

  it('a token that sees nothing ({}) is reported as a problem', async () => {
    h = await harness(() => {});
    h.fake.fault('/v1/catalog/services', { malformed: '{}' }, -1);
    h.fake.register(inst('a-1', 'a'));
    await until(
      () => (h?.last().problems ?? []).some((p) => /no services at all for this ACL token/.test(p.reason)),
      'acl problem',
    );
  });

  it('KV 403: the services still route, the overrides are reported unreadable', async () => {
    h = await harness((f) => {
      f.register(inst('a-1', 'a'));
      f.fault('/v1/kv/', { status: 403, body: 'Permission denied' }, -1);
    });
    expect(h.instances('a')).to.have.length(1);
    expect(h.last().problems?.map((p) => p.reason)).to.deep.equal([
      'the Consul ACL token may not read the KV path "cairn/config" (403): its manual route commands are ignored',
    ]);
    expect(h.states.at(-1)?.state).to.equal('up');
  });

  it('KV changes under the prefix update the manual commands', async () => {
    h = await harness((f) => f.register(inst('a-1', 'a')));
    h.fake.putKv('cairn/config/canary', 'route weight a /a weight 0.5 tags "canary"');
    await until(() => h?.last().manual.includes('canary') === true, 'manual');
    h.fake.putKv('cairn/configuration', 'ignored');
    await sleep(100);
    expect(h.last().manual).to.not.include('ignored');
  });

  it('writeManual is compare-and-swap on ModifyIndex', async () => {
    h = await harness((f) => f.putKv('cairn/config', 'route del x'));
    const r = h.registry;
    const cur = await r.readManual();
    expect(cur.value).to.equal('route del x');
    const ok = await r.writeManual('route del y', cur.version);
    expect(ok.ok).to.equal(true);
    const stale = await r.writeManual('route del z', cur.version);
    expect(stale).to.deep.include({ ok: false });
    expect('conflict' in stale && stale.conflict.value).to.equal('route del y');
    expect(await r.writeManual('x', 'abc')).to.have.property('error');
  });

  it('?dc= watches the named datacenters', async () => {
    const fake = new FakeConsul();
    fake.register(inst('a-1', 'a'));
    await fake.start();
    const registry = new ConsulRegistry({ address: `${fake.address}?dc=east`, ...fast });
    await registry.start(
      () => {},
      () => {},
    );
    await registry.stop();
    await fake.stop();
    const dcs = new Set(fake.requests.filter((r) => r.path.startsWith('/v1/')).map((r) => r.query.get('dc')));
    expect([...dcs]).to.deep.equal(['east']);
  });
});
