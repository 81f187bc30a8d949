// One proxied request/response, whatever the client side is (Node's http/http2 server, or the
// lean HTTP/1.1 listener). The base class is the undici dispatch handler (legacy raw-headers API,
// the fastest) and owns everything the two client sides share: target accounting, passive
// health, retries on another target, the error statuses, the access-log/metrics call. Subclasses
// only say how to read the request and how to write the response.

import type { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import type { Route, RouteTarget } from '../../routing/types.ts';
import type { TableRuntime } from '../controller.ts';
import type { TargetState } from '../health/target-health.ts';
import { buildUpstreamHeaders, type ForwardContext } from './forward-headers.ts';
import type { HttpProxy, LogSource, LogSourceProvider } from './http-proxy.ts';

const connectErrorCodes = new Set([
  'ECONNREFUSED',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'UND_ERR_CONNECT_TIMEOUT',
]);
const resetErrorCodes = new Set(['ECONNRESET', 'UND_ERR_SOCKET', 'EPIPE', 'UND_ERR_CLOSED']);
const idempotentMethods = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);

export abstract class Exchange implements Dispatcher.DispatchHandler, LogSourceProvider {
  protected readonly proxy: HttpProxy;
  protected readonly runtime: TableRuntime;
  protected readonly route: Route;
  readonly method: string;
  /** Upstream path and query. */
  protected readonly path: string;
  protected readonly hasBody: boolean;
  protected readonly started: number;
  protected target: RouteTarget | undefined;
  private state: TargetState | undefined;
  /** Targets tried before the current one; allocated only when a retry happens. */
  private tried: RouteTarget[] | undefined;
  private attempts = 0;
  protected abortUpstream: ((err?: Error) => void) | undefined;
  protected resumeUpstream: (() => void) | undefined;
  protected status = 0;
  protected bytes = 0;
  protected done = false;
  /** The current upstream's body chunks are private copies (UpstreamDispatcher.privateChunks). */
  protected privateChunks = false;
  private clientClosed = false;

  constructor(
    proxy: HttpProxy,
    runtime: TableRuntime,
    route: Route,
    method: string,
    path: string,
    hasBody: boolean,
    started: number,
  ) {
    this.proxy = proxy;
    this.runtime = runtime;
    this.route = route;
    this.method = method;
    this.path = path;
    this.hasBody = hasBody;
    this.started = started;
    proxy.active++;
    proxy.earnRetryBudget();
  }

  // ---- what a client side provides ----

  /** Facts for the forwarding headers (X-Forwarded-*, Forwarded, ...). */
  protected abstract rawRequestHeaders(): readonly string[];
  protected abstract forwardBase(): Pick<
    ForwardContext,
    'remoteAddress' | 'tls' | 'httpVersion' | 'localPort'
  >;
  /** The request body stream for undici, or null. */
  protected abstract requestBody(): Readable | null;
  /** True while no byte of the request body has been consumed (a connect failure can be retried). */
  protected abstract bodyUntouched(): boolean;
  /** The client already got the response head. */
  protected abstract headSent(): boolean;
  /** Raw headers as undici (Buffers) or the lean client (latin1 strings) hands them over. */
  protected abstract writeHead(status: number, rawHeaders: readonly (Buffer | string)[]): void;
  /** Writes body bytes; false asks undici to pause until `resumeUpstream` is called. */
  protected abstract writeData(chunk: Buffer): boolean;
  protected abstract endResponse(): void;
  /** Answers with a short plain-text error (no response head sent yet). */
  protected abstract replyError(status: number, body: string): void;
  /** Too late for a status: cut the client connection. */
  protected abstract cutClient(err: Error): void;
  /** Called once when the exchange is over (after logging). */
  protected abstract released(): void;

  /** What the access log says about this request (built only when the log is on). */
  abstract logSource(): LogSource;

  // ---- shared behaviour ----

  send(target: RouteTarget): void {
    if (this.target !== undefined) (this.tried ??= [this.target]).push(target);
    this.target = target;
    this.attempts++;
    const state = this.proxy.health.state(target.key);
    this.state = state;
    state.inFlight++;
    state.requests++;
    const o = target.opts;
    const po = this.proxy.opts;
    const base = this.forwardBase();
    const ctx: ForwardContext = {
      remoteAddress: base.remoteAddress,
      tls: base.tls,
      httpVersion: base.httpVersion,
      localPort: base.localPort,
      stripPrefix: o.strip,
      hostOverride: o.host === undefined ? undefined : o.host === 'dst' ? target.url.host : o.host,
      clientIpHeader: po.clientIpHeader,
      trustedProxies: po.trustedProxies,
      localIp: po.localIp,
      requestId:
        po.requestIdHeader === undefined
          ? undefined
          : { header: po.requestIdHeader, value: crypto.randomUUID() },
    };
    const headers = buildUpstreamHeaders(this.rawRequestHeaders(), ctx);
    const pool = this.proxy.pool(target);
    this.privateChunks = pool.privateChunks === true;
    pool.dispatch(
      { path: this.path, method: this.method, headers, body: this.hasBody ? this.requestBody() : null },
      this,
    );
  }

