// Route tags -> route commands, checked against cases recorded from fabio's registry/consul package
// (fixtures/tags-fabio-vectors.json, suites `consul_parse_tag` and `consul_tags_to_routes`).
//
// Adapted vectors: fabio's Consul records carry a node address and a service address and fall back
// to the node's when the service's is empty. A ServiceInstance has one `address`: the Consul
// adapter does that fallback, so each vector's instance gets `service_address || node_address`
// ("empty ServiceAddress falls back to node Address" therefore checks the adapter's rule as data).
// fabio's macOS `.local` suffix for dot-less hosts is not reproduced (no vector depends on it).

import { expect } from 'chai';
import fc from 'fast-check';
import { goTrimSpace } from '../../routing/access.ts';
import {
  expandVars,
  formatRouteCommand,
  goFields,
  instanceRouteCommands,
  parseRouteTag,
} from '../../routing/tags.ts';
import type { RouteCommand, ServiceInstance } from '../../routing/types.ts';
import vectors from './fixtures/tags-fabio-vectors.json' with { type: 'json' };

interface ParseTagVector {
  name: string;
  input: { env: Record<string, string> | null; prefix: string; tag: string };
  expected: { ok: boolean; opts: string; route: string };
}

interface TagsToRoutesVector {
  name: string;
  input: {
    env?: Record<string, string>;
    node_address?: string;
    service_address: string;
    service_name: string;
    service_port: number;
    tag_prefix: string;
    tags: string[];
  };
  expected: string[];
}

function vectorInstance(v: TagsToRoutesVector): ServiceInstance {
  const i = v.input;
  return {
    service: i.service_name,
    id: `${i.service_name}-1`,
    address: i.service_address !== '' ? i.service_address : (i.node_address ?? ''),
    port: i.service_port,
    tags: i.tags,
  };
}

function inst(tags: string[], extra: Partial<ServiceInstance> = {}): ServiceInstance {
  return { service: 'svc', id: 'svc-1', address: '10.0.0.1', port: 8080, tags, ...extra };
}

function lines(r: { commands: RouteCommand[] }): string[] {
  return r.commands.map(formatRouteCommand);
}

describe('tags: fabio consul_parse_tag vectors', () => {
  for (const v of vectors.consul_parse_tag as ParseTagVector[]) {
    const env = v.input.env === null ? '' : ` env ${JSON.stringify(v.input.env)}`;
    it(JSON.stringify(v.input.tag) + env, () => {
      expect(parseRouteTag(v.input.tag, v.input.prefix, v.input.env ?? undefined)).to.deep.equal(v.expected);
    });
  }
});

describe('tags: fabio consul_tags_to_routes vectors', () => {
  for (const v of vectors.consul_tags_to_routes as TagsToRoutesVector[]) {
    it(v.name, () => {
      const r = instanceRouteCommands(vectorInstance(v), { tagPrefix: v.input.tag_prefix, env: v.input.env });
      expect(lines(r)).to.deep.equal(v.expected);
      expect(r.problems.filter((p) => p.severity === 'error')).to.deep.equal([]);
    });
  }

  it('reports the dropped redirect option of "invalid redirect syntax option dropped" as a warning', () => {
    const r = instanceRouteCommands(inst(['urlprefix-/old redirect=301']), { tagPrefix: 'urlprefix-' });
    expect(lines(r)).to.deep.equal(['route add svc /old http://10.0.0.1:8080/']);
    expect(r.problems).to.have.length(1);
    expect(r.problems[0]).to.include({
      severity: 'warning',
      source: 'tag',
      input: 'urlprefix-/old redirect=301',
    });
    expect(r.problems[0]?.reason).to.contain('redirect=<code>,<url>');
  });
});

