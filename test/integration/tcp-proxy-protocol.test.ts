// PROXY protocol both ways over real sockets: Cairn writes a v1/v2 header to upstreams of routes
// with `pxyproto=true|v1|v2`, and reads one on listeners with `pxyproto=true` (the client address
// in it is what upstream headers and allow=/deny= see). Interop with HAProxy (its send-proxy-v2
// in front of Cairn, its accept-proxy behind) when HAProxy is installed.

import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { encodeProxyV2, readProxyHeader } from '../../lib/proxy/tcp/proxy-protocol.ts';
import {
  Client,
  type EchoUpstream,
  echoUpstream,
  freePort,
  service,
  sleep,
  startTcpCairn,
  type TcpCairn,
  waitFor,
} from './tcp-helpers.ts';

describe('PROXY protocol to upstreams (route option pxyproto=)', function () {
  this.timeout(15_000);
  let up: EchoUpstream;
  let cairn: TcpCairn;
  let port: number;

  before(async () => {
    up = await echoUpstream('u');
    cairn = await startTcpCairn(['127.0.0.1:0;proto=tcp']);
    port = cairn.tcpPorts[0] as number;
  });
  after(async () => {
    await cairn?.stop();
    await up?.close();
  });

  it('pxyproto=true sends a v1 header with the client and listener addresses first (fabio)', async () => {
    await cairn.update({ services: [service('db', [up], [`urlprefix-:${port} proto=tcp pxyproto=true`])] });
    const n = up.conns.length;
    const c = await Client.connect(port);
    const clientPort = c.socket.localPort as number;
    const header = `PROXY TCP4 127.0.0.1 127.0.0.1 ${clientPort} ${port}\r\n`;
    c.socket.write('data');
    // The upstream echoes everything, the header included.
    expect((await c.read(header.length + 4)).toString()).to.equal(`${header}data`);
    expect(up.bytes(n).toString()).to.equal(`${header}data`);
    c.destroy();
  });

  it('pxyproto=v2 sends the binary v2 header', async () => {
    await cairn.update({ services: [service('db', [up], [`urlprefix-:${port} proto=tcp pxyproto=v2`])] });
    const n = up.conns.length;
    const c = await Client.connect(port);
    c.socket.write('v2data');
    await waitFor(() => up.bytes(n).length >= 28 + 6, 2000, 'header and data');
    const got = up.bytes(n);
    const r = readProxyHeader(got);
    expect(r.header).to.deep.equal({
      version: 2,
      source: { address: '127.0.0.1', port: c.socket.localPort },
      destination: { address: '127.0.0.1', port },
    });
    expect(got.subarray(r.consumed).toString()).to.equal('v2data');
    c.destroy();
  });

  it('sends no header without the option', async () => {
    await cairn.update({ services: [service('db', [up], [`urlprefix-:${port} proto=tcp`])] });
    const c = await Client.connect(port);
    expect(await c.exchange('plain')).to.equal('plain');
    c.destroy();
  });
});

describe('PROXY protocol from a balancer in front (listener pxyproto=true)', function () {
  this.timeout(15_000);
  let up: EchoUpstream;
  let cairn: TcpCairn;
  let port: number;

  before(async () => {
    up = await echoUpstream('u');
    cairn = await startTcpCairn(['127.0.0.1:0;proto=tcp;pxyproto=true;pxytimeout=300ms']);
    port = cairn.tcpPorts[0] as number;
  });
  after(async () => {
    await cairn?.stop();
    await up?.close();
  });

  it('strips the v1 header and passes the original client on to the upstream header', async () => {
    await cairn.update({ services: [service('db', [up], [`urlprefix-:${port} proto=tcp pxyproto=true`])] });
    const c = await Client.connect(port);
    c.socket.write('PROXY TCP4 203.0.113.9 198.51.100.1 40000 5432\r\nhello');
    const expected = 'PROXY TCP4 203.0.113.9 198.51.100.1 40000 5432\r\nhello';
    expect((await c.read(expected.length)).toString()).to.equal(expected);
    c.destroy();
  });

  it('reads a v2 header split across segments and writes v1 upstream', async () => {
    const h = encodeProxyV2({ address: '2001:db8::5', port: 1234 }, { address: '2001:db8::1', port: 443 });
    const c = await Client.connect(port);
    c.socket.write(h.subarray(0, 7));
    await sleep(30);
    c.socket.write(h.subarray(7, 20));
    await sleep(30);
    c.socket.write(Buffer.concat([h.subarray(20), Buffer.from('x')]));
    const expected = 'PROXY TCP6 2001:db8::5 2001:db8::1 1234 443\r\nx';
    expect((await c.read(expected.length)).toString()).to.equal(expected);
    c.destroy();
  });

  it("uses the connection's own addresses for a v2 LOCAL header (balancer health checks)", async () => {
    const local = encodeProxyV2(undefined, undefined);
    const c = await Client.connect(port);
    c.socket.write(Buffer.concat([local, Buffer.from('hc')]));
    const expected = `PROXY TCP4 127.0.0.1 127.0.0.1 ${c.socket.localPort} ${port}\r\nhc`;
    expect((await c.read(expected.length)).toString()).to.equal(expected);
    c.destroy();
  });

  it("applies allow= to the address in the header, not the balancer's", async () => {
    await cairn.update({
      services: [service('db', [up], [`urlprefix-:${port} proto=tcp allow=ip:203.0.113.0/24`])],
    });
    const ok = await Client.connect(port);
    ok.socket.write('PROXY TCP4 203.0.113.9 127.0.0.1 1 2\r\n');
    expect(await ok.exchange('in')).to.equal('in');
    ok.destroy();
    const denied = await Client.connect(port);
    denied.socket.write('PROXY TCP4 198.51.100.7 127.0.0.1 1 2\r\n');
    expect(await denied.waitClosed(1000)).to.equal(true);
  });

  it('drops a connection without a header, or a silent one after pxytimeout=', async () => {
    await cairn.update({ services: [service('db', [up], [`urlprefix-:${port} proto=tcp`])] });
    const bad = cairn.server.tcp.stats.rejected.badPrelude;
    const slow = cairn.server.tcp.stats.rejected.preludeTimeout;
    const noHeader = await Client.connect(port);
    noHeader.socket.write('hello without header\r\n');
    expect(await noHeader.waitClosed(1000)).to.equal(true);
    const silent = await Client.connect(port);
    const t = Date.now();
    expect(await silent.waitClosed(2000)).to.equal(true);
    expect(Date.now() - t).to.be.within(200, 1000);
    expect(cairn.server.tcp.stats.rejected.badPrelude).to.equal(bad + 1);
    expect(cairn.server.tcp.stats.rejected.preludeTimeout).to.equal(slow + 1);
  });
});