  onConnect(abort: (err?: Error) => void): void {
    this.abortUpstream = abort;
    if (this.done || this.clientClosed) abort(new Error('client closed'));
  }

  onHeaders(statusCode: number, rawHeaders: readonly (Buffer | string)[], resume: () => void): boolean {
    if (statusCode < 200) return true; // 1xx: 100-continue is answered on the client side
    this.resumeUpstream = resume;
    this.status = statusCode;
    const state = this.state;
    if (state !== undefined) {
      if (statusCode >= 500) this.proxy.health.recordFailure(state, this.route.targets);
      else this.proxy.health.recordSuccess(state);
    }
    this.writeHead(statusCode, rawHeaders);
    return true;
  }

  onData(chunk: Buffer): boolean {
    this.bytes += chunk.length;
    return this.writeData(chunk);
  }

  onComplete(): void {
    this.endResponse();
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
    if (this.headSent()) {
      // The upstream failed mid-response (unless it was us aborting it for a departed client).
      if (!this.clientClosed && this.target !== undefined)
        this.proxy.opts.onUpstreamError?.(
          this.route,
          this.target,
          code === 'UND_ERR_BODY_TIMEOUT' ? 'timeout' : resetErrorCodes.has(code) ? 'reset' : 'other',
          false,
        );
      this.cutClient(err);
      this.finish();
      return;
    }
    const isConnect = connectErrorCodes.has(code);
    const isReset = resetErrorCodes.has(code);
    const isTimeout = code === 'UND_ERR_HEADERS_TIMEOUT';
    // A response timeout counts like an upstream 5xx: a target that keeps timing out is ejected
    // (found by the chaos suite: a hung instance otherwise drew 504s for as long as it hung).
    if ((isConnect || isReset || isTimeout) && state !== undefined)
      this.proxy.health.recordFailure(state, this.route.targets);
    const onUpstreamError = this.clientClosed ? undefined : this.proxy.opts.onUpstreamError;
    if ((isConnect || isReset) && this.canRetry(isConnect)) {
      const next = this.nextTarget();
      if (next !== undefined) {
        if (onUpstreamError !== undefined && this.target !== undefined)
          onUpstreamError(this.route, this.target, isConnect ? 'connect' : 'reset', true);
        this.abortUpstream = undefined;
        this.send(next);
        return;
      }
    }
    if (onUpstreamError !== undefined && this.target !== undefined)
      onUpstreamError(
        this.route,
        this.target,
        isConnect ? 'connect' : isReset ? 'reset' : isTimeout ? 'timeout' : 'other',
        false,
      );
    this.status = isTimeout ? 504 : 502;
    this.replyError(
      this.status,
      isTimeout ? 'upstream timeout\n' : `upstream unavailable (${code || err.message})\n`,
    );
    this.finish();
  }

  /** The client went away before the exchange was over: stop the upstream side too. */
  protected clientGone(): void {
    if (this.done) return;
    this.clientClosed = true;
    this.abortUpstream?.(new Error('client closed'));
  }

  private canRetry(isConnect: boolean): boolean {
    const limit = this.target?.opts.retries ?? this.proxy.opts.defaultRetries;
    if (this.attempts > limit) return false;
    // A connect failure never sent the body; a reset may have, so only body-less idempotent ones.
    if (
      isConnect
        ? this.hasBody && !this.bodyUntouched()
        : !(idempotentMethods.has(this.method) && !this.hasBody)
    ) {
      return false;
    }
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

  protected finish(): void {
    if (this.done) return;
    this.done = true;
    const state = this.state;
    if (state !== undefined) {
      state.inFlight--;
      this.state = undefined;
    }
    this.proxy.active--;
    this.proxy.finished(
      this,
      this.route,
      this.target,
      this.status,
      this.started,
      this.attempts - 1,
      this.bytes,
    );
    this.released();
  }
}

/** The upstream's Content-Length from raw headers, or -1 (chunked, close-delimited, absent). */
export function contentLength(raw: readonly (Buffer | string)[]): number {
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i] as Buffer | string;
    if (name.length !== 14) continue;
    if (typeof name === 'string') {
      if ((name.charCodeAt(0) | 0x20) !== 0x63 || name.toLowerCase() !== 'content-length') continue;
    } else {
      // 'content-length' case-insensitively: check a few bytes before the full compare.
      if (((name[0] as number) | 0x20) !== 0x63 || ((name[8] as number) | 0x20) !== 0x6c) continue;
      if (name.toString('latin1').toLowerCase() !== 'content-length') continue;
    }
    const v = raw[i + 1] as Buffer | string;
    const n = Number(typeof v === 'string' ? v : v.toString('latin1'));
    return Number.isSafeInteger(n) && n >= 0 ? n : -1;
  }
  return -1;
}
