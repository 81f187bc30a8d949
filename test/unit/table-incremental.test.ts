// The incremental table builder (what the controller runs on every registry change) against a
// from-scratch build of the same snapshot: for random sequences of snapshot changes (instances
// added, removed, retagged, moved, re-sent as equal copies, statuses flipped, manual overrides
// edited, bad tags included), every incremental table must equal buildTable()'s table: the same
// routes, targets, weights, problems and excluded instances, the same version, and routers that
// answer the same. Then the reuse itself: what did not change keeps its objects.

import { expect } from 'chai';
import fc from 'fast-check';
import { buildTable, IncrementalTableBuilder } from '../../routing/table.ts';
import type {
  BuildOptions,
  InstanceStatus,
  Problem,
  RouteTable,
  ServiceInstance,
  Snapshot,
} from '../../routing/types.ts';

const serviceNames = ['api', 'web', 'db', 'Auth', 'x'];
const ids = ['1', '2', '3'];

// Route tags, good and bad: options, weights, TCP, redirects, host routes, shared paths across
// services, and tags that must become problems.
const routeTags = [
  'urlprefix-/api',
  'urlprefix-/api strip=/api',
  'urlprefix-/shared',
  'urlprefix-/shared weight=0.25',
  'urlprefix-/w lbweight=3',
  'urlprefix-Host.example.com/',
  'urlprefix-*.example.com/x',
  'urlprefix-:3306 proto=tcp',
  'urlprefix-db.example.com:5432 proto=tcp+sni',
  'urlprefix-/tls proto=https tlsskipverify=true',
  'urlprefix-/r redirect=301,https://example.com/$path',
  'urlprefix-/opt unknown=1',
  'urlprefix-/bad strip=nope',
  'urlprefix-/w2 weight=abc',
  'urlprefix-/neg weight=-1',
  'urlprefix-',
  'urlprefix-/$DC/x',
  'urlprefix-/g matcher=glob',
];
const otherTags = ['v1', 'v2', 'env=prod', 'team=a'];

const manualTexts = [
  '',
  'route add manual /api http://10.9.9.9:80/',
  'route add manual /m http://10.9.9.9:80/ weight 0.5',
  'route del api',
  'route del web /shared',
  'route del tags "env=prod"',
  'route weight api /shared weight 0.4',
  'route weight /api weight 0.2 tags "v1"',
  'route weight nobody /nothing weight 0.3',
  'route add bad /x not-a-url',
  'this is not a route command',
  'route add manual /shared http://10.9.9.8:80/ opts "strip=/shared bogus=1"',
];

const instanceArb: fc.Arbitrary<ServiceInstance> = fc
  .record({
    service: fc.constantFrom(...serviceNames),
    id: fc.constantFrom(...ids),
    address: fc.constantFrom('10.0.0.1', '10.0.0.2', 'node.local', '::1', ''),
    port: fc.constantFrom(80, 8080, 9000, 0),
    tags: fc.array(fc.constantFrom(...routeTags, ...otherTags), { maxLength: 4 }),
    weight: fc.option(fc.constantFrom(1, 2, 5, 0), { nil: undefined }),
    status: fc.option(fc.constantFrom<InstanceStatus>('passing', 'warning', 'critical'), { nil: undefined }),
    registry: fc.option(fc.constantFrom('r1', 'r2'), { nil: undefined }),
  })
  .map((r) => {
    // exactOptionalPropertyTypes: absent fields stay absent, as registries produce them.
    const i: { -readonly [K in keyof ServiceInstance]: ServiceInstance[K] } = {
      service: r.service,
      id: r.id,
      address: r.address,
      port: r.port,
      tags: r.tags,
    };
    if (r.weight !== undefined) i.weight = r.weight;
    if (r.status !== undefined) i.status = r.status;
    if (r.registry !== undefined) i.registry = r.registry;
    return i;
  });

