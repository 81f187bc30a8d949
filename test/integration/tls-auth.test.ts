// TLS listeners (certificates chosen by SNI, HTTP/2 by ALPN), TLS upstreams (`proto=https`,
// `tlsskipverify=true`), basic auth (`auth=NAME` with an htpasswd file), request-id header and the
// access log, all over real sockets. Certificates are made with openssl at test time.

import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import http2 from 'node:http2';
import https from 'node:https';
import net, { type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import tls from 'node:tls';
import bcrypt from 'bcryptjs';
import { expect } from 'chai';
import { loadConfig } from '../../lib/config/index.ts';
import { silentLogger } from '../../lib/logging.ts';
import { CairnServer } from '../../lib/server.ts';

function makeCert(dir: string, base: string, names: string[]): void {
  const san = names.map((n) => `DNS:${n}`).join(',');
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-days',
      '2',
      '-subj',
      `/CN=${names[0]}`,
      '-addext',
      `subjectAltName=${san}`,
      '-keyout',
      join(dir, `${base}.key`),
      '-out',
      join(dir, `${base}.crt`),
    ],
    { stdio: 'ignore' },
  );
}

interface Backend {
  readonly port: number;
  readonly close: () => Promise<void>;
}

async function listen(server: http.Server | https.Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return (server.address() as AddressInfo).port;
}

function echo(name: string) {
  return (req: http.IncomingMessage, res: http.ServerResponse) => {
    const body = JSON.stringify({
      name,
      url: req.url,
      headers: req.headers,
      servername: (req.socket as tls.TLSSocket).servername ?? null,
    });
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(body);
  };
}

async function backend(name: string, tlsOpts?: { cert: Buffer; key: Buffer }): Promise<Backend> {
  const server =
    tlsOpts === undefined ? http.createServer(echo(name)) : https.createServer(tlsOpts, echo(name));
  const port = await listen(server);
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

async function startCairn(args: string[], accessLogOut?: NodeJS.WritableStream): Promise<CairnServer> {
  const loaded = loadConfig([...args, '--admin', '127.0.0.1:0', '--shutdown-wait', '1s'], {});
  if (loaded.kind !== 'config') throw new Error(`bad test config: ${JSON.stringify(loaded)}`);
  const s = new CairnServer(loaded.config, {
    logger: silentLogger(),
    ...(accessLogOut ? { accessLogOut } : {}),
  });
  await s.start();
  return s;
}

function httpsGet(
  port: number,
  servername: string,
  path: string,
  headers: Record<string, string> = {},
): Promise<{
  status: number;
  body: string;
  headers: http.IncomingHttpHeaders;
  peerCN: string;
  alpn: string | false;
}> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: '127.0.0.1',
        port,
        path,
        servername,
        rejectUnauthorized: false,
        headers: { host: servername, ...headers },
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const sock = res.socket as tls.TLSSocket;
          resolve({
            status: res.statusCode ?? 0,
            body: Buffer.concat(chunks).toString(),
            headers: res.headers,
            peerCN: String(sock.getPeerCertificate()?.subject?.CN ?? ''),
            alpn: sock.alpnProtocol ?? false,
          });
        });
      },
    );
    req.on('error', reject);
    req.end();
  });
}

/** An upstream that accepts any Upgrade with 101 and then echoes raw bytes back. */
async function rawUpgradeEcho(tlsOpts?: { cert: Buffer; key: Buffer }): Promise<Backend> {
  const server = tlsOpts === undefined ? http.createServer() : https.createServer(tlsOpts);
  const upgraded = new Set<net.Socket>();
  server.on('upgrade', (req: http.IncomingMessage, socket: net.Socket) => {
    upgraded.add(socket);
    socket.on('close', () => upgraded.delete(socket));
    socket.write(
      `HTTP/1.1 101 Switching Protocols\r\nUpgrade: ${req.headers.upgrade}\r\nConnection: Upgrade\r\n\r\n`,
    );
    socket.on('data', (d: Buffer) => socket.write(d));
    socket.on('error', () => socket.destroy());
  });
  const port = await listen(server);
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const u of upgraded) u.destroy();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Sends an upgrade request, waits for the 101 head, sends `payload`, reads it back. */
function upgradeAndEcho(sock: net.Socket, payload: string): Promise<{ head: string; echo: string }> {
  const path = payload.includes('tls') && !payload.includes('wss') ? '/ws-tls/x' : '/ws-plain/x';
  return new Promise((resolve, reject) => {
    let buf = '';
    let head = '';
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`no echo; got ${JSON.stringify(buf)}`));
    }, 5000);
    sock.on('error', reject);
    sock.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      if (head === '') {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        head = buf.slice(0, end);
        buf = buf.slice(end + 4);
        sock.write(payload);
      }
      if (buf.length >= payload.length) {
        clearTimeout(timer);
        sock.destroy();
        resolve({ head, echo: buf });
      }
    });
    const send = () =>
      sock.write(
        `GET ${path} HTTP/1.1\r\nHost: a.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`,
      );
    if ((sock as tls.TLSSocket).encrypted) sock.once('secureConnect', send);
    else sock.once('connect', send);
  });
}

