// WebSocket (and any HTTP/1.1 Upgrade) pass-through: route like a normal request (access rules,
// basic auth and redirects included), ask the upstream to upgrade through undici, then splice the
// two sockets together byte for byte. Upgrades are per connection, not per message, so this path
// is not as allocation-sensitive as the request path.

import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import type { Dispatcher } from 'undici';
import type { Cidr, Route, RouteTarget } from '../../routing/types.ts';
import type { TableRuntime } from '../controller.ts';
import type { TargetHealth } from '../health/target-health.ts';
import { buildUpstreamHeaders, filterResponseHeaders } from './forward-headers.ts';
import type { HttpProxy } from './http-proxy.ts';
import { scanRequestHead } from './request-head.ts';
import type { Upstreams } from './upstreams.ts';

const statusText: Readonly<Record<number, string>> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  500: 'Internal Server Error',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
};

const connectErrorCodes = new Set([
  'ECONNREFUSED',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'UND_ERR_CONNECT_TIMEOUT',
]);

export interface UpgradeProxyOptions {
  /** Default `retries=` for routes that do not set one (connect failures only). */
  readonly defaultRetries: number;
  /** The HTTP proxy's routing decision (lookup, pick, access rules, auth, redirect). */
  readonly decide: HttpProxy['decide'];
  /** `--trusted-proxies` for X-Real-Ip (see forward-headers.ts); default none. */
  readonly trustedProxies: readonly Cidr[];
}

export class UpgradeProxy {
  readonly health: TargetHealth;
  readonly upstreams: Upstreams;
  readonly opts: UpgradeProxyOptions;
  /** Open upgraded connection pairs (for shutdown). */
  readonly open = new Set<Duplex>();
  /** After one side of a pair sends FIN, how long the other may take to finish before both close. */
  halfCloseGraceMs = 5_000;

  constructor(
    health: TargetHealth,
    upstreams: Upstreams,
    opts: Pick<UpgradeProxyOptions, 'decide'> & Partial<UpgradeProxyOptions>,
  ) {
    this.health = health;
    this.upstreams = upstreams;
    this.opts = { defaultRetries: 2, trustedProxies: [], ...opts };
  }

  readonly handle = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    try {
      this.route(req, socket, head);
    } catch {
      reply(socket, 502);
    }
  };

  private route(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', () => socket.destroy());
    const tls = (req.socket as TLSSocket).encrypted === true;
    // The same routing and gates as plain requests (access rules, basic auth, redirects): an
    // upgrade must not bypass any of them.
    const d = this.opts.decide(
      req.url ?? '/',
      scanRequestHead(req.rawHeaders),
      tls,
      req.socket.remoteAddress ?? '',
    );
    if (d.kind === 'reply') {
      let extra = '';
      for (const [k, v] of d.headers) extra += `${k}: ${v}\r\n`;
      return reply(socket, d.status, extra);
    }
    new UpgradeHandler(this, d.runtime, d.route, req, socket, head, d.path, tls).send(d.target);
  }
}

/**
 * One upgrade request: dispatched to a target (again to another one after a connect failure),
 * then either spliced with the upstream socket (101) or relayed as a plain answer (the upstream
 * refused the upgrade, e.g. 401 or 426).
 */
class UpgradeHandler implements Dispatcher.DispatchHandler {
  private readonly proxy: UpgradeProxy;
  private readonly runtime: TableRuntime;
  private readonly route: Route;
  private readonly req: IncomingMessage;
  private readonly client: Duplex;
  private readonly head: Buffer;
  /** Upstream path and query (strip/prepend applied). */
  private readonly path: string;
  private readonly tls: boolean;
  private readonly tried: RouteTarget[] = [];
  private target: RouteTarget | undefined;
  private abortUpstream: ((err?: Error) => void) | undefined;
  /** The upstream answered without upgrading: its response is being relayed. */
  private relaying = false;
  private readonly onClientClose = (): void => {
    this.abortUpstream?.(new Error('client closed'));
  };

  constructor(
    proxy: UpgradeProxy,
    runtime: TableRuntime,
    route: Route,
    req: IncomingMessage,
    client: Duplex,
    head: Buffer,
    path: string,
    tls: boolean,
  ) {
    this.proxy = proxy;
    this.runtime = runtime;
    this.route = route;
    this.req = req;
    this.client = client;
    this.head = head;
    this.path = path;
    this.tls = tls;
    client.once('close', this.onClientClose);
  }

  send(target: RouteTarget): void {
    this.target = target;
    this.tried.push(target);
    this.abortUpstream = undefined;
    const o = target.opts;
    const req = this.req;
    const headers = buildUpstreamHeaders(req.rawHeaders, {
      remoteAddress: req.socket.remoteAddress ?? '',
      tls: this.tls,
      httpVersion: req.httpVersion,
      localPort: req.socket.localPort ?? 0,
      trustedProxies: this.proxy.opts.trustedProxies,
      // Not `upgrade: true`: undici's dispatch({ upgrade }) writes Upgrade and Connection itself
      // and rejects a request that carries either header.
      ...(o.strip !== undefined ? { stripPrefix: o.strip } : {}),
      ...(o.host !== undefined ? { hostOverride: o.host === 'dst' ? target.url.host : o.host } : {}),
    });
    this.proxy.upstreams.undiciPool(target).dispatch(
      {
        path: this.path,
        method: req.method ?? 'GET',
        headers,
        upgrade: req.headers.upgrade ?? 'websocket',
      },
      this,
    );
  }

