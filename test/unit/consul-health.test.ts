// Instance health from Consul checks, and which checks the watcher diffs.
//
// fabio's vectors `consul_passing` and `consul_tag_prefix_filter` are transcribed below. fabio
// filters a flat list of checks and returns the checks of healthy instances; Cairn computes one
// status per instance (from the node's and the instance's checks, as `/v1/health/service`
// returns them) and the table keeps the accepted statuses. So each vector is checked as: the
// set of (node, service id) of fabio's expected checks == the instances whose Cairn status is in
// the vector's accepted statuses, evaluated under the vector's checks_required.

import { expect } from 'chai';
import {
  type CheckLike,
  consulWeight,
  instanceStatus,
  isRelevantCheck,
  isServiceCheck,
} from '../../registry-adapters/consul/health.ts';
import type { InstanceStatus } from '../../routing/types.ts';

type C = [node: string, checkId: string, status: string, serviceName: string, serviceId: string];

interface PassingVector {
  readonly name: string;
  readonly checksRequired: 'one' | 'all';
  readonly status: readonly InstanceStatus[];
  readonly checks: readonly C[];
  readonly expected: readonly C[];
}

// fabio vectors, suite consul_passing (fabio HEAD registry/consul passing.go), as recorded.
const consulPassing: readonly PassingVector[] = [
  { name: 'empty', checksRequired: 'one', status: ['passing'], checks: [], expected: [] },
  {
    name: 'single passing',
    checksRequired: 'one',
    status: ['passing'],
    checks: [['node', 'service:abc', 'passing', 'abc', 'abc-1']],
    expected: [['node', 'service:abc', 'passing', 'abc', 'abc-1']],
  },
  {
    name: 'two services passing',
    checksRequired: 'one',
    status: ['passing'],
    checks: [
      ['node', 'service:abc', 'passing', 'abc', 'abc-1'],
      ['node', 'my-check-id', 'passing', 'def', 'def-1'],
    ],
    expected: [
      ['node', 'service:abc', 'passing', 'abc', 'abc-1'],
      ['node', 'my-check-id', 'passing', 'def', 'def-1'],
    ],
  },
  {
    name: 'internal serfHealth filtered out',
    checksRequired: 'one',
    status: ['passing'],
    checks: [
      ['node', 'serfHealth', 'passing', '', ''],
      ['node', 'service:abc', 'passing', 'abc', 'abc-1'],
    ],
    expected: [['node', 'service:abc', 'passing', 'abc', 'abc-1']],
  },
  {
    name: 'agent unhealthy -> nothing on that node',
    checksRequired: 'one',
    status: ['passing'],
    checks: [
      ['node', 'serfHealth', 'critical', '', ''],
      ['node', 'service:abc', 'passing', 'abc', 'abc-1'],
    ],
    expected: [],
  },
  {
    name: 'node maintenance -> nothing',
    checksRequired: 'one',
    status: ['passing'],
    checks: [
      ['node', '_node_maintenance', 'critical', '', ''],
      ['node', 'service:abc', 'passing', 'abc', 'abc-1'],
    ],
    expected: [],
  },
  {
    name: 'service maintenance -> excluded',
    checksRequired: 'one',
    status: ['passing'],
    checks: [
      ['node', '_service_maintenance:abc-1', 'critical', 'abc', 'abc-1'],
      ['node', 'service:abc', 'passing', 'abc', 'abc-1'],
    ],
    expected: [],
  },
  {
    name: 'other instance in maintenance unaffected',
    checksRequired: 'one',
    status: ['passing'],
    checks: [
      ['node', '_service_maintenance:abc-2', 'critical', 'abc', 'abc-2'],
      ['node', 'service:abc', 'passing', 'abc', 'abc-1'],
    ],
    expected: [['node', 'service:abc', 'passing', 'abc', 'abc-1']],
  },
  {
    name: 'maintenance excludes only that service',
    checksRequired: 'one',
    status: ['passing'],
    checks: [
      ['node', '_service_maintenance:abc-1', 'critical', 'abc', 'abc-1'],
      ['node', 'service:abc', 'passing', 'abc', 'abc-1'],
      ['node', 'my-check-id', 'passing', 'def', 'def-1'],
    ],
    expected: [['node', 'my-check-id', 'passing', 'def', 'def-1']],
  },
  {
    name: 'same service id on different node independent',
    checksRequired: 'one',
    status: ['passing'],
    checks: [
      ['node', 'service:abc', 'critical', 'abc', 'abc-3'],
      ['node2', 'service:abc', 'passing', 'abc', 'abc-1'],
    ],
    expected: [['node2', 'service:abc', 'passing', 'abc', 'abc-1']],
  },
  {
    name: 'maintenance on node1 does not affect node2',
    checksRequired: 'one',
    status: ['passing'],
    checks: [
      ['node', '_service_maintenance:abc-1', 'critical', 'abc', 'abc-1'],
      ['node2', 'service:abc', 'passing', 'abc', 'abc-1'],
    ],
    expected: [['node2', 'service:abc', 'passing', 'abc', 'abc-1']],
  },
  {
    name: 'status passing,warning: critical excluded',
    checksRequired: 'one',
    status: ['passing', 'warning'],
    checks: [
      ['node', 'serfHealth', 'passing', '', ''],
      ['node', 'service:abc', 'passing', 'abc', 'abc-1'],
      ['node', 'service:abc', 'critical', 'abc', 'abc-3'],
    ],
    expected: [['node', 'service:abc', 'passing', 'abc', 'abc-1']],
  },
  {
    name: 'status passing,warning: warning included',
    checksRequired: 'one',
    status: ['passing', 'warning'],
    checks: [
      ['node', 'serfHealth', 'passing', '', ''],
      ['node', 'service:abc', 'warning', 'abc', 'abc-2'],
      ['node', 'service:abc', 'critical', 'abc', 'abc-3'],
    ],
    expected: [['node', 'service:abc', 'warning', 'abc', 'abc-2']],
  },
  {
    name: 'warning not accepted by default',
    checksRequired: 'one',
    status: ['passing'],
    checks: [['node', 'service:abc', 'warning', 'abc', 'abc-2']],
    expected: [],
  },
  {
    name: 'non-strict: one of two checks passing is enough',
    checksRequired: 'one',
    status: ['passing'],
    checks: [
      ['node', 'service:abc', 'passing', 'abc', 'abc-1'],
      ['node', 'service:abc', 'warning', 'abc', 'abc-1'],
    ],
    expected: [
      ['node', 'service:abc', 'passing', 'abc', 'abc-1'],
      ['node', 'service:abc', 'warning', 'abc', 'abc-1'],
    ],
  },
  {
    name: 'strict(all): one failing check excludes instance',
    checksRequired: 'all',
    status: ['passing'],
    checks: [
      ['node', 'service:abc', 'passing', 'abc', 'abc-1'],
      ['node', 'service:abc', 'warning', 'abc', 'abc-1'],
    ],
    expected: [],
  },
  {
    name: 'strict: other service unaffected',
    checksRequired: 'all',
    status: ['passing'],
    checks: [
      ['node', 'service:abc', 'passing', 'abc', 'abc-1'],
      ['node', 'service:abc', 'warning', 'abc', 'abc-1'],
      ['node', 'my-check-id', 'passing', 'def', 'def-1'],
    ],
    expected: [['node', 'my-check-id', 'passing', 'def', 'def-1']],
  },
  {
    name: 'strict with passing,warning accepted',
    checksRequired: 'all',
    status: ['passing', 'warning'],
    checks: [
      ['node', 'service:abc', 'passing', 'abc', 'abc-1'],
      ['node', 'service:abc', 'warning', 'abc', 'abc-1'],
    ],
    expected: [
      ['node', 'service:abc', 'passing', 'abc', 'abc-1'],
      ['node', 'service:abc', 'warning', 'abc', 'abc-1'],
    ],
  },
];

