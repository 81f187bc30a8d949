// A lean HTTP/1.1 client for plain-HTTP upstreams: one pool per origin, keep-alive sockets, Node's
// own llhttp parser in RESPONSE mode, one request at a time per socket (no pipelining). It
// implements the slice of undici's legacy `dispatch(opts, handler)` contract that Exchange uses,
// with the same error codes, so retries, passive ejection and the 502/504 answers work unchanged.
//
// Why: profiling the HTTP relay showed undici's wasm parser and its Request objects at about a
// quarter of the proxy's CPU. Here a request costs one head string written with one socket write,
// the parser's own header array handed straight to the handler, and no per-request timers (one
// sweeper per pool checks every deadline, counted in ticks).
//
// TLS upstreams, upgrades and HTTP/2 stay on undici (Upstreams.pool() chooses).

import net, { type LookupFunction, type Socket } from 'node:net';
import type { Readable } from 'node:stream';

import { contentLength } from '../exchange.ts';
import { Direct, writeDirect } from './direct-write.ts';
import { HTTPParser, type ParseError, type ParserBinding, type StreamHandle } from './llhttp.ts';

/** The request as Exchange hands it over (undici's DispatchOptions subset). */
export interface UpstreamRequest {
  readonly path: string;
  readonly method: string;
  /** Flat `[name, value, ...]`, already filtered for the upstream (forward-headers.ts). */
  readonly headers: readonly string[];
  readonly body?: Readable | null | undefined;
}

/** undici's legacy DispatchHandler subset that Exchange implements. */
export interface UpstreamHandler {
  onConnect(abort: (err?: Error) => void): void;
  onHeaders(
    statusCode: number,
    rawHeaders: readonly (string | Buffer)[],
    resume: () => void,
    statusMessage?: string,
  ): boolean;
  onData(chunk: Buffer): boolean;
  onComplete(trailers: string[] | null): void;
  onError(err: Error): void;
}

export interface LeanPoolOptions {
  readonly connectTimeoutMs: number;
  readonly headersTimeoutMs: number;
  /** Longest silence between response body chunks; 0 = none. */
  readonly bodyTimeoutMs: number;
  readonly keepAliveTimeoutMs: number;
  /** Max sockets to this origin (undefined = unlimited); further requests wait in a queue. */
  readonly connections?: number | undefined;
  readonly lookup?: LookupFunction | undefined;
}

/** An error with one of the codes Exchange classifies (undici's names where undici has one). */
export class UpstreamError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.code = code;
  }
}

const Phase = { Connecting: 0, Idle: 1, Headers: 2, Body: 3, Closed: 4 } as const;
type Phase = (typeof Phase)[keyof typeof Phase];

interface Queued {
  readonly req: UpstreamRequest;
  readonly handler: UpstreamHandler;
}

export class LeanPool {
  readonly hostname: string;
  readonly port: number;
  /** `Host` for requests that carry none (HTTP/1.0 clients). */
  readonly hostHeader: string;
  readonly opts: LeanPoolOptions;
  /** Idle keep-alive sockets, most recently used last (reused first: warm, and lets extras idle out). */
  private readonly idle: UpstreamConn[] = [];
  private readonly conns = new Set<UpstreamConn>();
  private readonly queue: Queued[] = [];
  private busy = 0;
  /** Sockets opened over the pool's life (tests prove keep-alive reuse with it). */
  opened = 0;
  private closing = false;
  private resolveClosed: (() => void) | undefined;
  private closedPromise: Promise<void> | undefined;
  /** Node's parser hands each body chunk over as its own copy (Buffer::Copy in node_http_parser.cc). */
  readonly privateChunks = true;
  /** Sweeper ticks since start; deadlines are counted in ticks, never with a clock per request. */
  tick = 0;
  readonly tickMs: number;
  private timer: NodeJS.Timeout | undefined;

  constructor(hostname: string, port: number, opts: LeanPoolOptions) {
    this.hostname = hostname.startsWith('[') ? hostname.slice(1, -1) : hostname;
    this.port = port;
    this.hostHeader = `${hostname}:${port}`;
    this.opts = opts;
    let shortest = 1000;
    for (const t of [
      opts.connectTimeoutMs,
      opts.headersTimeoutMs,
      opts.bodyTimeoutMs,
      opts.keepAliveTimeoutMs,
    ]) {
      if (t > 0 && t < shortest * 4) shortest = t / 4;
    }
    this.tickMs = Math.max(10, Math.floor(shortest));
  }

