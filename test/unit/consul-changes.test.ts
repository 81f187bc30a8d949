// The pure parts of the Consul watch: blocking-query index rules, backoff, rate limit, the
// catalog / checks / sweep diffs that decide which services to fetch again, and the KV text.

import { expect } from 'chai';
import { endpointName, parseIndex } from '../../registry-adapters/consul/api.ts';
import { backoffDelay, nextBlockingIndex, rateLimitDelay } from '../../registry-adapters/consul/blocking.ts';
import {
  addNodeServices,
  diffChecks,
  diffRouted,
  indexChecks,
  nodeNames,
  routedServices,
  type SeenInstances,
  sweepChanges,
} from '../../registry-adapters/consul/changes.ts';
import { instanceKey, type ServiceData } from '../../registry-adapters/consul/instances.ts';
import { kvEntries, kvValue, manualText, normaliseKvPath } from '../../registry-adapters/consul/kv.ts';
import { parseConsulAddress } from '../../registry-adapters/consul/registry.ts';
import { waitParam } from '../../registry-adapters/consul/loop.ts';

describe('consul blocking queries: index rules', () => {
  it('the first answer is a change; its index is sent back', () => {
    expect(nextBlockingIndex(undefined, 42)).to.deep.equal({ next: 42, changed: true, reset: false });
  });

  it('the same index is not a change', () => {
    expect(nextBlockingIndex(42, 42)).to.deep.equal({ next: 42, changed: false, reset: false });
  });

  it('a higher index is a change', () => {
    expect(nextBlockingIndex(42, 50)).to.deep.equal({ next: 50, changed: true, reset: false });
  });

  it('an index going backwards resets to 0 (next request does not block), and is a change', () => {
    expect(nextBlockingIndex(50, 7)).to.deep.equal({ next: 0, changed: true, reset: true });
    // The answer after the reset is taken whole.
    expect(nextBlockingIndex(0, 7)).to.deep.equal({ next: 7, changed: true, reset: false });
  });

  it('never blocks on index 0 after the first call: 0 is clamped to 1', () => {
    expect(nextBlockingIndex(undefined, 0)).to.deep.equal({ next: 1, changed: true, reset: false });
    expect(nextBlockingIndex(1, 0)).to.deep.equal({ next: 1, changed: false, reset: false });
    expect(nextBlockingIndex(0, 0)).to.deep.equal({ next: 1, changed: true, reset: false });
    expect(nextBlockingIndex(5, undefined)).to.deep.equal({ next: 0, changed: true, reset: true });
  });

  it('parses X-Consul-Index strictly', () => {
    expect(parseIndex('123')).to.equal(123);
    expect(parseIndex(['9', '10'])).to.equal(9);
    expect(parseIndex('abc')).to.equal(undefined);
    expect(parseIndex('-1')).to.equal(undefined);
    expect(parseIndex(undefined)).to.equal(undefined);
  });

  it('formats wait as a Go duration', () => {
    expect(waitParam(300_000)).to.equal('300s');
    expect(waitParam(1500)).to.equal('1500ms');
  });
});

describe('consul blocking queries: backoff and rate limit', () => {
  it('doubles from the minimum to the maximum, with +-20 % jitter', () => {
    const o = { minMs: 250, maxMs: 5000 };
    expect([1, 2, 3, 4, 5, 6, 10].map((n) => backoffDelay(n, o, () => 0.5))).to.deep.equal([
      250, 500, 1000, 2000, 4000, 5000, 5000,
    ]);
    expect(backoffDelay(1, o, () => 0)).to.equal(200);
    expect(backoffDelay(1, o, () => 1)).to.equal(300);
    expect(backoffDelay(1000, o, () => 0.5)).to.equal(5000);
  });

  it('spaces request starts at least minInterval apart', () => {
    expect(rateLimitDelay(1000, 1100, 250)).to.equal(150);
    expect(rateLimitDelay(1000, 2000, 250)).to.equal(0);
    expect(rateLimitDelay(Number.NEGATIVE_INFINITY, 5, 250)).to.equal(0);
  });
});

describe('consul changes: catalog', () => {
  it('keeps the services with a route tag (trimmed), with their tag union', () => {
    const r = routedServices(
      { consul: [], web: ['urlprefix-/web', 'v2'], db: ['primary'], spaced: [' urlprefix-/s'], odd: 'x' },
      'urlprefix-',
    );
    if ('error' in r) throw new Error(r.error);
    expect([...r.keys()]).to.deep.equal(['web', 'spaced']);
    expect(r.get('web')).to.equal('urlprefix-/web\nv2');
  });

  it('rejects a body that is not an object', () => {
    expect(routedServices([], 'urlprefix-')).to.have.property('error');
    expect(routedServices(null, 'urlprefix-')).to.have.property('error');
  });

  it('diffs: new and changed services to fetch, removed ones to drop', () => {
    const prev = new Map([
      ['a', 'urlprefix-/a'],
      ['b', 'urlprefix-/b'],
      ['c', 'urlprefix-/c'],
    ]);
    const next = new Map([
      ['a', 'urlprefix-/a'],
      ['b', 'urlprefix-/b\nv2'],
      ['d', 'urlprefix-/d'],
    ]);
    expect(diffRouted(prev, next)).to.deep.equal({ changed: ['b', 'd'], removed: ['c'] });
  });
});

