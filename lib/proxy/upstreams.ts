// One pool per upstream origin (not BalancedPool: our balancer decides where a request goes).
// Plain-HTTP origins get the lean HTTP/1.1 client (h1/lean-pool.ts) unless `--upstream-engine
// undici`; TLS origins and upgrades always use an undici Pool. Pools outlive table swaps while
// their target stays in the table; a pool whose origin leaves the table is closed gracefully
// (in-flight requests finish, idle sockets close).

import type { LookupFunction } from 'node:net';
import { Pool } from 'undici';
import type { RouteTarget } from '../../routing/types.ts';
import { DnsCache } from './dns-cache.ts';
import { LeanPool, type UpstreamHandler, type UpstreamRequest } from './h1/lean-pool.ts';

/** What Exchange needs from a pool: undici's legacy dispatch, or the lean client's. */
export interface UpstreamDispatcher {
  dispatch(req: UpstreamRequest, handler: UpstreamHandler): boolean;
  close(): Promise<void>;
}

export type UpstreamEngine = 'lean' | 'undici';

export interface UpstreamOptions {
  readonly connectTimeoutMs: number;
  readonly headersTimeoutMs: number;
  readonly bodyTimeoutMs: number;
  readonly keepAliveTimeoutMs: number;
  /** Max connections per origin (undefined = unlimited, like nginx keepalive pools). */
  readonly connections?: number;
  /** Client for plain-HTTP origins (TLS origins and upgrades always use undici). */
  readonly engine?: UpstreamEngine;
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

/** Map key prefix for the undici pools that upgrades use on origins served by the lean client. */
const UPGRADE_KEY = 'upgrade|';

export class Upstreams {
  private readonly pools = new Map<string, UpstreamDispatcher>();
  /**
   * Target object -> pool, so the hot path does one lookup without building a string. Keyed by
   * the (per-table, frozen) target object, not `target.key`: two routes may share an instance
   * with different TLS options, which need different pools.
   */
  private byTarget = new WeakMap<RouteTarget, UpstreamDispatcher>();
  private readonly opts: UpstreamOptions;
  readonly dns = new DnsCache();

  constructor(opts: Partial<UpstreamOptions> = {}) {
    this.opts = { ...defaultUpstreamOptions, ...opts };
  }

  get options(): UpstreamOptions {
    return this.opts;
  }

  /** The pool for a proxied (non-upgrade) request: lean for plain HTTP, undici otherwise. */
  pool(t: RouteTarget): UpstreamDispatcher {
    const p = this.byTarget.get(t);
    if (p !== undefined) return p;
    const key = originKey(t);
    let pool = this.pools.get(key);
    if (pool === undefined) {
      pool =
        this.opts.engine !== 'undici' && key.startsWith('http:')
          ? this.createLean(t)
          : (this.createUndici(key, t) as unknown as UpstreamDispatcher);
      this.pools.set(key, pool);
    }
    this.byTarget.set(t, pool);
    return pool;
  }

  /** An undici pool for the origin, whatever the engine: upgrades (WebSocket) use it. */
  undiciPool(t: RouteTarget): Pool {
    const key = originKey(t);
    const existing = this.pools.get(key);
    if (existing instanceof Pool) return existing;
    const ukey = UPGRADE_KEY + key;
    let pool = this.pools.get(ukey) as Pool | undefined;
    if (pool === undefined) {
      pool = this.createUndici(key, t);
      this.pools.set(ukey, pool as unknown as UpstreamDispatcher);
    }
    return pool;
  }

  private createLean(t: RouteTarget): LeanPool {
    const o = this.opts;
    return new LeanPool(t.url.hostname, Number(t.url.port) || 80, {
      connectTimeoutMs: o.connectTimeoutMs,
      headersTimeoutMs: o.headersTimeoutMs,
      bodyTimeoutMs: o.bodyTimeoutMs,
      keepAliveTimeoutMs: o.keepAliveTimeoutMs,
      connections: o.connections,
      lookup: this.dns.lookup as unknown as LookupFunction,
    });
  }

  private createUndici(key: string, t: RouteTarget): Pool {
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
    const keepOrigins = new Set<string>();
    for (const t of targets) {
      keepOrigins.add(originKey(t));
    }
    // Old tables' target objects stay mapped until collected; a closed pool is never reused
    // because the new table's targets are new objects.
    this.byTarget = new WeakMap();
    for (const [k, pool] of this.pools) {
      if (keepOrigins.has(k.startsWith(UPGRADE_KEY) ? k.slice(UPGRADE_KEY.length) : k)) continue;
      this.pools.delete(k);
      // close() waits for queued and running requests: a removed target is drained, not cut.
      pool.close().catch(() => {});
    }
  }

  get size(): number {
    return this.pools.size;
  }

  async close(): Promise<void> {
    const all = [...this.pools.values()];
    this.pools.clear();
    this.byTarget = new WeakMap();
    await Promise.all(all.map((p) => p.close().catch(() => {})));
    this.dns.close();
  }
}
