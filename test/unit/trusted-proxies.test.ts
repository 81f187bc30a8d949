// `--trusted-proxies`: whose X-Forwarded-For entries count (routing/access.ts). Walking from the
// right like nginx's real_ip_recursive: the socket peer must be trusted for the last entry to
// count, that entry must be trusted for the one before it, and the first untrusted entry is the
// client. No trusted proxy (the default) = only the socket address; all trusted = fabio.

import { expect } from 'chai';
import fc from 'fast-check';
import {
  checkedForwardedFor,
  clientAddress,
  forwardedForStart,
  isDenied,
  isTrustedPeer,
  parseAccessRules,
  parseTrustedProxies,
} from '../../routing/access.ts';
import type { Cidr } from '../../routing/types.ts';

function nets(text: string): Cidr[] {
  const r = parseTrustedProxies(text);
  if ('error' in r) throw new Error(r.error);
  return r.cidrs;
}

function rules(text: string): Cidr[] {
  const r = parseAccessRules(text);
  if ('error' in r) throw new Error(r.error);
  return r.cidrs;
}

describe('trusted proxies: parsing', () => {
  it('accepts addresses and networks, IPv4 and IPv6, with blanks; empty is no proxy', () => {
    expect(nets('10.0.0.0/8, 192.0.2.7 ,::1,2001:db8::/32').map((c) => c.text)).to.deep.equal([
      '10.0.0.0/8',
      '192.0.2.7/32',
      '::1/128',
      '2001:db8::/32',
    ]);
    expect(nets('')).to.deep.equal([]);
    expect(nets(' , ')).to.deep.equal([]);
  });

  it('reports a bad entry with the access-rule text', () => {
    expect(parseTrustedProxies('10.0.0.0/33')).to.deep.equal({
      error: 'failed to parse CIDR ip:10.0.0.0/33 with error: invalid CIDR address: 10.0.0.0/33',
    });
    expect(parseTrustedProxies('proxy.local')).to.deep.equal({ error: 'failed to parse IP proxy.local' });
  });
});

describe('trusted proxies: which X-Forwarded-For entries count', () => {
  const cases: [trusted: string, remote: string, xff: string, checked: string, client: string][] = [
    // default: nothing trusted -> the header is ignored
    ['', '203.0.113.9', '10.0.0.1', '', '203.0.113.9'],
    // an untrusted peer cannot vouch for anything
    ['10.0.0.0/8', '203.0.113.9', '10.0.0.1', '', '203.0.113.9'],
    // a trusted peer vouches for its last entry, the client
    ['10.0.0.0/8', '10.0.0.2', '198.51.100.1', '198.51.100.1', '198.51.100.1'],
    // spoofed entries left of the client are not believed
    ['10.0.0.0/8', '10.0.0.2', '1.1.1.1, 198.51.100.1', ' 198.51.100.1', '198.51.100.1'],
    // a chain of trusted proxies is walked through
    ['10.0.0.0/8', '10.0.0.2', '1.1.1.1, 198.51.100.1, 10.0.0.3', ' 198.51.100.1, 10.0.0.3', '198.51.100.1'],
    // all hops trusted: every entry counts (fabio), the client is the leftmost
    ['0.0.0.0/0,::/0', '127.0.0.1', '1.1.1.1, 2.2.2.2', '1.1.1.1, 2.2.2.2', '1.1.1.1'],
    // Node's dual-stack form of the peer, IPv6 and bracketed peers
    ['127.0.0.1', '::ffff:127.0.0.1', '198.51.100.1', '198.51.100.1', '198.51.100.1'],
    ['::1', '::1', '2001:db8::5', '2001:db8::5', '2001:db8::5'],
    ['::1', '[::1]:4000', '2001:db8::5', '2001:db8::5', '2001:db8::5'],
    // garbage ends the walk: nothing left of it is believed
    ['10.0.0.0/8', '10.0.0.2', '198.51.100.1, unknown, 10.0.0.3', ' 10.0.0.3', '10.0.0.3'],
    ['10.0.0.0/8', '10.0.0.2', 'unknown', '', '10.0.0.2'],
    // empty entries are skipped
    ['10.0.0.0/8', '10.0.0.2', '198.51.100.1, , ', '198.51.100.1, , ', '198.51.100.1'],
  ];
  for (const [trusted, remote, xff, checked, client] of cases) {
    it(`trusted=[${trusted}] peer=${remote} xff=[${xff}]`, () => {
      const t = nets(trusted);
      expect(checkedForwardedFor(t, remote, xff)).to.equal(checked);
      expect(clientAddress(t, remote, xff)).to.equal(client);
    });
  }

  it('isTrustedPeer accepts ip, ip:port and [v6]:port', () => {
    expect(isTrustedPeer(nets('127.0.0.0/8'), '127.0.0.1:80')).to.equal(true);
    expect(isTrustedPeer(nets('127.0.0.0/8'), '128.0.0.1')).to.equal(false);
    expect(isTrustedPeer([], '127.0.0.1')).to.equal(false);
  });

  it('a spoofed X-Forwarded-For cannot change the access decision at the edge (no trusted proxy)', () => {
    const deny = rules('ip:192.0.2.0/24');
    const allow = rules('ip:203.0.113.0/24');
    const spoof = '203.0.113.1, 192.0.2.1';
    // a client denied by its socket address stays denied whatever it writes
    expect(
      isDenied(allow, undefined, '198.51.100.1', checkedForwardedFor([], '198.51.100.1', spoof)),
    ).to.equal(true);
    // and cannot get an allowed client denied or itself judged by someone else's address
    expect(isDenied(undefined, deny, '203.0.113.1', checkedForwardedFor([], '203.0.113.1', spoof))).to.equal(
      false,
    );
  });

  it('never throws and never points outside the header (fuzzed)', () => {
    const addr = fc.oneof(
      fc.ipV4(),
      fc.ipV6(),
      fc.constantFrom('unknown', '', ' ', '::ffff:10.0.0.1', '[::1]:80', '10.0.0.1:99'),
    );
    fc.assert(
      fc.property(
        fc.constantFrom('', '10.0.0.0/8', '0.0.0.0/0,::/0', '::1,127.0.0.1'),
        addr,
        fc.array(addr, { maxLength: 6 }),
        fc.string({ maxLength: 20 }),
        (trusted, remote, entries, junk) => {
          const t = nets(trusted);
          for (const xff of [entries.join(', '), entries.join(',') + junk]) {
            const start = forwardedForStart(t, remote, xff);
            expect(start).to.be.within(0, xff.length);
            expect(xff.endsWith(checkedForwardedFor(t, remote, xff))).to.equal(true);
            expect(clientAddress(t, remote, xff)).to.be.a('string');
          }
        },
      ),
      { numRuns: 2000 },
    );
  });
});
