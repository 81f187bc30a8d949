// The HTTP data plane: one request in, one route looked up on the live table snapshot, one
// target picked, the request streamed to it through undici's dispatcher, the response streamed
// back. Every failure maps to a status and a counter; nothing here throws past the listener.
//
// Hot-path rules: no closures per request beyond the one dispatch handler object, raw header
// arrays in and out (never re-parsed into objects), the table read once per request.

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import type { TLSSocket } from 'node:tls';
import type { Dispatcher } from 'undici';
import { isDenied } from '../../routing/access.ts';
import { redirectLocation } from '../../routing/redirect.ts';
import type { Route, RouteTarget } from '../../routing/types.ts';
import type { Controller, TableRuntime } from '../controller.ts';
import type { TargetHealth, TargetState } from '../health/target-health.ts';
import { buildUpstreamHeaders, filterResponseHeaders, type ForwardContext } from './forward-headers.ts';
import { scanRequestHead } from './request-head.ts';
import { normalizeRequestPath, rewritePath, splitPathQuery } from './request-path.ts';
import type { BasicAuthRealm } from './basic-auth.ts';
import type { Upstreams } from './upstreams.ts';

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

export interface HttpProxyOptions {
  readonly noRouteStatus: number;
  readonly noRouteBody?: string;
  /** Default `retries=` for routes that do not set one. */
  readonly defaultRetries: number;
  /** Retries may add at most this fraction of extra upstream requests (global budget). */
  readonly retryBudget: number;
  readonly requestIdHeader?: string;
  readonly clientIpHeader?: string;
  readonly localIp?: string;
  readonly accessLog?: (e: AccessLogEntry) => void;
  /** Basic-auth realms for routes with `auth=NAME`. */
  readonly realms?: ReadonlyMap<string, BasicAuthRealm>;
  /** Called once per finished request (metrics). */
  readonly onResponse?: (
    route: Route | undefined,
    target: RouteTarget | undefined,
    status: number,
    ms: number,
  ) => void;
}

export const defaultHttpProxyOptions: HttpProxyOptions = {
  noRouteStatus: 404,
  defaultRetries: 2,
  retryBudget: 0.2,
};

