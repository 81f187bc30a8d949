// One undici Pool per upstream origin (not BalancedPool: our balancer decides where a request
// goes). Pools outlive table swaps while their target stays in the table; a pool whose origin
// leaves the table is closed gracefully (in-flight requests finish, idle sockets close).

import { Pool } from 'undici';
import type { RouteTarget } from '../../routing/types.ts';
import { DnsCache } from './dns-cache.ts';

export interface UpstreamOptions {
  readonly connectTimeoutMs: number;
  readonly headersTimeoutMs: number;
  readonly bodyTimeoutMs: number;
  readonly keepAliveTimeoutMs: number;
  /** Max connections per origin (undefined = unlimited, like nginx keepalive pools). */
  readonly connections?: number;
}

export const defaultUpstreamOptions: UpstreamOptions = {
  connectTimeoutMs: 5_000,
  headersTimeoutMs: 60_000,
  bodyTimeoutMs: 0,
  keepAliveTimeoutMs: 30_000,
};

/** The pool identity of a target: scheme, host:port and the TLS settings that change a connection. */
export function originKey(t: RouteTarget): string {
  const scheme =
    t.url.protocol === 'https:' || t.url.protocol === 'grpcs:' || t.opts.proto === 'https'
      ? 'https:'
      : 'http:';
  let key = `${scheme}//${t.url.hostname.includes(':') ? `[${t.url.hostname}]` : t.url.hostname}:${t.url.port}`;
  if (scheme === 'https:') {
    if (t.opts.tlsSkipVerify === true) key += '#insecure';
    const sni = tlsServerName(t);
    if (sni !== undefined) key += `#sni=${sni}`;
  }
  return key;
}

/** Upstream SNI: from `host=<name>` (fabio), else the target's host name if it is not an IP. */
function tlsServerName(t: RouteTarget): string | undefined {
  const h = t.opts.host;
  if (h !== undefined && h !== '' && h !== 'dst') return h;
  return undefined;
}

const originKeys = new WeakMap<RouteTarget, string>();

export class Upstreams {
  private readonly pools = new Map<string, Pool>();
  /**
   * Target object -> pool, so the hot path does one lookup without building a string. Keyed by
   * the (per-table, frozen) target object, not `target.key`: two routes may share an instance
   * with different TLS options, which need different pools.
   */
  private byTarget = new WeakMap<RouteTarget, Pool>();
  private readonly opts: UpstreamOptions;
  /** retain(): the sweep that last found each pool in use. */
  private readonly marks = new Map<Pool, number>();
  private sweep = 0;
  readonly dns = new DnsCache();

  constructor(opts: Partial<UpstreamOptions> = {}) {
    this.opts = { ...defaultUpstreamOptions, ...opts };
  }

  get options(): UpstreamOptions {
    return this.opts;
  }

  pool(t: RouteTarget): Pool {
    const p = this.byTarget.get(t);
    if (p !== undefined) return p;
    const key = originKey(t);
    let pool = this.pools.get(key);
    if (pool === undefined) {
      pool = this.create(key, t);
      this.pools.set(key, pool);
    }
    this.byTarget.set(t, pool);
    return pool;
  }

  private create(key: string, t: RouteTarget): Pool {
    const origin = key.split('#')[0] as string;
    const https = origin.startsWith('https:');
    const sni = https ? tlsServerName(t) : undefined;
    return new Pool(origin, {
      ...(this.opts.connections !== undefined ? { connections: this.opts.connections } : {}),
      keepAliveTimeout: this.opts.keepAliveTimeoutMs,
      keepAliveMaxTimeout: Math.max(this.opts.keepAliveTimeoutMs, 600_000),
      headersTimeout: this.opts.headersTimeoutMs,
      bodyTimeout: this.opts.bodyTimeoutMs,
      pipelining: 1,
      connect: {
        timeout: this.opts.connectTimeoutMs,
        lookup: this.dns.lookup,
        ...(https ? { rejectUnauthorized: t.opts.tlsSkipVerify !== true } : {}),
        ...(sni !== undefined ? { servername: sni } : {}),
      },
    });
  }

  /** After a swap: close pools no target of the live tables uses any more (gracefully). */
  retain(targets: Iterable<RouteTarget>): void {
    // Mark the pools the targets use (no set of 10,000 origins per swap) and stop as soon as
    // every pool is marked; nothing to close is the usual outcome of a swap.
    if (this.pools.size === 0) return;
    const sweep = ++this.sweep;
    let kept = 0;
    for (const t of targets) {
      // Targets are immutable and unchanged routes keep theirs from table to table: each
      // target's origin is worked out once, not on every swap.
      let k = originKeys.get(t);
      if (k === undefined) {
        k = originKey(t);
        originKeys.set(t, k);
      }
      const pool = this.pools.get(k);
      if (pool === undefined || this.marks.get(pool) === sweep) continue;
      this.marks.set(pool, sweep);
      if (++kept === this.pools.size) return;
    }
    for (const [k, pool] of this.pools) {
      if (this.marks.get(pool) === sweep) continue;
      this.pools.delete(k);
      this.marks.delete(pool);
      // close() waits for queued and running requests: a removed target is drained, not cut.
      pool.close().catch(() => {});
    }
    // Old tables' target objects may map to a pool just closed: forget every mapping, so such
    // a target (a request still running on an old table) finds an open pool again.
    this.byTarget = new WeakMap();
  }

  get size(): number {
    return this.pools.size;
  }

  async close(): Promise<void> {
    const all = [...this.pools.values()];
    this.pools.clear();
    this.marks.clear();
    this.byTarget = new WeakMap();
    await Promise.all(all.map((p) => p.close().catch(() => {})));
    this.dns.close();
  }
}
