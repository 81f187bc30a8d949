import { readFileSync } from 'node:fs';
import { expect } from 'chai';
import fc from 'fast-check';
import {
  hostGlobMatches,
  isHostGlob,
  normalizeHost,
  sortHostPatterns,
  stripDefaultPort,
} from '../../routing/host.ts';
import { compileHttpRouter, routeHostKey } from '../../routing/http-router.ts';
import { compareRoutePathsDescending, pathMatches } from '../../routing/matchers.ts';
import { parseRouteCommands } from '../../routing/route-command.ts';
import { buildTableFromCommands } from '../../routing/table.ts';
import type { HttpRequestInfo, PathMatcher, Route, RouteOptions, RouteTarget } from '../../routing/types.ts';

// ---------------------------------------------------------------------------------------------
// A tiny stand-in for the table builder: fabio's `route add` / `route del` semantics (route/table.go
// addRoute, delRoute), enough for the lookup vectors. Weights and tags are ignored.

interface LookupVector {
  id: number;
  name: string;
  matcher: PathMatcher;
  globMatching: boolean;
  request: { host: string; path: string; tls?: boolean; forwardedProto?: string };
  table: string;
  expected: null | { service: string; target: string; redirect_code?: number; redirect_url?: string };
  notes: string;
}

const reAdd =
  /^route\s+add\s+(\S+)\s+(\S+)\s+(\S+)(?:\s+weight\s+\S+)?(?:\s+tags\s+"[^"]*")?(?:\s+opts\s+"([^"]*)")?$/;
const reDel = /^route\s+del\s+(\S+)(?:\s+(\S+)(?:\s+(\S+))?)?$/;

function splitSrc(src: string): { hostKey: string; path: string } {
  const slash = src.indexOf('/');
  if (slash < 0) return { hostKey: src.toLowerCase(), path: '/' };
  return { hostKey: src.slice(0, slash).toLowerCase(), path: src.slice(slash) };
}

function makeTarget(service: string, dst: string, rawOpts: Record<string, string>): RouteTarget {
  const opts: { -readonly [K in keyof RouteOptions]: RouteOptions[K] } = { proto: 'http' };
  if (rawOpts.redirect !== undefined) opts.redirectCode = Number(rawOpts.redirect);
  if (rawOpts.strip !== undefined) opts.strip = rawOpts.strip;
  if (rawOpts.prepend !== undefined) opts.prepend = rawOpts.prepend;
  if (rawOpts.matcher !== undefined) opts.matcher = rawOpts.matcher as PathMatcher;
  const m = /^(\w+):\/\/([^/?]*)(\/[^?]*)?(\?.*)?$/.exec(dst);
  const host = m?.[2] ?? '';
  const [hostname = host, portText = ''] = host.split(':');
  return {
    key: `${service}|${dst}|`,
    service,
    dst,
    url: {
      protocol: `${m?.[1] ?? 'http'}:`,
      hostname,
      port: portText === '' ? 80 : Number(portText),
      host,
      pathname: m?.[3] ?? '',
      search: m?.[4] ?? '',
    },
    tags: [],
    fixedWeight: 0,
    instanceWeight: 1,
    share: 1,
    weight: 1,
    opts,
    rawOpts,
  };
}

function parseOpts(text: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const f of (text ?? '').split(/\s+/)) {
    if (f === '') continue;
    const eq = f.indexOf('=');
    if (eq < 0) out[f] = '';
    else out[f.slice(0, eq)] = f.slice(eq + 1);
  }
  return out;
}

