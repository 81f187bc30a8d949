// `explainUrl`: the JSON shape of DESIGN.md section 8, HTTP and TCP URLs, weights, health, the
// balancer's next pick, and URL parsing.

import { expect } from 'chai';
import { createBalancer } from '../../routing/balancers/index.ts';
import { explainUrl, parseExplainUrl } from '../../routing/explain.ts';
import { parseRouteCommands } from '../../routing/route-command.ts';
import { buildTable, buildTableFromCommands } from '../../routing/table.ts';
import type { BuildOptions, Route, RouteTable, TargetHealthView } from '../../routing/types.ts';

function table(lines: string[], opts: BuildOptions = {}): RouteTable {
  const parsed = parseRouteCommands(lines.join('\n'));
  expect(parsed.problems).to.deep.equal([]);
  return buildTableFromCommands(parsed.commands, opts);
}

const sample = table([
  'route add api /api http://10.0.0.1:8080/ opts "strip=/api prepend=/v1"',
  'route add api /api http://10.0.0.2:8080/',
  'route add api /api http://10.0.0.3:8080/ tags "canary"',
  'route weight api /api weight 0.1 tags "canary"',
  'route add web www.example.com/ http://10.0.1.1:80/',
  'route add docs /docs http://10.0.2.1:80/',
  'route add db :5432 tcp://10.0.3.1:5432',
]);

function healthView(down: string[]): TargetHealthView {
  return { isAvailable: (key) => !down.some((d) => key.includes(d)), inFlight: () => 0 };
}