function httpGet(
  port: number,
  path: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          body: Buffer.concat(chunks).toString(),
          headers: res.headers,
        }),
      );
    });
    req.on('error', reject);
    req.end();
  });
}

describe('TLS listeners, TLS upstreams, auth, request ids, access log', function () {
  this.timeout(20_000);
  let dir: string;
  let plain: Backend;
  let secure: Backend;
  let wsTls: Backend;
  let wsPlain: Backend;
  let cairn: CairnServer;
  let httpsPort: number;
  let httpPort: number;
  const accessLog = new PassThrough();
  const logLines: string[] = [];
  accessLog.on('data', (c: Buffer) => logLines.push(...c.toString().split('\n').filter(Boolean)));

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'cairn-tls-'));
    const certs = join(dir, 'certs');
    execFileSync('mkdir', ['-p', certs]);
    makeCert(certs, 'a', ['a.test']);
    makeCert(certs, 'wild', ['*.b.test']);
    makeCert(dir, 'upstream', ['upstream.internal']);
    plain = await backend('plain');
    secure = await backend('secure', {
      cert: readFileSync(join(dir, 'upstream.crt')),
      key: readFileSync(join(dir, 'upstream.key')),
    });
    wsTls = await rawUpgradeEcho({
      cert: readFileSync(join(dir, 'upstream.crt')),
      key: readFileSync(join(dir, 'upstream.key')),
    });
    wsPlain = await rawUpgradeEcho();
    const htpasswd = join(dir, 'users.htpasswd');
    const sha = `{SHA}${Buffer.from(await crypto.subtle.digest('SHA-1', new TextEncoder().encode('s3cret'))).toString('base64')}`;
    writeFileSync(htpasswd, `# users\nalice:${bcrypt.hashSync('wonderland', 4)}\nbob:${sha}\n`);
    const registry = join(dir, 'routes.yaml');
    writeFileSync(
      registry,
      `services:
  - name: plain
    instances:
      - { id: p1, address: 127.0.0.1, port: ${plain.port}, tags: ["urlprefix-/plain", "urlprefix-/private auth=team"] }
  - name: ws
    instances:
      - { id: wt, address: 127.0.0.1, port: ${wsTls.port}, tags: ["urlprefix-/ws-tls proto=https tlsskipverify=true"] }
      - { id: wp, address: 127.0.0.1, port: ${wsPlain.port}, tags: ["urlprefix-/ws-plain"] }
  - name: secure
    instances:
      - { id: s1, address: 127.0.0.1, port: ${secure.port}, tags: ["urlprefix-/insecure-ok proto=https tlsskipverify=true", "urlprefix-/verified proto=https", "urlprefix-/sni proto=https tlsskipverify=true host=upstream.internal"] }
`,
    );
    cairn = await startCairn(
      [
        '--listen',
        `127.0.0.1:0;proto=https;cert=${certs}`,
        '--listen',
        '127.0.0.1:0',
        '--registry',
        `file:${registry}`,
        '--auth',
        `name=team;type=basic;file=${htpasswd};realm=Team Area`,
        '--request-id-header',
        'X-Request-Id',
        '--access-log',
        'common',
      ],
      accessLog,
    );
    const addrs = cairn.addresses();
    httpsPort = addrs[0]?.port ?? 0;
    httpPort = addrs[1]?.port ?? 0;
  });

  after(async () => {
    await cairn?.stop(0);
    await plain?.close();
    await secure?.close();
    await wsTls?.close();
    await wsPlain?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('terminates TLS with the certificate matching the SNI name (exact and wildcard)', async () => {
    const a = await httpsGet(httpsPort, 'a.test', '/plain/x');
    expect(a.status).to.equal(200);
    expect(a.peerCN).to.equal('a.test');
    const b = await httpsGet(httpsPort, 'api.b.test', '/plain/x');
    expect(b.peerCN).to.equal('*.b.test');
    const body = JSON.parse(b.body) as { headers: Record<string, string> };
    expect(body.headers['x-forwarded-proto']).to.equal('https');
    expect(body.headers['x-forwarded-port']).to.equal('443');
  });

  it('negotiates HTTP/2 by ALPN and proxies it to an HTTP/1.1 upstream', async () => {
    const session = http2.connect(`https://127.0.0.1:${httpsPort}`, {
      servername: 'a.test',
      rejectUnauthorized: false,
    });
    try {
      const { status, body } = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = session.request({ ':path': '/plain/h2', ':authority': 'a.test' });
        let status = 0;
        const chunks: Buffer[] = [];
        req.on('response', (h) => {
          status = Number(h[':status']);
        });
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('end', () => resolve({ status, body: Buffer.concat(chunks).toString() }));
        req.on('error', reject);
        req.end();
      });
      expect(status).to.equal(200);
      const parsed = JSON.parse(body) as { url: string; headers: Record<string, string> };
      expect(parsed.url).to.equal('/plain/h2');
      expect(parsed.headers.host).to.equal('a.test');
      // HTTP/2 pseudo-headers never leak upstream.
      expect(Object.keys(parsed.headers).some((k) => k.startsWith(':'))).to.equal(false);
    } finally {
      session.close();
    }
  });

  it('serves HTTP/1.1 over TLS too (ALPN fallback)', async () => {
    const r = await httpsGet(httpsPort, 'a.test', '/plain/h1');
    expect(r.status).to.equal(200);
    expect(r.alpn === false || r.alpn === 'http/1.1').to.equal(true);
  });

  it('forwards to TLS upstreams, honouring tlsskipverify and verifying otherwise', async () => {
    const ok = await httpGet(httpPort, '/insecure-ok/x');
    expect(ok.status).to.equal(200);
    expect(JSON.parse(ok.body).name).to.equal('secure');
    const refused = await httpGet(httpPort, '/verified/x');
    expect(refused.status).to.equal(502);
  });

  it('sends the upstream SNI from host=<name>', async () => {
    const r = await httpGet(httpPort, '/sni/x');
    expect(r.status).to.equal(200);
    const body = JSON.parse(r.body) as { servername: string; headers: Record<string, string> };
    expect(body.servername).to.equal('upstream.internal');
    expect(body.headers.host).to.equal('upstream.internal');
  });

  it('proxies a WebSocket-style upgrade to a TLS upstream (proto=https)', async () => {
    const sock = net.connect(httpPort, '127.0.0.1');
    const got = await upgradeAndEcho(sock, 'ping-tls');
    expect(got.head).to.match(/^HTTP\/1\.1 101 /);
    expect(got.echo).to.equal('ping-tls');
  });

  it('accepts upgrades on the TLS listener (wss://) and relays them', async () => {
    const sock = tls.connect({
      port: httpsPort,
      host: '127.0.0.1',
      servername: 'a.test',
      rejectUnauthorized: false,
      ALPNProtocols: ['http/1.1'],
    });
    const got = await upgradeAndEcho(sock, 'ping-wss');
    expect(got.head).to.match(/^HTTP\/1\.1 101 /);
    expect(got.echo).to.equal('ping-wss');
  });

  it('asks for basic auth with the realm, accepts bcrypt and {SHA} users, rejects bad passwords', async () => {
    const none = await httpGet(httpPort, '/private/x');
    expect(none.status).to.equal(401);
    expect(none.headers['www-authenticate']).to.equal('Basic realm="Team Area"');
    const bad = await httpGet(httpPort, '/private/x', {
      authorization: `Basic ${Buffer.from('alice:nope').toString('base64')}`,
    });
    expect(bad.status).to.equal(401);
    const alice = await httpGet(httpPort, '/private/x', {
      authorization: `Basic ${Buffer.from('alice:wonderland').toString('base64')}`,
    });
    expect(alice.status).to.equal(200);
    const bob = await httpGet(httpPort, '/private/x', {
      authorization: `Basic ${Buffer.from('bob:s3cret').toString('base64')}`,
    });
    expect(bob.status).to.equal(200);
    const open = await httpGet(httpPort, '/plain/x');
    expect(open.status).to.equal(200);
  });

  it('adds a fresh request id to every upstream request', async () => {
    const a = JSON.parse((await httpGet(httpPort, '/plain/1')).body) as { headers: Record<string, string> };
    const b = JSON.parse((await httpGet(httpPort, '/plain/2')).body) as { headers: Record<string, string> };
    expect(a.headers['x-request-id']).to.match(/^[0-9a-f-]{36}$/);
    expect(a.headers['x-request-id']).to.not.equal(b.headers['x-request-id']);
  });

  it('writes one access-log line per request in the chosen format', async () => {
    logLines.length = 0;
    await httpGet(httpPort, '/plain/logged?q=1');
    await httpGet(httpPort, '/nowhere');
    await new Promise((r) => setTimeout(r, 50));
    expect(logLines.some((l) => /"GET \/plain\/logged\?q=1 HTTP\/1\.1" 200 \d+$/.test(l))).to.equal(
      true,
      logLines.join('\n'),
    );
    expect(logLines.some((l) => /"GET \/nowhere HTTP\/1\.1" 404 \d+$/.test(l))).to.equal(
      true,
      logLines.join('\n'),
    );
  });
});
