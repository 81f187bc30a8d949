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
  readonly closed: boolean;
  /**
   * True when every body chunk handed to `onData` is a private copy with an ArrayBuffer of its
   * own, which a handler that has copied the bytes on may detach (see releaseChunk). undici's
   * pools leave it undefined: their chunks may share memory.
   */
  readonly privateChunks?: boolean;
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

const originKeys = new WeakMap<RouteTarget, string>();

export class Upstreams {
  private readonly pools = new Map<string, UpstreamDispatcher>();
  /**
   * Target object -> pool, so the hot path does one lookup without building a string. Keyed by
   * the (per-table, frozen) target object, not `target.key`: two routes may share an instance
   * with different TLS options, which need different pools.
   */
  private byTarget = new WeakMap<RouteTarget, UpstreamDispatcher>();
  private readonly opts: UpstreamOptions;
  /** retain(): the sweep that last found each pool in use. */
  private readonly marks = new Map<UpstreamDispatcher, number>();
  private sweep = 0;
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
      // An origin may have two pools: the proxy's and the undici pool its upgrades use.
      for (const key of [k, UPGRADE_KEY + k]) {
        const pool = this.pools.get(key);
        if (pool === undefined || this.marks.get(pool) === sweep) continue;
        this.marks.set(pool, sweep);
        if (++kept === this.pools.size) return;
      }
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
    this.byTarget = new WeakMap();
    await Promise.all(all.map((p) => p.close().catch(() => {})));
    this.dns.close();
  }
}