describe('explain: HTTP URLs', () => {
  it('returns exactly the DESIGN.md shape', () => {
    const out = explainUrl(sample, 'http://localhost/api/users?id=1', { strategy: 'rr' });
    expect(out).to.deep.equal({
      url: 'http://localhost/api/users?id=1',
      route: {
        service: 'api',
        src: '/api',
        proto: 'http',
        opts: 'strip=/api prepend=/v1',
        targets: [
          { service: 'api', dst: 'http://10.0.0.1:8080/', weight: 0.45, healthy: true },
          { service: 'api', dst: 'http://10.0.0.2:8080/', weight: 0.45, healthy: true },
          { service: 'api', dst: 'http://10.0.0.3:8080/', weight: 0.1, healthy: true },
        ],
      },
      target: out.target,
      rejected: [{ src: '/docs', reason: out.rejected[0]?.reason }],
    });
    expect(Object.keys(out)).to.deep.equal(['url', 'route', 'target', 'rejected']);
    expect(Object.keys(out.route ?? {})).to.deep.equal(['service', 'src', 'proto', 'opts', 'targets']);
    expect(Object.keys(out.route?.targets[0] ?? {})).to.deep.equal(['service', 'dst', 'weight', 'healthy']);
    expect(out.target).to.be.oneOf(out.route?.targets.map((t) => t.dst) ?? []);
    expect(out.rejected[0]?.reason).to.match(/does not match/);
    // Round-trips through JSON unchanged (no undefined, no class instances).
    expect(JSON.parse(JSON.stringify(out))).to.deep.equal(out);
  });

  it('weights are effective shares rounded to 4 decimals', () => {
    const t = table(['route add s / http://a:1/', 'route add s / http://b:1/', 'route add s / http://c:1/']);
    const out = explainUrl(t, 'http://x/', { strategy: 'wrr' });
    expect(out.route?.targets.map((x) => x.weight)).to.deep.equal([0.3333, 0.3333, 0.3333]);
  });

  it('lists starved targets with weight 0', () => {
    const t = table(['route add s / http://a:1/ weight 1.0', 'route add s / http://b:1/']);
    const out = explainUrl(t, 'http://x/', { strategy: 'wrr' });
    expect(out.route?.targets).to.deep.equal([
      { service: 's', dst: 'http://a:1/', weight: 1, healthy: true },
      { service: 's', dst: 'http://b:1/', weight: 0, healthy: true },
    ]);
    expect(out.target).to.equal('http://a:1/');
  });

  it('uses the host: exact host beats host-less; :80 and case are normalised', () => {
    const out = explainUrl(sample, 'http://WWW.Example.com:80/anything', { strategy: 'wrr' });
    expect(out.route?.src).to.equal('www.example.com/');
    expect(out.route?.service).to.equal('web');
    expect(out.target).to.equal('http://10.0.1.1:80/');
  });

  it('https URLs are TLS requests (:443 dropped)', () => {
    const t = table(['route add s secure.example.com/ http://a:1/']);
    expect(explainUrl(t, 'https://secure.example.com:443/', { strategy: 'wrr' }).route?.src).to.equal(
      'secure.example.com/',
    );
  });

  it('no route: route and target are null, every candidate is rejected with a reason', () => {
    const out = explainUrl(sample, 'http://localhost/nothing', { strategy: 'wrr' });
    expect(out.route).to.equal(null);
    expect(out.target).to.equal(null);
    expect(out.rejected.map((r) => r.src).sort()).to.deep.equal(['/api', '/docs']);
    for (const r of out.rejected) expect(r.reason).to.be.a('string').and.not.equal('');
  });

  it('marks unavailable targets unhealthy and peeks past them', () => {
    const t = table(['route add s / http://a:1/', 'route add s / http://b:1/']);
    const out = explainUrl(t, 'http://x/', { strategy: 'rr', health: healthView(['http://a:1/']) });
    expect(out.route?.targets.map((x) => x.healthy)).to.deep.equal([false, true]);
    expect(out.target).to.equal('http://b:1/');
    const none = explainUrl(t, 'http://x/', { strategy: 'rr', health: healthView(['http://']) });
    expect(none.route).to.not.equal(null);
    expect(none.target).to.equal(null);
  });

  it('peeks at the live balancer when one is given', () => {
    const t = table(['route add s / http://a:1/', 'route add s / http://b:1/']);
    const balancers = new Map<Route, ReturnType<typeof createBalancer>>();
    const live = (r: Route) => {
      let b = balancers.get(r);
      if (b === undefined) {
        b = createBalancer('rr', r, healthView([]));
        balancers.set(r, b);
      }
      return b;
    };
    const first = explainUrl(t, 'http://x/', { strategy: 'rr', balancer: live }).target;
    live(t.routes[0] as Route).pick();
    const second = explainUrl(t, 'http://x/', { strategy: 'rr', balancer: live }).target;
    expect([first, second].sort()).to.deep.equal(['http://a:1/', 'http://b:1/']);
  });

  it('every strategy names a target of the route', () => {
    for (const strategy of ['wrr', 'rr', 'random', 'p2c'] as const) {
      const out = explainUrl(sample, 'http://x/api', { strategy });
      expect(out.target, strategy).to.be.oneOf(out.route?.targets.map((x) => x.dst) ?? []);
    }
  });

  it('applies the proxy path normalisation hook before lookup', () => {
    const out = explainUrl(sample, 'http://x/docs/../api/x', {
      strategy: 'wrr',
      normalizePath: (p) => p.replace('/docs/../', '/'),
    });
    expect(out.route?.src).to.equal('/api');
    expect(out.url).to.equal('http://x/docs/../api/x');
  });

  it('a redirect route names its redirect URL as the target', () => {
    const t = table(['route add old /old https://new.example.com$path opts "redirect=301"']);
    const out = explainUrl(t, 'http://x/old/page', { strategy: 'wrr' });
    expect(out.route?.opts).to.equal('redirect=301');
    expect(out.target).to.equal('https://new.example.com$path');
  });

  it('works on a table built from registry instances', () => {
    const t = buildTable({
      instances: [
        { service: 'api', id: 'a', address: '10.0.0.1', port: 80, tags: ['urlprefix-/api strip=/api'] },
        {
          service: 'api',
          id: 'b',
          address: '10.0.0.2',
          port: 80,
          tags: ['urlprefix-/api strip=/api'],
          weight: 3,
        },
      ],
      manual: '',
    });
    const out = explainUrl(t, '/api/x', { strategy: 'wrr' });
    expect(out.route?.targets.map((x) => [x.dst, x.weight])).to.deep.equal([
      ['http://10.0.0.1:80/', 0.25],
      ['http://10.0.0.2:80/', 0.75],
    ]);
    expect(out.route?.opts).to.equal('strip=/api');
    expect(out.target).to.equal('http://10.0.0.2:80/');
  });

  it('an invalid URL explains as no route', () => {
    expect(explainUrl(sample, 'ftp://x/api', { strategy: 'wrr' })).to.deep.equal({
      url: 'ftp://x/api',
      route: null,
      target: null,
      rejected: [],
    });
  });
});

