// Redirect locations, checked against cases recorded from fabio (fixtures/redirect-fabio-vectors.json,
// suites `redirect_url` and `proxy_redirect`). Each case also carries the route's dst/options and
// the request's host/path/query split out of the recorded text ("derived"); for proxy_redirect the
// route is the one fabio's lookup picks (longest matching prefix) and the status comes from
// parseRouteOptions' redirectCode.

import { expect } from 'chai';
import fc from 'fast-check';
import { parseRouteOptions } from '../../routing/options.ts';
import { redirectLocation } from '../../routing/redirect.ts';
import vectors from './fixtures/redirect-fabio-vectors.json' with { type: 'json' };

interface Request {
  host: string;
  path: string;
  query: string;
}

interface RedirectUrlVector {
  name: string;
  expected: string;
  derived: { dst: string; opts: Record<string, string>; request: Request };
}

interface ProxyRedirectVector {
  name: string;
  expected: { status: number; location: string };
  derived: { route: { src: string; dst: string; opts: Record<string, string> }; request: Request };
}

function stripPrepend(opts: Record<string, string>): { strip?: string; prepend?: string } {
  const o: { strip?: string; prepend?: string } = {};
  if (opts.strip !== undefined) o.strip = opts.strip;
  if (opts.prepend !== undefined) o.prepend = opts.prepend;
  return o;
}

describe('redirect: fabio redirect_url vectors', () => {
  for (const v of vectors.redirect_url as RedirectUrlVector[]) {
    it(v.name, () => {
      const d = v.derived;
      expect(redirectLocation(d.dst, d.request, stripPrepend(d.opts))).to.equal(v.expected);
    });
  }
});

describe('redirect: fabio proxy_redirect vectors (location and status)', () => {
  for (const v of vectors.proxy_redirect as ProxyRedirectVector[]) {
    it(v.name, () => {
      const { route, request } = v.derived;
      const parsed = parseRouteOptions(route.opts, route.dst);
      expect(parsed.errors).to.deep.equal([]);
      expect(parsed.opts.redirectCode).to.equal(v.expected.status);
      expect(redirectLocation(route.dst, request, parsed.opts)).to.equal(v.expected.location);
    });
  }
});

describe('redirect: details', () => {
  const req = (path: string, query = '', host = 'foo.com'): Request => ({ host, path, query });

  it('accepts the query with or without its leading "?"', () => {
    expect(redirectLocation('http://b.com$path', req('/a', '?x=1'), {})).to.equal('http://b.com/a?x=1');
    expect(redirectLocation('http://b.com$path', req('/a', 'x=1'), {})).to.equal('http://b.com/a?x=1');
  });

  it('keeps the destination query over the request query', () => {
    expect(redirectLocation('http://b.com/$path?k=v', req('/a', 'x=1'), {})).to.equal('http://b.com/a?k=v');
  });

  it('keeps the host port and drops user info and fragment of the destination', () => {
    expect(redirectLocation('https://u:p@$host:8443/x#frag', req('/a', '', 'foo.com'), {})).to.equal(
      'https://foo.com:8443/x',
    );
  });

  it('strips only a matching prefix and prepends after stripping', () => {
    expect(redirectLocation('http://b.com/$path', req('/other/x'), { strip: '/api' })).to.equal(
      'http://b.com/other/x',
    );
    expect(redirectLocation('http://b.com/$path', req('/api'), { strip: '/api', prepend: '/v2' })).to.equal(
      'http://b.com/v2',
    );
    expect(redirectLocation('http://b.com/$path', req('/api/x'), { strip: '', prepend: '' })).to.equal(
      'http://b.com/api/x',
    );
  });

  it('replaces only the first $path and $host (as fabio)', () => {
    expect(redirectLocation('http://$host.$host/$path/$path', req('/a', '', 'h'), {})).to.equal(
      'http://h.$host/a/$path',
    );
  });

  it('percent-encodes what may not stand in a Location header, keeps existing escapes', () => {
    expect(redirectLocation('http://b.com$path', req('/a b"é\u0001#%41', 'q=<x>'), {})).to.equal(
      'http://b.com/a%20b%22%C3%A9%01%23%41?q=%3Cx%3E',
    );
    expect(redirectLocation('http://b.com$path', req('/\ud83d\ude00\ud800'), {})).to.equal(
      'http://b.com/%F0%9F%98%80%EF%BF%BD',
    );
    expect(redirectLocation('https://$host/', req('/', '', 'ev\til.com'), {})).to.equal(
      'https://ev%09il.com/',
    );
  });

  it('adds the leading slash a stripped path lost', () => {
    expect(redirectLocation('http://b.com$path', req('/apix'), { strip: '/api' })).to.equal('http://b.com/x');
  });

  it('property: never throws and always yields a header-safe value', () => {
    const pieces = fc.constantFrom('http://', 'b.com', '$host', '$path', '/', '?', '#', '@', 'x', ':80');
    const dst = fc.oneof(
      fc.string(),
      fc.array(pieces, { maxLength: 8 }).map((a) => a.join('')),
    );
    const opt = fc.option(fc.string({ maxLength: 5 }), { nil: undefined });
    fc.assert(
      fc.property(
        dst,
        fc.string(),
        fc.string(),
        fc.string(),
        opt,
        opt,
        (d, host, path, query, strip, pre) => {
          const o: { strip?: string; prepend?: string } = {};
          if (strip !== undefined) o.strip = strip;
          if (pre !== undefined) o.prepend = pre;
          const loc = redirectLocation(d, { host, path, query }, o);
          expect(loc).to.be.a('string');
          // Request-provided text never brings control characters into the header.
          if (!/[\u0000-\u001f\u007f]/.test(d + (strip ?? '') + (pre ?? ''))) {
            expect(/[\u0000-\u001f\u007f]/.test(loc)).to.equal(false);
          }
        },
      ),
      { numRuns: 3000 },
    );
  });
});