  /** Sends a request; false when it had to wait (queued behind the connection limit). */
  dispatch(req: UpstreamRequest, handler: UpstreamHandler): boolean {
    if (this.closing) {
      process.nextTick(failClosed, handler);
      return false;
    }
    const conn = this.idle.pop();
    if (conn !== undefined) {
      this.busy++;
      conn.start(req, handler, true);
      return true;
    }
    const max = this.opts.connections;
    if (max !== undefined && this.conns.size >= max) {
      this.queue.push({ req, handler });
      return false;
    }
    let fresh: UpstreamConn;
    try {
      fresh = this.connect();
    } catch (err) {
      // net.connect throws on options it rejects (a bad port): still an answer, never a throw.
      process.nextTick(failConnect, handler, err);
      return false;
    }
    this.busy++;
    fresh.start(req, handler, false);
    return true;
  }

  /** Opens a socket; the request head is written at once (net buffers it until connected). */
  private connect(): UpstreamConn {
    const conn = new UpstreamConn(this);
    this.conns.add(conn);
    this.opened++;
    if (this.timer === undefined) {
      this.timer = setInterval(this.sweep, this.tickMs);
      this.timer.unref();
    }
    return conn;
  }

  /** A socket whose request ended with the socket reusable. */
  released(conn: UpstreamConn): void {
    this.busy--;
    const q = this.queue.shift();
    if (q !== undefined) {
      this.busy++;
      conn.start(q.req, q.handler, true);
      return;
    }
    if (this.closing) {
      conn.destroy();
      return;
    }
    conn.goIdle();
    this.idle.push(conn);
  }

  /** A socket's request is over and the socket is being destroyed. */
  dropped(): void {
    this.busy--;
    this.startQueued();
  }

  /** The classic keep-alive race: a reused socket died before any response byte. One fresh try. */
  retryFresh(req: UpstreamRequest, handler: UpstreamHandler): void {
    // The failed socket's busy slot carries over to the fresh one.
    this.connect().start(req, handler, false);
  }

  /** A socket closed (any reason): forget it. */
  forget(conn: UpstreamConn): void {
    if (!this.conns.delete(conn)) return;
    const i = this.idle.indexOf(conn);
    if (i >= 0) this.idle.splice(i, 1);
    this.startQueued();
    if (this.conns.size === 0 && this.timer !== undefined) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
    this.checkClosed();
  }

  private startQueued(): void {
    const max = this.opts.connections;
    while (this.queue.length > 0 && (max === undefined || this.conns.size < max)) {
      const q = this.queue.shift() as Queued;
      this.busy++;
      this.connect().start(q.req, q.handler, false);
    }
    this.checkClosed();
  }

  private readonly sweep = (): void => {
    const tick = ++this.tick;
    for (const c of this.conns) c.checkDeadlines(tick);
  };

  get connections(): number {
    return this.conns.size;
  }

  get idleConnections(): number {
    return this.idle.length;
  }

  /** close() was called: the pool takes no new requests (undici's Pool has the same flag). */
  get closed(): boolean {
    return this.closing;
  }

  /** Graceful: queued and running requests finish, then every socket closes. */
  close(): Promise<void> {
    if (this.closedPromise !== undefined) return this.closedPromise;
    this.closing = true;
    this.closedPromise = new Promise<void>((resolve) => {
      this.resolveClosed = resolve;
    });
    this.checkClosed();
    return this.closedPromise;
  }

  private checkClosed(): void {
    if (!this.closing || this.busy > 0 || this.queue.length > 0) return;
    for (const c of this.idle.splice(0)) c.destroy();
    if (this.conns.size > 0) return; // 'close' events still to come
    if (this.timer !== undefined) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
    const done = this.resolveClosed;
    this.resolveClosed = undefined;
    done?.();
  }
}

function failConnect(handler: UpstreamHandler, err: Error & { code?: string }): void {
  handler.onError(new UpstreamError(err.code ?? 'ECONNREFUSED', err.message));
}