describe('tags: parseRouteTag details', () => {
  it('does not lowercase or expand :port and slash-less routes (as fabio)', () => {
    expect(parseRouteTag('p-:3306 proto=tcp', 'p-', { x: 'y' })).to.deep.equal({
      ok: true,
      route: ':3306',
      opts: 'proto=tcp',
    });
    expect(parseRouteTag('p-EXAMPLE.com', 'p-', undefined)).to.deep.equal({
      ok: true,
      route: 'EXAMPLE.com',
      opts: '',
    });
    expect(parseRouteTag('p-$x.com', 'p-', { x: 'y' }).route).to.equal('$x.com');
  });

  it('splits the options at the first space only and keeps them as written', () => {
    expect(parseRouteTag('p-/a  strip=/a\tb', 'p-', undefined)).to.deep.equal({
      ok: true,
      route: '/a',
      opts: ' strip=/a\tb',
    });
  });

  it('trims Go white space (NBSP, U+3000) around the tag and after the prefix', () => {
    expect(parseRouteTag('\u00a0p-\u3000/x\u2028', 'p-', undefined)).to.deep.equal({
      ok: true,
      route: '/x',
      opts: '',
    });
  });

  it('does not take prototype keys of env for variables', () => {
    expect(parseRouteTag('p-${constructor}.a/${toString}', 'p-', {}).route).to.equal('.a/');
  });
});

describe('tags: expandVars (Go os.Expand)', () => {
  const env = { A: 'x', B_1: 'y', '1': 'one', '*': 'star' };
  const cases: [string, string][] = [
    ['$A', 'x'],
    ['${A}', 'x'],
    ['$B_1z', ''],
    ['${B_1}z', 'yz'],
    ['$1x', 'onex'],
    ['${*}', 'star'],
    ['$*', 'star'],
    ['a$', 'a$'],
    ['$/x', '$/x'],
    ['${}x', 'x'],
    ['${Ax', 'Ax'],
    ['$$', ''],
    ['a$-b', 'ab'],
    ['plain', 'plain'],
  ];
  for (const [input, want] of cases) {
    it(`${input} -> ${JSON.stringify(want)}`, () => expect(expandVars(input, env)).to.equal(want));
  }
  it('expands everything to "" without env', () => expect(expandVars('$A/${B}', undefined)).to.equal('/'));
});

describe('tags: Go string helpers', () => {
  it('goTrimSpace and goFields use Go white space', () => {
    expect(goTrimSpace('\u0085 a b\u00a0')).to.equal('a b');
    expect(goTrimSpace('\ufeffa')).to.equal('\ufeffa');
    expect(goFields(' a\t b\u3000c \n')).to.deep.equal(['a', 'b', 'c']);
    expect(goFields('   ')).to.deep.equal([]);
  });
});