function check(c: C): CheckLike {
  return { Node: c[0], CheckID: c[1], Status: c[2], ServiceName: c[3], ServiceID: c[4] };
}

/** The instances Cairn routes, given fabio's flat check list: `node/serviceID`. */
function healthyInstances(v: PassingVector): string[] {
  const checks = v.checks.map(check);
  const instances = new Set<string>();
  for (const c of checks) if ((c.ServiceID ?? '') !== '') instances.add(`${c.Node}/${c.ServiceID}`);
  const out: string[] = [];
  for (const key of instances) {
    const [node, sid] = key.split('/') as [string, string];
    // What /v1/health/service returns for the instance: its node's checks and its own.
    const own = checks.filter((c) => c.Node === node && (c.ServiceID === '' || c.ServiceID === sid));
    const status = instanceStatus(own, sid, v.checksRequired);
    if (v.status.includes(status)) out.push(key);
  }
  return out.sort();
}

describe('consul health: fabio vectors consul_passing', () => {
  for (const v of consulPassing) {
    it(`${v.name} (checks_required=${v.checksRequired}, status=${v.status.join(',')})`, () => {
      const expected = [...new Set(v.expected.map((c) => `${c[0]}/${c[4]}`))].sort();
      expect(healthyInstances(v)).to.deep.equal(expected);
    });
  }
});

describe('consul health: fabio vector consul_tag_prefix_filter', () => {
  // Adapted: the vector's service checks carry no ServiceID; every real service check has one
  // (Consul sets it from the service it is registered with), so they are given theirs here.
  // Without it Cairn would keep `service:b` as a node check, see the difference below.
  it('keeps internal checks and checks whose service has a prefixed tag', () => {
    const checks: CheckLike[] = [
      { CheckID: 'serfHealth' },
      { CheckID: 'service:a', ServiceID: 'a', ServiceTags: ['urlprefix-/a'] },
      { CheckID: 'service:b', ServiceID: 'b', ServiceTags: ['other'] },
      { CheckID: '_service_maintenance:b', ServiceID: 'b' },
    ];
    expect(checks.filter((c) => isRelevantCheck(c, 'urlprefix-')).map((c) => c.CheckID)).to.deep.equal([
      'serfHealth',
      'service:a',
      '_service_maintenance:b',
    ]);
  });

  it('deliberate difference: custom node checks are kept (under checks-required=all they count)', () => {
    expect(isRelevantCheck({ CheckID: 'disk', ServiceID: '' }, 'urlprefix-')).to.equal(true);
  });

  it('trims tags as fabio does, and honours another prefix', () => {
    expect(
      isRelevantCheck({ CheckID: 's', ServiceID: 's', ServiceTags: ['  urlprefix-/x'] }, 'urlprefix-'),
    ).to.equal(true);
    expect(isRelevantCheck({ CheckID: 's', ServiceID: 's', ServiceTags: ['urlprefix-/x'] }, 'svc-')).to.equal(
      false,
    );
    expect(isRelevantCheck({ CheckID: 's', ServiceID: 's', ServiceTags: null }, 'svc-')).to.equal(false);
  });
});

