// examples/file end to end without Docker: the stack's three backends as local servers, its
// registry file with the compose host names moved to them, and Cairn run with the command line
// and environment of compose.yaml (ports moved to free loopback ports). What a user sees after
// `docker compose up`: / balanced 1 : 2 over web-1 and web-2, /api/hello on api without /api,
// and an edit of the file routing within a second.

import { readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { expect } from 'chai';
import { type ComposeService, envOf, readCompose } from '../support/compose.ts';
import { freePort, type ManagedProcess, spawnManaged } from '../support/servers.ts';
import { eventually } from './helpers/consul.ts';
import { closeAll, type Echo, startUpstream, type Upstream } from './helpers/upstream.ts';

const root = resolve(import.meta.dirname, '../..');

describe('examples/file (the compose stack without Docker)', function () {
  this.timeout(60_000);
  let tmp = '';
  let ups = new Map<string, Upstream>();
  let cairn: ManagedProcess | undefined;

  before(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'cairn-file-example-'));
    for (const name of ['web-1', 'web-2', 'api']) ups.set(name, await startUpstream(name));
  });

  after(async () => {
    await cairn?.stop();
    await closeAll([...ups.values()]);
    ups = new Map();
    await rm(tmp, { recursive: true, force: true });
  });

  it('serves the registry file with the weights, strip=, and live edits', async () => {
    const compose = readCompose('examples/file');
    const svc = compose.services.cairn as ComposeService;
    const mount = (svc.volumes ?? []).find((v) => v.includes(':/etc/cairn/routes.yaml')) ?? '';
    let routes = readFileSync(join(root, 'examples/file', mount.split(':')[0] ?? ''), 'utf8');
    for (const [name, up] of ups) {
      routes = routes.replaceAll(`address: ${name}, port: 8080`, `address: 127.0.0.1, port: ${up.port}`);
    }
    expect(routes).to.not.include('port: 8080');
    const file = join(tmp, 'routes.yaml');
    writeFileSync(file, routes);

    const [proxyPort, adminPort] = [await freePort(), await freePort()];
    const args = (svc.command as string[]).map((a) =>
      a === ':9999'
        ? `127.0.0.1:${proxyPort}`
        : a === ':9998'
          ? `127.0.0.1:${adminPort}`
          : a === 'file:/etc/cairn/routes.yaml'
            ? `file:${file}`
            : a,
    );
    expect(args).to.include(`file:${file}`);
    cairn = spawnManaged('cairn', process.execPath, [join(root, 'lib/cli/main.ts'), ...args], {
      env: { ...process.env, ...envOf(svc), CAIRN_LOG_LEVEL: 'warn' },
    });
    const c = cairn;
    const get = async (path: string): Promise<Echo> => {
      const r = await fetch(`http://127.0.0.1:${proxyPort}${path}`);
      expect(r.status, path).to.equal(200);
      return (await r.json()) as Echo;
    };
    await eventually(
      () => get('/'),
      () => true,
      `cairn serving (${c.output()})`,
      20_000,
    );

    const seen = new Map<string, number>();
    for (let i = 0; i < 30; i++) {
      const e = await get('/');
      seen.set(e.upstream, (seen.get(e.upstream) ?? 0) + 1);
    }
    expect(Object.fromEntries(seen)).to.deep.equal({ 'web-1': 10, 'web-2': 20 });
    const api = await get('/api/hello');
    expect([api.upstream, api.url]).to.deep.equal(['api', '/hello']);

    // Edit the file as the compose file's comment suggests: the table follows, no restart.
    writeFileSync(
      file,
      routes.replace("tags: ['urlprefix-/api strip=/api']", "tags: ['urlprefix-/v2 strip=/v2']"),
    );
    await eventually(
      async () => (await get('/v2/hello')).upstream,
      (u) => u === 'api',
      '/v2 routed after the edit',
      10_000,
    );
  });
});