describe('explain: TCP URLs', () => {
  it('tcp://host:port takes the port route', () => {
    const out = explainUrl(sample, 'tcp://db.local:5432', { strategy: 'wrr' });
    expect(out.route).to.deep.equal({
      service: 'db',
      src: ':5432',
      proto: 'tcp',
      opts: '',
      targets: [{ service: 'db', dst: 'tcp://10.0.3.1:5432', weight: 1, healthy: true }],
    });
    expect(out.target).to.equal('tcp://10.0.3.1:5432');
    expect(out.rejected).to.deep.equal([]);
  });

  it('another port has no route; the TCP routes are rejected with the reason', () => {
    const out = explainUrl(sample, 'tcp://127.0.0.1:5433', { strategy: 'wrr' });
    expect(out.route).to.equal(null);
    expect(out.target).to.equal(null);
    expect(out.rejected).to.deep.equal([{ src: ':5432', reason: 'port does not match: 5433 is not 5432' }]);
  });

  it('tcp+sni routes match by server name', () => {
    const t = table([
      'route add pg pg.example.com:443 tcp://10.0.4.1:5432 opts "proto=tcp+sni"',
      'route add my my.example.com:443 tcp://10.0.4.2:3306 opts "proto=tcp+sni"',
    ]);
    const out = explainUrl(t, 'tcp://pg.example.com:443', { strategy: 'wrr' });
    expect(out.route?.service).to.equal('pg');
    expect(out.route?.proto).to.equal('tcp+sni');
    expect(out.target).to.equal('tcp://10.0.4.1:5432');
    expect(out.rejected.map((r) => r.src)).to.deep.equal(['my.example.com:443']);
    expect(explainUrl(t, 'tcp+sni://MY.example.com:443', { strategy: 'wrr' }).route?.service).to.equal('my');
    expect(explainUrl(t, 'tcp://other.example.com:443', { strategy: 'wrr' }).route).to.equal(null);
  });
});

describe('explain: URL parsing', () => {
  const http: [string, { host: string; path: string; tls: boolean }][] = [
    ['http://example.com/a/b?q=1#f', { host: 'example.com', path: '/a/b', tls: false }],
    ['https://example.com:8443/', { host: 'example.com:8443', path: '/', tls: true }],
    ['http://example.com', { host: 'example.com', path: '/', tls: false }],
    ['http://example.com?x', { host: 'example.com', path: '/', tls: false }],
    ['http://user:pw@example.com/x', { host: 'example.com', path: '/x', tls: false }],
    ['/api/x', { host: '', path: '/api/x', tls: false }],
    ['example.com/api', { host: 'example.com', path: '/api', tls: false }],
    ['HTTPS://Example.com/A', { host: 'Example.com', path: '/A', tls: true }],
    ['ws://chat.example.com/socket', { host: 'chat.example.com', path: '/socket', tls: false }],
    ['http://[::1]:8080/x', { host: '[::1]:8080', path: '/x', tls: false }],
    ['http://x/a%2Fb', { host: 'x', path: '/a%2Fb', tls: false }],
  ];
  for (const [url, req] of http) {
    it(`parses ${url}`, () => {
      expect(parseExplainUrl(url)).to.deep.equal({ kind: 'http', req });
    });
  }

  it('parses tcp URLs', () => {
    expect(parseExplainUrl('tcp://DB.local:5432')).to.deep.equal({
      kind: 'tcp',
      host: 'db.local',
      port: 5432,
      sniOnly: false,
    });
    expect(parseExplainUrl('tcp://:5432')).to.deep.equal({
      kind: 'tcp',
      host: '',
      port: 5432,
      sniOnly: false,
    });
    expect(parseExplainUrl('tcp+sni://a.b:443')).to.deep.equal({
      kind: 'tcp',
      host: 'a.b',
      port: 443,
      sniOnly: true,
    });
  });

  const bad: [string, RegExp][] = [
    ['', /empty URL/],
    ['   ', /empty URL/],
    ['ftp://x/', /unsupported scheme ftp:\/\//],
    ['tcp://db.local', /need host:port/],
    ['tcp://db.local:99999', /need host:port/],
  ];
  for (const [url, re] of bad) {
    it(`rejects ${JSON.stringify(url)}`, () => {
      expect(parseExplainUrl(url)).to.be.a('string').that.match(re);
    });
  }
});