describe('tags: instanceRouteCommands (Cairn)', () => {
  const prefix = { tagPrefix: 'urlprefix-' };

  it('sets instanceId, keeps option order and trims the non-route tags', () => {
    const r = instanceRouteCommands(inst([' v2 ', 'urlprefix-/a host=dst strip=/a', 'green']), prefix);
    expect(r.problems).to.deep.equal([]);
    expect(r.commands).to.deep.equal([
      {
        cmd: 'route add',
        service: 'svc',
        src: '/a',
        dst: 'http://10.0.0.1:8080/',
        weight: 0,
        tags: ['v2', 'green'],
        opts: { host: 'dst', strip: '/a' },
        instanceId: 'svc-1',
      },
    ]);
    expect(Object.keys(r.commands[0]?.opts ?? {})).to.deep.equal(['host', 'strip']);
  });

  it('takes lbweight from the tag before the registry weight and drops it from the options', () => {
    const r = instanceRouteCommands(inst(['urlprefix-/a lbweight=5 strip=/a'], { weight: 2 }), prefix);
    expect(r.commands[0]?.instanceWeight).to.equal(5);
    expect(r.commands[0]?.opts).to.deep.equal({ strip: '/a' });
    expect(lines(r)).to.deep.equal(['route add svc /a http://10.0.0.1:8080/ opts "strip=/a lbweight=5"']);
  });

  it('uses the registry weight when the tag has no lbweight', () => {
    const r = instanceRouteCommands(inst(['urlprefix-/a', 'urlprefix-/b'], { weight: 3 }), prefix);
    expect(r.commands.map((c) => c.instanceWeight)).to.deep.equal([3, 3]);
  });

  it('leaves instanceWeight unset without lbweight or registry weight', () => {
    const r = instanceRouteCommands(inst(['urlprefix-/a']), prefix);
    expect(r.commands[0]).to.not.have.property('instanceWeight');
  });

  for (const bad of ['0', '-1', '1.5', 'x', '', '1000001']) {
    it(`skips a tag with lbweight=${bad}`, () => {
      const r = instanceRouteCommands(inst([`urlprefix-/a lbweight=${bad}`, 'urlprefix-/b']), prefix);
      expect(lines(r)).to.deep.equal(['route add svc /b http://10.0.0.1:8080/']);
      expect(r.problems).to.have.length(1);
      expect(r.problems[0]).to.include({
        source: 'tag',
        service: 'svc',
        instance: 'svc-1',
        input: `urlprefix-/a lbweight=${bad}`,
        severity: 'error',
      });
      expect(r.problems[0]?.reason).to.contain('lbweight must be an integer from 1 to 1000000');
    });
  }

  it('skips every route tag of an instance whose registry weight is invalid', () => {
    const r = instanceRouteCommands(inst(['urlprefix-/a', 'urlprefix-/b lbweight=2'], { weight: 0 }), prefix);
    expect(lines(r)).to.deep.equal(['route add svc /b http://10.0.0.1:8080/ opts "lbweight=2"']);
    expect(r.problems.map((p) => p.input)).to.deep.equal(['urlprefix-/a']);
  });

  it('skips a tag whose options fail validation, with one problem per error', () => {
    const r = instanceRouteCommands(
      inst(['urlprefix-/a strip=a allow=ip:10/8', 'urlprefix-/b retries=3 sticky=cookie']),
      prefix,
    );
    expect(lines(r)).to.deep.equal(['route add svc /b http://10.0.0.1:8080/ opts "retries=3 sticky=cookie"']);
    expect(r.problems).to.deep.equal([
      {
        source: 'tag',
        service: 'svc',
        instance: 'svc-1',
        input: 'urlprefix-/a strip=a allow=ip:10/8',
        reason: `strip must start with '/' (got "a")`,
        severity: 'error',
      },
      {
        source: 'tag',
        service: 'svc',
        instance: 'svc-1',
        input: 'urlprefix-/a strip=a allow=ip:10/8',
        reason: 'allow: failed to parse CIDR ip:10/8 with error: invalid CIDR address: 10/8',
        severity: 'error',
      },
    ]);
  });

  it('keeps a route with an unknown option and warns', () => {
    const r = instanceRouteCommands(inst(['urlprefix-/a foo=bar']), prefix);
    expect(lines(r)).to.deep.equal(['route add svc /a http://10.0.0.1:8080/ opts "foo=bar"']);
    expect(r.problems).to.have.length(1);
    expect(r.problems[0]).to.include({ severity: 'warning', input: 'urlprefix-/a foo=bar' });
    expect(r.problems[0]?.reason).to.equal('unknown option "foo" ignored');
  });

  it('skips a tag with a weight that is not a number, ignores a negative one', () => {
    const r = instanceRouteCommands(inst(['urlprefix-/a weight=abc', 'urlprefix-/b weight=-1']), prefix);
    expect(lines(r)).to.deep.equal(['route add svc /b http://10.0.0.1:8080/']);
    expect(r.problems.map((p) => [p.input, p.severity])).to.deep.equal([
      ['urlprefix-/a weight=abc', 'error'],
      ['urlprefix-/b weight=-1', 'warning'],
    ]);
  });

  it('prints the weight as written for shares and larger numbers', () => {
    const r = instanceRouteCommands(inst(['urlprefix-/a weight=0.5', 'urlprefix-/b weight=2']), prefix);
    expect(lines(r)).to.deep.equal([
      'route add svc /a http://10.0.0.1:8080/ weight 0.5',
      'route add svc /b http://10.0.0.1:8080/ weight 2',
    ]);
  });

  it('skips a tag that is only the prefix', () => {
    const r = instanceRouteCommands(inst(['urlprefix-', 'urlprefix-  ']), prefix);
    expect(r.commands).to.deep.equal([]);
    expect(r.problems.map((p) => p.severity)).to.deep.equal(['error', 'error']);
  });

  it('reports an instance without address or with a bad port once per route tag', () => {
    const noAddress = instanceRouteCommands(inst(['urlprefix-/a'], { address: '' }), prefix);
    expect(noAddress.problems[0]?.reason).to.equal('instance has no address');
    const r = instanceRouteCommands(inst(['urlprefix-/a', 'urlprefix-/b', 'x'], { port: 0 }), prefix);
    expect(r.commands).to.deep.equal([]);
    expect(r.problems.map((p) => p.input)).to.deep.equal(['urlprefix-/a', 'urlprefix-/b']);
  });

  it('brackets IPv6 addresses once', () => {
    expect(lines(instanceRouteCommands(inst(['urlprefix-/a'], { address: '[::1]' }), prefix))).to.deep.equal([
      'route add svc /a http://[::1]:8080/',
    ]);
    const tcp = instanceRouteCommands(inst(['urlprefix-:9 proto=tcp'], { address: '::1' }), prefix);
    expect(lines(tcp)).to.deep.equal(['route add svc :9 tcp://[::1]:8080']);
  });

  it('keeps proto=tcp+sni as an option with an http destination (fabio)', () => {
    const r = instanceRouteCommands(inst(['urlprefix-a.com/ proto=tcp+sni']), prefix);
    expect(lines(r)).to.deep.equal(['route add svc a.com/ http://10.0.0.1:8080/ opts "proto=tcp+sni"']);
    expect(r.problems).to.deep.equal([]);
  });

  it('a later redirect or proto option overrides the destination (last wins)', () => {
    const tag = 'urlprefix-/a redirect=302,https://x.com/$path proto=https';
    const r = instanceRouteCommands(inst([tag]), prefix);
    expect(lines(r)).to.deep.equal(['route add svc /a https://10.0.0.1:8080 opts "redirect=302"']);
  });

  it('skips a tag whose redirect has an empty URL', () => {
    const r = instanceRouteCommands(inst(['urlprefix-/a redirect=301,']), prefix);
    expect(r.commands).to.deep.equal([]);
    expect(r.problems.map((p) => [p.reason, p.severity])).to.deep.equal([
      ['redirect=301, has no redirect URL', 'error'],
    ]);
  });

  it('produces a "__proto__" option as a plain key', () => {
    const r = instanceRouteCommands(inst(['urlprefix-/a __proto__=x']), prefix);
    expect(Object.keys(r.commands[0]?.opts ?? {})).to.deep.equal(['__proto__']);
    expect(lines(r)).to.deep.equal(['route add svc /a http://10.0.0.1:8080/ opts "__proto__=x"']);
  });

  it('an empty prefix makes every tag a route tag (as fabio)', () => {
    expect(lines(instanceRouteCommands(inst(['/a']), { tagPrefix: '' }))).to.deep.equal([
      'route add svc /a http://10.0.0.1:8080/',
    ]);
  });
});

