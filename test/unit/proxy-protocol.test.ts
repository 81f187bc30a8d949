// PROXY protocol v1/v2 (lib/proxy/tcp/proxy-protocol.ts): the spec's examples, every prefix of a
// header (split across segments), bad headers, the writer for both versions and address families
// (Node's `::ffff:a.b.c.d` form included), round trips, and a no-throw property.

import { expect } from 'chai';
import fc from 'fast-check';
import {
  encodeProxyV1,
  encodeProxyV2,
  formatV6,
  ipBytes,
  PROXY_ERROR,
  PROXY_INCOMPLETE,
  PROXY_OK,
  PROXY_V2_SIGNATURE,
  readProxyHeader,
} from '../../lib/proxy/tcp/proxy-protocol.ts';

const v1 = (s: string) => Buffer.from(s, 'latin1');

/** A v2 header by hand: version/command byte, family byte, payload. */
function v2(verCmd: number, fam: number, payload: Buffer): Buffer {
  const len = Buffer.alloc(2);
  len.writeUInt16BE(payload.length);
  return Buffer.concat([PROXY_V2_SIGNATURE, Buffer.from([verCmd, fam]), len, payload]);
}

function v4Payload(
  src: number[],
  dst: number[],
  sport: number,
  dport: number,
  tlv = Buffer.alloc(0),
): Buffer {
  const b = Buffer.alloc(12);
  b.set(src, 0);
  b.set(dst, 4);
  b.writeUInt16BE(sport, 8);
  b.writeUInt16BE(dport, 10);
  return Buffer.concat([b, tlv]);
}

describe('PROXY protocol: reading v1', () => {
  const ok: [string, string, number, string, number][] = [
    ['PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n', '192.168.0.1', 56324, '192.168.0.11', 443],
    ['PROXY TCP6 2001:db8::1 2001:db8::2 1 65535\r\n', '2001:db8::1', 1, '2001:db8::2', 65535],
    ['PROXY TCP6 ::ffff:10.0.0.1 ::1 0 80\r\n', '::ffff:10.0.0.1', 0, '::1', 80],
  ];
  for (const [line, sa, sp, da, dp] of ok) {
    it(`reads ${JSON.stringify(line)}`, () => {
      const data = Buffer.concat([v1(line), v1('payload')]);
      const r = readProxyHeader(data);
      expect(r.status).to.equal(PROXY_OK);
      expect(r.consumed).to.equal(line.length);
      expect(r.header).to.deep.equal({
        version: 1,
        source: { address: sa, port: sp },
        destination: { address: da, port: dp },
      });
      expect(data.subarray(r.consumed).toString()).to.equal('payload');
    });
  }

  it('reads PROXY UNKNOWN (with or without addresses) as "use the connection\'s own"', () => {
    for (const line of ['PROXY UNKNOWN\r\n', 'PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n']) {
      const r = readProxyHeader(v1(line));
      expect(r.status).to.equal(PROXY_OK);
      expect(r.consumed).to.equal(line.length);
      expect(r.header).to.deep.equal({ version: 1, source: undefined, destination: undefined });
    }
  });

  it('asks for more on every prefix', () => {
    const line = v1('PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n');
    for (let n = 0; n < line.length; n++) {
      expect(readProxyHeader(line.subarray(0, n)).status, `prefix ${n}`).to.equal(PROXY_INCOMPLETE);
    }
  });

  const bad: [string, string][] = [
    ['not a header', 'GET / HTTP/1.1\r\n'],
    ['a lowercase keyword', 'proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n'],
    ['a wrong protocol', 'PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n'],
    ['an IPv6 address in TCP4', 'PROXY TCP4 ::1 5.6.7.8 1 2\r\n'],
    ['an IPv4 address in TCP6', 'PROXY TCP6 1.2.3.4 ::1 1 2\r\n'],
    ['a port out of range', 'PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n'],
    ['a port with a leading zero', 'PROXY TCP4 1.2.3.4 5.6.7.8 080 2\r\n'],
    ['a missing field', 'PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n'],
    ['an extra space', 'PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n'],
    ['an IP with a leading zero', 'PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n'],
  ];
  for (const [what, line] of bad) {
    it(`rejects ${what}`, () => {
      const r = readProxyHeader(v1(line));
      expect(r.status).to.equal(PROXY_ERROR);
      expect(r.reason).to.not.equal('');
    });
  }

  it('rejects a header without CRLF within 107 bytes', () => {
    expect(readProxyHeader(v1(`PROXY TCP4 ${'1'.repeat(120)}`)).status).to.equal(PROXY_ERROR);
    expect(readProxyHeader(v1(`PROXY TCP4 ${'1'.repeat(80)}`)).status).to.equal(PROXY_INCOMPLETE);
  });

  it('rejects a first byte that starts neither version', () => {
    expect(readProxyHeader(v1('X')).status).to.equal(PROXY_ERROR);
    expect(readProxyHeader(Buffer.from([0x16, 0x03, 0x01])).status).to.equal(PROXY_ERROR);
  });
});