function failClosed(handler: UpstreamHandler): void {
  handler.onError(new UpstreamError('UND_ERR_CLOSED', 'upstream pool closed'));
}

const CRLF = '\r\n';
const noop = (): void => {};

const LAST_CHUNK = '0\r\n\r\n';

/** One upstream socket and the request it is serving. */
class UpstreamConn {
  private readonly pool: LeanPool;
  private readonly socket: Socket;
  private readonly parser: ParserBinding;
  private phase: Phase = Phase.Connecting;
  /** Tick when the current phase (or the last body chunk) began. */
  private since: number;
  private handler: UpstreamHandler | undefined;
  private req: UpstreamRequest | undefined;
  private body: Readable | undefined;
  private chunked = false;
  private bodyDone = true;
  private bodyPaused = false;
  private reused = false;
  /** Any response byte arrived for the current request. */
  private received = false;
  private informational = false;
  private keepAlive = true;
  private responsePaused = false;
  /**
   * The socket's stream handle once the parser consumes it in C++ (as node:http's server does):
   * reads land in the parser's shared buffer, with no JS 'data' hop and no 64 KB allocation per
   * read. (Body chunks still reach onBody as copies: Node's parser makes one per chunk.)
   */
  private handle: StreamHandle | undefined;

  readonly abort = (err?: Error): void => {
    const h = this.handler;
    if (h === undefined) return;
    this.detach();
    this.destroy();
    this.pool.dropped();
    h.onError(err ?? new UpstreamError('UND_ERR_ABORTED', 'request aborted'));
  };

  readonly resume = (): void => {
    if (!this.responsePaused) return;
    this.responsePaused = false;
    this.since = this.pool.tick;
    this.readOn();
  };

  constructor(pool: LeanPool) {
    this.pool = pool;
    this.since = pool.tick;
    const lookup = pool.opts.lookup;
    const socket = net.connect({
      host: pool.hostname,
      port: pool.port,
      noDelay: true,
      ...(lookup !== undefined ? { lookup } : {}),
    });
    this.socket = socket;
    const p = new HTTPParser();
    p.initialize(HTTPParser.RESPONSE, {}, 0, 0);
    p[HTTPParser.kOnHeaders] = this.onHeaders;
    p[HTTPParser.kOnHeadersComplete] = this.onHeadersComplete;
    p[HTTPParser.kOnBody] = this.onBody;
    p[HTTPParser.kOnMessageComplete] = this.onMessageComplete;
    this.parser = p;
    socket.on('connect', this.onConnect);
    // Only used when the handle cannot be consumed; either way it keeps the socket flowing.
    socket.on('data', this.onData);
    socket.on('end', this.onEnd);
    socket.on('error', this.onError);
    socket.on('close', this.onClose);
    socket.on('drain', this.onDrain);
  }

  // ---- request ----

  start(req: UpstreamRequest, handler: UpstreamHandler, reused: boolean): void {
    this.req = req;
    this.handler = handler;
    this.reused = reused;
    this.received = false;
    this.informational = false;
    this.keepAlive = true;
    this.responsePaused = false;
    if (this.phase !== Phase.Connecting) {
      this.phase = Phase.Headers;
      this.since = this.pool.tick;
    }
    handler.onConnect(this.abort);
    if (this.handler !== handler) return; // aborted at once (the client is already gone)
    this.writeHead(req);
  }

