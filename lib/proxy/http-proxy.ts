// The HTTP data plane's engine: one request in, one route looked up on the live table snapshot,
// one target picked, access/auth/redirect decided, then an Exchange streams it to the target
// through undici and the response back. Two client sides share it: Node's http/http2 servers
// (TLS, HTTP/2; `handle` below) and the lean HTTP/1.1 listener (lib/proxy/h1/). Every failure
// maps to a status and a counter; nothing here throws past the listener.
//
// Hot-path rules: no closures per request beyond the exchange object, raw header arrays in and
// out (never re-parsed into objects), the table read once per request.

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import type { Readable } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import { checkedForwardedFor, clientAddress, isDenied } from '../../routing/access.ts';
import { redirectLocation } from '../../routing/redirect.ts';
import type { Cidr, Route, RouteTarget } from '../../routing/types.ts';
import type { Controller, TableRuntime } from '../controller.ts';
import type { TargetHealth } from '../health/target-health.ts';
import type { BasicAuthRealm } from './basic-auth.ts';
import { contentLength, Exchange } from './exchange.ts';
import { filterResponseHeaders, type ForwardContext } from './forward-headers.ts';
import { type RequestHead, scanRequestHead } from './request-head.ts';
import { normalizeRequestPath, rewritePath, splitPathQuery } from './request-path.ts';
import { type AbsoluteTarget, isValidHost, parseAbsoluteForm, setHostHeader } from './request-target.ts';
import type { UpstreamDispatcher, Upstreams } from './upstreams.ts';

export type ClientRequest = IncomingMessage | Http2ServerRequest;
// HTTP/2 compat responses have the same runtime API for everything used here.
export type ClientResponse = ServerResponse;

export interface AccessLogEntry {
  readonly time: number;
  readonly method: string;
  readonly host: string;
  readonly path: string;
  readonly status: number;
  readonly bytes: number;
  readonly durationMs: number;
  readonly remote: string;
  readonly service: string;
  readonly upstream: string;
  readonly retries: number;
  readonly userAgent: string;
  readonly referer: string;
  readonly proto: string;
}

/** Something that can describe its request to the access log, lazily. */
export interface LogSourceProvider {
  logSource(): LogSource;
}

/** What the access log needs to know about a request, read only when the log is on. */
export interface LogSource {
  readonly method: string;
  readonly host: string;
  readonly url: string;
  readonly remote: string;
  readonly httpVersion: string;
  userAgent(): string;
  referer(): string;
  /** X-Forwarded-For (several joined), read only when --trusted-proxies is set. */
  forwardedFor(): string;
}

export interface HttpProxyOptions {
  readonly noRouteStatus: number;
  readonly noRouteBody?: string;
  /** Default `retries=` for routes that do not set one. */
  readonly defaultRetries: number;
  /** Retries may add at most this fraction of extra upstream requests (global budget). */
  readonly retryBudget: number;
  readonly requestIdHeader?: string;
  readonly clientIpHeader?: string;
  /**
   * `--trusted-proxies`: peers whose X-Forwarded-For entries count for access rules, X-Real-Ip,
   * the client-IP header and the access log (routing/access.ts forwardedForStart). Empty: none.
   */
  readonly trustedProxies: readonly Cidr[];
  /** `--max-per-target`: concurrent upstream requests per target (503 beyond); 0 = no limit. */
  readonly maxPerTarget: number;
  readonly localIp?: string;
  readonly accessLog?: (e: AccessLogEntry) => void;
  /** The access-log format prints User-Agent and Referer (combined); else they are not looked up. */
  readonly accessLogHeaders?: boolean;
  /** Basic-auth realms for routes with `auth=NAME`. */
  readonly realms?: ReadonlyMap<string, BasicAuthRealm>;
  /** Called once per finished request (metrics). */
  readonly onResponse?: (
    route: Route | undefined,
    target: RouteTarget | undefined,
    status: number,
    ms: number,
  ) => void;
  /** Called once per failed upstream attempt (metrics); `retried` when another target is tried next. */
  readonly onUpstreamError?: (
    route: Route,
    target: RouteTarget,
    kind: UpstreamErrorKind,
    retried: boolean,
  ) => void;
}

/** Why an upstream attempt failed: connect (refused, unreachable, timeout), reset, response timeout. */
export type UpstreamErrorKind = 'connect' | 'reset' | 'timeout' | 'other';