describe('PROXY protocol: reading v2', () => {
  it('reads TCP over IPv4, skipping TLVs', () => {
    const tlv = Buffer.from([0x04, 0x00, 0x03, 0x61, 0x62, 0x63]); // PP2_TYPE_NOOP-ish
    const h = v2(0x21, 0x11, v4Payload([10, 1, 2, 3], [192, 0, 2, 1], 40000, 5432, tlv));
    const r = readProxyHeader(Buffer.concat([h, v1('rest')]));
    expect(r.status).to.equal(PROXY_OK);
    expect(r.consumed).to.equal(h.length);
    expect(r.header).to.deep.equal({
      version: 2,
      source: { address: '10.1.2.3', port: 40000 },
      destination: { address: '192.0.2.1', port: 5432 },
    });
  });

  it('reads TCP over IPv6', () => {
    const p = Buffer.alloc(36);
    p.set(ipBytes('2001:db8::7') as Uint8Array, 0);
    p.set(ipBytes('::1') as Uint8Array, 16);
    p.writeUInt16BE(1234, 32);
    p.writeUInt16BE(443, 34);
    const r = readProxyHeader(v2(0x21, 0x21, p));
    expect(r.header).to.deep.equal({
      version: 2,
      source: { address: '2001:db8::7', port: 1234 },
      destination: { address: '::1', port: 443 },
    });
  });

  it('reads LOCAL, UNSPEC, UDP and unix families as "use the connection\'s own"', () => {
    for (const [cmd, fam, payload] of [
      [0x20, 0x00, Buffer.alloc(0)],
      [0x20, 0x11, v4Payload([1, 1, 1, 1], [2, 2, 2, 2], 1, 2)],
      [0x21, 0x00, Buffer.alloc(0)],
      [0x21, 0x12, v4Payload([1, 1, 1, 1], [2, 2, 2, 2], 1, 2)],
      [0x21, 0x31, Buffer.alloc(216)],
    ] as [number, number, Buffer][]) {
      const r = readProxyHeader(v2(cmd, fam, payload));
      expect(r.status, `cmd ${cmd} fam ${fam}`).to.equal(PROXY_OK);
      expect(r.header).to.deep.equal({ version: 2, source: undefined, destination: undefined });
    }
  });

  it('asks for more on every prefix', () => {
    const h = v2(0x21, 0x11, v4Payload([10, 1, 2, 3], [192, 0, 2, 1], 40000, 5432));
    for (let n = 0; n < h.length; n++) {
      expect(readProxyHeader(h.subarray(0, n)).status, `prefix ${n}`).to.equal(PROXY_INCOMPLETE);
    }
  });

  it('rejects a bad signature, version, command, short address block or huge length', () => {
    const sig = Buffer.from(PROXY_V2_SIGNATURE);
    sig[7] = 0x00;
    expect(readProxyHeader(sig).status).to.equal(PROXY_ERROR);
    expect(readProxyHeader(v2(0x11, 0x11, v4Payload([1, 1, 1, 1], [2, 2, 2, 2], 1, 2))).status).to.equal(
      PROXY_ERROR,
    );
    expect(readProxyHeader(v2(0x22, 0x11, v4Payload([1, 1, 1, 1], [2, 2, 2, 2], 1, 2))).status).to.equal(
      PROXY_ERROR,
    );
    expect(readProxyHeader(v2(0x21, 0x11, Buffer.alloc(8))).status).to.equal(PROXY_ERROR);
    expect(readProxyHeader(v2(0x21, 0x21, Buffer.alloc(20))).status).to.equal(PROXY_ERROR);
    const huge = Buffer.concat([PROXY_V2_SIGNATURE, Buffer.from([0x21, 0x11, 0xff, 0xff])]);
    expect(readProxyHeader(huge).status).to.equal(PROXY_ERROR);
  });
});