describe('tags: formatRouteCommand', () => {
  const base: RouteCommand = {
    cmd: 'route add',
    service: 's',
    src: '/a',
    dst: 'http://h/',
    weight: 0,
    tags: [],
    opts: {},
  };
  const cases: [RouteCommand, string][] = [
    [base, 'route add s /a http://h/'],
    [
      { ...base, weight: 0.25, tags: ['a', 'b'], opts: { strip: '/a', flag: '' } },
      'route add s /a http://h/ weight 0.25 tags "a,b" opts "strip=/a flag"',
    ],
    [{ ...base, instanceWeight: 1 }, 'route add s /a http://h/'],
    [{ ...base, cmd: 'route del', dst: '' }, 'route del s /a'],
    [{ ...base, cmd: 'route del' }, 'route del s /a http://h/'],
    [{ ...base, cmd: 'route del', src: '', dst: '' }, 'route del s'],
    [{ ...base, cmd: 'route del', tags: ['t'] }, 'route del s tags "t"'],
    [{ ...base, cmd: 'route del', service: '', tags: ['t', 'u'] }, 'route del tags "t,u"'],
    [{ ...base, cmd: 'route weight', dst: '', weight: 0.1 }, 'route weight s /a weight 0.1'],
    [
      { ...base, cmd: 'route weight', dst: '', weight: 0.1, tags: ['t'] },
      'route weight s /a weight 0.1 tags "t"',
    ],
    [
      { ...base, cmd: 'route weight', service: '', weight: 0.5, tags: ['t'] },
      'route weight /a weight 0.5 tags "t"',
    ],
  ];
  for (const [cmd, want] of cases) {
    it(want, () => expect(formatRouteCommand(cmd)).to.equal(want));
  }
});

