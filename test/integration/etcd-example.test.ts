// examples/etcd end to end without Docker: a real etcd, the stack's HTTP services as local
// servers, its `cairn register` sidecars and Cairn itself run with the command lines of
// compose.yaml (addresses moved to loopback), and the `overrides` container's `etcdctl put`
// replayed through etcd's JSON gateway. What a user sees after `docker compose up`: /api
// balanced 1 : 2 between api-1 and api-2 with the canary at 10 %.

import { join, resolve } from 'node:path';
import { expect } from 'chai';
import { type ComposeService, envOf, readCompose } from '../support/compose.ts';
import {
  type EtcdServer,
  freePort,
  type ManagedProcess,
  spawnManaged,
  startEtcd,
} from '../support/servers.ts';
import { cairnReady, eventually } from './helpers/consul.ts';
import { closeAll, type Echo, startUpstream, type Upstream } from './helpers/upstream.ts';

const root = resolve(import.meta.dirname, '../..');
const main = join(root, 'lib/cli/main.ts');

describe('examples/etcd (real etcd, the stack without Docker)', function () {
  this.timeout(120_000);
  let etcd: EtcdServer;
  let ups = new Map<string, Upstream>();
  const procs: ManagedProcess[] = [];

  before(async () => {
    etcd = await startEtcd();
    for (const name of ['api-1', 'api-2', 'canary']) ups.set(name, await startUpstream(name));
  });

  after(async () => {
    for (const p of procs.reverse()) await p.stop();
    await closeAll([...ups.values()]);
    ups = new Map();
    await etcd?.stop();
  });

  it('the register sidecars, the overrides and Cairn (compose command lines) route /api with the weights', async () => {
    const compose = readCompose('examples/etcd');
    const registry = `etcd:${etcd.endpoint}`;

    // Each sidecar: its compose command, with the compose host names moved to this machine.
    for (const [name, svc] of Object.entries(compose.services)) {
      const args = Array.isArray(svc.command) ? svc.command : [];
      if (args[0] !== 'register') continue;
      const host = /^--address=(.+)$/.exec(args.find((a) => a.startsWith('--address=')) ?? '')?.[1] ?? '';
      const up = ups.get(host);
      expect(up, `${name} registers a service of the stack`).to.not.equal(undefined);
      const local = args.map((a) =>
        a
          .replace(`--address=${host}`, '--address=127.0.0.1')
          .replace(/^--port=8080$/, `--port=${up?.port}`)
          .replace(`http://${host}:8080/`, `http://127.0.0.1:${up?.port}/`),
      );
      procs.push(
        spawnManaged(name, process.execPath, [main, ...local, '--log-level', 'warn'], {
          env: { ...process.env, ...envOf(svc), CAIRN_REGISTRY: registry },
        }),
      );
    }

    // The overrides container: `etcdctl --endpoints=... put KEY VALUE`.
    const [, , op, key, value] = (compose.services.overrides as ComposeService).command as string[];
    expect(op).to.equal('put');
    const b64 = (s: string): string => Buffer.from(s).toString('base64');
    const put = await fetch(`${etcd.endpoint}/v3/kv/put`, {
      method: 'POST',
      body: JSON.stringify({ key: b64(key as string), value: b64(value as string) }),
    });
    expect(put.status).to.equal(200);

    const svc = compose.services.cairn as ComposeService;
    const [proxyPort, adminPort] = [await freePort(), await freePort()];
    const args = (svc.command as string[]).map((a) =>
      a === ':9999' ? `127.0.0.1:${proxyPort}` : a === ':9998' ? `127.0.0.1:${adminPort}` : a,
    );
    const cairn = spawnManaged('cairn', process.execPath, [main, ...args, '--log-level', 'warn'], {
      env: { ...process.env, ...envOf(svc), CAIRN_REGISTRY: registry },
    });
    procs.push(cairn);

    await eventually(
      async () =>
        (await (await fetch(`http://127.0.0.1:${adminPort}/api/routes`)).json()) as { service: string }[],
      (routes) => routes.filter((r) => r.service === 'api').length === 3,
      `three api targets (cairn: ${cairn.output()}; sidecars: ${procs.map((p) => p.output()).join(' | ')})`,
      60_000,
    );
    await cairnReady(`http://127.0.0.1:${adminPort}`);

    const seen = new Map<string, number>();
    for (let i = 0; i < 100; i++) {
      const r = await fetch(`http://127.0.0.1:${proxyPort}/api/who`);
      expect(r.status).to.equal(200);
      const echo = (await r.json()) as Echo;
      expect(echo.url).to.equal('/who');
      seen.set(echo.upstream, (seen.get(echo.upstream) ?? 0) + 1);
    }
    expect(seen.get('canary')).to.be.within(5, 15);
    expect(seen.get('api-2') ?? 0).to.be.greaterThan(seen.get('api-1') ?? 0);

    // `docker compose stop api-2-register`: SIGTERM revokes the lease, api-2 leaves at once.
    const sidecar = procs.find((p) => p.name === 'api-2-register') as ManagedProcess;
    await sidecar.stop();
    await eventually(
      async () =>
        (await (await fetch(`http://127.0.0.1:${adminPort}/api/routes`)).json()) as { service: string }[],
      (routes) => routes.filter((r) => r.service === 'api').length === 2,
      'api-2 gone after its sidecar stopped',
      10_000,
    );
  });
});