const connectErrorCodes = new Set([
  'ECONNREFUSED',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'UND_ERR_CONNECT_TIMEOUT',
  'ECONNRESET_BEFORE_CONNECT',
]);
const resetErrorCodes = new Set(['ECONNRESET', 'UND_ERR_SOCKET', 'EPIPE', 'UND_ERR_CLOSED']);
const idempotentMethods = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);

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

  /** The request listener (bound once). */
  readonly handle = (req: ClientRequest, response: ServerResponse | Http2ServerResponse): void => {
    const res = response as ServerResponse;
    try {
      this.route(req, res);
    } catch (err) {
      // A bug must cost one request, never the process.
      if (!res.headersSent) sendText(res, 500, 'internal error\n');
      else res.destroy(err as Error);
    }
  };

  private route(req: ClientRequest, res: ClientResponse): void {
    const started = performance.now();
    const url = req.url ?? '/';
    let rawPath: string;
    let query: string;
    if (url.charCodeAt(0) === 0x2f /* / */) {
      [rawPath, query] = splitPathQuery(url);
    } else {
      // absolute-form (`GET http://host/path`) from clients that think we are a forward proxy
      const abs = parseAbsoluteForm(url);
      if (abs === undefined) return this.reject(req, res, 400, 'bad request target\n', started);
      [rawPath, query] = splitPathQuery(abs);
    }
    const path = normalizeRequestPath(rawPath);
    if (path === undefined) return this.reject(req, res, 400, 'bad request path\n', started);

    const tls = isTls(req);
    const head = scanRequestHead(req.rawHeaders);
    if (req.httpVersionMajor === 2) head.hasBody = !(req as Http2ServerRequest).stream.endAfterHeaders;
    const host = head.host;
    const runtime = this.controller.current;
    const route = runtime.table.http.lookup({ host, path, tls, forwardedProto: head.forwardedProto });
    if (route === undefined) {
      const body = this.opts.noRouteBody;
      if (body !== undefined)
        return this.reject(req, res, this.opts.noRouteStatus, body, started, 'text/html; charset=utf-8');
      return this.reject(req, res, this.opts.noRouteStatus, 'no route\n', started);
    }
    const target = runtime.balancer(route)?.pick();
    if (target === undefined)
      return this.reject(req, res, 503, 'no healthy target\n', started, undefined, route);

    const o = target.opts;
    if (o.allow !== undefined || o.deny !== undefined) {
      const remote = req.socket?.remoteAddress ?? '';
      if (isDenied(o.allow, o.deny, remote, head.forwardedFor)) {
        return this.reject(req, res, 403, 'access denied\n', started, undefined, route, target);
      }
    }
    if (o.auth !== undefined) {
      const realm = this.opts.realms?.get(o.auth);
      if (realm === undefined) {
        return this.reject(
          req,
          res,
          500,
          `auth realm ${o.auth} is not configured\n`,
          started,
          undefined,
          route,
          target,
        );
      }
      if (!realm.check(head.authorization)) {
        res.setHeader('WWW-Authenticate', realm.challenge);
        return this.reject(req, res, 401, 'authentication required\n', started, undefined, route, target);
      }
    }
    if (o.redirectCode !== undefined) {
      const loc = redirectLocation(target.dst, { host, path, query }, stripPrepend(o.strip, o.prepend));
      res.setHeader('Location', loc);
      return this.reject(req, res, o.redirectCode, '', started, undefined, route, target);
    }

    const upstreamPath = rewritePath(path, o.strip, o.prepend) + query;
    const p = new ProxyRequest(this, runtime, route, req, res, upstreamPath, head.hasBody, tls, started);
    p.send(target);
  }

  /** Answers without an upstream (404, 503, 403, redirects, bad requests). */
  reject(
    req: ClientRequest,
    res: ClientResponse,
    status: number,
    body: string,
    started: number,
    contentType?: string,
    route?: Route,
    target?: RouteTarget,
  ): void {
    sendText(res, status, body, contentType);
    this.finished(req, res, route, target, status, started, 0, Buffer.byteLength(body));
  }

  pool(t: RouteTarget): Dispatcher {
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
    req: ClientRequest,
    res: ClientResponse,
    route: Route | undefined,
    target: RouteTarget | undefined,
    status: number,
    started: number,
    retries: number,
    bytes: number,
  ): void {
    const ms = performance.now() - started;
    this.opts.onResponse?.(route, target, status, ms);
    const log = this.opts.accessLog;
    if (log === undefined) return;
    const ua = req.headers['user-agent'];
    const ref = req.headers.referer;
    log({
      time: Date.now(),
      method: req.method ?? '',
      host: requestHost(req),
      path: req.url ?? '',
      status,
      bytes,
      durationMs: Math.round(ms * 1000) / 1000,
      remote: req.socket?.remoteAddress ?? '',
      service: target?.service ?? '',
      upstream: target?.url.host ?? '',
      retries,
      userAgent: typeof ua === 'string' ? ua : '',
      referer: typeof ref === 'string' ? ref : '',
      proto: `HTTP/${req.httpVersion}`,
    });
    void res;
  }
}

/**
 * One proxied request: also the undici dispatch handler (legacy raw-headers API, the fastest),
 * so each request costs this one object.
 */