export const defaultHttpProxyOptions: HttpProxyOptions = {
  noRouteStatus: 404,
  defaultRetries: 2,
  retryBudget: 0.2,
  trustedProxies: [],
  maxPerTarget: 0,
};

/** What to do with a request: answer it here, or forward it. */
export type Decision = Reply | Forward;

export interface Reply {
  readonly kind: 'reply';
  readonly status: number;
  readonly body: string;
  readonly contentType: string;
  /** Extra response headers (Location, WWW-Authenticate). */
  readonly headers: readonly (readonly [string, string])[];
  readonly route: Route | undefined;
  readonly target: RouteTarget | undefined;
}

export interface Forward {
  readonly kind: 'forward';
  readonly runtime: TableRuntime;
  readonly route: Route;
  readonly target: RouteTarget;
  /** Upstream path and query. */
  readonly path: string;
}

const textPlain = 'text/plain; charset=utf-8';
const noHeaders: readonly (readonly [string, string])[] = [];
const retryAfter: readonly (readonly [string, string])[] = [['Retry-After', '1']];

function reply(
  status: number,
  body: string,
  route?: Route,
  target?: RouteTarget,
  headers: readonly (readonly [string, string])[] = noHeaders,
  contentType = textPlain,
): Reply {
  return { kind: 'reply', status, body, contentType, headers, route, target };
}

export class HttpProxy {
  private readonly controller: Controller;
  readonly health: TargetHealth;
  private readonly upstreams: Upstreams;
  readonly opts: HttpProxyOptions;
  private retryTokens = 10;
  /** Requests currently being proxied (drain on shutdown). */
  active = 0;

  constructor(
    controller: Controller,
    health: TargetHealth,
    upstreams: Upstreams,
    opts: Partial<HttpProxyOptions> = {},
  ) {
    this.controller = controller;
    this.health = health;
    this.upstreams = upstreams;
    this.opts = { ...defaultHttpProxyOptions, ...opts };
  }

  /**
   * Routes one request: normalise the path, look up the route on the live table, pick a target,
   * apply the target's access rules, auth and redirect. Pure decision; nothing is written.
   */
  decide(url: string, head: RequestHead, tls: boolean, remoteAddress: string): Decision {
    let rawPath: string;
    let query: string;
    if (url.charCodeAt(0) === 0x2f /* / */) {
      [rawPath, query] = splitPathQuery(url);
    } else {
      // absolute-form (`GET http://host/path`): the target's authority is the host and Host is
      // ignored (RFC 9112 3.2.2); the caller forwards it as Host (absoluteHost below).
      const abs = absoluteScratch;
      if (!parseAbsoluteForm(url, abs)) return reply(400, 'bad request target\n');
      [rawPath, query] = abs.pathStart < url.length ? splitPathQuery(url.slice(abs.pathStart)) : ['/', ''];
      if (rawPath === '') rawPath = '/';
      head.host = abs.authority;
      head.absoluteHost = true;
    }
    const path = normalizeRequestPath(rawPath);
    if (path === undefined) return reply(400, 'bad request path\n');

    const host = head.host;
    if (head.hostFields > 1 || !isValidHost(host)) return reply(400, 'bad host\n');
    const runtime = this.controller.current;
    const route = runtime.table.http.lookup({ host, path, tls, forwardedProto: head.forwardedProto });
    if (route === undefined) {
      const body = this.opts.noRouteBody;
      if (body !== undefined)
        return reply(
          this.opts.noRouteStatus,
          body,
          undefined,
          undefined,
          noHeaders,
          'text/html; charset=utf-8',
        );
      return reply(this.opts.noRouteStatus, 'no route\n');
    }
    const balancer = runtime.balancer(route);
    let target = balancer?.pick();
    if (target === undefined) return reply(503, 'no healthy target\n', route);
    const maxPerTarget = this.opts.maxPerTarget;
    if (maxPerTarget > 0 && this.health.inFlight(target.key) >= maxPerTarget) {
      // --max-per-target: one more pick may find a target with room; else 503 at once (a queue
      // would only hold the client while the target is saturated).
      const other = balancer?.pick();
      if (other === undefined || this.health.inFlight(other.key) >= maxPerTarget) {
        return reply(503, 'upstream busy (--max-per-target)\n', route, target, retryAfter);
      }
      target = other;
    }

    const o = target.opts;
    if (o.allow !== undefined || o.deny !== undefined) {
      const xff = checkedForwardedFor(this.opts.trustedProxies, remoteAddress, head.forwardedFor);
      if (isDenied(o.allow, o.deny, remoteAddress, xff)) {
        return reply(403, 'access denied\n', route, target);
      }
    }
    if (o.auth !== undefined) {
      const realm = this.opts.realms?.get(o.auth);
      if (realm === undefined) return reply(500, `auth realm ${o.auth} is not configured\n`, route, target);
      if (!realm.check(head.authorization)) {
        return reply(401, 'authentication required\n', route, target, [
          ['WWW-Authenticate', realm.challenge],
        ]);
      }
    }
    if (o.redirectCode !== undefined) {
      const strip: { strip?: string; prepend?: string } = {};
      if (o.strip !== undefined) strip.strip = o.strip;
      if (o.prepend !== undefined) strip.prepend = o.prepend;
      const loc = redirectLocation(target.dst, { host, path, query }, strip);
      return reply(o.redirectCode, '', route, target, [['Location', loc]]);
    }
    return { kind: 'forward', runtime, route, target, path: rewritePath(path, o.strip, o.prepend) + query };
  }