describe('consul changes: checks', () => {
  const chk = (
    node: string,
    id: string,
    status: string,
    sid = '',
    name = '',
    tags: string[] = [],
    mi = 1,
  ) => ({
    Node: node,
    CheckID: id,
    Status: status,
    ServiceID: sid,
    ServiceName: name,
    ServiceTags: tags,
    ModifyIndex: mi,
    Output: 'whatever',
  });
  const idx = (list: unknown[]) => {
    const m = indexChecks(list, 'urlprefix-');
    if ('error' in m) throw new Error(m.error);
    return m;
  };
  const base = [
    chk('n1', 'serfHealth', 'passing'),
    chk('n1', 'web-http', 'passing', 'web-1', 'web', ['urlprefix-/web']),
    chk('n1', 'db-tcp', 'passing', 'db-1', 'db', ['primary']),
    chk('n2', 'api-ttl', 'passing', 'api-1', 'api', ['urlprefix-/api']),
  ];

  it('ignores checks of instances without route tags', () => {
    expect([...idx(base).keys()].map((k) => k.replace('\0', '/'))).to.deep.equal([
      'n1/serfHealth',
      'n1/web-http',
      'n2/api-ttl',
    ]);
  });

  it('a status change names its service; an output-only change (new ModifyIndex) names nothing', () => {
    const next = [...base];
    next[1] = chk('n1', 'web-http', 'critical', 'web-1', 'web', ['urlprefix-/web'], 9);
    next[3] = chk('n2', 'api-ttl', 'passing', 'api-1', 'api', ['urlprefix-/api'], 9);
    const d = diffChecks(idx(base), idx(next));
    expect([...d.services]).to.deep.equal(['web']);
    expect([...d.nodes]).to.deep.equal([]);
  });

  it('a node check change names the node; added and removed checks name their services', () => {
    const next = [
      chk('n1', 'serfHealth', 'critical', '', '', [], 5),
      chk('n1', 'web-http', 'passing', 'web-1', 'web', ['urlprefix-/web']),
      chk('n3', 'new-ttl', 'critical', 'new-1', 'new', ['urlprefix-/new'], 5),
    ];
    const d = diffChecks(idx(base), idx(next));
    expect([...d.services].sort()).to.deep.equal(['api', 'new']);
    expect([...d.nodes]).to.deep.equal(['n1']);
  });

  it('a tag change (re-registration) names the service', () => {
    const next = [...base];
    next[1] = chk('n1', 'web-http', 'passing', 'web-1', 'web', ['urlprefix-/web', 'v2'], 9);
    expect([...diffChecks(idx(base), idx(next)).services]).to.deep.equal(['web']);
  });

  it('a body that is not a list is an error; a missing body is no checks', () => {
    expect(indexChecks({}, 'urlprefix-')).to.have.property('error');
    const m = indexChecks(undefined, 'urlprefix-');
    expect('error' in m ? -1 : m.size).to.equal(0);
  });
});

describe('consul changes: sweep', () => {
  const routed = new Map([
    ['web', 'urlprefix-/web'],
    ['api', 'urlprefix-/api'],
  ]);
  const data = (name: string, entries: [string, string, number][]): ServiceData => ({
    name,
    instances: [],
    problems: [],
    modifyIndex: new Map(entries.map(([n, id, mi]) => [instanceKey(n, id), mi])),
    nodes: new Set(entries.map(([n]) => n)),
  });

  it('reads node names and node services (map or list), routed services only', () => {
    expect(nodeNames([{ Node: 'a' }, { Node: 'b' }, { X: 1 }])).to.deep.equal(['a', 'b']);
    expect(nodeNames({})).to.have.property('error');
    const seen: SeenInstances = new Map();
    expect(
      addNodeServices(
        seen,
        'n1',
        {
          Node: { Node: 'n1' },
          Services: {
            'web-1': { ID: 'web-1', Service: 'web', ModifyIndex: 10 },
            'db-1': { ID: 'db-1', Service: 'db', ModifyIndex: 11 },
          },
        },
        routed,
      ),
    ).to.equal(undefined);
    addNodeServices(seen, 'n2', { Services: [{ ID: 'web-2', Service: 'web', ModifyIndex: 12 }] }, routed);
    addNodeServices(seen, 'gone', undefined, routed);
    expect([...(seen.get('web') ?? new Map()).entries()]).to.deep.equal([
      [instanceKey('n1', 'web-1'), 10],
      [instanceKey('n2', 'web-2'), 12],
    ]);
    expect(seen.has('db')).to.equal(false);
    expect(addNodeServices(seen, 'x', 'nope', routed)).to.have.property('error');
  });

  it('names services whose instances changed ModifyIndex, appeared or vanished', () => {
    const seen: SeenInstances = new Map([
      [
        'web',
        new Map([
          [instanceKey('n1', 'web-1'), 10],
          [instanceKey('n2', 'web-2'), 13],
        ]),
      ],
      ['api', new Map([[instanceKey('n1', 'api-1'), 20]])],
    ]);
    const same = [
      data('web', [
        ['n1', 'web-1', 10],
        ['n2', 'web-2', 13],
      ]),
      data('api', [['n1', 'api-1', 20]]),
    ];
    expect(sweepChanges(same, seen)).to.deep.equal([]);
    expect(
      sweepChanges(
        [
          data('web', [
            ['n1', 'web-1', 10],
            ['n2', 'web-2', 12],
          ]),
        ],
        seen,
      ),
    ).to.deep.equal(['web']);
    expect(sweepChanges([data('web', [['n1', 'web-1', 10]])], seen)).to.deep.equal(['web']);
    expect(
      sweepChanges(
        [
          data('api', [
            ['n1', 'api-1', 20],
            ['n9', 'api-9', 1],
          ]),
        ],
        seen,
      ),
    ).to.deep.equal(['api']);
    expect(sweepChanges([data('gone', [['n1', 'g', 1]])], seen)).to.deep.equal(['gone']);
  });
});

