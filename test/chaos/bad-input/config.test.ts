// Bad configuration and registry input: fuzzed route tags and route commands (fast-check,
// thousands of cases), malformed Consul JSON and etcd records, a 1 MB tag, 100,000 instances of
// one service, CR/LF (and other controls) in a redirect target or an address. Every case is
// reported and skipped, never thrown, and never keeps the rest of the table from being built.

import { expect } from 'chai';
import fc from 'fast-check';
import { serviceData } from '../../../registry-adapters/consul/instances.ts';
import { parseInstanceRecord, parseNamingRecord } from '../../../registry-adapters/etcd/record.ts';
import { parseFileRegistry } from '../../../registry-adapters/file/parse.ts';
import { redirectLocation } from '../../../routing/redirect.ts';
import { buildTable } from '../../../routing/table.ts';
import type { RouteTable, ServiceInstance } from '../../../routing/types.ts';

/** The one good instance every fuzzed table also holds: its route must always be there. */
const good: ServiceInstance = {
  service: 'good',
  id: 'good-1',
  address: '127.0.0.1',
  port: 8080,
  tags: ['urlprefix-/good-route'],
};

function hasGoodRoute(t: RouteTable): boolean {
  // The route itself, not a lookup: a fuzzed host route (`*.example/`) may rightly win a lookup.
  return t.routes.some((r) => r.path === '/good-route' && r.targets.some((x) => x.service === 'good'));
}

// Pieces tags and commands are made of: the grammar's words, hostile values and plain noise.
const words = fc.constantFrom(
  'urlprefix-',
  'urlprefix-/',
  'urlprefix-:1234',
  '/p',
  'host.example/',
  '*.example/',
  'proto=tcp',
  'proto=https',
  'proto=grpc',
  'strip=/p',
  'strip=',
  'prepend=x',
  'redirect=301,http://a/$path',
  'redirect=999,',
  'redirect=301,http://a/\r\nSet-Cookie: x=1',
  'allow=ip:10.0.0.0/8',
  'deny=ip:bad',
  'allow=ip:1.2.3.4,deny=ip:1.2.3.4',
  'weight=0.5',
  'weight=-1',
  'weight=NaN',
  'auth=x',
  'host=dst',
  'tlsskipverify=true',
  'register=',
  'pxyproto=true',
  '$DC',
  '${x}',
  '"',
  "'",
  '\\',
  '=',
  ',',
  '\u0000',
  '\u0085',
  '\r\n',
  ' ',
  '\t',
  '%',
  '%zz',
  '/../..',
  '[::1]',
  'http://',
  'route add',
  'route del',
  'route weight',
  'opts',
  'tags',
  'weight',
);
const piece = fc.oneof(
  { weight: 4, arbitrary: words },
  { weight: 1, arbitrary: fc.string({ maxLength: 12 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 12 }) },
);
const tag = fc
  .array(piece, { minLength: 1, maxLength: 8 })
  .map((p) => p.join(fc.sample(fc.constantFrom('', ' '), 1)[0] ?? ''));

const commandLine = fc.oneof(
  fc
    .tuple(
      fc.constantFrom('route add', 'route del', 'route weight', 'route', 'add', ''),
      fc.constantFrom('svc', 'good', '', '*', '"q s"'),
      fc.array(piece, { maxLength: 8 }),
    )
    .map(([c, s, rest]) => `${c} ${s} ${rest.join(' ')}`),
  fc.string({ maxLength: 60 }),
);

function timed<T>(f: () => T): { value: T; ms: number } {
  const t0 = performance.now();
  const value = f();
  return { value, ms: performance.now() - t0 };
}