  private writeHead(req: UpstreamRequest): void {
    const h = req.headers;
    let s = `${req.method} ${req.path} HTTP/1.1\r\n`;
    let hasHost = false;
    let hasLength = false;
    const end = h.length - (h.length & 1);
    for (let i = 0; i < end; i += 2) {
      const name = h[i] as string;
      if (
        name.length === 4 &&
        !hasHost &&
        (name.charCodeAt(0) | 0x20) === 104 &&
        name.toLowerCase() === 'host'
      )
        hasHost = true;
      else if (
        name.length === 14 &&
        (name.charCodeAt(0) | 0x20) === 99 &&
        name.toLowerCase() === 'content-length'
      )
        hasLength = true;
      s += `${name}: ${h[i + 1] as string}\r\n`;
    }
    if (!hasHost) s += `host: ${this.pool.hostHeader}\r\n`;
    const body = req.body ?? undefined;
    this.chunked = false;
    if (body !== undefined) {
      if (!hasLength) {
        this.chunked = true;
        s += 'transfer-encoding: chunked\r\n';
      }
    } else if (!hasLength && expectsBody(req.method)) {
      s += 'content-length: 0\r\n';
    }
    s += CRLF;
    if (writeDirect(this.socket, s, noop) === Direct.NotTaken) this.socket.write(s, 'latin1');
    if (body === undefined) {
      this.bodyDone = true;
      return;
    }
    this.body = body;
    this.bodyDone = false;
    this.bodyPaused = false;
    // Read no body byte before the socket connects: a refused connection can then be retried
    // elsewhere with the body intact (Exchange checks that nothing was consumed).
    if (this.phase !== Phase.Connecting) this.pipeBody(body);
  }

  private pipeBody(body: Readable): void {
    body.on('data', this.onBodyData);
    body.on('end', this.onBodyEnd);
    body.on('error', this.onBodyError);
  }

  private readonly onBodyData = (chunk: Buffer | string): void => {
    if (chunk.length === 0) return; // an empty chunk would end a chunked body
    const sock = this.socket;
    let ok: boolean;
    if (this.chunked) {
      const len = typeof chunk === 'string' ? Buffer.byteLength(chunk) : chunk.length;
      sock.cork();
      sock.write(`${len.toString(16)}\r\n`, 'latin1');
      sock.write(chunk);
      ok = sock.write(CRLF, 'latin1');
      sock.uncork();
    } else {
      ok = sock.write(chunk);
    }
    // false also comes for a big chunk the kernel took whole (length >= highWaterMark): only a
    // write still queued is backpressure.
    if (!ok && sock.writableLength > 0) {
      this.bodyPaused = true;
      this.body?.pause();
    }
  };

  private readonly onDrain = (): void => {
    if (!this.bodyPaused) return;
    this.bodyPaused = false;
    this.body?.resume();
  };

  private readonly onBodyEnd = (): void => {
    if (this.chunked) this.socket.write(LAST_CHUNK, 'latin1');
    this.detachBody();
    this.bodyDone = true;
  };

  private readonly onBodyError = (err: Error): void => {
    this.fail(err);
  };

  private detachBody(): void {
    const b = this.body;
    if (b === undefined) return;
    this.body = undefined;
    if (this.bodyPaused) b.resume();
    b.removeListener('data', this.onBodyData);
    b.removeListener('end', this.onBodyEnd);
    b.removeListener('error', this.onBodyError);
    // Keep an error on a stream nobody listens to any more from crashing the process.
    b.on('error', ignore);
  }

  private detach(): void {
    this.detachBody();
    this.handler = undefined;
    this.req = undefined;
  }

  // ---- socket events ----

  private readonly onConnect = (): void => {
    // Before the first read (net starts reading right after 'connect').
    const handle = (this.socket as unknown as { _handle?: StreamHandle | null })._handle;
    if (this.handle === undefined && handle?.isStreamBase === true && handle._consumed !== true) {
      const p = this.parser;
      p[HTTPParser.kOnExecute] = this.onExecute;
      p.consume(handle);
      handle._consumed = true;
      this.handle = handle;
    }
    if (this.phase !== Phase.Connecting) return;
    this.phase = this.handler === undefined ? Phase.Idle : Phase.Headers;
    this.since = this.pool.tick;
    if (this.body !== undefined) this.pipeBody(this.body);
  };

  private readonly onData = (chunk: Buffer): void => {
    let ret: number | ParseError;
    try {
      ret = this.parser.execute(chunk);
    } catch (err) {
      this.fail(err as Error);
      return;
    }
    this.onExecute(ret);
  };

  /** The parser executed one read (`ret` bytes, or the parse error). */
  private readonly onExecute = (ret: number | ParseError): void => {
    // A read that ended a response belongs to it, not to a request started from its completion
    // (the handler's callbacks and microtasks run before this one).
    if (this.completedInRead) this.completedInRead = false;
    else this.received = true;
    if (typeof ret !== 'number') {
      this.fail(new UpstreamError(ret.code ?? 'HPE_INVALID', `bad upstream response: ${ret.message}`));
    }
  };

