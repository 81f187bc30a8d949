// A small typed Consul HTTP API client on undici. The `consul` npm package is not used: it drops
// fields Cairn needs (Weights) and hides the blocking-query headers.
//
// Every request carries the ACL token (`X-Consul-Token`), the consistency mode and, for blocking
// queries, `index` and `wait`; the per-request timeout of a blocking query exceeds
// `wait + wait/16` (Consul adds up to wait/16 of jitter) so a healthy long-poll never times out.
// The client counts requests and bytes per endpoint, for the benchmark and the status page.

import { Agent, request } from 'undici';

export interface ConsulTls {
  /** PEM CA bundle that signs the Consul server's certificate. */
  readonly ca?: string | Buffer;
  /** PEM client certificate and key, for Consul's `verify_incoming`. */
  readonly cert?: string | Buffer;
  readonly key?: string | Buffer;
}

export interface ConsulClientOptions {
  /** `http(s)://host:port`, optionally with a path prefix (behind a reverse proxy). */
  readonly address: string;
  readonly token?: string | undefined;
  readonly tls?: ConsulTls | undefined;
  /** Timeout of a request that does not block, ms (default 10 s). */
  readonly requestTimeoutMs?: number;
  /** Connections to Consul at most (default 32; Consul allows 200 per client address). */
  readonly connections?: number;
}

export interface ConsulResponse {
  readonly status: number;
  /** `X-Consul-Index`, undefined when absent or not a number. */
  readonly index: number | undefined;
  /** Parsed JSON body; undefined for an empty body (404 of a missing key). */
  readonly body: unknown;
  /** `X-Consul-KnownLeader: false` on a stale read from a server that lost its leader. */
  readonly knownLeader: boolean | undefined;
}

export interface RequestOptions {
  readonly signal?: AbortSignal;
  /** The query blocks up to this long (its `wait`); the timeout grows to match. */
  readonly blockingWaitMs?: number;
  /** Statuses answered as a response instead of an error (e.g. 404 for KV). */
  readonly accept?: readonly number[];
}

/** A Consul request that failed: network error, timeout, or an HTTP status Consul answered. */
export class ConsulError extends Error {
  /** HTTP status, or 0 for network errors and timeouts. */
  readonly status: number;
  /** From `Retry-After` on 429/503, ms. */
  readonly retryAfterMs: number | undefined;
  constructor(message: string, status: number, retryAfterMs?: number) {
    super(message);
    this.name = 'ConsulError';
    this.status = status;
    this.retryAfterMs = retryAfterMs;
  }
}

export interface EndpointStats {
  requests: number;
  bytes: number;
  errors: number;
}

/** Query parameters; undefined values are left out, '' gives a bare flag (`?stale`). */
export type Query = Readonly<Record<string, string | number | undefined>>;

const maxErrorBody = 200;

export class ConsulClient {
  readonly address: string;
  private readonly base: URL;
  private readonly token: string | undefined;
  private readonly dispatcher: Agent;
  private readonly requestTimeoutMs: number;
  private readonly endpoints = new Map<string, EndpointStats>();
  private closed = false;

  constructor(options: ConsulClientOptions) {
    this.address = options.address.replace(/\/+$/, '');
    this.base = new URL(`${this.address}/`);
    this.token = options.token === '' ? undefined : options.token;
    this.requestTimeoutMs = options.requestTimeoutMs ?? 10_000;
    const tls = options.tls;
    this.dispatcher = new Agent({
      connections: options.connections ?? 32,
      pipelining: 1,
      keepAliveTimeout: 30_000,
      ...(tls !== undefined
        ? {
            connect: {
              ...(tls.ca !== undefined ? { ca: tls.ca } : {}),
              ...(tls.cert !== undefined ? { cert: tls.cert } : {}),
              ...(tls.key !== undefined ? { key: tls.key } : {}),
            },
          }
        : {}),
    });
  }

  get(path: string, query: Query = {}, options: RequestOptions = {}): Promise<ConsulResponse> {
    return this.send('GET', path, query, undefined, options);
  }

  put(
    path: string,
    query: Query,
    body: string | undefined,
    options: RequestOptions = {},
  ): Promise<ConsulResponse> {
    return this.send('PUT', path, query, body, options);
  }

  /** Requests and bytes per endpoint (`GET /v1/health/service/:name`), since the client was made. */
  stats(): ReadonlyMap<string, Readonly<EndpointStats>> {
    return this.endpoints;
  }

  totalRequests(): number {
    let n = 0;
    for (const s of this.endpoints.values()) n += s.requests;
    return n;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // Long-polls in flight are aborted by their owners first; destroy whatever is left.
    await this.dispatcher.destroy().catch(() => undefined);
  }