class ProxyRequest implements Dispatcher.DispatchHandler {
  private readonly proxy: HttpProxy;
  private readonly runtime: TableRuntime;
  private readonly route: Route;
  private readonly req: ClientRequest;
  private readonly res: ClientResponse;
  private readonly path: string;
  private readonly tls: boolean;
  private readonly started: number;
  private readonly hasBody: boolean;
  private target: RouteTarget | undefined;
  private state: TargetState | undefined;
  /** Targets tried so far; allocated only when a retry happens. */
  private tried: RouteTarget[] | undefined;
  private attempts = 0;
  private abortUpstream: ((err?: Error) => void) | undefined;
  private resumeUpstream: (() => void) | undefined;
  private status = 0;
  private bytes = 0;
  /** Body bytes still expected per the upstream's Content-Length; -1 when unknown. */
  private remaining = -1;
  private ended = false;
  private done = false;
  private readonly onDrain = (): void => {
    this.resumeUpstream?.();
  };
  private readonly onClientClose = (): void => {
    if (!this.done && !this.res.writableFinished) this.abortUpstream?.(new Error('client closed'));
  };

  constructor(
    proxy: HttpProxy,
    runtime: TableRuntime,
    route: Route,
    req: ClientRequest,
    res: ClientResponse,
    path: string,
    hasBody: boolean,
    tls: boolean,
    started: number,
  ) {
    this.proxy = proxy;
    this.runtime = runtime;
    this.route = route;
    this.req = req;
    this.res = res;
    this.path = path;
    this.hasBody = hasBody;
    this.tls = tls;
    this.started = started;
    res.on('close', this.onClientClose);
    proxy.active++;
    proxy.earnRetryBudget();
  }

  send(target: RouteTarget): void {
    if (this.target !== undefined) (this.tried ??= [this.target]).push(target);
    this.target = target;
    this.attempts++;
    const state = this.proxy.health.state(target.key);
    this.state = state;
    state.inFlight++;
    state.requests++;
    const o = target.opts;
    const req = this.req;
    const po = this.proxy.opts;
    const sock = req.socket;
    const ctx: ForwardContext = {
      remoteAddress: sock?.remoteAddress ?? '',
      tls: this.tls,
      httpVersion: req.httpVersion,
      localPort: sock?.localPort ?? 0,
      stripPrefix: o.strip,
      hostOverride: o.host === undefined ? undefined : o.host === 'dst' ? target.url.host : o.host,
      clientIpHeader: po.clientIpHeader,
      localIp: po.localIp,
      requestId:
        po.requestIdHeader === undefined
          ? undefined
          : { header: po.requestIdHeader, value: crypto.randomUUID() },
    };
    const headers = buildUpstreamHeaders(req.rawHeaders, ctx);
    this.proxy.pool(target).dispatch(
      {
        path: this.path,
        method: req.method ?? 'GET',
        headers,
        body: this.hasBody ? (req as IncomingMessage) : null,
      },
      this,
    );
  }

  onConnect(abort: (err?: Error) => void): void {
    this.abortUpstream = abort;
    if (this.done || this.res.destroyed) abort(new Error('client closed'));
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void): boolean {
    if (statusCode < 200) return true; // 1xx: Node answers 100-continue itself
    this.resumeUpstream = resume;
    this.status = statusCode;
    const res = this.res;
    res.writeHead(statusCode, filterResponseHeaders(rawHeaders));
    this.remaining = contentLength(rawHeaders);
    const target = this.target;
    if (target !== undefined && this.state !== undefined) {
      if (statusCode >= 500) this.proxy.health.recordFailure(this.state, this.route.targets);
      else this.proxy.health.recordSuccess(this.state);
    }
    return true;
  }

