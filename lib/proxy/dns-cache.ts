// Upstream host names are resolved through a small TTL cache, so an instance registered by name
// costs one DNS lookup per TTL, not one per new connection. Handed to undici as the socket
// `lookup` function; failures are not cached (the next connection asks again).

import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from 'node:dns';
import { isIP } from 'node:net';
import NodeCache from 'node-cache';

type LookupCallback = (
  err: NodeJS.ErrnoException | null,
  address: string | LookupAddress[],
  family?: number,
) => void;

export class DnsCache {
  private readonly cache: NodeCache;

  constructor(ttlSeconds = 30) {
    this.cache = new NodeCache({
      stdTTL: ttlSeconds,
      checkperiod: Math.max(ttlSeconds, 10),
      useClones: false,
    });
  }

  /** `net.connect`-compatible lookup (handles `{ all: true }`, which Node uses for happy eyeballs). */
  readonly lookup = (hostname: string, options: LookupOptions | number, callback: LookupCallback): void => {
    const opts: LookupOptions = typeof options === 'number' ? { family: options } : options;
    const key = `${hostname}|${opts.family ?? 0}`;
    const hit = this.cache.get<LookupAddress[]>(key);
    if (hit !== undefined) return answer(hit, opts, callback);
    if (isIP(hostname) !== 0) return answer([{ address: hostname, family: isIP(hostname) }], opts, callback);
    dnsLookup(hostname, { family: opts.family ?? 0, all: true }, (err, addresses) => {
      if (err !== null) return callback(err, '');
      if (addresses.length > 0) this.cache.set(key, addresses);
      answer(addresses, opts, callback);
    });
  };

  get size(): number {
    return this.cache.keys().length;
  }

  close(): void {
    this.cache.close();
  }
}

function answer(addresses: LookupAddress[], opts: LookupOptions, callback: LookupCallback): void {
  if (opts.all === true) return callback(null, addresses);
  const first = addresses[0];
  if (first === undefined) {
    const err: NodeJS.ErrnoException = new Error('no address');
    err.code = 'ENOTFOUND';
    return callback(err, '');
  }
  callback(null, first.address, first.family);
}