describe('PROXY protocol: writing', () => {
  const src = { address: '203.0.113.7', port: 51000 };
  const dst = { address: '10.0.0.5', port: 5432 };

  it("writes fabio's v1 line for IPv4", () => {
    expect(encodeProxyV1(src, dst).toString()).to.equal('PROXY TCP4 203.0.113.7 10.0.0.5 51000 5432\r\n');
  });

  it("writes IPv4 for Node's dual-stack form of IPv4 addresses", () => {
    const mapped = { address: '::ffff:203.0.113.7', port: 51000 };
    expect(encodeProxyV1(mapped, { address: '::ffff:10.0.0.5', port: 5432 }).toString()).to.equal(
      'PROXY TCP4 203.0.113.7 10.0.0.5 51000 5432\r\n',
    );
  });

  it('writes TCP6 when either side is IPv6, mapping the IPv4 one', () => {
    expect(encodeProxyV1({ address: '2001:db8::1', port: 1 }, dst).toString()).to.equal(
      'PROXY TCP6 2001:db8::1 ::ffff:10.0.0.5 1 5432\r\n',
    );
  });

  it('writes PROXY UNKNOWN / LOCAL when an address is unknown', () => {
    expect(encodeProxyV1(undefined, dst).toString()).to.equal('PROXY UNKNOWN\r\n');
    expect(encodeProxyV1({ address: 'not-an-ip', port: 1 }, dst).toString()).to.equal('PROXY UNKNOWN\r\n');
    const local = encodeProxyV2(src, undefined);
    expect(local.length).to.equal(16);
    expect(readProxyHeader(local).header).to.deep.equal({
      version: 2,
      source: undefined,
      destination: undefined,
    });
  });

  it('writes the v2 binary header', () => {
    const b = encodeProxyV2(src, dst);
    expect(b.subarray(0, 12).equals(PROXY_V2_SIGNATURE)).to.equal(true);
    expect([...b.subarray(12, 16)]).to.deep.equal([0x21, 0x11, 0x00, 0x0c]);
    expect([...b.subarray(16, 28)]).to.deep.equal([203, 0, 113, 7, 10, 0, 0, 5, 0xc7, 0x38, 0x15, 0x38]);
  });

  it('round-trips both versions and both families', () => {
    const pairs = [
      [src, dst],
      [
        { address: '2001:db8::1', port: 9 },
        { address: 'fe80::1:2', port: 65535 },
      ],
      [
        { address: '::ffff:1.2.3.4', port: 5 },
        { address: '::1', port: 6 },
      ],
    ] as const;
    for (const [s, d] of pairs) {
      for (const enc of [encodeProxyV1, encodeProxyV2]) {
        const r = readProxyHeader(enc(s, d));
        expect(r.status).to.equal(PROXY_OK);
        const back = r.header;
        // Compare as bytes: the text form of an address may differ (`::ffff:1.2.3.4` vs mapped).
        expect(ipBytes(back?.source?.address ?? '')).to.deep.equal(ipBytesLike(s.address, d.address, true));
        expect(ipBytes(back?.destination?.address ?? '')).to.deep.equal(
          ipBytesLike(s.address, d.address, false),
        );
        expect(back?.source?.port).to.equal(s.port);
        expect(back?.destination?.port).to.equal(d.port);
      }
    }
  });
});

/** The bytes the writer puts on the wire for src or dst (IPv4 only if both are IPv4). */
function ipBytesLike(s: string, d: string, wantSrc: boolean): Uint8Array {
  const toV4 = (b: Uint8Array) =>
    b.length === 4
      ? b
      : b.subarray(0, 12).every((x, i) => x === (i >= 10 ? 0xff : 0))
        ? b.subarray(12)
        : undefined;
  const sb = ipBytes(s) as Uint8Array;
  const db = ipBytes(d) as Uint8Array;
  const both4 = toV4(sb) !== undefined && toV4(db) !== undefined;
  const pick = wantSrc ? sb : db;
  if (both4) return Uint8Array.from(toV4(pick) as Uint8Array);
  if (pick.length === 16) return Uint8Array.from(pick);
  const m = new Uint8Array(16);
  m[10] = 0xff;
  m[11] = 0xff;
  m.set(pick, 12);
  return m;
}

describe('PROXY protocol: address helpers', () => {
  it('formats IPv6 per RFC 5952', () => {
    const f = (s: string) => formatV6(ipBytes(s) as Uint8Array, 0);
    expect(f('2001:0db8:0000:0000:0000:0000:0000:0001')).to.equal('2001:db8::1');
    expect(f('::')).to.equal('::');
    expect(f('::1')).to.equal('::1');
    expect(f('1::')).to.equal('1::');
    expect(f('1:0:0:2:0:0:0:3')).to.equal('1:0:0:2::3');
    expect(f('1:0:2:3:4:5:6:7')).to.equal('1:0:2:3:4:5:6:7');
    expect(f('::ffff:10.1.2.3')).to.equal('::ffff:10.1.2.3');
  });

  it('parses IP literals, dropping IPv6 zones, and refuses the rest', () => {
    expect([...(ipBytes('10.0.0.1') as Uint8Array)]).to.deep.equal([10, 0, 0, 1]);
    expect(ipBytes('fe80::1%eth0')?.length).to.equal(16);
    expect(ipBytes('example.com')).to.equal(undefined);
    expect(ipBytes('1.2.3')).to.equal(undefined);
  });

  it('never throws, whatever the bytes (property)', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 200 }),
          fc.string({ maxLength: 120 }).map((s) => Buffer.from(`PROXY ${s}`)),
          fc.uint8Array({ maxLength: 80 }).map((b) => Buffer.concat([PROXY_V2_SIGNATURE, b])),
        ),
        (bytes) => {
          const r = readProxyHeader(bytes);
          return r.consumed <= bytes.length;
        },
      ),
      { numRuns: 3000 },
    );
  });
});
