// The compose stacks in examples/ cannot run here (no Docker engine), so each one is checked the
// way Docker and Cairn would read it: the YAML parses (anchors and merge keys resolved), Cairn
// is built from the top-level Dockerfile, every Cairn command line (the arguments to the image's
// entrypoint, with the service's environment) passes the real config loader or the real
// `cairn register` parser, the admin listener would pass Cairn's startup rule and the image's
// HEALTHCHECK, and the published ports are the ones Cairn listens on.

import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { expect } from 'chai';
import { adminStartupProblem } from '../../lib/admin/access.ts';
import { type CairnConfig, loadConfig } from '../../lib/config/index.ts';
import { parseRegisterCommand } from '../../lib/register/cli.ts';
import { type Compose, type ComposeService, envOf, readCompose } from '../support/compose.ts';

const root = resolve(import.meta.dirname, '../..');

/** Services that run the image built from the top-level Dockerfile. */
function cairnServices(c: Compose): [string, ComposeService][] {
  return Object.entries(c.services).filter(([, s]) => typeof s.build === 'object');
}

/** `127.0.0.1:9998:9998` -> { host: '127.0.0.1', published: 9998, container: 9998 }. */
function parsePort(spec: string): { host: string; published: number; container: number } {
  const [portPart] = spec.split('/');
  const parts = (portPart ?? '').split(':');
  const container = Number(parts[parts.length - 1]);
  const published = Number(parts[parts.length - 2] ?? container);
  const host = parts.length === 3 ? (parts[0] ?? '') : '';
  return { host, published, container };
}

const defaultCmd = ['--listen', ':9999', '--admin', ':9998'];

for (const dir of ['examples/file', 'examples/consul', 'examples/etcd']) {
  describe(`${dir}/compose.yaml`, () => {
    const compose = readCompose(dir);
    const cairn = cairnServices(compose);

    it('names the stack and has at least one Cairn service', () => {
      expect(compose.name).to.match(/^cairn-/);
      expect(cairn.length).to.be.at.least(1);
    });

    it('builds every Cairn container from the top-level Dockerfile (not a checkout in a Node image)', () => {
      for (const [name, s] of cairn) {
        const build = s.build as { context: string; dockerfile: string };
        expect(build.context, name).to.equal('../..');
        expect(build.dockerfile, name).to.equal('Dockerfile');
        expect(existsSync(join(root, dir, build.context, build.dockerfile)), name).to.equal(true);
        // The image's entrypoint is `cairn`: no override that would bypass it.
        expect(s.entrypoint, name).to.equal(undefined);
      }
      for (const [name, s] of Object.entries(compose.services)) {
        const mountsCheckout = (s.volumes ?? []).some((v) => /^\.\.\/\.\.(:|\/?:)/.test(v));
        expect(mountsCheckout, `${name} mounts the repository`).to.equal(false);
      }
    });

    it('pins every other image to a tag and builds or pulls nothing unknown', () => {
      for (const [name, s] of Object.entries(compose.services)) {
        if (typeof s.build === 'object') continue;
        expect(s.image, name).to.be.a('string');
        expect(s.image, name).to.match(/:[\w.-]+$/);
        expect(s.image, name).not.to.match(/:latest$/);
      }
    });

    it('refers only to services, files and volumes that exist', () => {
      const names = Object.keys(compose.services);
      for (const [name, s] of Object.entries(compose.services)) {
        const deps = Array.isArray(s.depends_on) ? s.depends_on : Object.keys(s.depends_on ?? {});
        for (const d of deps) expect(names, `${name} depends on ${d}`).to.include(d);
        for (const v of s.volumes ?? []) {
          const source = v.split(':')[0] ?? '';
          if (source.startsWith('.'))
            expect(existsSync(join(root, dir, source)), `${name}: ${v}`).to.equal(true);
          else expect(Object.keys(compose.volumes ?? {}), `${name}: ${v}`).to.include(source);
        }
        for (const [k, v] of Object.entries(s.environment ?? {})) {
          expect(typeof v, `${name}: ${k} must be a string for compose`).to.equal('string');
        }
      }
    });

    for (const [name, s] of cairn) {
      const args = s.command === undefined ? defaultCmd : s.command;
      it(`${name}: its command line is valid for the image's entrypoint and Cairn's loaders`, () => {
        expect(args, 'use the list form: no shell in between').to.be.an('array');
        const argv = args as string[];
        if (argv[0] === 'register') {
          const r = parseRegisterCommand(argv, envOf(s));
          expect(r.kind, JSON.stringify(r)).to.equal('register');
          expect(s.ports, 'a registrar listens on nothing').to.equal(undefined);
          return;
        }
        const loaded = loadConfig(argv, envOf(s));
        if (loaded.kind !== 'config') {
          throw new Error(loaded.kind === 'error' ? loaded.error.message : `cairn ${loaded.kind}`);
        }
        expect(loaded.positionals, 'serves (no sub-command)').to.deep.equal([]);
        checkServing(loaded.config, s);
      });
    }
  });
}

/** The serving Cairn container: registry, admin rules, healthcheck port, published ports. */
function checkServing(config: CairnConfig, s: ComposeService): void {
  expect(config.registries.length, 'a registry to serve').to.be.at.least(1);
  // The image's HEALTHCHECK fetches http://127.0.0.1:9998/health inside the container.
  expect(config.admin.port, 'admin port the HEALTHCHECK uses').to.equal(9998);
  expect(['', '0.0.0.0', '::']).to.include(config.admin.address);
  expect(adminStartupProblem(config), 'Cairn would refuse to start').to.equal(undefined);

  const ports = (s.ports ?? []).map(parsePort);
  const listening = new Set([...config.listen.map((l) => l.port), config.admin.port]);
  for (const p of ports)
    expect([...listening], `published container port ${p.container}`).to.include(p.container);
  for (const l of config.listen) {
    if (l.port === 0) continue;
    expect(
      ports.map((p) => p.container),
      `listener ${l.text} is published`,
    ).to.include(l.port);
  }
  const admin = ports.find((p) => p.container === config.admin.port);
  if (admin !== undefined) {
    // Published: the UI and API leave the container, so mutations need the token.
    expect(config.adminToken, 'CAIRN_ADMIN_TOKEN when the admin port is published').to.be.a('string');
    expect(envOf(s).CAIRN_ADMIN_TOKEN, 'the token comes from the environment, not argv').to.be.a('string');
  }
}
