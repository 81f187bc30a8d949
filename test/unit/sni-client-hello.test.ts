// The SNI reader of tcp+sni listeners (lib/proxy/tcp/client-hello.ts): real ClientHellos from
// node:tls, hand-built ones for the corners (several records, no extensions, odd names), every
// prefix of a ClientHello (a split across TCP segments), garbage, and a property test that no
// input makes it throw.

import net, { type AddressInfo } from 'node:net';
import tls from 'node:tls';
import { expect } from 'chai';
import fc from 'fast-check';
import {
  HELLO_ERROR,
  HELLO_INCOMPLETE,
  HELLO_OK,
  MAX_HELLO_BYTES,
  readClientHello,
} from '../../lib/proxy/tcp/client-hello.ts';

/** The first bytes a node:tls client sends (its ClientHello), optionally with SNI. */
function captureClientHello(servername: string | undefined, host = '127.0.0.1'): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    let got = Buffer.alloc(0);
    const server = net.createServer((s) => {
      s.on('data', (d: Buffer) => {
        got = Buffer.concat([got, d]);
        // The record header says how much to wait for.
        if (got.length >= 5 && got.length >= 5 + got.readUInt16BE(3)) {
          resolve(got);
          s.destroy();
          server.close();
        }
      });
    });
    server.listen(0, host, () => {
      const port = (server.address() as AddressInfo).port;
      const c = tls.connect({ port, host, ...(servername !== undefined ? { servername } : {}) });
      c.on('error', () => {});
      setTimeout(() => reject(new Error('no ClientHello')), 2000).unref();
    });
  });
}

interface HelloParts {
  readonly sessionId?: number;
  readonly suites?: number;
  readonly compression?: number;
  /** Extensions as [type, data]; undefined = no extensions block at all. */
  readonly extensions?: readonly [number, Buffer][];
}

function u16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
}