  private url(path: string, query: Query): URL {
    const u = new URL(path.replace(/^\/+/, ''), this.base);
    for (const [k, v] of Object.entries(query)) if (v !== undefined) u.searchParams.append(k, String(v));
    // `stale=` and `stale` mean the same to Consul; the bare form reads better in logs.
    u.search = u.search.replace(/=(?=&|$)/g, '');
    return u;
  }

  private async send(
    method: 'GET' | 'PUT',
    path: string,
    query: Query,
    body: string | undefined,
    options: RequestOptions,
  ): Promise<ConsulResponse> {
    const endpoint = `${method} ${endpointName(path)}`;
    let stats = this.endpoints.get(endpoint);
    if (stats === undefined) {
      stats = { requests: 0, bytes: 0, errors: 0 };
      this.endpoints.set(endpoint, stats);
    }
    stats.requests++;
    const wait = options.blockingWaitMs ?? 0;
    // Consul may hold a blocking query for wait + wait/16 before answering.
    const timeout = wait > 0 ? wait + Math.ceil(wait / 16) + 5_000 : this.requestTimeoutMs;
    const headers: Record<string, string> = { accept: 'application/json' };
    if (this.token !== undefined) headers['x-consul-token'] = this.token;
    const where = `${method} ${path}`;
    let res: Awaited<ReturnType<typeof request>>;
    try {
      res = await request(this.url(path, query), {
        method,
        headers,
        dispatcher: this.dispatcher,
        headersTimeout: timeout,
        bodyTimeout: timeout,
        ...(body !== undefined ? { body } : {}),
        ...(options.signal !== undefined ? { signal: options.signal } : {}),
      });
    } catch (e) {
      stats.errors++;
      throw new ConsulError(`${where}: ${networkReason(e)}`, 0);
    }
    let text: string;
    try {
      text = await res.body.text();
    } catch (e) {
      stats.errors++;
      throw new ConsulError(`${where}: reading the response failed: ${networkReason(e)}`, 0);
    }
    stats.bytes += Buffer.byteLength(text);
    const status = res.statusCode;
    const index = parseIndex(res.headers['x-consul-index']);
    const leader = header(res.headers['x-consul-knownleader']);
    const knownLeader = leader === undefined ? undefined : leader === 'true';
    if (status >= 300 && !(options.accept ?? []).includes(status)) {
      stats.errors++;
      throw new ConsulError(
        `${where}: ${statusReason(status, text)}`,
        status,
        retryAfter(header(res.headers['retry-after'])),
      );
    }
    // An accepted error status (404 of a missing key, 403 of an unreadable one) has no JSON.
    if (text.trim() === '' || status >= 300) return { status, index, body: undefined, knownLeader };
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      stats.errors++;
      throw new ConsulError(`${where}: the response is not JSON: ${oneLine(text)}`, status);
    }
    return { status, index, body: parsed, knownLeader };
  }
}

/** `/v1/health/service/web` -> `/v1/health/service/:name`, so stats group by endpoint. */
export function endpointName(path: string): string {
  const p = path.split('?')[0] ?? path;
  const m =
    /^(\/v1\/(?:health\/service|catalog\/service|catalog\/node|agent\/service\/deregister))\/.+$/.exec(p);
  if (m !== null) return `${m[1]}/:name`;
  if (p.startsWith('/v1/kv/')) return '/v1/kv/:key';
  return p;
}

function header(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

export function parseIndex(v: string | string[] | undefined): number | undefined {
  const s = header(v);
  if (s === undefined || !/^\d+$/.test(s.trim())) return undefined;
  const n = Number(s.trim());
  return Number.isSafeInteger(n) ? n : undefined;
}

function retryAfter(v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const seconds = Number(v);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const date = Date.parse(v);
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now());
}

function oneLine(text: string): string {
  const s = text.replace(/\s+/g, ' ').trim();
  return s.length > maxErrorBody ? `${s.slice(0, maxErrorBody)}...` : s;
}

function statusReason(status: number, text: string): string {
  const body = oneLine(text);
  if (status === 403) return `HTTP 403 (the ACL token was refused): ${body || 'permission denied'}`;
  if (status === 429) return `HTTP 429 (Consul is rate limiting this client)${body ? `: ${body}` : ''}`;
  return `HTTP ${status}${body ? `: ${body}` : ''}`;
}

function networkReason(e: unknown): string {
  const err = e as { code?: unknown; message?: unknown; cause?: unknown; name?: unknown };
  if (err.name === 'AbortError') return 'aborted';
  const cause = err.cause as { code?: unknown; message?: unknown } | undefined;
  const code = typeof err.code === 'string' ? err.code : typeof cause?.code === 'string' ? cause.code : '';
  if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') return 'timed out';
  const message =
    typeof cause?.message === 'string' && cause.message !== ''
      ? cause.message
      : typeof err.message === 'string'
        ? err.message
        : String(e);
  return oneLine(message.split('\n')[0] ?? message);
}