  onConnect(abort: (err?: Error) => void): void {
    this.abortUpstream = abort;
    if (this.client.destroyed) abort(new Error('client closed'));
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[], _resume: () => void, statusMessage?: string): boolean {
    if (statusCode < 200) return true;
    // Relayed close-delimited: undici has already removed the upstream's own framing.
    this.relaying = true;
    const client = this.client;
    let head = `HTTP/1.1 ${statusCode} ${statusMessage || statusText[statusCode] || 'Status'}\r\n`;
    const raw = filterResponseHeaders(rawHeaders);
    for (let i = 0; i + 1 < raw.length; i += 2) {
      const name = raw[i] as string;
      if (name.length === 14 && name.toLowerCase() === 'content-length') continue;
      head += `${name}: ${raw[i + 1] as string}\r\n`;
    }
    client.write(`${head}Connection: close\r\n\r\n`);
    return true;
  }

  onData(chunk: Buffer): boolean {
    if (this.relaying && !this.client.destroyed) this.client.write(chunk);
    return true;
  }

  onComplete(): void {
    this.client.removeListener('close', this.onClientClose);
    if (this.relaying) this.client.end();
    else reply(this.client, 502);
  }

  onUpgrade(statusCode: number, rawHeaders: Buffer[] | string[] | null, upstream: Duplex): void {
    const client = this.client;
    client.removeListener('close', this.onClientClose);
    if (client.destroyed) {
      upstream.destroy();
      return;
    }
    let head = `HTTP/1.1 ${statusCode} Switching Protocols\r\n`;
    const raw = rawHeaders ?? [];
    for (let i = 0; i + 1 < raw.length; i += 2) head += `${String(raw[i])}: ${String(raw[i + 1])}\r\n`;
    head += '\r\n';
    client.write(head);
    if (this.head.length > 0) upstream.write(this.head);
    const open = this.proxy.open;
    open.add(client);
    let grace: NodeJS.Timeout | undefined;
    const close = (): void => {
      clearTimeout(grace);
      open.delete(client);
      client.destroy();
      upstream.destroy();
    };
    // pipe() passes a FIN on to the other side. Both sockets allow half-open connections, so a
    // peer that never answers the FIN (an upstream that ignores it, a client gone quiet) would
    // keep the pair open forever: give the other side a grace period to finish, then close.
    const ended = (): void => {
      if (grace !== undefined) return;
      grace = setTimeout(close, this.proxy.halfCloseGraceMs);
      grace.unref();
    };
    upstream.on('error', close);
    client.on('error', close);
    upstream.on('close', close);
    client.on('close', close);
    upstream.once('end', ended);
    client.once('end', ended);
    upstream.pipe(client);
    client.pipe(upstream);
  }

  onError(err: Error): void {
    const code = (err as { code?: string }).code ?? '';
    const target = this.target;
    const client = this.client;
    const isConnect = connectErrorCodes.has(code);
    if (target !== undefined && (isConnect || code === 'ECONNRESET' || code === 'UND_ERR_SOCKET')) {
      this.proxy.health.recordFailure(this.proxy.health.state(target.key), this.route.targets);
    }
    if (client.destroyed) return;
    if (this.relaying) {
      client.destroy();
      return;
    }
    // Nothing reached the upstream application yet: another target may take the connection.
    if (isConnect && target !== undefined) {
      const limit = target.opts.retries ?? this.proxy.opts.defaultRetries;
      const next = this.tried.length <= limit ? this.nextTarget() : undefined;
      if (next !== undefined) {
        this.send(next);
        return;
      }
    }
    client.removeListener('close', this.onClientClose);
    reply(client, code === 'UND_ERR_HEADERS_TIMEOUT' ? 504 : 502);
  }

  /** Another available target of the same route, not tried yet by this request. */
  private nextTarget(): RouteTarget | undefined {
    const b = this.runtime.balancer(this.route);
    if (b === undefined) return undefined;
    for (let i = 0; i < this.route.targets.length; i++) {
      const t = b.pick();
      if (t === undefined) return undefined;
      if (!this.tried.includes(t)) return t;
    }
    return undefined;
  }
}

function reply(socket: Duplex, status: number, extraHeaders = ''): void {
  if (socket.destroyed) return;
  const text = statusText[status] ?? (status >= 300 && status < 400 ? 'Redirect' : 'Error');
  socket.end(`HTTP/1.1 ${status} ${text}\r\n${extraHeaders}Connection: close\r\nContent-Length: 0\r\n\r\n`);
}