describe('consul health: instance status', () => {
  const node = (id: string, status: string): CheckLike => ({
    Node: 'n',
    CheckID: id,
    Status: status,
    ServiceID: '',
  });
  const svc = (id: string, status: string, sid = 'web-1'): CheckLike => ({
    Node: 'n',
    CheckID: id,
    Status: status,
    ServiceID: sid,
    ServiceName: 'web',
  });

  it('all (default): the worst of the service checks and the node checks', () => {
    expect(instanceStatus([node('serfHealth', 'passing'), svc('a', 'passing')], 'web-1', 'all')).to.equal(
      'passing',
    );
    expect(instanceStatus([svc('a', 'passing'), svc('b', 'warning')], 'web-1', 'all')).to.equal('warning');
    expect(instanceStatus([svc('a', 'warning'), svc('b', 'critical')], 'web-1', 'all')).to.equal('critical');
    expect(instanceStatus([node('disk', 'warning'), svc('a', 'passing')], 'web-1', 'all')).to.equal(
      'warning',
    );
    expect(instanceStatus([node('serfHealth', 'warning'), svc('a', 'passing')], 'web-1', 'all')).to.equal(
      'warning',
    );
  });

  it('all: an instance without checks takes its node status (passing on a healthy node)', () => {
    expect(instanceStatus([], 'web-1', 'all')).to.equal('passing');
    expect(instanceStatus([node('serfHealth', 'passing')], 'web-1', 'all')).to.equal('passing');
  });

  it('one: the best service check; no service check is unknown (fabio never routes it)', () => {
    expect(instanceStatus([svc('a', 'critical'), svc('b', 'warning')], 'web-1', 'one')).to.equal('warning');
    expect(instanceStatus([node('disk', 'critical'), svc('a', 'passing')], 'web-1', 'one')).to.equal(
      'passing',
    );
    expect(instanceStatus([node('serfHealth', 'passing')], 'web-1', 'one')).to.equal('unknown');
  });

  it('maintenance and a critical agent take the instance out in both modes', () => {
    for (const mode of ['one', 'all'] as const) {
      expect(
        instanceStatus([node('_node_maintenance', 'critical'), svc('a', 'passing')], 'web-1', mode),
      ).to.equal('maintenance');
      expect(
        instanceStatus([svc('_service_maintenance:web-1', 'critical'), svc('a', 'passing')], 'web-1', mode),
      ).to.equal('maintenance');
      expect(instanceStatus([node('serfHealth', 'critical'), svc('a', 'passing')], 'web-1', mode)).to.equal(
        'critical',
      );
    }
  });

  it("ignores other instances' checks and treats unknown statuses as critical", () => {
    expect(instanceStatus([svc('a', 'critical', 'web-2'), svc('b', 'passing')], 'web-1', 'all')).to.equal(
      'passing',
    );
    expect(instanceStatus([svc('a', 'exploded')], 'web-1', 'all')).to.equal('critical');
    expect(instanceStatus([{ CheckID: 'x' }], 'web-1', 'all')).to.equal('critical');
  });

  it('knows a service check from node and maintenance checks', () => {
    expect(isServiceCheck(svc('a', 'passing'))).to.equal(true);
    expect(isServiceCheck(node('serfHealth', 'passing'))).to.equal(false);
    expect(isServiceCheck(svc('_service_maintenance:web-1', 'critical'))).to.equal(false);
  });
});

describe('consul health: Weights', () => {
  it('Passing while passing, Warning while warning', () => {
    expect(consulWeight({ Passing: 3, Warning: 1 }, 'passing')).to.equal(3);
    expect(consulWeight({ Passing: 3, Warning: 1 }, 'warning')).to.equal(1);
    expect(consulWeight({ Passing: 3, Warning: 0 }, 'warning')).to.equal(0);
  });

  it('absent or malformed weights are "not given"', () => {
    expect(consulWeight(undefined, 'passing')).to.equal(undefined);
    expect(consulWeight(null, 'passing')).to.equal(undefined);
    expect(consulWeight({ Passing: '3' }, 'passing')).to.equal(undefined);
    expect(consulWeight({ Passing: 1.5 }, 'passing')).to.equal(undefined);
    expect(consulWeight({ Passing: -1 }, 'passing')).to.equal(undefined);
  });
});
