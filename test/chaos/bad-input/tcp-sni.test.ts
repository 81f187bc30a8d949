// Bad input on TCP+SNI listeners beyond tcp-sni.test.ts (garbage bursts, non-TLS first packets,
// silent and half ClientHellos): oversized ClientHellos (a record that claims too much, and a real
// multi-record hello over the 64 KB limit), fuzzed and truncated ClientHellos at the parser and on
// the wire, and many idle connections at once. Each is closed in bounded time, counted, and the
// listener keeps serving.

import { expect } from 'chai';
import fc from 'fast-check';
import {
  HELLO_ERROR,
  HELLO_INCOMPLETE,
  HELLO_OK,
  MAX_HELLO_BYTES,
  readClientHello,
} from '../../../lib/proxy/tcp/client-hello.ts';
import {
  captureClientHello,
  Client,
  type CertFiles,
  type EchoUpstream,
  echoUpstream,
  makeCerts,
  service,
  startTcpCairn,
  type TcpCairn,
  tlsExchange,
} from '../../integration/tcp-helpers.ts';

/** A handshake record header (type 22, TLS 1.0 record version) for `len` bytes. */
function recordHeader(len: number): Buffer {
  return Buffer.from([0x16, 0x03, 0x01, (len >> 8) & 0xff, len & 0xff]);
}

/** A ClientHello handshake header claiming a body of `n` bytes, split over full 16 KB records. */
function hugeHelloRecords(n: number): Buffer {
  const body = Buffer.alloc(4 + n);
  body[0] = 0x01;
  body[1] = (n >> 16) & 0xff;
  body[2] = (n >> 8) & 0xff;
  body[3] = n & 0xff;
  const parts: Buffer[] = [];
  for (let o = 0; o < body.length; o += 16384) {
    const chunk = body.subarray(o, Math.min(body.length, o + 16384));
    parts.push(recordHeader(chunk.length), chunk);
  }
  return Buffer.concat(parts);
}

describe('bad input: TLS ClientHello parser (fuzzed)', () => {
  let hello: Buffer;
  before(async () => {
    hello = await captureClientHello('db.example.com');
  });

  it('every truncation of a real ClientHello is incomplete, never an error or a throw', () => {
    expect(readClientHello(hello).status).to.equal(HELLO_OK);
    for (let n = 0; n < hello.length; n++) {
      expect(readClientHello(hello.subarray(0, n)).status, `first ${n} bytes`).to.equal(HELLO_INCOMPLETE);
    }
  });

  it('5,000 mutated ClientHellos: a result every time, never a throw, names stay printable', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 }),
        fc.nat(),
        (flips, cut) => {
          const b = Buffer.from(hello);
          for (const [at, v] of flips) b[at % b.length] = v;
          const r = readClientHello(b.subarray(0, Math.max(1, b.length - (cut % 8))));
          expect([HELLO_OK, HELLO_INCOMPLETE, HELLO_ERROR]).to.include(r.status);
          if (r.status === HELLO_OK) expect(r.serverName).to.match(/^[\x21-\x7e]*$/);
        },
      ),
      { numRuns: 5000 },
    );
  });

  it('random bytes: a result every time', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), (b) => {
        const r = readClientHello(b);
        expect([HELLO_OK, HELLO_INCOMPLETE, HELLO_ERROR]).to.include(r.status);
      }),
      { numRuns: 3000 },
    );
  });

  it('a hello over the limit is refused as soon as its length is known', () => {
    const r = readClientHello(hugeHelloRecords(MAX_HELLO_BYTES + 1).subarray(0, 16));
    expect(r.status).to.equal(HELLO_ERROR);
    expect(r.reason).to.match(/too large/);
    expect(readClientHello(recordHeader(40_000)).status).to.equal(HELLO_ERROR);
  });
});

describe('bad input: TCP+SNI listener', function () {
  this.timeout(30_000);
  let certs: CertFiles;
  let db: EchoUpstream;
  let cairn: TcpCairn;
  let port: number;

  before(async () => {
    certs = makeCerts(['db.example.com']);
    db = await echoUpstream('db', { tls: certs.cert('db.example.com') });
    cairn = await startTcpCairn(['127.0.0.1:0;proto=tcp+sni;rt=500ms']);
    port = cairn.tcpPorts[0] as number;
    await cairn.update({
      services: [service('db', [db], [`urlprefix-db.example.com:${port} proto=tcp+sni`])],
    });
  });

  after(async () => {
    await cairn?.stop();
    await db?.close();
    certs?.remove();
  });

  it('an oversized ClientHello (claimed or real, 100 KB over several records) is closed at once', async () => {
    const before = cairn.server.tcp.stats.rejected.badPrelude;
    for (const bytes of [recordHeader(65_000), hugeHelloRecords(100_000)]) {
      const c = await Client.connect(port);
      const t = Date.now();
      c.socket.write(bytes);
      expect(await c.waitClosed(2000)).to.equal(true);
      expect(Date.now() - t).to.be.below(1500);
    }
    expect(cairn.server.tcp.stats.rejected.badPrelude).to.equal(before + 2);
    expect((await tlsExchange(port, 'db.example.com', 'still here')).echoed).to.equal('still here');
  });

  it('200 mutated ClientHellos on the wire: each closed or served, the listener keeps serving', async () => {
    const hello = await captureClientHello('db.example.com');
    const clients: Client[] = [];
    for (let i = 0; i < 200; i++) {
      const b = Buffer.from(hello);
      for (let k = 0; k < 4; k++) b[(i * 7919 + k * 104729) % b.length] = (i * 31 + k) & 0xff;
      const c = await Client.connect(port);
      c.socket.on('error', () => {});
      c.socket.write(b.subarray(0, b.length - (i % 3)));
      clients.push(c);
    }
    // rt=500ms bounds the ones left incomplete, bad ones are closed at once; the ones whose
    // mutation still parsed were forwarded and stay open as long as the client does.
    const closed = await Promise.all(clients.map((c) => c.waitClosed(3000)));
    const stillOpen = closed.filter((x) => !x).length;
    console.log(
      `      200 mutated hellos: ${200 - stillOpen} closed by Cairn or upstream, ${stillOpen} forwarded and open`,
    );
    for (const c of clients) c.socket.destroy();
    // Only forwarded sessions remain, each one until its upstream closes or the half-close grace
    // (60 s, HAProxy's `timeout client-fin`) ends it: the TLS echo upstream keeps its side open.
    const deadline = Date.now() + 5000;
    while (cairn.server.tcp.openSessions > stillOpen && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(cairn.server.tcp.openSessions).to.be.at.most(stillOpen);
    expect((await tlsExchange(port, 'db.example.com', 'after fuzz')).echoed).to.equal('after fuzz');
  });

  it('100 idle connections are all dropped at rt= and counted', async () => {
    const before = cairn.server.tcp.stats.rejected.preludeTimeout;
    const sessionsBefore = cairn.server.tcp.openSessions;
    const clients = await Promise.all(Array.from({ length: 100 }, () => Client.connect(port)));
    const t = Date.now();
    const closed = await Promise.all(clients.map((c) => c.closedAt));
    expect(Math.max(...closed) - t).to.be.below(2500);
    expect(cairn.server.tcp.stats.rejected.preludeTimeout).to.equal(before + 100);
    expect(cairn.server.tcp.openSessions).to.be.at.most(sessionsBefore);
  });
});
