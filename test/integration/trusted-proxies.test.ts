// `--trusted-proxies` end to end, on both HTTP/1.1 engines: access rules, X-Real-Ip, the client-IP
// header and the access log believe X-Forwarded-For only as far as trusted proxies vouch for it.
// The test client is 127.0.0.1, so "Cairn at the edge" is the default (nothing trusted) and
// "Cairn behind a proxy" is `--trusted-proxies 127.0.0.1`.
//
// This differs from fabio on purpose: fabio checks every X-Forwarded-For entry and keeps a
// client's X-Real-Ip, so a client at the edge chooses the address the backend and the logs see.
// fabio's behaviour is `--trusted-proxies 0.0.0.0/0,::/0` (its vectors run that way in
// test/integration/http-proxy.test.ts).

import { PassThrough } from 'node:stream';
import { expect } from 'chai';
import { request } from 'undici';
import { type Cairn, startCairn } from './helpers/cairn.ts';
import { type Echo, type Upstream, closeAll, startUpstream } from './helpers/upstream.ts';

interface Started {
  readonly cairn: Cairn;
  readonly port: number;
  /** Access-log lines (JSON). */
  readonly log: string[];
}

async function start(upstream: number, args: string[]): Promise<Started> {
  const routes = [
    `route add echo /open http://127.0.0.1:${upstream}/`,
    `route add echo /deny-doc http://127.0.0.1:${upstream}/ opts "deny=ip:192.0.2.0/24"`,
    `route add echo /allow-local http://127.0.0.1:${upstream}/ opts "allow=ip:127.0.0.0/8"`,
  ].join('\n');
  const out = new PassThrough();
  const log: string[] = [];
  out.on('data', (c: Buffer) =>
    log.push(
      ...c
        .toString()
        .split('\n')
        .filter((l) => l !== ''),
    ),
  );
  const cairn = await startCairn(
    { routes },
    { args: ['--client-ip-header', 'X-Client-Ip', '--access-log', 'json', ...args], accessLogOut: out },
  );
  return { cairn, port: cairn.port, log };
}

async function get(
  port: number,
  path: string,
  headers: Record<string, string>,
): Promise<{ status: number; echo?: Echo }> {
  const r = await request(`http://127.0.0.1:${port}${path}`, { headers, reset: true });
  const text = await r.body.text();
  return r.statusCode === 200 ? { status: 200, echo: JSON.parse(text) as Echo } : { status: r.statusCode };
}

for (const engine of ['lean', 'node']) {
  describe(`--trusted-proxies (--http1-engine ${engine})`, function () {
    this.timeout(20_000);
    let up: Upstream;
    let c: Started | undefined;

    before(async () => {
      up = await startUpstream('echo');
    });
    after(async () => {
      await closeAll([up]);
    });
    afterEach(async () => {
      await c?.cairn.stop(0);
      c = undefined;
    });

    const spoof = { 'x-forwarded-for': '192.0.2.66', 'x-real-ip': '192.0.2.66' };

    it('default (Cairn is the edge): X-Forwarded-For and X-Real-Ip from the client are not believed', async () => {
      c = await start(up.port, ['--http1-engine', engine]);
      // deny=192.0.2.0/24 judges the socket address only: a client cannot get itself judged as
      // someone else (and allow=127.0.0.0/8 still passes whatever it writes)
      expect((await get(c.port, '/deny-doc/x', spoof)).status).to.equal(200);
      expect((await get(c.port, '/allow-local/x', { 'x-forwarded-for': '10.0.0.1' })).status).to.equal(200);
      const r = await get(c.port, '/open/x', spoof);
      const h = r.echo?.headers ?? {};
      expect(h['x-real-ip']).to.equal('127.0.0.1');
      expect(h['x-client-ip']).to.equal('127.0.0.1');
      // X-Forwarded-For keeps the chain (it is a record, not a claim) with the real peer appended
      expect(h['x-forwarded-for']).to.equal('192.0.2.66, 127.0.0.1');
      const last = JSON.parse(c.log[c.log.length - 1] ?? '{}') as { remote?: string };
      expect(JSON.stringify(last)).to.include('127.0.0.1');
      expect(JSON.stringify(last)).to.not.include('192.0.2.66');
    });

    it('behind a trusted proxy: its X-Forwarded-For entry is the client (access, X-Real-Ip, log)', async () => {
      c = await start(up.port, ['--http1-engine', engine, '--trusted-proxies', '127.0.0.1']);
      expect((await get(c.port, '/deny-doc/x', { 'x-forwarded-for': '192.0.2.66' })).status).to.equal(403);
      // a spoofed entry left of the one the trusted proxy wrote is not believed
      const chain = { 'x-forwarded-for': '192.0.2.66, 198.51.100.7' };
      expect((await get(c.port, '/deny-doc/x', chain)).status).to.equal(200);
      const r = await get(c.port, '/open/x', { ...chain, 'x-real-ip': '192.0.2.66' });
      const h = r.echo?.headers ?? {};
      // the trusted peer's own X-Real-Ip is kept (fabio); the client-IP header is Cairn's view
      expect(h['x-real-ip']).to.equal('192.0.2.66');
      expect(h['x-client-ip']).to.equal('198.51.100.7');
      const r2 = await get(c.port, '/open/y', chain);
      expect(r2.echo?.headers['x-real-ip']).to.equal('198.51.100.7');
      expect(c.log.some((l) => l.includes('198.51.100.7'))).to.equal(true);
    });

    it('every hop trusted (0.0.0.0/0,::/0) is fabio: every X-Forwarded-For entry is checked', async () => {
      c = await start(up.port, ['--http1-engine', engine, '--trusted-proxies', '0.0.0.0/0,::/0']);
      const chain = { 'x-forwarded-for': '192.0.2.66, 198.51.100.7' };
      expect((await get(c.port, '/deny-doc/x', chain)).status).to.equal(403);
    });
  });
}