describe('bad input: route tags and route commands (fuzzed)', function () {
  this.timeout(120_000);

  it('3,000 fuzzed tag sets: the table always builds, the good route always stays, each build is fast', () => {
    let slowest = 0;
    let problems = 0;
    fc.assert(
      fc.property(
        fc.array(tag, { minLength: 1, maxLength: 6 }),
        fc.string({ maxLength: 20 }),
        (tags, addr) => {
          const bad: ServiceInstance = { service: 'fuzz', id: 'f1', address: addr || 'h', port: 80, tags };
          const { value: t, ms } = timed(() => buildTable({ instances: [bad, good], manual: '' }));
          slowest = Math.max(slowest, ms);
          problems += t.problems.length;
          expect(hasGoodRoute(t)).to.equal(true);
          for (const r of t.routes)
            for (const x of r.targets) expect(/[\u0000-\u0020\u007f]/.test(x.dst)).to.equal(false);
        },
      ),
      { numRuns: 3000 },
    );
    console.log(`      3000 tag sets: ${problems} problems reported, slowest build ${slowest.toFixed(1)} ms`);
    expect(slowest).to.be.below(1000);
  });

  it('3,000 fuzzed route-command texts: never throws, the good route always stays', () => {
    let slowest = 0;
    fc.assert(
      fc.property(fc.array(commandLine, { maxLength: 10 }), (lines) => {
        const manual = lines.join(fc.sample(fc.constantFrom('\n', '\r\n', '\n\n'), 1)[0] ?? '\n');
        const { value: t, ms } = timed(() => buildTable({ instances: [good], manual }));
        slowest = Math.max(slowest, ms);
        expect(hasGoodRoute(t) || /route del good|route weight good/.test(manual)).to.equal(true);
      }),
      { numRuns: 3000 },
    );
    expect(slowest).to.be.below(1000);
  });

  it('a 1 MB tag is built (or reported) in bounded time, the rest of the table too', () => {
    const big = `urlprefix-/big${'a'.repeat(1024 * 1024)}`;
    const bigOpts = `urlprefix-/big2 ${'x=y '.repeat(256 * 1024)}`;
    const { value: t, ms } = timed(() =>
      buildTable({
        instances: [{ service: 'big', id: 'b1', address: '127.0.0.1', port: 1, tags: [big, bigOpts] }, good],
        manual: `route add m /m http://127.0.0.1:2/ opts "${'z'.repeat(1024 * 1024)}"`,
      }),
    );
    console.log(`      1 MB tags + 1 MB command: ${ms.toFixed(0)} ms, ${t.problems.length} problems`);
    expect(ms).to.be.below(10_000);
    expect(hasGoodRoute(t)).to.equal(true);
    // problems quote their input: the report itself must not hold megabytes per line forever
    expect(t.problems.length).to.be.below(300_000);
  });

  it('100,000 instances of one service: the table builds in bounded time and memory', () => {
    const instances: ServiceInstance[] = [];
    for (let i = 0; i < 100_000; i++) {
      instances.push({
        service: 'huge',
        id: `huge-${i}`,
        address: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`,
        port: 8000 + (i % 1000),
        tags: ['urlprefix-/huge'],
      });
    }
    instances.push(good);
    const heap0 = process.memoryUsage().heapUsed;
    const { value: t, ms } = timed(() => buildTable({ instances, manual: '' }));
    const heapMb = (process.memoryUsage().heapUsed - heap0) / 1e6;
    const route = t.http.lookup({ host: 'x', path: '/huge/1', tls: false, forwardedProto: undefined });
    console.log(`      100,000 instances: built in ${ms.toFixed(0)} ms, heap +${heapMb.toFixed(0)} MB`);
    expect(route?.targets.length).to.equal(100_000);
    expect(hasGoodRoute(t)).to.equal(true);
    // 2 shared cores: generous, but a runaway (quadratic) build would be far over
    expect(ms).to.be.below(30_000);
    expect(heapMb).to.be.below(1500);
  });
});

describe('bad input: redirect targets and addresses with CR/LF or controls', () => {
  const hostile = ['\r\n', '\n', '\r', '\u0000', '\u007f', ' ', '\t', '\u000b'];

  it('a target URL (address or redirect destination) with a control character is refused and reported', () => {
    for (const c of hostile) {
      const t = buildTable({
        instances: [
          { service: 'a', id: 'a1', address: `evil${c}Set-Cookie: x=1`, port: 80, tags: ['urlprefix-/a'] },
          good,
        ],
        manual: `route add r /r "http://x.example/${c}Set-Cookie:y" opts "redirect=302"`,
      });
      expect(
        t.routes.find((r) => r.path === '/a'),
        JSON.stringify(c),
      ).to.equal(undefined);
      for (const r of t.routes)
        for (const x of r.targets) expect(x.dst).to.not.match(/[\u0000-\u0020\u007f]/);
      expect(t.problems.length, JSON.stringify(c)).to.be.greaterThan(0);
      expect(hasGoodRoute(t)).to.equal(true);
    }
  });

  it('a Location built from request parts never carries CR/LF (request path, query and host are escaped)', () => {
    fc.assert(
      fc.property(fc.string(), fc.string(), fc.string(), (path, query, host) => {
        const loc = redirectLocation('http://$host/x$path', { host, path: `/${path}`, query }, {});
        expect(loc).to.not.match(/[\r\n\u0000]/);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('bad input: malformed registry records', () => {
  const consul = { tagPrefix: 'urlprefix-', checksRequired: 'all' as const, registry: 'consul:test' };

  it('Consul /v1/health/service bodies of any shape: an error or problems, never a throw', () => {
    fc.assert(
      fc.property(fc.oneof(fc.jsonValue(), fc.anything()), (body) => {
        const r = serviceData('svc', body, consul);
        expect(r).to.be.an('object');
        if (!('error' in r)) {
          for (const i of r.instances) {
            expect(i.port).to.be.within(1, 65535);
            expect(i.address).to.be.a('string');
          }
        }
      }),
      { numRuns: 3000 },
    );
  });

  it('Consul entries with missing or mistyped fields are reported, good entries kept', () => {
    const goodEntry = {
      Node: { Node: 'n1', Address: '127.0.0.1' },
      Service: { ID: 'ok', Service: 'svc', Address: '127.0.0.1', Port: 8080, Tags: ['urlprefix-/ok'] },
      Checks: [{ Status: 'passing', ServiceID: 'ok', CheckID: 'c' }],
    };
    const body = [
      goodEntry,
      null,
      42,
      'x',
      { Node: {}, Service: { ID: 'noport', Service: 'svc', Address: '127.0.0.1', Tags: ['urlprefix-/np'] } },
      {
        Node: { Node: 'n2' },
        Service: { ID: 'badport', Service: 'svc', Port: '80; rm -rf', Tags: 'urlprefix-/x' },
      },
      {
        Node: { Node: 'n3' },
        Service: { ID: 'neg', Service: 'svc', Address: 'a', Port: -1, Tags: [null, 1] },
      },
    ];
    const r = serviceData('svc', body, consul);
    expect('error' in r).to.equal(false);
    if ('error' in r) return;
    expect(r.instances.map((i) => i.id)).to.include('ok');
    expect(r.problems.length).to.be.greaterThan(0);
  });

  it('etcd instance and naming records of any text: a problem or an instance, never a throw', () => {
    const texts = fc.oneof(
      fc.string({ maxLength: 200 }),
      fc.jsonValue().map((v) => JSON.stringify(v)),
      fc
        .record(
          {
            address: fc.oneof(fc.string(), fc.ipV4(), fc.integer()),
            port: fc.oneof(fc.integer(), fc.string(), fc.double()),
            tags: fc.oneof(fc.array(fc.string()), fc.string(), fc.constant(null)),
            weight: fc.oneof(fc.integer(), fc.string()),
          },
          { requiredKeys: [] },
        )
        .map((v) => JSON.stringify(v)),
    );
    fc.assert(
      fc.property(texts, fc.string({ maxLength: 20 }), fc.string({ maxLength: 20 }), (value, svc, id) => {
        for (const parse of [parseInstanceRecord, parseNamingRecord]) {
          const r = parse(`/cairn/${svc}/${id}`, value, svc, id, 'etcd:test');
          expect(r).to.be.an('object');
          if ('instance' in r && r.instance !== undefined) {
            expect(r.instance.port).to.be.within(1, 65535);
          }
        }
      }),
      { numRuns: 3000 },
    );
  });

  it('file registry: any text is a parse result or an error, never a throw', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ maxLength: 300 }),
          fc.jsonValue().map((v) => JSON.stringify(v)),
        ),
        (text) => {
          expect(() => parseFileRegistry(text, 'routes.yaml')).to.not.throw();
        },
      ),
      { numRuns: 2000 },
    );
  });
});