describe('PROXY protocol interop with HAProxy', function () {
  this.timeout(20_000);
  const haproxyBin = '/usr/sbin/haproxy';
  let dir: string;
  let up: EchoUpstream;
  let cairn: TcpCairn;
  let stopHaproxy: (() => void) | undefined;

  before(async function () {
    if (!existsSync(haproxyBin)) return this.skip();
    dir = mkdtempSync(join(tmpdir(), 'cairn-pp-haproxy-'));
    up = await echoUpstream('u');
    cairn = await startTcpCairn(['127.0.0.1:0;proto=tcp;pxyproto=true', '127.0.0.1:0;proto=tcp']);
  });

  after(async () => {
    stopHaproxy?.();
    await cairn?.stop();
    await up?.close();
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  async function runHaproxy(config: string, port: number): Promise<void> {
    const file = join(dir, `haproxy-${port}.cfg`);
    writeFileSync(file, config);
    const child = spawn(haproxyBin, ['-db', '-f', file], { stdio: 'ignore', detached: true });
    stopHaproxy = () => {
      try {
        process.kill(-(child.pid as number), 'SIGKILL');
      } catch {
        /* gone */
      }
    };
    const deadline = Date.now() + 5000;
    for (;;) {
      try {
        const c = await Client.connect(port);
        c.destroy();
        return;
      } catch {
        if (Date.now() > deadline) throw new Error('haproxy did not start');
        await sleep(50);
      }
    }
  }

  it("accepts HAProxy's send-proxy-v2 header and relays the original client", async () => {
    const pxyPort = cairn.tcpPorts[0] as number;
    await cairn.update({
      services: [service('db', [up], [`urlprefix-:${pxyPort} proto=tcp pxyproto=true`])],
    });
    const hport = await freePort();
    await runHaproxy(
      `global\n  maxconn 100\ndefaults\n  mode tcp\n  timeout connect 2s\n  timeout client 10s\n  timeout server 10s\n` +
        `frontend fe\n  bind 127.0.0.1:${hport}\n  default_backend be\n` +
        `backend be\n  server cairn 127.0.0.1:${pxyPort} send-proxy-v2\n`,
      hport,
    );
    const c = await Client.connect(hport);
    const header = `PROXY TCP4 127.0.0.1 127.0.0.1 ${c.socket.localPort} ${hport}\r\n`;
    c.socket.write('through haproxy');
    expect((await c.read(header.length + 15, 4000)).toString()).to.equal(`${header}through haproxy`);
    c.destroy();
    stopHaproxy?.();
    stopHaproxy = undefined;
  });

  it("writes v1 and v2 headers HAProxy's accept-proxy takes", async () => {
    const plainPort = cairn.tcpPorts[1] as number;
    const hport = await freePort();
    await runHaproxy(
      `global\n  maxconn 100\ndefaults\n  mode tcp\n  timeout connect 2s\n  timeout client 10s\n  timeout server 10s\n` +
        `frontend fe\n  bind 127.0.0.1:${hport} accept-proxy\n  default_backend be\n` +
        `backend be\n  server up 127.0.0.1:${up.port}\n`,
      hport,
    );
    for (const v of ['true', 'v2']) {
      await cairn.update({
        services: [
          {
            name: 'hap',
            instances: [
              {
                id: 'h',
                address: '127.0.0.1',
                port: hport,
                tags: [`urlprefix-:${plainPort} proto=tcp pxyproto=${v}`],
              },
            ],
          },
        ],
      });
      const c = await Client.connect(plainPort);
      // HAProxy strips the header; a header it refused would have closed the connection.
      expect(await c.exchange(`via ${v}`, 4000)).to.equal(`via ${v}`);
      c.destroy();
    }
  });
});
