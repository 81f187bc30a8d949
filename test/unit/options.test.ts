// Route option validation: every option of DESIGN.md section 3, good and bad values.
// errors = the route is skipped; warnings = the route applies but something was ignored.

import { expect } from 'chai';
import fc from 'fast-check';
import { formatRouteOptions, parseRouteOptions, protoFromDst } from '../../routing/options.ts';

const HTTP = 'http://10.0.0.1:8080/';

function check(raw: Record<string, string>, dst = HTTP) {
  return parseRouteOptions(raw, dst);
}

describe('options: proto', () => {
  const derived: [string, string][] = [
    ['http://a/', 'http'],
    ['https://a', 'https'],
    ['HTTPS://a', 'https'],
    ['tcp://a:1', 'tcp'],
    ['grpc://a:1', 'grpc'],
    ['grpcs://a:1', 'grpcs'],
    ['ftp://a', 'http'],
    ['a.com/x', 'http'],
    ['https://new.example.com$path', 'https'],
  ];
  for (const [dst, proto] of derived) {
    it(`defaults to ${proto} for ${dst}`, () => {
      expect(protoFromDst(dst)).to.equal(proto);
      expect(check({}, dst)).to.deep.equal({ opts: { proto }, errors: [], warnings: [] });
    });
  }

  for (const proto of ['http', 'https', 'tcp+sni', 'grpc', 'grpcs']) {
    it(`accepts proto=${proto}`, () => {
      const r = check({ proto });
      expect(r.errors).to.deep.equal([]);
      expect(r.warnings).to.deep.equal([]);
      expect(r.opts.proto).to.equal(proto);
    });
  }

  it('accepts proto=tcp with a tcp:// destination and proto=tcp+sni with either', () => {
    expect(check({ proto: 'tcp' }, 'tcp://a:1')).to.deep.equal({
      opts: { proto: 'tcp' },
      errors: [],
      warnings: [],
    });
    expect(check({ proto: 'tcp+sni' }, 'tcp://a:1').warnings).to.deep.equal([]);
  });

  it('warns when proto contradicts the destination scheme', () => {
    expect(check({ proto: 'tcp' }).warnings).to.deep.equal([
      `proto=tcp but dst "${HTTP}" is not a tcp:// address`,
    ]);
    expect(check({ proto: 'https' }, 'tcp://a:1').warnings).to.deep.equal([
      'proto=https but dst "tcp://a:1" is a tcp:// address',
    ]);
  });

  for (const bad of ['udp', 'HTTP', 'tcp+tls']) {
    it(`rejects proto=${bad}`, () => {
      expect(check({ proto: bad }).errors).to.deep.equal([
        `proto must be one of http, https, tcp, tcp+sni, grpc, grpcs (got "${bad}")`,
      ]);
    });
  }
});

describe('options: strip, prepend, check', () => {
  it('accepts paths starting with /', () => {
    expect(check({ strip: '/api', prepend: '/v2', check: '/health' }).opts).to.deep.equal({
      proto: 'http',
      strip: '/api',
      prepend: '/v2',
      check: '/health',
    });
  });
  it('rejects paths without a leading /', () => {
    expect(check({ strip: 'api', prepend: 'v2/', check: 'health' }).errors).to.deep.equal([
      `strip must start with '/' (got "api")`,
      `prepend must start with '/' (got "v2/")`,
      `check must be a path starting with '/' (got "health")`,
    ]);
  });
});

describe('options: tlsskipverify', () => {
  it('true and false', () => {
    expect(check({ tlsskipverify: 'true' }).opts.tlsSkipVerify).to.equal(true);
    expect(check({ tlsskipverify: 'false' }).opts.tlsSkipVerify).to.equal(false);
  });
  it('anything else means verify, with a warning (fabio: only "true" skips)', () => {
    const r = check({ tlsskipverify: 'yes' });
    expect(r.errors).to.deep.equal([]);
    expect(r.opts).to.not.have.property('tlsSkipVerify');
    expect(r.warnings).to.deep.equal([
      'tlsskipverify must be true or false (got "yes"); certificates are verified',
    ]);
  });
});

describe('options: host, auth, register, grpcservername', () => {
  it('take any value', () => {
    const r = check({ host: 'dst', auth: 'basic-1', register: 'api', grpcservername: 'my.service' });
    expect(r).to.deep.equal({
      opts: { proto: 'http', host: 'dst', auth: 'basic-1', register: 'api' },
      errors: [],
      warnings: [],
    });
    expect(check({ host: 'example.com:8080' }).opts.host).to.equal('example.com:8080');
  });
});

describe('options: redirect', () => {
  for (const code of [300, 301, 302, 303, 307, 308]) {
    it(`accepts redirect=${code}`, () => {
      expect(check({ redirect: String(code) }, 'https://$host$path').opts.redirectCode).to.equal(code);
    });
  }
  for (const bad of ['200', '309', '399', '3xx', '301,https://x.com', '+301', ' 301']) {
    it(`rejects redirect=${bad}`, () => {
      expect(check({ redirect: bad }).errors).to.deep.equal([
        `redirect must be a redirect status code from 300 to 308 (got "${bad}")`,
      ]);
    });
  }
});

describe('options: allow / deny', () => {
  it('parses the rules', () => {
    const r = check({ allow: 'ip:10.0.0.0/8,ip:fe80::/10' });
    expect(r.errors).to.deep.equal([]);
    expect(r.opts.allow?.map((c) => c.text)).to.deep.equal(['10.0.0.0/8', 'fe80::/10']);
    expect(check({ deny: 'ip:1.2.3.4' }).opts.deny?.map((c) => c.bits)).to.deep.equal([32]);
  });
  it('reports fabio errors, naming the option', () => {
    expect(check({ deny: 'xxx:10.0.0.0/8' }).errors).to.deep.equal(['deny: unknown access item type: xxx']);
  });
  it('rejects allow and deny together with fabio message', () => {
    expect(check({ allow: 'ip:1.2.3.4', deny: 'ip:5.6.7.8' }).errors).to.deep.equal([
      'specifying allow and deny on the same route is not supported',
    ]);
  });
});

