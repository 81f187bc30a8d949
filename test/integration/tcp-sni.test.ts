// SNI passthrough (`proto=tcp+sni`), the HTTPS fallback of `proto=https+tcp+sni`, and TLS
// termination on `proto=tcp;cert=...`, over real sockets. ClientHellos come from node:tls clients:
// whole, or written in small pieces with pauses (a ClientHello split across TCP segments). The
// TLS session is end to end in passthrough: the client sees the upstream's certificate.

import http from 'node:http';
import http2 from 'node:http2';
import https from 'node:https';
import net, { type AddressInfo } from 'node:net';
import { Duplex } from 'node:stream';
import { expect } from 'chai';
import {
  type CertFiles,
  captureClientHello,
  Client,
  type EchoUpstream,
  echoUpstream,
  makeCerts,
  service,
  sleep,
  startTcpCairn,
  type TcpCairn,
  tlsExchange,
} from './tcp-helpers.ts';

/** A raw connection to `port` whose first write (the ClientHello) goes out in `pieces` parts. */
function fragmenting(port: number, pieces: number, pauseMs: number): Duplex {
  const raw = net.connect({ port, host: '127.0.0.1', noDelay: true });
  let first = true;
  const d = new Duplex({
    write(chunk: Buffer, _enc, cb) {
      if (!first) {
        raw.write(chunk, cb);
        return;
      }
      first = false;
      const size = Math.ceil(chunk.length / pieces);
      void (async () => {
        for (let off = 0; off < chunk.length; off += size) {
          raw.write(chunk.subarray(off, off + size));
          await sleep(pauseMs);
        }
        cb();
      })();
    },
    read() {},
    final(cb) {
      raw.end();
      cb();
    },
    destroy(err, cb) {
      raw.destroy();
      cb(err);
    },
  });
  raw.on('data', (c: Buffer) => d.push(c));
  raw.on('end', () => d.push(null));
  raw.on('error', (e) => d.destroy(e));
  return d;
}

