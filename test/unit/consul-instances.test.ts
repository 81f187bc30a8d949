// `/v1/health/service/<name>` entries -> ServiceInstances, and on through the routing core's
// tag translation (routing/tags.ts) to fabio's route commands. The address cases are fabio's
// `consul_tags_to_routes` vectors that depend on the adapter (ServiceAddress || node Address,
// IPv6 in brackets, $DC); the tag-grammar cases of that suite belong to tags.test.ts.

import { expect } from 'chai';
import type { ChecksRequired } from '../../registry-adapters/consul/health.ts';
import {
  expandDatacenter,
  nodeMetaKey,
  serviceData,
  weightZeroMetaKey,
} from '../../registry-adapters/consul/instances.ts';
import { formatRouteCommand, instanceRouteCommands } from '../../routing/tags.ts';
import type { ServiceInstance } from '../../routing/types.ts';

const opts = { tagPrefix: 'p-', checksRequired: 'all' as ChecksRequired, registry: 'consul:test' };

interface EntryInput {
  readonly nodeAddress?: string;
  readonly serviceAddress?: string;
  readonly port?: unknown;
  readonly tags?: readonly string[];
  readonly id?: string;
  readonly dc?: string;
  readonly weights?: unknown;
  readonly checks?: readonly { CheckID: string; Status: string; ServiceID?: string }[];
  readonly meta?: Record<string, unknown>;
}

function entry(e: EntryInput): unknown {
  const id = e.id ?? 'svc-1-a';
  return {
    Node: { Node: 'n1', Address: e.nodeAddress ?? '9.9.9.9', Datacenter: e.dc ?? 'dc1', Extra: { x: 1 } },
    Service: {
      ID: id,
      Service: 'svc-1',
      Tags: e.tags ?? [],
      Address: e.serviceAddress ?? '',
      Port: e.port ?? 2222,
      ...(e.weights !== undefined ? { Weights: e.weights } : {}),
      ...(e.meta !== undefined ? { Meta: e.meta } : {}),
      ModifyIndex: 7,
      SomethingNew: true,
    },
    Checks: (e.checks ?? []).map((c) => ({ Node: 'n1', ServiceID: id, ...c })),
  };
}

function convert(entries: unknown[], o: Partial<typeof opts> = {}): ServiceInstance[] {
  const d = serviceData('svc-1', entries, { ...opts, ...o });
  if ('error' in d) throw new Error(d.error);
  return [...d.instances];
}

function routes(e: EntryInput): string[] {
  const [inst] = convert([entry(e)]);
  if (inst === undefined) return [];
  return instanceRouteCommands(inst, { tagPrefix: 'p-' }).commands.map(formatRouteCommand);
}

describe('consul instances: fabio vectors consul_tags_to_routes (adapter part)', () => {
  it('http: the service address wins over the node address', () => {
    expect(routes({ serviceAddress: '1.1.1.1', tags: ['p-foo/bar'] })).to.deep.equal([
      'route add svc-1 foo/bar http://1.1.1.1:2222/',
    ]);
  });

  it('empty ServiceAddress falls back to node Address', () => {
    expect(routes({ serviceAddress: '', tags: ['p-/foo'] })).to.deep.equal([
      'route add svc-1 /foo http://9.9.9.9:2222/',
    ]);
  });

  it('ipv6 service address bracketed', () => {
    expect(routes({ serviceAddress: 'fe80::1', tags: ['p-/foo'] })).to.deep.equal([
      'route add svc-1 /foo http://[fe80::1]:2222/',
    ]);
  });

  it('DC expansion (the instance node datacenter)', () => {
    expect(routes({ serviceAddress: '1.1.1.1', tags: ['p-${DC}.example.com/'] })).to.deep.equal([
      'route add svc-1 dc1.example.com/ http://1.1.1.1:2222/',
    ]);
    expect(routes({ serviceAddress: '1.1.1.1', dc: 'eu-west', tags: ['p-$DC.example.com/'] })).to.deep.equal([
      'route add svc-1 eu-west.example.com/ http://1.1.1.1:2222/',
    ]);
  });

  it('non-prefix tags become route tags, tcp keeps its scheme', () => {
    expect(routes({ serviceAddress: '1.1.1.1', tags: ['p-/foo', 'v2', 'green'] })).to.deep.equal([
      'route add svc-1 /foo http://1.1.1.1:2222/ tags "v2,green"',
    ]);
    expect(routes({ serviceAddress: '1.1.1.1', tags: ['p-:1234 proto=tcp'] })).to.deep.equal([
      'route add svc-1 :1234 tcp://1.1.1.1:2222',
    ]);
  });
});