  private readonly onEnd = (): void => {
    if (this.handler !== undefined && this.phase === Phase.Body) {
      // A close-delimited body ends here; finish() completes it (or reports a cut one).
      let ret: number | ParseError | undefined;
      try {
        ret = this.parser.finish();
      } catch (err) {
        ret = err as ParseError;
      }
      if (ret !== undefined && typeof ret !== 'number') {
        this.fail(new UpstreamError('UND_ERR_SOCKET', 'upstream closed mid-response'));
        return;
      }
    }
    if (this.handler !== undefined) {
      this.fail(new UpstreamError('UND_ERR_SOCKET', 'other side closed'));
      return;
    }
    this.destroy();
  };

  private readonly onError = (err: Error): void => {
    this.fail(err);
  };

  private readonly onClose = (): void => {
    if (this.handler !== undefined) this.fail(new UpstreamError('UND_ERR_SOCKET', 'other side closed'));
    this.phase = Phase.Closed;
    const h = this.handle;
    if (h !== undefined) {
      this.handle = undefined;
      try {
        this.parser.unconsume();
      } catch {
        // the handle is gone already
      }
    }
    try {
      this.parser.close();
    } catch {
      // already freed
    }
    this.pool.forget(this);
  };

  // ---- parser callbacks ----

  private readonly onHeaders = (headers: string[]): void => {
    // Heads with more than 32 fields arrive in parts (node's parser flushes every 32); the rest
    // comes with onHeadersComplete. The parser's header size limit bounds this.
    (this.partialHeaders ??= []).push(...headers);
  };

  /** The fields of the current head flushed before onHeadersComplete (long heads only). */
  private partialHeaders: string[] | undefined;

  private headersOf(headers: string[] | undefined): string[] {
    const partial = this.partialHeaders;
    if (partial === undefined) return headers ?? [];
    this.partialHeaders = undefined;
    return headers === undefined ? partial : partial.concat(headers);
  }

  private readonly onHeadersComplete = (
    _versionMajor: number,
    _versionMinor: number,
    headers: string[] | undefined,
    _method: unknown,
    _url: unknown,
    statusCode: number,
    statusMessage: string | undefined,
    upgrade: boolean,
    shouldKeepAlive: boolean,
  ): number => {
    const h = this.handler;
    const fields = this.headersOf(headers);
    if (h === undefined) return 1;
    if (statusCode < 200) {
      if (statusCode === 101 || upgrade) {
        process.nextTick(this.failUpgrade);
        return 1;
      }
      // 1xx: informational, another head follows (100-continue is answered on the client side).
      this.informational = true;
      this.parserCompletes(true);
      h.onHeaders(statusCode, fields, this.resume, statusMessage);
      return 1;
    }
    this.phase = Phase.Body;
    this.since = this.pool.tick;
    this.keepAlive = shouldKeepAlive;
    const head = this.req?.method === 'HEAD';
    // A Content-Length body is complete with its last byte: onBody finishes the response then,
    // sparing the parser's message-complete callback (a C++ to JS call per response).
    const length = head || statusCode === 204 || statusCode === 304 ? 0 : Math.max(0, contentLength(fields));
    this.bodyLeft = length;
    this.parserCompletes(length === 0);
    if (h.onHeaders(statusCode, fields, this.resume, statusMessage) === false) this.pause();
    return head ? 1 : 0;
  };

  /** Body bytes still to come when onBody completes the response (0: the parser's callback does). */
  private bodyLeft = 0;
  private completeCallbackOn = true;

  private parserCompletes(on: boolean): void {
    if (this.completeCallbackOn === on) return;
    this.completeCallbackOn = on;
    this.parser[HTTPParser.kOnMessageComplete] = on ? this.onMessageComplete : undefined;
  }

  private readonly failUpgrade = (): void => {
    this.fail(new UpstreamError('UND_ERR_SOCKET', 'unexpected upgrade from upstream'));
  };