function u24(n: number): Buffer {
  return Buffer.from([(n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff]);
}

/** server_name extension data holding the given (type, name) entries. */
function sniData(entries: readonly [number, Buffer | string][]): Buffer {
  const list = Buffer.concat(
    entries.map(([type, name]) => {
      const n = typeof name === 'string' ? Buffer.from(name, 'latin1') : name;
      return Buffer.concat([Buffer.from([type]), u16(n.length), n]);
    }),
  );
  return Buffer.concat([u16(list.length), list]);
}

/** A ClientHello handshake message body. */
function helloBody(p: HelloParts): Buffer {
  const sid = p.sessionId ?? 32;
  const suites = p.suites ?? 4;
  const comp = p.compression ?? 1;
  const parts = [
    Buffer.from([0x03, 0x03]),
    Buffer.alloc(32, 7),
    Buffer.from([sid]),
    Buffer.alloc(sid, 1),
    u16(suites),
    Buffer.alloc(suites, 0x13),
    Buffer.from([comp]),
    Buffer.alloc(comp, 0),
  ];
  if (p.extensions !== undefined) {
    const ext = Buffer.concat(p.extensions.map(([t, d]) => Buffer.concat([u16(t), u16(d.length), d])));
    parts.push(u16(ext.length), ext);
  }
  return Buffer.concat(parts);
}

/** Handshake message (type 1) split into TLS records of at most `recordSize` bytes each. */
function records(body: Buffer, recordSize = 16384, msgType = 1): Buffer {
  const msg = Buffer.concat([Buffer.from([msgType]), u24(body.length), body]);
  const out: Buffer[] = [];
  for (let off = 0; off < msg.length; off += recordSize) {
    const frag = msg.subarray(off, off + recordSize);
    out.push(Buffer.from([0x16, 0x03, 0x01]), u16(frag.length), frag);
  }
  return Buffer.concat(out);
}

function hello(name: string, more: readonly [number, Buffer][] = []): Buffer {
  return records(
    helloBody({
      extensions: [[0x000a, Buffer.from([0x00, 0x02, 0x00, 0x1d])], [0x0000, sniData([[0, name]])], ...more],
    }),
  );
}

describe('tcp+sni: reading the server name from a ClientHello', () => {
  let real: Buffer;
  let realNoSni: Buffer;
  before(async () => {
    real = await captureClientHello('DB.Example.com');
    // node:tls sends no SNI when connecting to an IP address without servername.
    realNoSni = await captureClientHello(undefined);
  });

  it('reads the name from a real node:tls ClientHello, lowercased', () => {
    const r = readClientHello(real);
    expect(r.status).to.equal(HELLO_OK);
    expect(r.serverName).to.equal('db.example.com');
  });

  it('reports a real ClientHello without SNI as complete with no name', () => {
    const r = readClientHello(realNoSni);
    expect(r.status).to.equal(HELLO_OK);
    expect(r.serverName).to.equal('');
  });

  it('asks for more on every proper prefix of a real ClientHello (split across segments)', () => {
    for (let n = 0; n < real.length; n++) {
      const r = readClientHello(real.subarray(0, n));
      if (r.status !== HELLO_INCOMPLETE)
        throw new Error(`prefix of ${n} bytes: status ${r.status} ${r.reason}`);
    }
  });

  it('ignores bytes after the ClientHello (early data, a second record)', () => {
    const r = readClientHello(Buffer.concat([real, Buffer.from([0x17, 0x03, 0x03, 0x00, 0x01, 0xaa])]));
    expect(r).to.include({ status: HELLO_OK, serverName: 'db.example.com' });
  });

  it('reassembles a ClientHello spread over several TLS records', () => {
    const body = helloBody({ extensions: [[0x0000, sniData([[0, 'split.example.com']])]] });
    for (const size of [1, 5, 17, 64]) {
      const b = records(body, size);
      expect(readClientHello(b), `records of ${size}`).to.include({
        status: HELLO_OK,
        serverName: 'split.example.com',
      });
      for (let n = 0; n < b.length; n++) {
        expect(readClientHello(b.subarray(0, n)).status, `records of ${size}, prefix ${n}`).to.equal(
          HELLO_INCOMPLETE,
        );
      }
    }
  });

  it('reads the name wherever the extension is, and skips other name types', () => {
    expect(readClientHello(hello('a.example.com', [[0x002b, Buffer.from([2, 3, 4])]])).serverName).to.equal(
      'a.example.com',
    );
    const other = records(
      helloBody({
        extensions: [
          [
            0x0000,
            sniData([
              [7, 'ignored'],
              [0, 'second.example.com'],
            ]),
          ],
        ],
      }),
    );
    expect(readClientHello(other)).to.include({ status: HELLO_OK, serverName: 'second.example.com' });
    const onlyOther = records(helloBody({ extensions: [[0x0000, sniData([[7, 'x']])]] }));
    expect(readClientHello(onlyOther)).to.include({ status: HELLO_OK, serverName: '' });
  });

  it('treats a ClientHello without extensions (SSL 3.0 style) as having no name', () => {
    expect(readClientHello(records(helloBody({})))).to.include({ status: HELLO_OK, serverName: '' });
    expect(readClientHello(records(helloBody({ extensions: [] })))).to.include({
      status: HELLO_OK,
      serverName: '',
    });
  });

  it('accepts the host-name characters and rejects everything else', () => {
    expect(readClientHello(hello('under_score-1.EXAMPLE.com')).serverName).to.equal(
      'under_score-1.example.com',
    );
    for (const bad of ['*.example.com', 'a b.com', 'caf\u00e9.com', 'a/b', 'x\u0000y', '']) {
      const r = readClientHello(hello(bad));
      expect(r.status, JSON.stringify(bad)).to.equal(HELLO_ERROR);
    }
    expect(readClientHello(hello('a'.repeat(254))).status).to.equal(HELLO_ERROR);
  });

  const garbage: [string, Buffer][] = [
    ['an HTTP request', Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n')],
    ['a PROXY header', Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n')],
    ['an SSLv2-compatible hello', Buffer.from([0x80, 0x2e, 0x01, 0x03, 0x01])],
    ['a TLS alert record', Buffer.from([0x15, 0x03, 0x01, 0x00, 0x02, 0x02, 0x28])],
    ['application data', Buffer.from([0x17, 0x03, 0x03, 0x00, 0x01, 0x00])],
    ['a bad record version', Buffer.from([0x16, 0x02, 0x00, 0x00, 0x10])],
    ['an empty record', Buffer.from([0x16, 0x03, 0x01, 0x00, 0x00])],
    ['an oversized record', Buffer.from([0x16, 0x03, 0x01, 0xff, 0xff, 0x01])],
    ['a ServerHello', records(helloBody({}), 16384, 2)],
  ];
  for (const [what, bytes] of garbage) {
    it(`rejects ${what} at once`, () => {
      const r = readClientHello(bytes);
      expect(r.status).to.equal(HELLO_ERROR);
      expect(r.reason).to.be.a('string').and.not.equal('');
    });
  }

  it('rejects garbage from its first byte, without waiting for more', () => {
    expect(readClientHello(Buffer.from('G')).status).to.equal(HELLO_ERROR);
    expect(readClientHello(Buffer.from([0x00])).status).to.equal(HELLO_ERROR);
  });

  it('rejects a ClientHello that declares more than the limit as soon as the length is seen', () => {
    const head = Buffer.concat([
      Buffer.from([0x16, 0x03, 0x01]),
      u16(16384),
      Buffer.from([1]),
      u24(MAX_HELLO_BYTES),
    ]);
    expect(readClientHello(head).status).to.equal(HELLO_ERROR);
  });

  it('rejects inconsistent inner lengths', () => {
    const cases: Buffer[] = [
      records(helloBody({ sessionId: 33 })),
      records(helloBody({ suites: 3 })),
      records(helloBody({ suites: 0 })),
      records(helloBody({ compression: 0 })),
      // extensions block longer than the message
      records(Buffer.concat([helloBody({}), u16(40), u16(0), u16(10)])),
      // server_name list longer than its extension
      records(helloBody({ extensions: [[0x0000, Buffer.concat([u16(50), Buffer.from([0, 0, 1, 0x61])])]] })),
      // a body too short to hold the fixed fields
      records(Buffer.alloc(20)),
    ];
    for (const [i, b] of cases.entries())
      expect(readClientHello(b).status, `case ${i}`).to.equal(HELLO_ERROR);
  });

  it('never throws, whatever the bytes (property)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), (bytes) => {
        const r = readClientHello(bytes);
        return r.status === HELLO_OK || r.status === HELLO_ERROR || r.status === HELLO_INCOMPLETE;
      }),
      { numRuns: 2000 },
    );
  });

  it('never throws on mutations of a real ClientHello (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(real.length - 1), fc.integer({ min: 0, max: 255 })), { maxLength: 8 }),
        fc.nat(real.length),
        (flips, cut) => {
          const b = Buffer.from(real.subarray(0, cut));
          for (const [at, v] of flips) if (at < b.length) b[at] = v;
          readClientHello(b);
          return true;
        },
      ),
      { numRuns: 2000 },
    );
  });
});
