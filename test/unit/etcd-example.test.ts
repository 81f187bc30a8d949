// examples/etcd/compose.yaml cannot run here (no Docker engine). The generic checks (build from
// the Dockerfile, every Cairn command through the real loaders, ports, admin token) are in
// compose-stacks.test.ts; this file checks what the etcd stack is for: Cairn on etcd, and one
// `cairn register` sidecar per plain HTTP service, each registering what its README promises.

import { expect } from 'chai';
import { loadConfig } from '../../lib/config/index.ts';
import { isRegisterCommand, parseRegisterCommand } from '../../lib/register/cli.ts';
import { type ComposeService, envOf, readCompose } from '../support/compose.ts';

const compose = readCompose('examples/etcd');

function args(s: ComposeService): string[] {
  return Array.isArray(s.command) ? s.command : [];
}

describe('examples/etcd/compose.yaml', () => {
  it('has etcd, cairn, three plain services with register sidecars, and the overrides writer', () => {
    expect(Object.keys(compose.services).sort()).to.deep.equal([
      'api-1',
      'api-1-register',
      'api-2',
      'api-2-register',
      'cairn',
      'canary',
      'canary-register',
      'etcd',
      'overrides',
    ]);
    // The merge key gave every Cairn container the built image and the wait for a healthy etcd.
    for (const name of ['cairn', 'api-1-register', 'api-2-register', 'canary-register']) {
      const s = compose.services[name] as ComposeService;
      expect(s.build, name).to.deep.equal({ context: '../..', dockerfile: 'Dockerfile' });
      expect(s.image, name).to.equal('cairn-example:local');
      expect(s.depends_on, name).to.deep.equal({ etcd: { condition: 'service_healthy' } });
    }
  });

  it('runs Cairn on the etcd registry', () => {
    const s = compose.services.cairn as ComposeService;
    const r = loadConfig(args(s), envOf(s));
    if (r.kind !== 'config') throw new Error(r.kind === 'error' ? r.error.message : r.kind);
    expect(r.positionals).to.deep.equal([]);
    expect(r.config.registries).to.deep.equal([
      { kind: 'etcd', text: 'etcd:http://etcd:2379', urls: ['http://etcd:2379'] },
    ]);
    expect(r.config.listen.map((l) => l.port)).to.deep.equal([9999]);
    expect(r.config.etcdPrefix).to.equal('/cairn');
  });

  for (const [name, id, weight, tags] of [
    ['api-1-register', 'api-1', undefined, ['urlprefix-/api strip=/api']],
    ['api-2-register', 'api-2', 2, ['urlprefix-/api strip=/api']],
    ['canary-register', 'canary', undefined, ['urlprefix-/api strip=/api', 'canary']],
  ] as const) {
    it(`${name} is a valid cairn register for ${id}`, () => {
      const s = compose.services[name] as ComposeService;
      expect(isRegisterCommand(args(s))).to.equal(true);
      const r = parseRegisterCommand(args(s), envOf(s));
      if (r.kind !== 'register') throw new Error(JSON.stringify(r));
      expect(r.registry).to.equal('etcd:http://etcd:2379');
      expect(r.options).to.deep.include({
        endpoints: ['http://etcd:2379'],
        prefix: '/cairn',
        service: 'api',
        id,
        address: id,
        port: 8080,
        tags,
        ttlSeconds: 10,
        check: { url: `http://${id}:8080/health`, intervalMs: 5000, timeoutMs: 2000 },
      });
      expect(r.options.weight).to.equal(weight);
      // The registered address is a service of the stack.
      expect(compose.services).to.have.property(id);
    });
  }

  it("writes the canary's share where Cairn reads manual routes (<etcd-prefix>/config)", () => {
    const s = compose.services.overrides as ComposeService;
    const [tool, endpoints, op, key, value] = args(s);
    expect([tool, endpoints, op, key]).to.deep.equal([
      'etcdctl',
      '--endpoints=http://etcd:2379',
      'put',
      '/cairn/config',
    ]);
    expect(value).to.equal('route weight api /api weight 0.1 tags "canary"');
  });
});