type Edit =
  | { kind: 'add'; instance: ServiceInstance }
  | { kind: 'remove'; at: number }
  | { kind: 'replace'; at: number; instance: ServiceInstance }
  | { kind: 'retag'; at: number; tags: string[] }
  | { kind: 'status'; at: number; status: InstanceStatus }
  | { kind: 'copy'; at: number }
  | { kind: 'move'; at: number; address: string; port: number }
  | { kind: 'weigh'; at: number; weight: number | undefined }
  | { kind: 'rename'; at: number; id: string }
  | { kind: 'clone'; at: number; id: string; service: string }
  | { kind: 'reverse' }
  | { kind: 'copyAll' }
  | { kind: 'manual'; text: string }
  | { kind: 'problems'; on: boolean }
  | { kind: 'none' };

const editArb: fc.Arbitrary<Edit> = fc.oneof(
  fc.record({ kind: fc.constant('add' as const), instance: instanceArb }),
  fc.record({ kind: fc.constant('remove' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('replace' as const), at: fc.nat(), instance: instanceArb }),
  fc.record({
    kind: fc.constant('retag' as const),
    at: fc.nat(),
    tags: fc.array(fc.constantFrom(...routeTags, ...otherTags), { maxLength: 4 }),
  }),
  fc.record({
    kind: fc.constant('status' as const),
    at: fc.nat(),
    status: fc.constantFrom<InstanceStatus>('passing', 'warning', 'critical', 'maintenance'),
  }),
  fc.record({ kind: fc.constant('copy' as const), at: fc.nat() }),
  fc.record({
    kind: fc.constant('move' as const),
    at: fc.nat(),
    address: fc.constantFrom('10.0.0.1', '10.0.0.3', ''),
    port: fc.constantFrom(80, 8081, 70000),
  }),
  fc.record({
    kind: fc.constant('weigh' as const),
    at: fc.nat(),
    weight: fc.option(fc.constantFrom(1, 3, 0), { nil: undefined }),
  }),
  fc.record({ kind: fc.constant('rename' as const), at: fc.nat(), id: fc.constantFrom(...ids, '4') }),
  // Another instance with the same tags: routes gain a target, shares change, weights may not.
  fc.record({
    kind: fc.constant('clone' as const),
    at: fc.nat(),
    id: fc.constantFrom('4', '5'),
    service: fc.constantFrom(...serviceNames),
  }),
  fc.record({ kind: fc.constant('reverse' as const) }),
  fc.record({ kind: fc.constant('copyAll' as const) }),
  fc.record({
    kind: fc.constant('manual' as const),
    text: fc.array(fc.constantFrom(...manualTexts), { maxLength: 3 }).map((l) => l.join('\n')),
  }),
  fc.record({ kind: fc.constant('problems' as const), on: fc.boolean() }),
  fc.record({ kind: fc.constant('none' as const) }),
);

const registryProblem: Problem = {
  source: 'registry',
  severity: 'error',
  reason: '/cairn/services/x/9: not JSON',
  input: '{',
};

interface State {
  instances: ServiceInstance[];
  manual: string;
  problems: boolean;
}

function applyEdit(s: State, e: Edit): State {
  const list = s.instances.slice();
  const at = (n: number) => (list.length === 0 ? -1 : n % list.length);
  switch (e.kind) {
    case 'add':
      list.push(e.instance);
      break;
    case 'remove':
      if (at(e.at) >= 0) list.splice(at(e.at), 1);
      break;
    case 'replace':
      if (at(e.at) >= 0) list[at(e.at)] = e.instance;
      break;
    case 'retag':
      if (at(e.at) >= 0) list[at(e.at)] = { ...(list[at(e.at)] as ServiceInstance), tags: e.tags };
      break;
    case 'status':
      if (at(e.at) >= 0) list[at(e.at)] = { ...(list[at(e.at)] as ServiceInstance), status: e.status };
      break;
    case 'copy':
      // An equal record as a new object (a registry that re-creates every record).
      if (at(e.at) >= 0) {
        const i = list[at(e.at)] as ServiceInstance;
        list[at(e.at)] = { ...i, tags: [...i.tags] };
      }
      break;
    case 'move':
      if (at(e.at) >= 0)
        list[at(e.at)] = { ...(list[at(e.at)] as ServiceInstance), address: e.address, port: e.port };
      break;
    case 'weigh':
      if (at(e.at) >= 0) {
        const { weight: _, ...rest } = list[at(e.at)] as ServiceInstance;
        list[at(e.at)] = e.weight === undefined ? rest : { ...rest, weight: e.weight };
      }
      break;
    case 'rename':
      if (at(e.at) >= 0) list[at(e.at)] = { ...(list[at(e.at)] as ServiceInstance), id: e.id };
      break;
    case 'clone':
      if (at(e.at) >= 0) {
        const i = list[at(e.at)] as ServiceInstance;
        list.push({ ...i, id: e.id, service: e.service, address: `10.1.0.${list.length}` });
      }
      break;
    case 'reverse':
      list.reverse();
      break;
    case 'copyAll':
      // Every record re-created (equal): a registry that rebuilds its whole list.
      for (let i = 0; i < list.length; i++) list[i] = { ...(list[i] as ServiceInstance) };
      break;
    case 'manual':
      return { ...s, instances: list, manual: e.text };
    case 'problems':
      return { ...s, instances: list, problems: e.on };
    case 'none':
      break;
  }
  return { ...s, instances: list };
}

function snapshotOf(s: State): Snapshot {
  return { instances: s.instances, manual: s.manual, ...(s.problems ? { problems: [registryProblem] } : {}) };
}

/** The table's data (routers are compared by their answers). */
function data(t: RouteTable) {
  return { version: t.version, routes: t.routes, excluded: t.excluded, problems: t.problems };
}

function expectSameAnswers(a: RouteTable, b: RouteTable): void {
  for (const r of b.routes) {
    if (r.proto === 'tcp') {
      expect(a.tcp.lookupPort(r.port)?.src).to.equal(b.tcp.lookupPort(r.port)?.src);
      continue;
    }
    if (r.proto === 'tcp+sni') {
      expect(a.tcp.lookupSni(r.host, r.port)?.src).to.equal(b.tcp.lookupSni(r.host, r.port)?.src);
      continue;
    }
    for (const host of [r.host === '' ? 'any.test' : r.host.replace('*', 'a'), 'other.test']) {
      const req = { host, path: `${r.path}/more` };
      expect(a.http.lookup(req)?.src).to.equal(b.http.lookup(req)?.src);
    }
  }
}

const optionsArb: fc.Arbitrary<BuildOptions> = fc.constantFrom<BuildOptions>(
  {},
  { acceptedStatus: ['passing', 'warning'] },
  { env: { DC: 'dc1' }, matcher: 'iprefix' },
  { tagPrefix: 'urlprefix-', globMatching: false },
);

describe('table: incremental builds equal full builds', () => {
  it('for random sequences of snapshot changes (data, version, problems, router answers)', function () {
    this.timeout(60_000);
    fc.assert(
      fc.property(
        optionsArb,
        fc.array(instanceArb, { maxLength: 24 }),
        fc.constantFrom(...manualTexts),
        fc.array(editArb, { minLength: 1, maxLength: 12 }),
        (options, initial, manual, edits) => {
          const builder = new IncrementalTableBuilder(options);
          let state: State = { instances: initial, manual, problems: false };
          const steps = [state];
          for (const e of edits) steps.push((state = applyEdit(state, e)));
          for (const s of steps) {
            const snap = snapshotOf(s);
            const incremental = builder.build(snap);
            const full = buildTable(snap, options);
            expect(data(incremental)).to.deep.equal(data(full));
            expectSameAnswers(incremental, full);
          }
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('a snapshot built twice gives an equal table made of the same objects', () => {
    fc.assert(
      fc.property(
        fc.array(instanceArb, { maxLength: 12 }),
        fc.constantFrom(...manualTexts),
        (instances, manual) => {
          const builder = new IncrementalTableBuilder();
          const a = builder.build({ instances, manual });
          const b = builder.build({ instances: instances.map((i) => ({ ...i })), manual });
          expect(b.version).to.equal(a.version);
          expect(b.routes.length).to.equal(a.routes.length);
          for (let i = 0; i < a.routes.length; i++) expect(b.routes[i]).to.equal(a.routes[i]);
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe('table: incremental builds reuse what did not change', () => {
  const instancesOf = (service: string, tags: string[]): ServiceInstance[] =>
    ids.map((id, n) => ({ service, id, address: `10.0.${service.length}.${n}`, port: 8080, tags }));
  const base = [
    ...instancesOf('api', ['urlprefix-/api', 'v1']),
    ...instancesOf('web', ['urlprefix-/web', 'urlprefix-/shared']),
    ...instancesOf('db', ['urlprefix-:5432 proto=tcp']),
  ];
  const routeOf = (t: RouteTable, src: string) => t.routes.find((r) => r.src === src);

  it('one changed service rebuilds its routes; the others are the same objects', () => {
    const builder = new IncrementalTableBuilder();
    const t1 = builder.build({ instances: base, manual: '' });
    const changed = base.map((i) =>
      i.service === 'api' && i.id === '2' ? { ...i, tags: ['urlprefix-/api', 'v2'] } : { ...i },
    );
    const t2 = builder.build({ instances: changed, manual: '' });
    expect(t2.version).to.not.equal(t1.version);
    expect(routeOf(t2, '/api')).to.not.equal(routeOf(t1, '/api'));
    for (const src of ['/web', '/shared', ':5432']) expect(routeOf(t2, src)).to.equal(routeOf(t1, src));
    // Inside the rebuilt route, targets whose weights did not change are the same objects too.
    const before = routeOf(t1, '/api')?.targets ?? [];
    const after = routeOf(t2, '/api')?.targets ?? [];
    expect(after.filter((t) => before.includes(t))).to.have.length(2);
    expect(data(t2)).to.deep.equal(data(buildTable({ instances: changed, manual: '' })));
  });

  it('a change of weights rebuilds the targets of that route only', () => {
    const builder = new IncrementalTableBuilder();
    const t1 = builder.build({ instances: base, manual: '' });
    const t2 = builder.build({ instances: base, manual: 'route weight web /shared weight 0.5 tags "x"' });
    expect(routeOf(t2, '/shared')).to.equal(routeOf(t1, '/shared'));
    expect(t2.problems.map((p) => p.reason)).to.deep.equal(['route weight: no target matches (ignored)']);
    const t3 = builder.build({
      instances: base,
      manual: 'route add other /shared http://10.1.1.1:80/ weight 0.5',
    });
    expect(routeOf(t3, '/shared')).to.not.equal(routeOf(t1, '/shared'));
    expect(routeOf(t3, '/web')).to.equal(routeOf(t1, '/web'));
    expect(data(t3)).to.deep.equal(
      data(buildTable({ instances: base, manual: 'route add other /shared http://10.1.1.1:80/ weight 0.5' })),
    );
  });

  it('everything it hands out is frozen', () => {
    const builder = new IncrementalTableBuilder();
    builder.build({ instances: base, manual: '' });
    const t = builder.build({ instances: base.slice(1), manual: '' });
    for (const r of t.routes) {
      expect(Object.isFrozen(r)).to.equal(true);
      for (const tg of [...r.targets, ...r.starved]) {
        for (const o of [tg, tg.tags, tg.opts, tg.rawOpts, tg.url]) expect(Object.isFrozen(o)).to.equal(true);
      }
    }
  });
});