  private readonly onBody = (chunk: Buffer): void => {
    const h = this.handler;
    if (h === undefined) return;
    this.since = this.pool.tick;
    // Node's parser hands each body chunk over as its own copy (Buffer::Copy in
    // node_http_parser.cc), so the handler may keep it as it is.
    const left = this.bodyLeft;
    if (left > 0) {
      this.bodyLeft = left - chunk.length;
      if (h.onData(chunk) === false) this.pause();
      // llhttp ends the message after exactly Content-Length bytes, with no further callback.
      if (this.bodyLeft <= 0 && this.handler === h) this.onMessageComplete();
      return;
    }
    if (h.onData(chunk) === false) this.pause();
  };

  /** A response completed in the read the parser is executing (see onExecute). */
  private completedInRead = false;

  private readonly onMessageComplete = (): void => {
    if (this.informational) {
      this.informational = false;
      return;
    }
    this.completedInRead = true;
    const h = this.handler;
    if (h === undefined) return;
    const reusable = this.keepAlive && this.bodyDone;
    this.detach();
    if (reusable) {
      if (this.responsePaused) {
        this.responsePaused = false;
        this.readOn();
      }
      this.pool.released(this);
    } else {
      this.destroy();
      this.pool.dropped();
    }
    h.onComplete(null);
  };

  private pause(): void {
    if (this.responsePaused) return;
    this.responsePaused = true;
    const h = this.handle;
    if (h === undefined) this.socket.pause();
    else if (h.reading === true) {
      // Consumed: nothing reaches the socket's stream buffer, so stop the handle itself.
      h.reading = false;
      h.readStop();
    }
  }

  private readOn(): void {
    const h = this.handle;
    if (h === undefined) this.socket.resume();
    else if (h.reading !== true && this.phase !== Phase.Closed) {
      h.reading = true;
      h.readStart();
    }
  }

  // ---- endings ----

  /** The current request failed: tell its handler (or retry a stale reused socket once). */
  private fail(err: Error): void {
    const h = this.handler;
    const req = this.req;
    this.destroy();
    if (h === undefined || req === undefined) return;
    const untouched = this.body === undefined ? req.body == null : !this.body.readableDidRead;
    const retry = this.reused && !this.received && untouched && isResetCode((err as { code?: string }).code);
    this.detach();
    if (retry) {
      this.pool.retryFresh(req, h);
      return;
    }
    this.pool.dropped();
    h.onError(err);
  }

  goIdle(): void {
    this.phase = Phase.Idle;
    this.since = this.pool.tick;
  }

  destroy(): void {
    if (this.phase === Phase.Closed) return;
    this.phase = Phase.Closed;
    this.socket.destroy();
  }

  checkDeadlines(tick: number): void {
    const o = this.pool.opts;
    // Whole ticks elapsed since the phase began, minus one for the partial tick it began in.
    const elapsed = (tick - this.since - 1) * this.pool.tickMs;
    switch (this.phase) {
      case Phase.Connecting:
        if (o.connectTimeoutMs > 0 && elapsed >= o.connectTimeoutMs)
          this.fail(new UpstreamError('UND_ERR_CONNECT_TIMEOUT', 'upstream connect timeout'));
        break;
      case Phase.Headers:
        if (o.headersTimeoutMs > 0 && elapsed >= o.headersTimeoutMs)
          this.fail(new UpstreamError('UND_ERR_HEADERS_TIMEOUT', 'upstream headers timeout'));
        break;
      case Phase.Body:
        if (o.bodyTimeoutMs > 0 && !this.responsePaused && elapsed >= o.bodyTimeoutMs)
          this.fail(new UpstreamError('UND_ERR_BODY_TIMEOUT', 'upstream body timeout'));
        break;
      case Phase.Idle:
        if (o.keepAliveTimeoutMs > 0 && elapsed >= o.keepAliveTimeoutMs) this.destroy();
        break;
    }
  }
}

function isResetCode(code: string | undefined): boolean {
  return code === 'ECONNRESET' || code === 'EPIPE' || code === 'UND_ERR_SOCKET';
}

/** Methods whose empty body is still announced with `content-length: 0` (as undici does). */
function expectsBody(method: string): boolean {
  return method === 'POST' || method === 'PUT' || method === 'PATCH';
}

function ignore(): void {}