describe('consul instances: conversion', () => {
  it('keeps id, port, tags, meta and the node; ignores unknown fields', () => {
    const [i] = convert([
      entry({ serviceAddress: '10.0.0.1', tags: ['p-/a'], meta: { version: '2', bad: 3 } }),
    ]);
    expect(i).to.deep.equal({
      service: 'svc-1',
      id: 'svc-1-a',
      address: '10.0.0.1',
      port: 2222,
      tags: ['p-/a'],
      status: 'passing',
      registry: 'consul:test',
      meta: { version: '2', [nodeMetaKey]: 'n1' },
    });
  });

  it('Weights.Passing is the instance weight; Weights.Warning while in warning', () => {
    const w = { Passing: 5, Warning: 2 };
    expect(convert([entry({ weights: w })])[0]?.weight).to.equal(5);
    const warn = convert([entry({ weights: w, checks: [{ CheckID: 'c', Status: 'warning' }] })])[0];
    expect(warn?.status).to.equal('warning');
    expect(warn?.weight).to.equal(2);
  });

  it('Weights.Warning 0 while warning: no traffic (shown as out of rotation)', () => {
    const [i] = convert([
      entry({ weights: { Passing: 5, Warning: 0 }, checks: [{ CheckID: 'c', Status: 'warning' }] }),
    ]);
    expect(i?.status).to.equal('maintenance');
    expect(i?.weight).to.equal(undefined);
    expect(i?.meta?.[weightZeroMetaKey]).to.match(/Weights.Warning is 0/);
  });

  it('status follows --consul-checks-required', () => {
    const checks = [
      { CheckID: 'a', Status: 'passing' },
      { CheckID: 'b', Status: 'critical' },
    ];
    expect(convert([entry({ checks })])[0]?.status).to.equal('critical');
    expect(convert([entry({ checks })], { checksRequired: 'one' })[0]?.status).to.equal('passing');
  });

  it('an empty address on both service and node is passed on (the table reports it)', () => {
    const [i] = convert([entry({ serviceAddress: '', nodeAddress: '', tags: ['p-/x'] })]);
    expect(i?.address).to.equal('');
    const r = instanceRouteCommands(i as ServiceInstance, { tagPrefix: 'p-' });
    expect(r.commands).to.deep.equal([]);
    expect(r.problems[0]?.reason).to.equal('instance has no address');
  });

  it('skips malformed entries with a problem, keeps the others', () => {
    const d = serviceData(
      'svc-1',
      [null, { Node: {} }, { Service: { Port: 1 } }, entry({ port: 'x' }), entry({ id: 'ok' })],
      opts,
    );
    if ('error' in d) throw new Error(d.error);
    expect(d.instances.map((i) => i.id)).to.deep.equal(['ok']);
    expect(d.problems.map((p) => p.reason)).to.deep.equal([
      'Consul entry without a Service object; skipped',
      'Consul entry without a Service object; skipped',
      'Consul service entry without an ID; skipped',
      'instance svc-1-a: Port is not a number; skipped',
    ]);
    expect(d.problems.every((p) => p.source === 'registry' && p.service === 'svc-1')).to.equal(true);
  });

  it('a body that is not a list is an error', () => {
    expect(serviceData('svc-1', { oops: true }, opts)).to.have.property('error');
    const d = serviceData('svc-1', undefined, opts);
    expect('error' in d ? d.error : d.instances).to.deep.equal([]);
  });

  it('records ModifyIndex per node/instance and the nodes', () => {
    const d = serviceData('svc-1', [entry({ id: 'a' }), entry({ id: 'b' })], opts);
    if ('error' in d) throw new Error(d.error);
    expect([...d.modifyIndex.values()]).to.deep.equal([7, 7]);
    expect([...d.nodes]).to.deep.equal(['n1']);
  });
});

describe('consul instances: $DC in route tags', () => {
  const x = (tag: string, dc = 'dc1', prefix = 'urlprefix-'): string =>
    expandDatacenter([tag], prefix, dc)[0] ?? '';

  it('expands $DC and ${DC} in the route part only', () => {
    expect(x('urlprefix-$DC.example.com/')).to.equal('urlprefix-dc1.example.com/');
    expect(x('urlprefix-${DC}.example.com/api')).to.equal('urlprefix-dc1.example.com/api');
    expect(x('urlprefix-/$DC/x redirect=301,https://$DC.example.com$path')).to.equal(
      'urlprefix-/dc1/x redirect=301,https://$DC.example.com$path',
    );
  });

  it('leaves other variables, :port and slash-less routes, and other tags alone', () => {
    expect(x('urlprefix-$DCX.example.com/')).to.equal('urlprefix-$DCX.example.com/');
    expect(x('urlprefix-$$DC.example.com/')).to.equal('urlprefix-$$DC.example.com/');
    expect(x('urlprefix-${X}/$DC')).to.equal('urlprefix-${X}/dc1');
    expect(x('urlprefix-:$DC proto=tcp')).to.equal('urlprefix-:$DC proto=tcp');
    expect(x('urlprefix-$DC')).to.equal('urlprefix-$DC');
    expect(x('version=$DC')).to.equal('version=$DC');
    expect(x('svc-$DC.a/', 'dc2', 'svc-')).to.equal('svc-dc2.a/');
  });

  it('gives the table what Go os.Expand with DC would give', () => {
    for (const tag of ['p-$$DC.x/', 'p-${}.x/$DC', 'p-${DC.x/', 'p-$1$DC.x/', 'p-${*}$DC.x/', 'p-a$/b$DC']) {
      const pre = expandDatacenter([tag], 'p-', 'dc9')[0] ?? '';
      const viaAdapter = instanceRouteCommands(
        { service: 's', id: 'i', address: '1.1.1.1', port: 1, tags: [pre] },
        { tagPrefix: 'p-' },
      ).commands.map((c) => c.src);
      const viaEnv = instanceRouteCommands(
        { service: 's', id: 'i', address: '1.1.1.1', port: 1, tags: [tag] },
        { tagPrefix: 'p-', env: { DC: 'dc9' } },
      ).commands.map((c) => c.src);
      expect(viaAdapter, tag).to.deep.equal(viaEnv);
    }
  });
});