describe('consul KV: manual route commands', () => {
  const b64 = (s: string) => Buffer.from(s).toString('base64');

  it('normalises the path', () => {
    expect(normaliseKvPath('/cairn/config/')).to.equal('cairn/config');
    expect(normaliseKvPath('cairn/config')).to.equal('cairn/config');
  });

  it('takes the key and every sub-key, in key order, with fabio-style headers', () => {
    const entries = kvEntries(
      [
        {
          Key: 'cairn/config/z-canary',
          Value: b64('route weight api /api weight 0.1 tags "canary"\n'),
          ModifyIndex: 9,
        },
        { Key: 'cairn/config', Value: b64('route del old\n'), ModifyIndex: 5 },
        { Key: 'cairn/configuration', Value: b64('not mine'), ModifyIndex: 6 },
        { Key: 'cairn/config/folder/', Value: null, ModifyIndex: 7 },
        { Key: 'cairn/config/a', Value: b64('  route add x /x http://1.2.3.4:80/  '), ModifyIndex: 8 },
      ],
      'cairn/config',
    );
    if ('error' in entries) throw new Error(entries.error);
    expect(entries.map((e) => e.key)).to.deep.equal([
      'cairn/config',
      'cairn/config/a',
      'cairn/config/folder/',
      'cairn/config/z-canary',
    ]);
    expect(manualText(entries)).to.equal(
      [
        '# --- cairn/config',
        'route del old',
        '',
        '# --- cairn/config/a',
        'route add x /x http://1.2.3.4:80/',
        '',
        '# --- cairn/config/z-canary',
        'route weight api /api weight 0.1 tags "canary"',
      ].join('\n'),
    );
  });

  it('a missing prefix (404) is no commands; a non-list is an error', () => {
    expect(kvEntries(undefined, 'cairn/config')).to.deep.equal([]);
    expect(kvEntries({ Key: 'x' }, 'cairn/config')).to.have.property('error');
    expect(manualText([])).to.equal('');
  });

  it('reads one key with its ModifyIndex', () => {
    expect(kvValue([{ Key: 'cairn/config', Value: b64('route del a'), ModifyIndex: 12 }])).to.deep.equal({
      key: 'cairn/config',
      value: 'route del a',
      modifyIndex: 12,
    });
    expect(kvValue(undefined)).to.equal(undefined);
    expect(kvValue([])).to.equal(undefined);
  });
});

describe('consul address and endpoints', () => {
  it('takes datacenters from ?dc=', () => {
    expect(parseConsulAddress('http://127.0.0.1:8500')).to.deep.equal({
      base: 'http://127.0.0.1:8500',
      datacenters: [],
    });
    expect(parseConsulAddress('https://consul.local:8501/?dc=dc1,dc2&dc=dc3')).to.deep.equal({
      base: 'https://consul.local:8501',
      datacenters: ['dc1', 'dc2', 'dc3'],
    });
  });

  it('groups endpoint statistics by route', () => {
    expect(endpointName('/v1/health/service/web')).to.equal('/v1/health/service/:name');
    expect(endpointName('/v1/catalog/node/n1')).to.equal('/v1/catalog/node/:name');
    expect(endpointName('/v1/catalog/nodes')).to.equal('/v1/catalog/nodes');
    expect(endpointName('/v1/kv/cairn/config')).to.equal('/v1/kv/:key');
    expect(endpointName('/v1/health/state/any')).to.equal('/v1/health/state/any');
  });
});