  onData(chunk: Buffer): boolean {
    this.bytes += chunk.length;
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

  onComplete(): void {
    if (!this.ended) this.res.end();
    this.finish();
  }

  onError(err: Error): void {
    const code = (err as { code?: string }).code ?? '';
    const state = this.state;
    if (state !== undefined) {
      state.inFlight--;
      this.state = undefined;
    }
    if (this.done) return;
    const res = this.res;
    if (res.headersSent || res.destroyed) {
      // Too late for a status: cut the client connection so it sees a truncated response.
      res.destroy(err);
      this.finish();
      return;
    }
    const isConnect = connectErrorCodes.has(code);
    const isReset = resetErrorCodes.has(code);
    const isTimeout = code === 'UND_ERR_HEADERS_TIMEOUT';
    if ((isConnect || isReset) && state !== undefined)
      this.proxy.health.recordFailure(state, this.route.targets);
    if ((isConnect || isReset) && this.canRetry(isConnect)) {
      const next = this.nextTarget();
      if (next !== undefined) {
        this.abortUpstream = undefined;
        this.send(next);
        return;
      }
    }
    this.status = isTimeout ? 504 : 502;
    sendText(
      res,
      this.status,
      isTimeout ? 'upstream timeout\n' : `upstream unavailable (${code || err.message})\n`,
    );
    this.finish();
  }

  private canRetry(isConnect: boolean): boolean {
    const limit = this.target?.opts.retries ?? this.proxy.opts.defaultRetries;
    if (this.attempts > limit) return false;
    const req = this.req as IncomingMessage;
    // The body has not been read at all: a connect failure never sent it.
    const bodyUntouched = !this.hasBody || (!req.readableDidRead && !req.destroyed);
    if (isConnect ? !bodyUntouched : !(idempotentMethods.has(req.method ?? '') && !this.hasBody))
      return false;
    return this.proxy.retryAllowed();
  }

  /** Another available target of the same route, not tried yet by this request. */
  private nextTarget(): RouteTarget | undefined {
    const b = this.runtime.balancer(this.route);
    if (b === undefined) return undefined;
    for (let i = 0; i < this.route.targets.length; i++) {
      const t = b.pick();
      if (t === undefined) return undefined;
      if (t !== this.target && (this.tried === undefined || !this.tried.includes(t))) return t;
    }
    return undefined;
  }

  private finish(): void {
    if (this.done) return;
    this.done = true;
    const state = this.state;
    if (state !== undefined) {
      state.inFlight--;
      this.state = undefined;
    }
    this.proxy.active--;
    this.res.removeListener('close', this.onClientClose);
    this.proxy.finished(
      this.req,
      this.res,
      this.route,
      this.target,
      this.status,
      this.started,
      this.attempts - 1,
      this.bytes,
    );
  }
}

function stripPrepend(
  strip: string | undefined,
  prepend: string | undefined,
): { strip?: string; prepend?: string } {
  const o: { strip?: string; prepend?: string } = {};
  if (strip !== undefined) o.strip = strip;
  if (prepend !== undefined) o.prepend = prepend;
  return o;
}

export function sendText(
  res: ClientResponse,
  status: number,
  body: string,
  contentType = 'text/plain; charset=utf-8',
): void {
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

function isTls(req: ClientRequest): boolean {
  return (req.socket as TLSSocket | undefined)?.encrypted === true;
}

/** Host header (HTTP/1) or :authority (HTTP/2). */
export function requestHost(req: ClientRequest): string {
  const h = req.headers.host;
  if (typeof h === 'string') return h;
  const a = req.headers[':authority'];
  return typeof a === 'string' ? a : '';
}

function parseAbsoluteForm(url: string): string | undefined {
  const i = url.indexOf('://');
  if (i <= 0) return undefined;
  const slash = url.indexOf('/', i + 3);
  return slash < 0 ? '/' : url.slice(slash);
}

/** The upstream's Content-Length from raw headers, or -1 (chunked, close-delimited, absent). */
function contentLength(raw: readonly Buffer[]): number {
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i] as Buffer;
    if (name.length !== 14) continue;
    // 'content-length' case-insensitively: check a few bytes before the full compare.
    if ((name[0]! | 0x20) !== 0x63 || (name[8]! | 0x20) !== 0x6c) continue;
    if (name.toString('latin1').toLowerCase() !== 'content-length') continue;
    const n = Number((raw[i + 1] as Buffer).toString('latin1'));
    return Number.isSafeInteger(n) && n >= 0 ? n : -1;
  }
  return -1;
}
