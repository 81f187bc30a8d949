// examples/etcd/compose.yaml cannot run here (no Docker engine), so its Cairn commands are
// checked the way Cairn would read them: every `node lib/cli/main.ts ...` command, with the
// service's environment, must be a valid configuration or `cairn register` invocation.

import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { parse } from 'yaml';
import { loadConfig } from '../../lib/config/index.ts';
import { isRegisterCommand, parseRegisterCommand } from '../../lib/register/cli.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

interface ComposeService {
  readonly image?: string;
  readonly command?: string[];
  readonly environment?: Record<string, string>;
  readonly depends_on?: Record<string, { condition: string }>;
  readonly volumes?: string[];
}

const compose = parse(readFileSync(join(root, 'examples/etcd/compose.yaml'), 'utf8'), { merge: true }) as {
  services: Record<string, ComposeService>;
};

function cairnArgs(s: ComposeService): string[] | undefined {
  const c = s.command;
  if (c === undefined || c[0] !== 'node' || c[1] !== 'lib/cli/main.ts') return undefined;
  return c.slice(2);
}

describe('examples/etcd/compose.yaml', () => {
  it('has etcd, cairn, two services with register sidecars and a self-registering Node service', () => {
    expect(Object.keys(compose.services).sort()).to.deep.equal([
      'api-1',
      'api-1-register',
      'api-2',
      'api-2-register',
      'cairn',
      'canary',
      'etcd',
    ]);
    // The merge key gave every Node container the checkout and the wait for a healthy etcd.
    for (const name of ['cairn', 'api-1-register', 'api-2-register', 'canary']) {
      const s = compose.services[name] as ComposeService;
      expect(s.volumes, name).to.deep.equal(['../..:/app:ro']);
      expect(s.depends_on, name).to.deep.equal({ etcd: { condition: 'service_healthy' } });
    }
  });

  it('runs Cairn on the etcd registry', () => {
    const s = compose.services.cairn as ComposeService;
    const args = cairnArgs(s) ?? [];
    const r = loadConfig(args, s.environment ?? {});
    if (r.kind !== 'config') throw new Error(r.kind === 'error' ? r.error.message : r.kind);
    expect(r.positionals).to.deep.equal([]);
    expect(r.config.registries).to.deep.equal([
      { kind: 'etcd', text: 'etcd:http://etcd:2379', urls: ['http://etcd:2379'] },
    ]);
    expect(r.config.listen.map((l) => l.port)).to.deep.equal([9999]);
  });

  for (const [name, id, weight] of [
    ['api-1-register', 'api-1', undefined],
    ['api-2-register', 'api-2', 2],
  ] as const) {
    it(`${name} is a valid cairn register for ${id}`, () => {
      const s = compose.services[name] as ComposeService;
      const args = cairnArgs(s) ?? [];
      expect(isRegisterCommand(args)).to.equal(true);
      const r = parseRegisterCommand(args, s.environment ?? {});
      if (r.kind !== 'register') throw new Error(JSON.stringify(r));
      expect(r.registry).to.equal('etcd:http://etcd:2379');
      expect(r.options).to.deep.include({
        endpoints: ['http://etcd:2379'],
        prefix: '/cairn',
        service: 'api',
        id,
        address: id,
        port: 8080,
        tags: ['urlprefix-/api strip=/api'],
        ttlSeconds: 10,
        check: { url: `http://${id}:8080/health`, intervalMs: 5000, timeoutMs: 2000 },
      });
      expect(r.options.weight).to.equal(weight);
    });
  }

  it('the canary runs node-service.ts with the settings it reads', () => {
    const s = compose.services.canary as ComposeService;
    expect(s.command).to.deep.equal(['node', 'examples/etcd/node-service.ts']);
    expect(s.environment).to.deep.include({ ETCD: 'http://etcd:2379', SERVICE: 'api', PORT: '8080' });
    expect(s.environment?.TAGS?.split(';')).to.deep.equal(['urlprefix-/api strip=/api', 'canary']);
  });
});
