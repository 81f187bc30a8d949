// Upstream host names resolve through a TTL cache: one lookup per name per TTL, not per connection.

import type { LookupAddress } from 'node:dns';
import { expect } from 'chai';
import { DnsCache } from '../../lib/proxy/dns-cache.ts';

function lookup(c: DnsCache, host: string, all: boolean): Promise<string | LookupAddress[]> {
  return new Promise((resolve, reject) => {
    c.lookup(host, { all }, (err, address) => (err ? reject(err) : resolve(address)));
  });
}

describe('DnsCache', () => {
  it('resolves a name once and answers later lookups from the cache', async () => {
    const c = new DnsCache(30);
    try {
      const first = await lookup(c, 'localhost', false);
      expect(first).to.be.oneOf(['127.0.0.1', '::1']);
      expect(c.size).to.equal(1);
      const again = await lookup(c, 'localhost', true);
      expect(Array.isArray(again)).to.equal(true);
      expect(c.size).to.equal(1); // the same entry answers both call forms
      await lookup(c, 'localhost', true);
      expect(c.size).to.equal(1);
    } finally {
      c.close();
    }
  });

  it('passes IP literals through without caching', async () => {
    const c = new DnsCache(30);
    try {
      expect(await lookup(c, '127.0.0.1', false)).to.equal('127.0.0.1');
      expect(await lookup(c, '::1', true)).to.deep.equal([{ address: '::1', family: 6 }]);
      expect(c.size).to.equal(0);
    } finally {
      c.close();
    }
  });

  it('does not cache failures', async () => {
    const c = new DnsCache(30);
    try {
      let failed = false;
      try {
        await lookup(c, 'no-such-host.invalid', false);
      } catch {
        failed = true;
      }
      expect(failed).to.equal(true);
      expect(c.size).to.equal(0);
    } finally {
      c.close();
    }
  });
});