describe('options: weight (fabio fixed weight, consumed from tags)', () => {
  it('accepts a number silently', () => {
    expect(check({ weight: '0.25' })).to.deep.equal({ opts: { proto: 'http' }, errors: [], warnings: [] });
    expect(check({ weight: '1e-2' }).warnings).to.deep.equal([]);
  });
  it('warns about a non-number (fabio ignores weight in opts)', () => {
    expect(check({ weight: 'abc' }).warnings).to.deep.equal(['weight must be a number (got "abc"); ignored']);
  });
});

describe('options: Cairn lbweight, sticky, retries, matcher', () => {
  it('lbweight becomes instanceWeight', () => {
    expect(check({ lbweight: '3' })).to.deep.equal({
      opts: { proto: 'http' },
      errors: [],
      warnings: [],
      instanceWeight: 3,
    });
    expect(check({ lbweight: '1000000' }).instanceWeight).to.equal(1000000);
  });
  for (const bad of ['0', '-1', '2.5', 'x', '1000001', '1e3']) {
    it(`rejects lbweight=${bad}`, () => {
      expect(check({ lbweight: bad }).errors).to.deep.equal([
        `lbweight must be an integer from 1 to 1000000 (got "${bad}")`,
      ]);
    });
  }

  it('sticky=cookie|ip', () => {
    expect(check({ sticky: 'cookie' }).opts.sticky).to.equal('cookie');
    expect(check({ sticky: 'ip' }).opts.sticky).to.equal('ip');
    expect(check({ sticky: 'session' }).errors).to.deep.equal([
      'sticky must be cookie or ip (got "session")',
    ]);
  });

  it('retries=0..10', () => {
    expect(check({ retries: '0' }).opts.retries).to.equal(0);
    expect(check({ retries: '10' }).opts.retries).to.equal(10);
    for (const bad of ['11', '-1', 'two', '1.5']) {
      expect(check({ retries: bad }).errors).to.deep.equal([
        `retries must be an integer from 0 to 10 (got "${bad}")`,
      ]);
    }
  });

  it('matcher=prefix|iprefix|glob|segment', () => {
    for (const m of ['prefix', 'iprefix', 'glob', 'segment']) {
      expect(check({ matcher: m }).opts.matcher).to.equal(m);
    }
    expect(check({ matcher: 'regex' }).errors).to.deep.equal([
      'matcher must be one of prefix, iprefix, glob, segment (got "regex")',
    ]);
  });
});

describe('options: unknown keys and empty values', () => {
  it('unknown keys are warnings, never errors', () => {
    expect(check({ foo: 'bar', flag: '' })).to.deep.equal({
      opts: { proto: 'http' },
      errors: [],
      warnings: ['unknown option "foo" ignored', 'unknown option "flag" ignored'],
    });
  });
  it('a known option without value is ignored with a warning (fabio: empty = unset)', () => {
    expect(check({ strip: '', redirect: '' })).to.deep.equal({
      opts: { proto: 'http' },
      errors: [],
      warnings: ['option "strip" has no value; ignored', 'option "redirect" has no value; ignored'],
    });
  });
  it('does not treat prototype names as known options', () => {
    expect(check({ constructor: 'x', toString: 'y' }).warnings).to.have.length(2);
  });
  it('collects every error and warning in written order', () => {
    const r = check({ strip: 'a', foo: '1', retries: '99' });
    expect(r.errors).to.deep.equal([
      `strip must start with '/' (got "a")`,
      'retries must be an integer from 0 to 10 (got "99")',
    ]);
    expect(r.warnings).to.deep.equal(['unknown option "foo" ignored']);
  });
});

describe('options: formatRouteOptions', () => {
  it('prints k=v in written order, a bare key for an empty value', () => {
    expect(formatRouteOptions({ strip: '/foo', prepend: '/x', host: 'dst', flag: '', auth: 'a=b' })).to.equal(
      'strip=/foo prepend=/x host=dst flag auth=a=b',
    );
    expect(formatRouteOptions({})).to.equal('');
  });
});

describe('options: properties', () => {
  it('never throws on arbitrary keys, values and destinations', () => {
    const known = ['strip', 'prepend', 'proto', 'redirect', 'allow', 'deny', 'lbweight', 'retries', 'weight'];
    const key = fc.oneof(fc.string({ maxLength: 8 }), fc.constantFrom(...known));
    fc.assert(
      fc.property(fc.dictionary(key, fc.string({ maxLength: 12 })), fc.string(), (raw, dst) => {
        const r = parseRouteOptions(raw, dst);
        expect(r.opts.proto).to.be.a('string');
        for (const m of [...r.errors, ...r.warnings]) expect(m).to.be.a('string');
      }),
      { numRuns: 3000 },
    );
  });
});

describe('parseRouteOptions: pxyproto (TCP routes)', () => {
  it('accepts true|false|v1|v2 and reports anything else', () => {
    for (const v of ['true', 'false', 'v1', 'v2']) {
      const r = parseRouteOptions({ pxyproto: v, proto: 'tcp' }, 'tcp://10.0.0.1:5432');
      expect(r.errors).to.deep.equal([]);
      expect(r.warnings).to.deep.equal([]);
    }
    expect(parseRouteOptions({ pxyproto: 'v3', proto: 'tcp' }, 'tcp://10.0.0.1:5432').errors).to.have.length(
      1,
    );
  });
});