/** `route add|del` text -> HTTP routes, the way fabio's NewTable groups them. */
function routesFromCommands(text: string): Route[] {
  const hosts = new Map<string, Map<string, RouteTarget[]>>();
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '') continue;
    const add = reAdd.exec(line);
    if (add !== null) {
      const [, service = '', src = '', dst = '', opts] = add;
      const { hostKey, path } = splitSrc(src);
      let paths = hosts.get(hostKey);
      if (paths === undefined) {
        paths = new Map();
        hosts.set(hostKey, paths);
      }
      const targets = paths.get(path) ?? [];
      targets.push(makeTarget(service, dst, parseOpts(opts)));
      paths.set(path, targets);
      continue;
    }
    const del = reDel.exec(line);
    if (del === null) throw new Error(`test helper cannot parse: ${line}`);
    const [, service = '', src, dst] = del;
    const keep = (t: RouteTarget) => !(t.service === service && (dst === undefined || t.dst === dst));
    if (src === undefined) {
      for (const paths of hosts.values()) for (const [p, ts] of paths) paths.set(p, ts.filter(keep));
    } else {
      const { hostKey, path } = splitSrc(src);
      const ts = hosts.get(hostKey)?.get(path);
      if (ts !== undefined) hosts.get(hostKey)?.set(path, ts.filter(keep));
    }
  }
  const routes: Route[] = [];
  for (const [hostKey, paths] of hosts) {
    for (const [path, targets] of paths) {
      if (targets.length === 0) continue; // fabio drops routes without targets
      const colon = hostKey.lastIndexOf(':');
      const port =
        colon >= 0 && /^\d+$/.test(hostKey.slice(colon + 1)) ? Number(hostKey.slice(colon + 1)) : 0;
      routes.push({
        src: hostKey + path,
        host: hostKey,
        path,
        port,
        proto: 'http',
        targets,
        starved: [],
        totalWeight: targets.length,
      });
    }
  }
  return routes;
}

function request(r: LookupVector['request']): HttpRequestInfo {
  return {
    host: r.host,
    path: r.path,
    ...(r.tls !== undefined ? { tls: r.tls } : {}),
    ...(r.forwardedProto !== undefined ? { forwardedProto: r.forwardedProto } : {}),
  };
}

// ---------------------------------------------------------------------------------------------
// A literal, linear transcription of fabio's Lookup, used as the oracle for the compiled router.