  /** The request listener for Node's http/http2 servers (bound once). */
  readonly handle = (req: ClientRequest, response: ServerResponse | Http2ServerResponse): void => {
    const res = response as ServerResponse;
    try {
      this.handleNode(req, res);
    } catch (err) {
      // A bug must cost one request, never the process.
      if (!res.headersSent) sendText(res, 500, 'internal error\n');
      else res.destroy(err as Error);
    }
  };

  private handleNode(req: ClientRequest, res: ServerResponse): void {
    const started = performance.now();
    const tls = (req.socket as TLSSocket | undefined)?.encrypted === true;
    const head = scanRequestHead(req.rawHeaders);
    if (req.httpVersionMajor === 2) head.hasBody = !(req as Http2ServerRequest).stream.endAfterHeaders;
    const d = this.decide(req.url ?? '/', head, tls, req.socket?.remoteAddress ?? '');
    if (d.kind === 'reply') {
      for (const [k, v] of d.headers) res.setHeader(k, v);
      sendText(res, d.status, d.body, d.contentType);
      this.finished(
        new NodeLogSource(req, head.host),
        d.route,
        d.target,
        d.status,
        started,
        0,
        Buffer.byteLength(d.body),
      );
      return;
    }
    if (head.absoluteHost) setHostHeader(req.rawHeaders, head.host);
    const x = new NodeExchange(this, d, req, res, head, tls, started);
    x.send(d.target);
  }

  pool(t: RouteTarget): UpstreamDispatcher {
    return this.upstreams.pool(t);
  }

  retryAllowed(): boolean {
    if (this.retryTokens < 1) return false;
    this.retryTokens -= 1;
    return true;
  }

  earnRetryBudget(): void {
    if (this.retryTokens < 100) this.retryTokens += this.opts.retryBudget;
  }

  finished(
    from: LogSourceProvider,
    route: Route | undefined,
    target: RouteTarget | undefined,
    status: number,
    started: number,
    retries: number,
    bytes: number,
  ): void {
    const onResponse = this.opts.onResponse;
    const log = this.opts.accessLog;
    if (onResponse === undefined && log === undefined) return;
    const ms = performance.now() - started;
    onResponse?.(route, target, status, ms);
    if (log === undefined) return;
    const src = from.logSource();
    log({
      time: Date.now(),
      method: src.method,
      host: src.host,
      path: src.url,
      status,
      bytes,
      durationMs: Math.round(ms * 1000) / 1000,
      remote:
        this.opts.trustedProxies.length === 0
          ? src.remote
          : clientAddress(this.opts.trustedProxies, src.remote, src.forwardedFor()),
      service: target?.service ?? '',
      upstream: target?.url.host ?? '',
      retries,
      userAgent: this.opts.accessLogHeaders === true ? src.userAgent() : '',
      referer: this.opts.accessLogHeaders === true ? src.referer() : '',
      proto: `HTTP/${src.httpVersion}`,
    });
  }
}

