// examples/consul end to end without Docker: a real Consul agent, the stack's services as local
// servers, the stack's own register.sh (curl against the agent API) and node-service.ts, and
// Cairn started with the command line of compose.yaml (its ports moved to free loopback ports).
// What a user sees after `docker compose up`: /api balanced with the weights and the canary's
// 10 %, /clock, the TCP route, and Cairn registered in Consul.

import { execFile } from 'node:child_process';
import net from 'node:net';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { type ComposeService, envOf, readCompose } from '../support/compose.ts';
import {
  type ConsulServer,
  freePort,
  type ManagedProcess,
  spawnManaged,
  startConsul,
} from '../support/servers.ts';
import { cairnReady, eventually } from './helpers/consul.ts';
import { closeAll, type Echo, startUpstream, type Upstream } from './helpers/upstream.ts';

const root = resolve(import.meta.dirname, '../..');
const dir = join(root, 'examples/consul');

/** A stand-in for redis: answers `PING` with `+PONG`, as redis-cli expects. */
async function startFakeRedis(): Promise<net.Server> {
  const server = net.createServer((socket) => {
    socket.on('data', (d) => {
      if (d.toString().toUpperCase().includes('PING')) socket.write('+PONG\r\n');
    });
    socket.on('error', () => {});
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return server;
}

function portOf(server: net.Server): number {
  const a = server.address();
  return typeof a === 'object' && a !== null ? a.port : 0;
}

async function tcpPing(port: number): Promise<string> {
  return new Promise((resolvePing, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let got = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no answer on :${port} (got ${JSON.stringify(got)})`));
    }, 3_000);
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (d) => {
      got += d.toString();
      if (got.includes('\r\n')) {
        clearTimeout(timer);
        socket.end();
        resolvePing(got.trim());
      }
    });
    socket.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}

describe('examples/consul (real Consul, the stack without Docker)', function () {
  this.timeout(120_000);
  let consul: ConsulServer;
  let ups: Upstream[] = [];
  let redis: net.Server | undefined;
  let clock: ManagedProcess | undefined;
  let cairn: ManagedProcess | undefined;
  let proxyPort = 0;
  let tcpPort = 0;
  let adminPort = 0;

  before(async () => {
    consul = await startConsul();
    ups = await Promise.all(['api-1', 'api-2', 'canary'].map((n) => startUpstream(n)));
    redis = await startFakeRedis();
    [proxyPort, tcpPort, adminPort] = [await freePort(), await freePort(), await freePort()];
  });

  after(async () => {
    await cairn?.stop();
    await clock?.stop();
    await closeAll(ups);
    await new Promise((r) => (redis === undefined ? r(undefined) : redis.close(r)));
    await consul?.stop();
  });

  it('register.sh registers the services, Cairn (compose command line) routes HTTP and TCP with the weights', async () => {
    const compose = readCompose('examples/consul');
    const register = compose.services.register as ComposeService;
    // register.sh with the compose service's environment, the addresses pointed at this machine.
    const [api1, api2, canary] = ups as [Upstream, Upstream, Upstream];
    const out = await promisify(execFile)('sh', [join(dir, 'register.sh')], {
      env: {
        ...process.env,
        ...envOf(register),
        CONSUL: consul.address,
        API_1: '127.0.0.1',
        API_2: '127.0.0.1',
        CANARY: '127.0.0.1',
        REDIS: '127.0.0.1',
        API_1_PORT: String(api1.port),
        API_2_PORT: String(api2.port),
        CANARY_PORT: String(canary.port),
        REDIS_PORT: String(portOf(redis as net.Server)),
        TCP_PORT: String(tcpPort),
      },
      timeout: 30_000,
    });
    expect(out.stdout).to.include('registered redis-1');

    const clockPort = await freePort();
    const clockSvc = compose.services.clock as ComposeService;
    clock = spawnManaged('clock', process.execPath, [join(dir, 'node-service.ts')], {
      env: {
        ...process.env,
        ...envOf(clockSvc),
        CONSUL: consul.address,
        ADDRESS: '127.0.0.1',
        PORT: String(clockPort),
      },
    });

    // Cairn with compose.yaml's arguments and environment; only the addresses differ.
    const svc = compose.services.cairn as ComposeService;
    const args = (svc.command as string[]).map((a) =>
      a === ':9999'
        ? `127.0.0.1:${proxyPort}`
        : a === ':6379;proto=tcp'
          ? `127.0.0.1:${tcpPort};proto=tcp`
          : a === ':9998'
            ? `127.0.0.1:${adminPort}`
            : a === 'cairn:9998'
              ? `127.0.0.1:${adminPort}`
              : a,
    );
    expect(args).to.include(`127.0.0.1:${tcpPort};proto=tcp`);
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      ...envOf(svc),
      CAIRN_REGISTRY: `consul:${consul.address}`,
    };
    expect(env.CAIRN_ADMIN_TOKEN).to.be.a('string');
    cairn = spawnManaged(
      'cairn',
      process.execPath,
      [join(root, 'lib/cli/main.ts'), ...args, '--log-level', 'warn'],
      {
        env,
      },
    );

    // Consul runs the HTTP checks every 2 s: wait until all three api instances and redis route.
    const admin = `http://127.0.0.1:${adminPort}`;
    await eventually(
      async () =>
        (await (await fetch(`${admin}/api/routes`)).json()) as { service: string; healthy?: boolean }[],
      (routes) =>
        routes.filter((r) => r.service === 'api').length === 3 &&
        routes.some((r) => r.service === 'redis') &&
        routes.some((r) => r.service === 'clock'),
      `api x3, redis and clock in the table (cairn: ${cairn.output()})`,
      60_000,
    );
    await cairnReady(admin);

    const seen = new Map<string, number>();
    for (let i = 0; i < 100; i++) {
      const r = await fetch(`http://127.0.0.1:${proxyPort}/api/who`);
      expect(r.status).to.equal(200);
      const echo = (await r.json()) as Echo;
      expect(echo.url).to.equal('/who'); // strip=/api
      seen.set(echo.upstream, (seen.get(echo.upstream) ?? 0) + 1);
    }
    // route weight: the canary gets 10 %; the other 90 % go 1 : 2 by Consul Weights.
    expect(seen.get('canary')).to.be.within(5, 15);
    expect(seen.get('api-2') ?? 0).to.be.greaterThan(seen.get('api-1') ?? 0);
    expect((seen.get('api-1') ?? 0) + (seen.get('api-2') ?? 0)).to.be.within(85, 95);

    const clockAnswer = await fetch(`http://127.0.0.1:${proxyPort}/clock`);
    expect(await clockAnswer.text()).to.match(/^clock-1: /);

    expect(await tcpPing(tcpPort)).to.equal('+PONG');

    // Cairn registered itself with a check on its admin /health, which passes.
    await eventually(
      async () =>
        (await (await fetch(`${consul.address}/v1/health/service/cairn?passing`)).json()) as unknown[],
      (list) => list.length === 1,
      'cairn registered and passing in Consul',
      30_000,
    );

    // The admin token from the compose environment guards mutations.
    const put = await fetch(`${admin}/api/manual`, { method: 'PUT', body: '{}' });
    expect(put.status).to.be.oneOf([401, 403]);
  });
});
