// Who may change routing through the admin listener (--admin-token, --admin-readonly, the
// loopback rule at startup), the in-memory override store when no registry can keep overrides,
// and TCP traffic in the admin's stats and metrics. Real sockets throughout.

import net from 'node:net';
import { expect } from 'chai';
import { request } from 'undici';
import { loadConfig } from '../../lib/config/index.ts';
import { silentLogger } from '../../lib/logging.ts';
import { CairnServer, StartupError } from '../../lib/server.ts';
import { type Cairn, startCairn, waitFor } from './helpers/cairn.ts';
import { closeAll, startUpstream, type Upstream } from './helpers/upstream.ts';

function server(args: readonly string[]): CairnServer {
  const loaded = loadConfig(['--listen', '127.0.0.1:0', '--log-level', 'silent', ...args], {});
  if (loaded.kind !== 'config') throw new Error(`bad test config: ${JSON.stringify(loaded)}`);
  return new CairnServer(loaded.config, { logger: silentLogger() });
}

async function call(
  port: number,
  path: string,
  init: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<{ status: number; headers: Record<string, unknown>; json: () => unknown; text: string }> {
  const r = await request(`http://127.0.0.1:${port}${path}`, {
    method: (init.method ?? 'GET') as 'GET',
    ...(init.headers !== undefined ? { headers: init.headers } : {}),
    ...(init.body !== undefined ? { body: init.body } : {}),
  });
  const text = await r.body.text();
  return { status: r.statusCode, headers: r.headers, text, json: () => JSON.parse(text) };
}

async function putManual(port: number, value: string, headers: Record<string, string> = {}) {
  const m = (await call(port, '/api/manual')).json() as { version: string };
  return call(port, '/api/manual', {
    method: 'PUT',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ value, version: m.version }),
  });
}

describe('admin access (real sockets)', function () {
  this.timeout(10_000);

  let cairn: Cairn | undefined;
  let plain: CairnServer | undefined;
  let ups: Upstream[] = [];

  afterEach(async () => {
    await cairn?.stop();
    cairn = undefined;
    await plain?.stop(0);
    plain = undefined;
    await closeAll(ups);
    ups = [];
  });

  it('--admin-token: changes need the bearer token', async () => {
    const c = await startCairn({ routes: '' }, { args: ['--admin-token', 's3cret'] });
    cairn = c;
    const port = c.server.adminAddress()?.port ?? 0;
    expect((await call(port, '/api/status')).json()).to.deep.include({
      admin: { readonly: false, token_required: true },
    });
    const none = await putManual(port, 'route add a /a http://10.0.0.1/');
    expect(none.status).to.equal(401);
    expect(none.headers['www-authenticate']).to.match(/^Bearer/);
    const wrong = await putManual(port, 'route add a /a http://10.0.0.1/', { authorization: 'Bearer nope' });
    expect(wrong.status).to.equal(401);
    const right = await putManual(port, 'route add a /a http://10.0.0.1/', {
      authorization: 'Bearer s3cret',
    });
    expect(right.status).to.equal(200);
    // Reading never needs the token.
    expect((await call(port, '/api/routes')).status).to.equal(200);
  });

  it('--admin-readonly: every change is refused, reading works', async () => {
    const c = await startCairn({ routes: '' }, { args: ['--admin-readonly'] });
    cairn = c;
    const port = c.server.adminAddress()?.port ?? 0;
    const r = await putManual(port, 'route add a /a http://10.0.0.1/');
    expect(r.status).to.equal(403);
    expect(r.text).to.include('read-only');
    expect((await call(port, '/api/manual')).status).to.equal(200);
  });

  it('refuses to start on a non-loopback admin address without a token, and binds nothing', async () => {
    const s = server(['--admin', '0.0.0.0:0']);
    plain = s;
    let err: unknown;
    await s.start().catch((e: unknown) => {
      err = e;
    });
    expect(err).to.be.instanceOf(StartupError);
    expect((err as Error).message).to.include('--admin-token');
    expect((err as Error).message).to.include('--admin-readonly');
    expect(s.addresses()).to.deep.equal([]);
    expect(s.adminAddress()).to.equal(undefined);
  });

  it('starts on a non-loopback address read-only, and then refuses changes even from loopback', async () => {
    const s = server(['--admin', '0.0.0.0:0', '--admin-readonly']);
    plain = s;
    await s.start();
    const port = s.adminAddress()?.port ?? 0;
    expect((await putManual(port, 'route add a /a http://10.0.0.1/')).status).to.equal(403);
  });

  it('without a registry that stores overrides, they live in memory and route', async () => {
    const u = await startUpstream('mem1');
    ups = [u];
    const s = server(['--admin', '127.0.0.1:0']);
    plain = s;
    await s.start();
    const port = s.adminAddress()?.port ?? 0;
    const listen = s.addresses()[0]?.port ?? 0;
    const status = (await call(port, '/api/status')).json() as {
      manual_store: string;
      registries: unknown[];
    };
    expect(status.manual_store).to.equal('memory');
    expect(status.registries).to.deep.equal([]);
    expect((await call(port, '/api/manual')).json()).to.deep.equal({ value: '', version: '0' });
    const r = await putManual(port, `route add mem /m http://127.0.0.1:${u.port}/`);
    expect(r.status).to.equal(200);
    expect(r.json()).to.deep.include({ version: '1' });
    const got = await request(`http://127.0.0.1:${listen}/m/x`);
    expect(got.headers['x-upstream']).to.equal('mem1');
    await got.body.dump();
  });

  it('TCP routes: connections in /api/routes and the TCP metrics', async () => {
    const echo = net.createServer((sock) => sock.pipe(sock));
    await new Promise<void>((resolve) => echo.listen(0, '127.0.0.1', () => resolve()));
    const echoPort = (echo.address() as net.AddressInfo).port;
    try {
      const c = await startCairn({ services: [] }, { args: ['--listen', '127.0.0.1:0;proto=tcp'] });
      cairn = c;
      const tcpPort = c.server.addresses()[1]?.port ?? 0;
      await c.update({
        services: [
          {
            name: 'db',
            instances: [
              { id: 'db1', address: '127.0.0.1', port: echoPort, tags: [`urlprefix-:${tcpPort} proto=tcp`] },
            ],
          },
        ],
      });
      const sock = net.connect(tcpPort, '127.0.0.1');
      await new Promise<void>((resolve, reject) => {
        sock.once('error', reject);
        sock.once('data', () => resolve());
        sock.write('ping');
      });
      const admin = c.server.adminAddress()?.port ?? 0;
      const second = c.server.telemetry.traffic.second;
      await waitFor(() => c.server.telemetry.traffic.second > second, 2000, 'a stats tick');
      const rows = (await call(admin, '/api/routes')).json() as {
        service: string;
        proto: string;
        stats: { open: number; requests_total: number };
      }[];
      const db = rows.find((r) => r.service === 'db');
      expect(db).to.deep.include({ proto: 'tcp' });
      expect(db?.stats).to.deep.include({ open: 1, requests_total: 1 });
      const metrics = (await call(admin, '/metrics')).text;
      expect(metrics).to.include(`cairn_tcp_connections_total{route=":${tcpPort}",service="db"} 1`);
      expect(metrics).to.include(`cairn_tcp_bytes_total{route=":${tcpPort}",service="db",direction="in"} 4`);
      expect(metrics).to.include('cairn_open_connections{kind="tcp"} 1');
      sock.destroy();
    } finally {
      echo.close();
    }
  });
});