class NodeLogSource implements LogSource, LogSourceProvider {
  private readonly req: ClientRequest;
  readonly host: string;

  constructor(req: ClientRequest, host: string) {
    this.req = req;
    this.host = host;
  }

  get method(): string {
    return this.req.method ?? '';
  }

  get url(): string {
    return this.req.url ?? '';
  }

  get remote(): string {
    return this.req.socket?.remoteAddress ?? '';
  }

  get httpVersion(): string {
    return this.req.httpVersion;
  }

  userAgent(): string {
    const v = this.req.headers['user-agent'];
    return typeof v === 'string' ? v : '';
  }

  referer(): string {
    const v = this.req.headers.referer;
    return typeof v === 'string' ? v : '';
  }

  forwardedFor(): string {
    return scanRequestHead(this.req.rawHeaders).forwardedFor;
  }

  logSource(): LogSource {
    return this;
  }
}

/** An exchange whose client side is a Node http/http2 request and response. */
class NodeExchange extends Exchange {
  private readonly req: ClientRequest;
  private readonly res: ClientResponse;
  private readonly tls: boolean;
  readonly host: string;
  /** Body bytes still expected per the upstream's Content-Length; -1 when unknown. */
  private remaining = -1;
  private ended = false;
  private readonly onDrain = (): void => {
    this.resumeUpstream?.();
  };
  private readonly onClientClose = (): void => {
    if (!this.res.writableFinished) this.clientGone();
  };

  constructor(
    proxy: HttpProxy,
    d: Forward,
    req: ClientRequest,
    res: ClientResponse,
    head: RequestHead,
    tls: boolean,
    started: number,
  ) {
    super(proxy, d.runtime, d.route, req.method ?? 'GET', d.path, head.hasBody, started);
    this.req = req;
    this.res = res;
    this.tls = tls;
    this.host = head.host;
    res.on('close', this.onClientClose);
  }

  logSource(): LogSource {
    return new NodeLogSource(this.req, this.host);
  }

  protected rawRequestHeaders(): readonly string[] {
    return this.req.rawHeaders;
  }

  protected forwardBase(): Pick<ForwardContext, 'remoteAddress' | 'tls' | 'httpVersion' | 'localPort'> {
    const sock = this.req.socket;
    return {
      remoteAddress: sock?.remoteAddress ?? '',
      tls: this.tls,
      httpVersion: this.req.httpVersion,
      localPort: sock?.localPort ?? 0,
    };
  }

  protected requestBody(): Readable {
    return this.req as IncomingMessage;
  }

  protected bodyUntouched(): boolean {
    const req = this.req as IncomingMessage;
    return !req.readableDidRead && !req.destroyed;
  }

  protected headSent(): boolean {
    return this.res.headersSent || this.res.destroyed;
  }

  protected writeHead(status: number, rawHeaders: readonly (Buffer | string)[]): void {
    this.res.writeHead(status, filterResponseHeaders(rawHeaders));
    this.remaining = contentLength(rawHeaders);
  }

  protected writeData(chunk: Buffer): boolean {
    if (this.remaining === chunk.length) {
      // The whole (rest of the) body: one end() instead of write() + end(), one socket write.
      this.ended = true;
      this.remaining = 0;
      this.res.end(chunk);
      return true;
    }
    if (this.remaining > 0) this.remaining -= chunk.length;
    const ok = this.res.write(chunk);
    if (!ok) this.res.once('drain', this.onDrain);
    return ok;
  }

  protected endResponse(): void {
    if (!this.ended) this.res.end();
  }

  protected replyError(status: number, body: string): void {
    sendText(this.res, status, body);
  }

  protected cutClient(err: Error): void {
    this.res.destroy(err);
  }

  protected released(): void {
    this.res.removeListener('close', this.onClientClose);
  }
}

export function sendText(res: ClientResponse, status: number, body: string, contentType = textPlain): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  if (body === '') {
    res.writeHead(status, { 'content-length': '0' });
    res.end();
    return;
  }
  res.writeHead(status, { 'content-type': contentType, 'content-length': String(Buffer.byteLength(body)) });
  res.end(body);
}

/** parseAbsoluteForm's result; decide() is synchronous, so one object serves every request. */
const absoluteScratch: AbsoluteTarget = { authority: '', pathStart: 0 };