describe('tags: properties', () => {
  const env = fc.dictionary(fc.string({ maxLength: 4 }), fc.string({ maxLength: 6 }), { maxKeys: 4 });

  it('parseRouteTag never throws and returns strings', () => {
    fc.assert(
      fc.property(
        fc.string(),
        fc.string({ maxLength: 4 }),
        fc.option(env, { nil: undefined }),
        (tag, prefix, e) => {
          const r = parseRouteTag(tag, prefix, e);
          expect(typeof r.route).to.equal('string');
          expect(typeof r.opts).to.equal('string');
          if (!r.ok) expect(r).to.deep.equal({ ok: false, route: '', opts: '' });
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('parseRouteTag keeps tag-like input: host lowercased, path as written', () => {
    const word = fc.stringMatching(/^[A-Za-z0-9.-]{1,10}$/);
    fc.assert(
      fc.property(word, word, (host, path) => {
        expect(parseRouteTag(`p-${host}/${path} strip=/x`, 'p-', undefined)).to.deep.equal({
          ok: true,
          route: `${host.toLowerCase()}/${path}`,
          opts: 'strip=/x',
        });
      }),
    );
  });

  it('instanceRouteCommands never throws on arbitrary tags, addresses, ports and weights', () => {
    const pieces = fc.constantFrom(
      'p-/a',
      'p-:1',
      ' p-x/ ',
      'strip=',
      'weight=',
      'lbweight=',
      'redirect=3',
      '=',
      ' ',
    );
    const tagText = fc.oneof(
      fc.string(),
      fc.array(pieces).map((a) => a.join('')),
    );
    fc.assert(
      fc.property(
        fc.array(tagText, { maxLength: 5 }),
        fc.string(),
        fc.oneof(fc.integer(), fc.double()),
        fc.option(fc.oneof(fc.integer(), fc.double()), { nil: undefined }),
        fc.option(env, { nil: undefined }),
        (tags, address, port, weight, e) => {
          const instance: ServiceInstance = {
            service: 's',
            id: 'i',
            address,
            port,
            tags,
            ...(weight === undefined ? {} : { weight }),
          };
          const r = instanceRouteCommands(instance, { tagPrefix: 'p-', env: e });
          for (const c of r.commands) {
            expect(c.instanceId).to.equal('i');
            expect(typeof formatRouteCommand(c)).to.equal('string');
            if (c.instanceWeight !== undefined) expect(Number.isInteger(c.instanceWeight)).to.equal(true);
          }
          for (const p of r.problems) expect(p.source).to.equal('tag');
        },
      ),
      { numRuns: 2000 },
    );
  });
});
