// Request path normalisation, strip/prepend and query splitting, checked against fabio's recorded
// behaviour (fixtures/fabio-path-normalization.json: suite `path_normalization` = fabio HEAD's
// TestProxyPathNormalization, `proxy_forwarding` strip/prepend, and the live-binary cases that
// show the upstream path). The upstream target is built the way the proxy does it:
// splitPathQuery -> normalizeRequestPath(path) -> rewritePath(strip, prepend) -> + query.

import { expect } from 'chai';
import fc from 'fast-check';
import { buildUpstreamHeaders } from '../../lib/proxy/forward-headers.ts';
import { normalizeRequestPath, rewritePath, splitPathQuery } from '../../lib/proxy/request-path.ts';
import vectors from './fixtures/fabio-path-normalization.json' with { type: 'json' };

function upstreamTarget(requestTarget: string, strip?: string, prepend?: string): string | undefined {
  const [path, query] = splitPathQuery(requestTarget);
  const normalized = normalizeRequestPath(path);
  if (normalized === undefined) return undefined;
  return rewritePath(normalized, strip, prepend) + query;
}

/** `opts "strip=/foo"` / `opts "prepend=/base"` from a route command or a table line. */
function routeOpt(routes: string, key: 'strip' | 'prepend'): string | undefined {
  const at = routes.indexOf(`${key}=`);
  if (at < 0) return undefined;
  const rest = routes.slice(at + key.length + 1);
  const end = rest.search(/[\s"]/);
  return end < 0 ? rest : rest.slice(0, end);
}

/** The table line of the live binary whose source path the request hits. */
function liveRouteLine(table: string, requestPath: string): string {
  const lines = table.split('\n').filter((l) => {
    const src = l.split(' ')[3] ?? '';
    return src.startsWith('/') && requestPath.startsWith(src);
  });
  lines.sort((a, b) => (b.split(' ')[3] ?? '').length - (a.split(' ')[3] ?? '').length);
  return lines[0] ?? '';
}

describe('request path: fabio vectors', () => {
  const byName = (suite: string) => vectors.filter((v) => v.suite === suite);

  it('has the expected vectors', () => {
    expect(byName('path_normalization')).to.have.length(5);
    expect(byName('proxy_forwarding')).to.have.length(2);
    expect(byName('live_binary')).to.have.length(4);
  });

  for (const v of byName('path_normalization')) {
    const input = v.input as { request_path: string };
    const expected = v.expected as { upstream_path: string };
    it(`path_normalization: ${v.name}`, () => {
      expect(upstreamTarget(input.request_path)).to.equal(expected.upstream_path);
    });
  }

  for (const v of byName('proxy_forwarding')) {
    const input = v.input as { routes: string; request: string };
    const expected = v.expected as { upstream_request_uri: string };
    it(`proxy_forwarding: ${v.name}`, () => {
      const target = input.request.split(' ')[1] as string;
      const strip = routeOpt(input.routes, 'strip');
      const prepend = routeOpt(input.routes, 'prepend');
      expect(upstreamTarget(target, strip, prepend)).to.equal(expected.upstream_request_uri);
    });
  }

  for (const v of byName('live_binary')) {
    const input = v.input as { table: string; request: string };
    const expected = v.expected as { upstream_path: string; 'X-Forwarded-Prefix'?: string };
    it(`live_binary: ${v.name}`, () => {
      const target = input.request.split(' ')[1] as string;
      const line = liveRouteLine(input.table, target);
      const strip = routeOpt(line, 'strip');
      const prepend = routeOpt(line, 'prepend');
      expect(upstreamTarget(target, strip, prepend)).to.equal(expected.upstream_path);
      if (expected['X-Forwarded-Prefix'] !== undefined) {
        const headers = buildUpstreamHeaders([], {
          remoteAddress: '127.0.0.1',
          tls: false,
          httpVersion: '1.1',
          localPort: 9999,
          stripPrefix: strip,
        });
        const at = headers.findIndex((h) => h.toLowerCase() === 'x-forwarded-prefix');
        expect(headers[at + 1]).to.equal(expected['X-Forwarded-Prefix']);
      }
    });
  }
});

describe('normalizeRequestPath', () => {
  const cases: [string, string | undefined][] = [
    ['/', '/'],
    ['/a/b', '/a/b'],
    ['/a/./b', '/a/b'],
    ['/a/b/.', '/a/b'],
    ['/a/b/..', '/a'],
    ['/a/b/../', '/a/'],
    ['/..', '/'],
    ['/../../x', '/x'],
    ['//', '/'],
    ['///a///b///', '/a/b/'],
    ['/.well-known/acme', '/.well-known/acme'],
    ['/a/...', '/a/...'],
    ['/a/..b/c', '/a/..b/c'],
    ['/%2e%2E/x', '/x'],
    ['/a%2fb', '/a/b'],
    ['/a%20b', '/a%20b'],
    ['/a%41b', '/aAb'],
    ['/100%25', '/100%25'],
    ['/q%3Fx', '/q%3Fx'],
    ['/h%23x', '/h%23x'],
    ['/caf%c3%a9', '/caf%C3%A9'],
    ['/bin%ff', '/bin%FF'],
    ["/keep:@!$&'()*+,;=~-_./", "/keep:@!$&'()*+,;=~-_./"],
    ['/%', undefined],
    ['/%4', undefined],
    ['/%zz', undefined],
    ['/a%2', undefined],
    ['*', '*'],
    ['', ''],
  ];
  for (const [input, want] of cases) {
    it(`${JSON.stringify(input)} -> ${JSON.stringify(want)}`, () => {
      expect(normalizeRequestPath(input)).to.equal(want);
    });
  }

  it('returns the very same string on the fast path', () => {
    const p = '/api/v1/users/42/profile';
    expect(normalizeRequestPath(p)).to.equal(p);
    // Characters the client sent raw are not re-encoded on the fast path.
    expect(normalizeRequestPath('/a{b}')).to.equal('/a{b}');
  });

  it('re-encodes what may not appear raw once the slow path runs', () => {
    expect(normalizeRequestPath('/a{b}//c')).to.equal('/a%7Bb%7D/c');
    expect(normalizeRequestPath('/caf\u00e9/./x')).to.equal('/caf%C3%A9/x');
  });

  it('never throws and is idempotent on its output', () => {
    const pieces = ['/', '.', '%', '2', 'F', 'e', 'a', 'z', '?', '#', ' ', '\u00e9', '%2F', '%2e', '%25'];
    const pathChar = fc.constantFrom(...pieces);
    const path = fc.oneof(
      fc.string(),
      fc.array(pathChar, { maxLength: 30 }).map((cs) => `/${cs.join('')}`),
      fc.webPath(),
    );
    fc.assert(
      fc.property(path, (p) => {
        const once = normalizeRequestPath(p);
        if (once === undefined) return;
        expect(normalizeRequestPath(once)).to.equal(once);
        if (p.startsWith('/')) {
          expect(once.startsWith('/')).to.equal(true);
          expect(once.includes('//')).to.equal(false);
          expect(once.split('/').some((seg) => seg === '.' || seg === '..')).to.equal(false);
        }
      }),
      { numRuns: 2000 },
    );
  });
});

describe('rewritePath', () => {
  const cases: [string, string | undefined, string | undefined, string][] = [
    ['/strip/me/file', '/strip', undefined, '/me/file'],
    ['/strip/mex', '/strip', undefined, '/mex'],
    ['/stripx', '/strip', undefined, '/x'],
    ['/strip', '/strip', undefined, '/'],
    ['/other', '/strip', undefined, '/other'],
    ['/pre/x', undefined, '/base', '/base/pre/x'],
    ['/api/x', '/api', '/v2', '/v2/x'],
    ['/x', undefined, 'base', '/base/x'],
    ['/x', '', '', '/x'],
  ];
  for (const [path, strip, prepend, want] of cases) {
    it(`${path} strip=${strip} prepend=${prepend} -> ${want}`, () => {
      expect(rewritePath(path, strip, prepend)).to.equal(want);
    });
  }

  it('returns the input itself when there is nothing to do', () => {
    const p = '/a/b';
    expect(rewritePath(p, undefined, undefined)).to.equal(p);
    expect(rewritePath(p, '/zzz', undefined)).to.equal(p);
  });
});

describe('splitPathQuery', () => {
  it('splits at the first ? and keeps the ? with the query', () => {
    expect(splitPathQuery('/a/b?x=1&y=2?z')).to.deep.equal(['/a/b', '?x=1&y=2?z']);
    expect(splitPathQuery('/a?')).to.deep.equal(['/a', '?']);
    expect(splitPathQuery('/a')).to.deep.equal(['/a', '']);
    expect(splitPathQuery('?q')).to.deep.equal(['', '?q']);
  });

  it('path + query always reproduces the input', () => {
    fc.assert(
      fc.property(fc.string(), (url) => {
        const [path, query] = splitPathQuery(url);
        expect(path + query).to.equal(url);
        expect(path.includes('?')).to.equal(false);
      }),
    );
  });

  it('the query string is passed upstream byte for byte, the path normalised', () => {
    expect(upstreamTarget('/a//b/../c?x=%2F..%2F&y=//')).to.equal('/a/c?x=%2F..%2F&y=//');
    expect(upstreamTarget('/bad%zz?x=1')).to.equal(undefined);
  });
});