describe('tcp+sni: passthrough by server name', function () {
  this.timeout(20_000);
  let certs: CertFiles;
  let db: EchoUpstream;
  let apps: EchoUpstream;
  let fallback: EchoUpstream;
  let cairn: TcpCairn;
  let port: number;
  let portWithDefault: number;

  before(async () => {
    certs = makeCerts(['db.example.com', 'apps.example.com', 'default.test']);
    db = await echoUpstream('db', { tls: certs.cert('db.example.com') });
    apps = await echoUpstream('apps', { tls: certs.cert('apps.example.com') });
    fallback = await echoUpstream('default', { tls: certs.cert('default.test') });
    cairn = await startTcpCairn(['127.0.0.1:0;proto=tcp+sni;rt=400ms', '127.0.0.1:0;proto=tcp+sni']);
    port = cairn.tcpPorts[0] as number;
    portWithDefault = cairn.tcpPorts[1] as number;
    await cairn.update({
      services: [
        service(
          'db',
          [db],
          [
            `urlprefix-db.example.com:${port} proto=tcp+sni`,
            `urlprefix-db.example.com:${portWithDefault} proto=tcp+sni`,
          ],
        ),
        service('apps', [apps], [`urlprefix-*.apps.example.com:${port} proto=tcp+sni`]),
        service('default', [fallback], [`urlprefix-:${portWithDefault} proto=tcp+sni`]),
      ],
    });
  });

  after(async () => {
    await cairn?.stop();
    for (const u of [db, apps, fallback]) await u?.close();
    certs?.remove();
  });

  it('forwards a ClientHello to the route for its server name (TLS end to end)', async () => {
    const r = await tlsExchange(port, 'db.example.com', 'hello db');
    expect(r).to.deep.equal({ peerCn: 'db.example.com', echoed: 'hello db' });
  });

  it('matches names case-insensitively and host globs', async () => {
    expect((await tlsExchange(port, 'DB.Example.COM', 'x')).peerCn).to.equal('db.example.com');
    expect((await tlsExchange(port, 'web.apps.example.com', 'y')).peerCn).to.equal('apps.example.com');
    expect((await tlsExchange(port, 'a.b.apps.example.com', 'z')).peerCn).to.equal('apps.example.com');
  });

  for (const [pieces, pauseMs] of [
    [2, 30],
    [7, 20],
    [40, 5],
  ] as const) {
    it(`works when the ClientHello arrives in ${pieces} segments`, async () => {
      const r = await tlsExchange(port, 'db.example.com', 'fragmented', fragmenting(port, pieces, pauseMs));
      expect(r).to.deep.equal({ peerCn: 'db.example.com', echoed: 'fragmented' });
    });
  }

  it('works when the ClientHello trickles in one byte at a time', async () => {
    const r = await tlsExchange(port, 'db.example.com', 'slowly', fragmenting(port, 1_000_000, 1));
    expect(r).to.deep.equal({ peerCn: 'db.example.com', echoed: 'slowly' });
  });

  it('refuses an unknown name with a TLS unrecognized_name alert', async () => {
    const before = cairn.server.tcp.stats.rejected.noRoute;
    const conns = db.conns.length + apps.conns.length;
    const err = await tlsExchange(port, 'nobody.example.org', 'x').then(
      () => undefined,
      (e: Error & { code?: string }) => e,
    );
    expect(err?.code ?? err?.message).to.match(/UNRECOGNIZED_NAME|unrecognized name/i);
    expect(cairn.server.tcp.stats.rejected.noRoute).to.equal(before + 1);
    expect(db.conns.length + apps.conns.length).to.equal(conns);
  });

  it('sends unknown names and clients without SNI to the port route when there is one', async () => {
    expect((await tlsExchange(portWithDefault, 'nobody.example.org', 'a')).peerCn).to.equal('default.test');
    expect((await tlsExchange(portWithDefault, '', 'b')).peerCn).to.equal('default.test');
    expect((await tlsExchange(portWithDefault, 'db.example.com', 'c')).peerCn).to.equal('db.example.com');
  });

  it('rejects a non-TLS first packet at once', async () => {
    const before = cairn.server.tcp.stats.rejected.badPrelude;
    const c = await Client.connect(port);
    const t = Date.now();
    c.socket.write('GET / HTTP/1.1\r\nHost: db.example.com\r\n\r\n');
    expect(await c.waitClosed(1000)).to.equal(true);
    expect(Date.now() - t).to.be.lessThan(300);
    expect(cairn.server.tcp.stats.rejected.badPrelude).to.equal(before + 1);
  });

  it('drops a client that sends nothing, or half a ClientHello, within rt=', async () => {
    const before = cairn.server.tcp.stats.rejected.preludeTimeout;
    const hello = await captureClientHello('db.example.com');
    const silent = await Client.connect(port);
    const half = await Client.connect(port);
    half.socket.write(hello.subarray(0, hello.length >> 1));
    const t = Date.now();
    const [a, b] = await Promise.all([silent.closedAt, half.closedAt]);
    expect(a - t).to.be.within(250, 1200);
    expect(b - t).to.be.within(250, 1200);
    expect(cairn.server.tcp.stats.rejected.preludeTimeout).to.equal(before + 2);
  });

  it('survives a burst of random garbage and keeps serving', async () => {
    const clients: Client[] = [];
    for (let i = 0; i < 30; i++) {
      const c = await Client.connect(port);
      const junk = Buffer.alloc(3 + ((i * 37) % 300));
      for (let j = 0; j < junk.length; j++) junk[j] = (i * 131 + j * 17) & 0xff;
      // Some start like a handshake record, to get past the first-byte check.
      if (i % 2 === 0) junk.set([0x16, 0x03, 0x01], 0);
      c.socket.write(junk);
      if (i % 3 === 0) c.socket.end();
      clients.push(c);
    }
    for (const c of clients) expect(await c.waitClosed(2000)).to.equal(true);
    expect((await tlsExchange(port, 'db.example.com', 'still here')).echoed).to.equal('still here');
  });
});