function referenceLookup(
  routes: readonly Route[],
  opts: { matcher: PathMatcher; globMatching: boolean },
  req: HttpRequestInfo,
): Route | undefined {
  const tls = req.tls === true;
  const host = normalizeHost(req.host, tls);
  const byHost = new Map<string, Route[]>();
  for (const r of routes) {
    const k = routeHostKey(r);
    byHost.set(k, [...(byHost.get(k) ?? []), r]);
  }
  const matching = [...byHost.keys()].filter((p) => {
    if (p === '') return false;
    const n = stripDefaultPort(p, tls);
    return opts.globMatching && isHostGlob(n) ? hostGlobMatches(n, host) : n === host;
  });
  for (const h of [...sortHostPatterns(matching), '']) {
    const list = (byHost.get(h) ?? []).slice().sort((a, b) => compareRoutePathsDescending(a.path, b.path));
    const r = list.find((x) => pathMatches(x.targets[0]?.opts.matcher ?? opts.matcher, x.path, req.path));
    if (r !== undefined && r.targets.length > 0) {
      const t = r.targets[0] as RouteTarget;
      if (t.opts.redirectCode !== undefined && req.forwardedProto !== undefined) {
        // Only the plain `scheme://host/path` redirect form is generated by the property test.
        const m = /^(\w+):\/\/([^/]+)(\/.*)$/.exec(t.dst);
        if (m !== null && m[1] === req.forwardedProto && m[2] === req.host && m[3] === req.path) continue;
      }
      return r;
    }
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------

const fixture = JSON.parse(
  readFileSync(new URL('./fixtures/lookup-fabio-vectors.json', import.meta.url), 'utf8'),
) as { vectors: LookupVector[] };

/**
 * Vectors where Cairn deliberately differs from fabio, by id: the expected result Cairn gives
 * instead, and why.
 */
const deliberateDifferences: Record<number, { expected: LookupVector['expected']; reason: string }> = {
  36: {
    expected: { service: 'svc', target: 'http://foo.com:1000' },
    reason:
      'with glob matching disabled fabio compares the request Host without lowercasing it, so ABC.COM ' +
      'misses abc.com; Cairn always lowercases (host names are case-insensitive, DESIGN.md section 5)',
  },
};

function expectRoute(route: Route | undefined, expected: LookupVector['expected']): void {
  if (expected === null) {
    expect(route, 'no route expected').to.equal(undefined);
    return;
  }
  expect(route, 'a route expected').to.not.equal(undefined);
  const t = route?.targets[0];
  expect({ service: t?.service, target: t?.dst }).to.deep.equal({
    service: expected.service,
    target: expected.target,
  });
  // redirect_url is the proxy's business (suite redirect_url); the route only carries the code.
  expect(t?.opts.redirectCode).to.equal(expected.redirect_code);
}

describe('routing/http-router', () => {
  describe('fabio suite lookup (all vectors)', () => {
    it('has all 63 vectors', () => {
      expect(fixture.vectors).to.have.length(63);
    });
    for (const v of fixture.vectors) {
      const diff = deliberateDifferences[v.id];
      const title = `#${v.id} ${v.name}${v.request.tls ? ' (tls)' : ''}${v.request.forwardedProto ? ` (xfp ${v.request.forwardedProto})` : ''}`;
      it(diff === undefined ? title : `${title} [deliberate difference]`, () => {
        const opts = { matcher: v.matcher, globMatching: v.globMatching };
        const req = request(v.request);
        const expected = diff === undefined ? v.expected : diff.expected;
        // Through the real table builder (routing/table.ts), as the proxy uses it...
        const { commands, problems } = parseRouteCommands(v.table);
        const table = buildTableFromCommands(commands, opts, { problems });
        expect(table.problems, 'the vector table builds cleanly').to.deep.equal([]);
        const route = table.http.lookup(req);
        expectRoute(route, expected);
        expect(table.http.explain(req).route, 'explain agrees with lookup').to.equal(route);
        // ...and through this file's minimal builder, so the router is also checked on its own.
        const own = compileHttpRouter(routesFromCommands(v.table), opts).lookup(req);
        expectRoute(own, expected);
      });
    }
  });

  describe('redirect routes', () => {
    const table = [
      'route add redir *:80/ https://$host$path opts "redirect=301"',
      'route add app / http://app:1/',
    ].join('\n');
    const router = compileHttpRouter(routesFromCommands(table), { matcher: 'prefix', globMatching: true });

    it('redirects plain HTTP to HTTPS through a *:80 glob', () => {
      expect(router.lookup({ host: 'c.com', path: '/baz' })?.targets[0]?.service).to.equal('redir');
      expect(
        router.lookup({ host: 'c.com', path: '/baz', forwardedProto: 'http' })?.targets[0]?.service,
      ).to.equal('redir');
    });
    it('skips a redirect to the same scheme, host and path (behind a TLS terminator) and falls through', () => {
      const req = { host: 'c.com', path: '/baz', forwardedProto: 'https' };
      expect(router.lookup(req)?.targets[0]?.service).to.equal('app');
      const ex = router.explain(req);
      expect(ex.route?.targets[0]?.service).to.equal('app');
      expect(ex.rejected.find((r) => r.src === '*:80/')?.reason).to.match(/redirect skipped/);
    });
    it('does not apply a :80 route to TLS requests', () => {
      expect(router.lookup({ host: 'c.com', path: '/baz', tls: true })?.targets[0]?.service).to.equal('app');
    });
    it('honours strip and prepend when deciding whether a redirect loops', () => {
      const r = compileHttpRouter(
        routesFromCommands(
          [
            'route add redir c.com/old https://c.com/new$path opts "redirect=301 strip=/old"',
            'route add app / http://app:1/',
          ].join('\n'),
        ),
        { matcher: 'prefix', globMatching: true },
      );
      // /old/x -> https://c.com/new/x: a different path, so the redirect applies.
      expect(
        r.lookup({ host: 'c.com', path: '/old/x', forwardedProto: 'https' })?.targets[0]?.service,
      ).to.equal('redir');
    });
    it('returns no route when the only candidate is a looping redirect (fabio returns the redirect)', () => {
      const r = compileHttpRouter(
        routesFromCommands('route add redir / https://$host$path opts "redirect=301"'),
        {
          matcher: 'prefix',
          globMatching: true,
        },
      );
      expect(r.lookup({ host: 'c.com', path: '/x', forwardedProto: 'https' })).to.equal(undefined);
      expect(r.lookup({ host: 'c.com', path: '/x', forwardedProto: 'http' })?.targets[0]?.service).to.equal(
        'redir',
      );
    });
  });

  describe('host selection', () => {
    it('tries a route with an explicit :80 before the same host without one (issue 656)', () => {
      const r = compileHttpRouter(
        routesFromCommands(
          ['route add a example.com/ http://plain:1/', 'route add b example.com:80/ http://port80:1/'].join(
            '\n',
          ),
        ),
        { matcher: 'prefix', globMatching: false },
      );
      expect(r.lookup({ host: 'example.com', path: '/' })?.targets[0]?.service).to.equal('b');
      expect(r.lookup({ host: 'example.com:80', path: '/' })?.targets[0]?.service).to.equal('b');
      expect(r.lookup({ host: 'example.com', path: '/', tls: true })?.targets[0]?.service).to.equal('a');
    });
    it('matches non-suffix globs (api.*.com, {a,b}.x.com, ?)', () => {
      const r = compileHttpRouter(
        routesFromCommands(
          [
            'route add mid api.*.com/ http://mid:1/',
            'route add alt {a,b}.x.com/ http://alt:1/',
            'route add one ?.y.com/ http://one:1/',
          ].join('\n'),
        ),
        { matcher: 'prefix', globMatching: true },
      );
      expect(r.lookup({ host: 'api.eu.com', path: '/' })?.targets[0]?.service).to.equal('mid');
      expect(r.lookup({ host: 'b.x.com', path: '/' })?.targets[0]?.service).to.equal('alt');
      expect(r.lookup({ host: 'q.y.com', path: '/' })?.targets[0]?.service).to.equal('one');
      expect(r.lookup({ host: 'qq.y.com', path: '/' })).to.equal(undefined);
    });
    it('treats glob patterns literally when glob matching is off', () => {
      const r = compileHttpRouter(routesFromCommands('route add g *.a.com/ http://g:1/'), {
        matcher: 'prefix',
        globMatching: false,
      });
      expect(r.lookup({ host: 'x.a.com', path: '/' })).to.equal(undefined);
      expect(r.lookup({ host: '*.a.com', path: '/' })?.targets[0]?.service).to.equal('g');
    });
    it('moves on to the next host when the first matching route has no target (fabio t.lookup)', () => {
      const routes = routesFromCommands(
        ['route add a a.com/ http://a:1/', 'route add h / http://h:1/'].join('\n'),
      );
      const emptied = routes.map((r) => (r.host === 'a.com' ? { ...r, targets: [] } : r));
      const r = compileHttpRouter(emptied, { matcher: 'prefix', globMatching: true });
      expect(r.lookup({ host: 'a.com', path: '/x' })?.targets[0]?.service).to.equal('h');
    });
    it('ignores TCP routes', () => {
      const routes = routesFromCommands('route add h / http://h:1/');
      const tcp: Route = {
        ...(routes[0] as Route),
        src: ':3306',
        host: '',
        path: '',
        port: 3306,
        proto: 'tcp',
      };
      const r = compileHttpRouter([tcp, ...routes], { matcher: 'prefix', globMatching: true });
      expect(r.lookup({ host: '', path: '/' })?.src).to.equal('/');
    });
  });

  describe('path matchers in the compiled router', () => {
    const table = [
      'route add root / http://root:1/',
      'route add api /api http://api:1/',
      'route add v1 /api/v1/ http://v1:1/',
      'route add Up /Foo/bar http://upper:1/',
      'route add lo /foo http://lower:1/',
    ].join('\n');
    const build = (matcher: PathMatcher) =>
      compileHttpRouter(routesFromCommands(table), { matcher, globMatching: true });
    const svc = (matcher: PathMatcher, path: string) =>
      build(matcher).lookup({ host: '', path })?.targets[0]?.service;

    it('prefix: longest string prefix, /api matches /apix', () => {
      expect(svc('prefix', '/apix')).to.equal('api');
      expect(svc('prefix', '/api/v1/x')).to.equal('v1');
      expect(svc('prefix', '/api/v1')).to.equal('api');
      expect(svc('prefix', '/FOO/bar')).to.equal('root');
    });
    it('segment: element-wise, /api does not match /apix, /api/v1/ matches /api/v1', () => {
      expect(svc('segment', '/apix')).to.equal('root');
      expect(svc('segment', '/api')).to.equal('api');
      expect(svc('segment', '/api/')).to.equal('api');
      expect(svc('segment', '/api/v1')).to.equal('v1');
      expect(svc('segment', '/api/v1x')).to.equal('api');
      expect(svc('segment', '/api/v1/x')).to.equal('v1');
    });
    it("iprefix: fabio's descending order of the paths as written (/foo before /Foo/bar)", () => {
      expect(svc('iprefix', '/FOO/BAR/x')).to.equal('lo');
      expect(svc('iprefix', '/API/V1/x')).to.equal('v1');
      expect(svc('iprefix', '/fo')).to.equal('root');
    });
    it('iprefix: non-ASCII paths are lowercased before the walk', () => {
      const r = compileHttpRouter(routesFromCommands('route add u /ÄRGER http://u:1/'), {
        matcher: 'iprefix',
        globMatching: true,
      });
      expect(r.lookup({ host: '', path: '/ärger/x' })?.targets[0]?.service).to.equal('u');
      expect(r.lookup({ host: '', path: '/ÄRGERLICH' })?.targets[0]?.service).to.equal('u');
      expect(r.lookup({ host: '', path: '/arger' })).to.equal(undefined);
    });
    it('glob: whole path, first in descending path order', () => {
      const r = compileHttpRouter(
        routesFromCommands(
          [
            'route add any /** http://any:1/',
            'route add api /api/* http://api:1/',
            'route add img /img/*.png http://png:1/',
            'route add exact /api/health http://health:1/',
          ].join('\n'),
        ),
        { matcher: 'glob', globMatching: true },
      );
      const s = (path: string) => r.lookup({ host: '', path })?.targets[0]?.service;
      expect(s('/api/health')).to.equal('exact');
      expect(s('/api/x/y')).to.equal('api');
      expect(s('/img/a.png')).to.equal('img');
      expect(s('/img/a.jpg')).to.equal('any');
    });
    it('per-route matcher= overrides the global matcher', () => {
      const r = compileHttpRouter(
        routesFromCommands(
          ['route add root / http://root:1/', 'route add seg /api http://seg:1/ opts "matcher=segment"'].join(
            '\n',
          ),
        ),
        { matcher: 'prefix', globMatching: true },
      );
      expect(r.lookup({ host: '', path: '/apix' })?.targets[0]?.service).to.equal('root');
      expect(r.lookup({ host: '', path: '/api/x' })?.targets[0]?.service).to.equal('seg');
    });
  });

  describe('explain', () => {
    const main = fixture.vectors[0] as LookupVector;
    const router = compileHttpRouter(routesFromCommands(main.table), {
      matcher: 'prefix',
      globMatching: true,
    });
    const reasonOf = (req: HttpRequestInfo, src: string) =>
      router.explain(req).rejected.find((r) => r.src === src)?.reason;

    it('names the chosen route and why the others lost', () => {
      const req = { host: 'abc.com', path: '/foo/bar/x' };
      const ex = router.explain(req);
      expect(ex.route?.src).to.equal('abc.com/foo/bar/');
      expect(reasonOf(req, 'abc.com/foo/bar')).to.equal('shadowed by longer match /foo/bar/');
      expect(reasonOf(req, 'abc.com/')).to.equal('shadowed by longer match /foo/bar/');
      expect(reasonOf(req, '/')).to.equal('host-less route not used: host abc.com matched first');
      expect(reasonOf(req, '/foo')).to.equal('host-less route not used: host abc.com matched first');
      expect(reasonOf(req, '*.abc.com/')).to.match(/^host does not match/);
      expect(reasonOf(req, 'xyz.com:80/')).to.equal(undefined); // unrelated host: not a candidate
    });
    it('explains path mismatches and less specific glob hosts', () => {
      const req = { host: 'x.aaa.abc.com', path: '/foo/' };
      const ex = router.explain(req);
      expect(ex.route?.src).to.equal('*.aaa.abc.com/');
      expect(reasonOf(req, '*.abc.com/foo/')).to.equal(
        'glob host *.abc.com less specific than *.aaa.abc.com',
      );
      expect(reasonOf(req, '*.bbb.abc.com/')).to.match(/glob \*\.bbb\.abc\.com/);
      const miss = { host: 'z.abc.com', path: '/bar' };
      expect(reasonOf(miss, 'z.abc.com/foo/')).to.equal('path /bar does not match prefix /foo/');
    });
    it('explains a port that keeps a route from matching', () => {
      const req = { host: 'xyz.com', path: '/', tls: true };
      expect(router.explain(req).route?.src).to.equal('/');
      expect(reasonOf(req, 'xyz.com:80/')).to.match(/:80 is dropped only on plain HTTP/);
    });
    it('returns no route and every candidate when nothing matches', () => {
      const r = compileHttpRouter(routesFromCommands('route add svc /api http://api:1'), {
        matcher: 'prefix',
        globMatching: true,
      });
      expect(r.explain({ host: '', path: '/ap' })).to.deep.equal({
        route: undefined,
        rejected: [{ src: '/api', reason: 'path /ap does not match prefix /api' }],
      });
    });
  });

  describe('compiled lookup equals the linear fabio algorithm (property)', () => {
    // Small alphabets, so that tables often hold paths that are prefixes of each other, differ only
    // in case, or overlap as globs.
    const segment = fc.constantFrom('api', 'foo', 'Foo', '*', '');
    const path = fc.array(segment, { minLength: 0, maxLength: 2 }).map((s) => `/${s.join('/')}`);
    const host = fc.oneof(
      { arbitrary: fc.constantFrom('', 'a.com', '*.a.com'), weight: 4 },
      {
        arbitrary: fc.constantFrom('b.a.com', 'x.b.a.com', '*.b.a.com', 'a.com:80', 'c.com:443', '*'),
        weight: 1,
      },
    );
    const route = fc.tuple(
      host,
      path,
      fc.constantFrom<PathMatcher | undefined>(undefined, undefined, 'prefix', 'iprefix', 'segment', 'glob'),
    );
    const toCommands = (rs: [string, string, PathMatcher | undefined][]) =>
      rs.map(([h, p, m], i) => `route add s${i} ${h}${p} http://t${i}:1/${m ? ` opts "matcher=${m}"` : ''}`);
    const reqHost = fc.constantFrom(
      'a.com',
      'A.COM:80',
      'b.a.com',
      'x.b.a.com',
      'c.com',
      'c.com:443',
      'zzz',
      '',
    );
    const reqPath = fc
      .array(fc.constantFrom('api', 'Api', 'foo', 'FOO', 'Foo', 'apix', ''), { maxLength: 3 })
      .map((s) => `/${s.join('/')}`);

    it('agrees on random tables and requests', () => {
      fc.assert(
        fc.property(
          fc.array(route, { minLength: 1, maxLength: 25 }),
          fc.constantFrom<PathMatcher>('prefix', 'iprefix', 'segment', 'glob'),
          fc.boolean(),
          fc.array(fc.tuple(reqHost, reqPath, fc.boolean()), { minLength: 1, maxLength: 10 }),
          (rs, matcher, globMatching, reqs) => {
            // A repeated host+path becomes one route with several targets, as in fabio's table.
            const routes = routesFromCommands(toCommands(rs).join('\n'));
            const opts = { matcher, globMatching };
            const router = compileHttpRouter(routes, opts);
            for (const [h, p, tls] of reqs) {
              const req = { host: h, path: p, tls };
              const got = router.lookup(req);
              expect(got, `${h}${p} tls=${tls}`).to.equal(referenceLookup(routes, opts, req));
              expect(router.explain(req).route).to.equal(got);
            }
          },
        ),
        { numRuns: 400 },
      );
    });
  });

  describe('size', () => {
    it('compiles 10,000 routes and answers from the right one', () => {
      const routes: Route[] = [];
      for (let i = 0; i < 10_000; i++) {
        const t = makeTarget(`svc${i}`, `http://10.0.${i >> 8}.${i & 255}:8080/`, {});
        routes.push({
          src: `/svc${i}/api`,
          host: '',
          path: `/svc${i}/api`,
          port: 0,
          proto: 'http',
          targets: [t],
          starved: [],
          totalWeight: 1,
        });
      }
      const r = compileHttpRouter(routes, { matcher: 'prefix', globMatching: true });
      expect(r.lookup({ host: 'any', path: '/svc4242/api/x' })?.targets[0]?.service).to.equal('svc4242');
      expect(r.lookup({ host: 'any', path: '/svc4242/ap' })).to.equal(undefined);
    });
  });
});