describe('https+tcp+sni: passthrough for SNI routes, HTTPS for the rest', function () {
  this.timeout(20_000);
  let certs: CertFiles;
  let db: EchoUpstream;
  let web: http.Server;
  let cairn: TcpCairn;
  let port: number;

  before(async () => {
    certs = makeCerts(['db.example.com', 'cairn.test']);
    db = await echoUpstream('db', { tls: certs.cert('db.example.com') });
    web = http.createServer((req, res) =>
      res.end(`web saw ${req.url} via ${req.headers['x-forwarded-proto']}`),
    );
    await new Promise<void>((r) => web.listen(0, '127.0.0.1', () => r()));
    const webPort = (web.address() as AddressInfo).port;
    const c = certs.cert('cairn.test');
    cairn = await startTcpCairn([`127.0.0.1:0;proto=https+tcp+sni;cert=${c.certFile};key=${c.keyFile}`]);
    port = cairn.tcpPorts[0] as number;
    await cairn.update({
      services: [
        service('db', [db], [`urlprefix-db.example.com:${port} proto=tcp+sni`]),
        service('web', [{ port: webPort }], ['urlprefix-/']),
      ],
    });
  });

  after(async () => {
    await cairn?.stop();
    await db?.close();
    web?.close();
    certs?.remove();
  });

  it('passes an SNI-routed connection through untouched', async () => {
    expect(await tlsExchange(port, 'db.example.com', 'raw bytes')).to.deep.equal({
      peerCn: 'db.example.com',
      echoed: 'raw bytes',
    });
  });

  it('terminates TLS for other names and serves HTTPS (HTTP/1.1)', async () => {
    const res = await new Promise<{ status: number; body: string; cn: string }>((resolve, reject) => {
      const req = https.get(
        { host: '127.0.0.1', port, path: '/hello', servername: 'www.cairn.test', rejectUnauthorized: false },
        (r) => {
          const cn = (r.socket as import('node:tls').TLSSocket).getPeerCertificate().subject?.CN ?? '';
          let body = '';
          r.on('data', (d: Buffer) => (body += d.toString()));
          r.on('end', () => resolve({ status: r.statusCode ?? 0, body, cn: String(cn) }));
        },
      );
      req.on('error', reject);
    });
    expect(res).to.deep.equal({ status: 200, body: 'web saw /hello via https', cn: 'cairn.test' });
    expect(cairn.server.tcp.stats.rejected.toHttps).to.be.greaterThan(0);
  });

  it('serves HTTP/2 on the HTTPS side, also for clients without SNI', async () => {
    const session = http2.connect(`https://127.0.0.1:${port}`, { rejectUnauthorized: false });
    try {
      const body = await new Promise<string>((resolve, reject) => {
        const s = session.request({ ':path': '/h2' });
        let b = '';
        s.on('data', (d: Buffer) => (b += d.toString()));
        s.on('end', () => resolve(b));
        s.on('error', reject);
        s.end();
      });
      expect(body).to.equal('web saw /h2 via https');
    } finally {
      session.close();
    }
  });

  it('still rejects garbage', async () => {
    const c = await Client.connect(port);
    c.socket.write('SSH-2.0-OpenSSH_9.0\r\n');
    expect(await c.waitClosed(1000)).to.equal(true);
  });
});

describe('tcp with cert=: TLS terminated, plain bytes forwarded by port', function () {
  this.timeout(15_000);

  it('decrypts and forwards to the port route', async () => {
    const certs = makeCerts(['redis.cairn.test']);
    const plain = await echoUpstream('plain');
    const c = certs.cert('redis.cairn.test');
    const cairn = await startTcpCairn([`127.0.0.1:0;proto=tcp;cert=${c.certFile};key=${c.keyFile}`]);
    try {
      const port = cairn.tcpPorts[0] as number;
      await cairn.update({ services: [service('redis', [plain], [`urlprefix-:${port} proto=tcp`])] });
      const r = await tlsExchange(port, 'redis.cairn.test', 'PING\r\n');
      expect(r).to.deep.equal({ peerCn: 'redis.cairn.test', echoed: 'PING\r\n' });
      // The upstream saw plaintext.
      expect(plain.bytes(0).toString()).to.equal('PING\r\n');
    } finally {
      await cairn.stop();
      await plain.close();
      certs.remove();
    }
  });
});
