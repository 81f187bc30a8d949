// A lean HTTP/1.1 listener for plain-HTTP ports: raw `net` sockets, Node's own llhttp parser
// (`_http_common`'s HTTPParser, the one `node:http` uses), and response heads written as one
// string with the first body bytes. It skips Node's IncomingMessage/ServerResponse objects and
// their stream plumbing, which cost about as much CPU as the proxying itself (measured: a bare
// `node:http` + undici pass-through relays ~0.29x nginx's requests per CPU-second, the same relay
// on this listener ~0.41x).
//
// Semantics kept from `node:http`: strict parsing (request smuggling shapes are 400s), header
// size limit (431), keep-alive and HTTP/1.0 rules, pipelining (answered in order), Expect:
// 100-continue, header and idle timeouts, upgrades handed to the WebSocket proxy. TLS and HTTP/2
// listeners keep using Node's servers.

import { STATUS_CODES } from 'node:http';
import type { IncomingMessage } from 'node:http';
import net, { type Socket } from 'node:net';
import { Readable } from 'node:stream';
import { contentLength, Exchange } from '../exchange.ts';
import { filterResponseHeaders, type ForwardContext } from '../forward-headers.ts';
import type { Decision, Forward, HttpProxy, LogSource, LogSourceProvider } from '../http-proxy.ts';
import { setHostHeader } from '../request-target.ts';
import { type RequestHead, scanRequestHead } from '../request-head.ts';
import type { UpgradeProxy } from '../upgrade.ts';
import { Direct, headWriteLimit, releaseChunk, writeDirect, writeHeadDirect } from './direct-write.ts';

import { HTTPParser, methods, type ParseError, type ParserBinding, type StreamHandle } from './llhttp.ts';

export interface LeanServerOptions {
  /** Time a client has to send a request's headers, from its first byte (slowloris). */
  readonly headerTimeoutMs: number;
  /** Idle keep-alive connections are closed after this. */
  readonly idleTimeoutMs: number;
  readonly maxHeaderSize: number;
  /** Header fields allowed in one request (431 beyond); 0 = no limit. */
  readonly maxHeaderCount?: number;
  /** Time a client has to send its whole request, body included; 0 = no limit. */
  readonly requestTimeoutMs: number;
  /** Longest pause between two reads of a request body (nginx's client_body_timeout); 0 = none. */
  readonly bodyTimeoutMs?: number;
}

const continueLine = 'HTTP/1.1 100 Continue\r\n\r\n';

const missingHost: Decision = {
  kind: 'reply',
  status: 400,
  body: 'missing host\n',
  contentType: 'text/plain; charset=utf-8',
  headers: [],
  route: undefined,
  target: undefined,
};

/** When a direct write is not possible, first body chunks up to this size go in one string write with the head. */
const smallBody = 16 * 1024;

/** A request whose headers arrived while an earlier one on the connection was still active. */
interface Pending {
  readonly method: string;
  readonly url: string;
  readonly headers: string[];
  readonly versionMinor: number;
  readonly keepAlive: boolean;
  readonly head: RequestHead;
  readonly chunks: Buffer[];
  complete: boolean;
}

export class LeanHttpServer {
  readonly server: net.Server;
  readonly proxy: HttpProxy;
  readonly upgrades: UpgradeProxy;
  readonly opts: LeanServerOptions;
  readonly connections = new Set<H1Connection>();
  draining = false;
  private readonly sweeper: NodeJS.Timeout;

  constructor(proxy: HttpProxy, upgrades: UpgradeProxy, opts: LeanServerOptions) {
    this.proxy = proxy;
    this.upgrades = upgrades;
    this.opts = opts;
    // allowHalfOpen: a client that half-closes after its request still gets the response, and an
    // upgraded (WebSocket) pair keeps the half-close semantics the WebSocket proxy expects.
    this.server = net.createServer({ noDelay: true, allowHalfOpen: true }, (socket) => {
      const c = new H1Connection(this, socket);
      this.connections.add(c);
    });
    // One timer for every connection's header and idle deadlines, like node:http's
    // connectionsCheckingInterval: no timer work per request.
    this.sweeper = setInterval(() => this.sweep(), Math.max(250, Math.min(opts.headerTimeoutMs, 1000) / 2));
    this.sweeper.unref();
  }

  private sweep(): void {
    const now = performance.now();
    for (const c of this.connections) c.checkDeadlines(now);
  }

  /** Stops accepting; idle connections close now, busy ones after their current response. */
  beginDrain(): void {
    this.draining = true;
    for (const c of this.connections) c.closeIfIdle();
  }

  stop(): void {
    clearInterval(this.sweeper);
  }
}

/** Connection states: waiting for a request, reading its headers, answering it, closed. */
const State = { Idle: 0, Headers: 1, Busy: 2, Closed: 3 } as const;
type State = (typeof State)[keyof typeof State];

export class H1Connection {
  private readonly owner: LeanHttpServer;
  readonly socket: Socket;
  private readonly parser: ParserBinding;
  private state: State = State.Idle;
  /** performance.now() when the current idle or header phase began. */
  private since = performance.now();
  private current: LeanExchange | undefined;
  /** The active request's body has been fully received. */
  private requestComplete = true;
  /** Body progress as the sweeper last saw it (socket.bytesRead and when it last changed). */
  private bodyBytesSeen = -1;
  private bodyProgressAt = 0;
  private queue: Pending[] | undefined;
  private partialHeaders: string[] | undefined;
  private partialUrl = '';
  private clientEnded = false;
  private upgradeRequest:
    { method: string; url: string; headers: string[]; versionMinor: number } | undefined;
  readonly remoteAddress: string;
  readonly localPort: number;
  /** The socket's stream handle when the parser consumes it in C++; reads are paused on it. */
  private handle: StreamHandle | undefined;
  /** A request completed during the current read (consumed mode: tells idle from headers). */
  private completedInRead = false;

  constructor(owner: LeanHttpServer, socket: Socket) {
    this.owner = owner;
    this.socket = socket;
    this.remoteAddress = socket.remoteAddress ?? '';
    this.localPort = socket.localPort ?? 0;
    const p = new HTTPParser();
    p.initialize(HTTPParser.REQUEST, {}, owner.opts.maxHeaderSize, 0);
    p[HTTPParser.kOnHeaders] = this.onHeaders;
    p[HTTPParser.kOnHeadersComplete] = this.onHeadersComplete;
    p[HTTPParser.kOnBody] = this.onBody;
    p[HTTPParser.kOnMessageComplete] = this.onMessageComplete;
    this.parser = p;
    // Like node:http, let the parser read the socket in C++ (`consume`): reads land in the
    // parser's shared buffer and no JS 'data' hop or per-read 64 KB allocation happens. Body
    // chunks are views of that buffer and are copied where they are kept (pushBody, queue).
    const handle = (socket as unknown as { _handle?: StreamHandle | null })._handle;
    if (handle?.isStreamBase === true && handle._consumed !== true) {
      p[HTTPParser.kOnExecute] = this.onExecute;
      p.consume(handle);
      handle._consumed = true;
      this.handle = handle;
    }
    // Still needed when consumed: it keeps the socket flowing (and 'end' emitted).
    socket.on('data', this.onData);
    socket.on('end', this.onEnd);
    socket.on('error', this.onSocketError);
    socket.on('close', this.onClose);
    if (owner.draining) this.close();
  }

  // ---- socket events ----

  private readonly onData = (chunk: Buffer): void => {
    if (this.state === State.Closed) return;
    if (this.state === State.Idle) {
      this.state = State.Headers;
      this.since = performance.now();
    }
    let ret: number | ParseError;
    try {
      ret = this.parser.execute(chunk);
    } catch (err) {
      // A bug in a callback must cost this connection, never the process.
      this.fail(500, err as Error);
      return;
    }
    if (typeof ret !== 'number') {
      this.parseError(ret);
      return;
    }
    const up = this.upgradeRequest;
    if (up !== undefined) {
      this.upgradeRequest = undefined;
      this.handOverUpgrade(up, chunk.subarray(ret));
    }
  };

  /** Consumed mode: the parser executed one read (`ret` bytes, or the parse error). */
  private readonly onExecute = (ret: number | ParseError): void => {
    if (typeof ret !== 'number') {
      this.parseError(ret);
      return;
    }
    // A read that left the connection idle without completing a request began one.
    if (this.state === State.Idle && ret > 0 && !this.completedInRead) {
      this.state = State.Headers;
      this.since = performance.now();
    }
    this.completedInRead = false;
    const up = this.upgradeRequest;
    if (up !== undefined) {
      this.upgradeRequest = undefined;
      this.handOverUpgrade(up, this.parser.getCurrentBuffer().subarray(ret));
    }
  };

  /**
   * The client half-closed. Like node:http (without httpAllowHalfOpen), that ends the connection:
   * a request in progress is aborted upstream. (The server allows half-open sockets only so
   * that upgraded WebSocket pairs keep their own half-close handling.)
   */
  private readonly onEnd = (): void => {
    this.clientEnded = true;
    this.current?.connectionClosed();
    this.close();
  };

  private readonly onSocketError = (): void => {
    this.socket.destroy();
  };

  private readonly onClose = (): void => {
    this.state = State.Closed;
    this.owner.connections.delete(this);
    this.current?.connectionClosed();
    this.current?.bodyAborted();
    this.unconsume();
    try {
      this.parser.close();
    } catch {
      // already freed
    }
  };

  // ---- parser callbacks (one set per connection) ----

  private readonly onHeaders = (headers: string[], url: string): void => {
    // Called for long header blocks before onHeadersComplete; the rest follows there.
    (this.partialHeaders ??= []).push(...headers);
    this.partialUrl += url;
  };

  private readonly onHeadersComplete = (
    _versionMajor: number,
    versionMinor: number,
    headers: string[] | undefined,
    method: number,
    url: string | undefined,
    _statusCode: unknown,
    _statusMessage: unknown,
    upgrade: boolean,
    keepAlive: boolean,
  ): number => {
    let h = headers ?? [];
    let u = url ?? '';
    if (this.partialHeaders !== undefined) {
      h = this.partialHeaders.concat(h);
      u = this.partialUrl + u;
      this.partialHeaders = undefined;
      this.partialUrl = '';
    }
    // Already answered with an error: later pipelined requests on this connection are ignored.
    if (this.state === State.Closed) return this.parserCompletes(true, 1);
    const maxCount = this.owner.opts.maxHeaderCount ?? 0;
    if (maxCount > 0 && h.length > maxCount * 2) {
      this.fail(431, new Error('too many header fields'));
      return this.parserCompletes(true, 1);
    }
    const m = methods[method] ?? 'GET';
    if (m === 'CONNECT') {
      // Cairn is a reverse proxy: never a tunnel to an address the client chooses.
      this.fail(405, new Error('CONNECT'), 'Allow: GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS\r\n');
      return this.parserCompletes(true, 1);
    }
    if (upgrade) {
      this.upgradeRequest = { method: m, url: u, headers: h, versionMinor };
      return this.parserCompletes(true, 0);
    }
    const head = scanRequestHead(h);
    // A request without a body is complete with its head (llhttp completes it next, with nothing
    // in between): complete it here and spare the parser's message-complete callback.
    this.parserCompletes(head.hasBody, 0);
    if (this.state === State.Busy) {
      // Pipelined: answered after the active one, in order. Stop reading until then.
      (this.queue ??= []).push({
        method: m,
        url: u,
        headers: h,
        versionMinor,
        keepAlive,
        head,
        chunks: [],
        complete: false,
      });
      this.pauseReading();
    } else {
      this.start(m, u, h, versionMinor, keepAlive, head);
    }
    if (!head.hasBody) this.onMessageComplete();
    return 0;
  };

  /** Whether the parser calls onMessageComplete (a C++ to JS call per request); answers `ret`. */
  private parserCompletes(on: boolean, ret: number): number {
    if (this.completeCallbackOn !== on) {
      this.completeCallbackOn = on;
      this.parser[HTTPParser.kOnMessageComplete] = on ? this.onMessageComplete : undefined;
    }
    return ret;
  }

  private completeCallbackOn = true;

  private readonly onBody = (chunk: Buffer): void => {
    const q = this.queue;
    if (q !== undefined && q.length > 0) {
      (q[q.length - 1] as Pending).chunks.push(Buffer.from(chunk));
      return;
    }
    this.current?.pushBody(chunk);
  };

  private readonly onMessageComplete = (): void => {
    this.completedInRead = true;
    const q = this.queue;
    if (q !== undefined && q.length > 0) {
      (q[q.length - 1] as Pending).complete = true;
      return;
    }
    this.requestComplete = true;
    const cur = this.current;
    if (cur !== undefined) cur.endBody();
    else if (this.state === State.Busy) this.next(); // answered early (e.g. 404); body now drained
  };

  // ---- request lifecycle ----

  private start(
    method: string,
    url: string,
    headers: string[],
    versionMinor: number,
    keepAlive: boolean,
    head: RequestHead,
  ): void {
    try {
      this.startExchange(method, url, headers, versionMinor, keepAlive, head);
    } catch (err) {
      // A bug must cost this connection, never the process (consumed reads run these callbacks
      // from C++, where nothing would catch it).
      if (this.current !== undefined) this.socket.destroy();
      else this.fail(500, err as Error);
    }
  }

  private startExchange(
    method: string,
    url: string,
    headers: string[],
    versionMinor: number,
    keepAlive: boolean,
    head: RequestHead,
  ): void {
    this.state = State.Busy;
    const started = performance.now();
    this.since = started;
    this.requestComplete = !head.hasBody;
    const proxy = this.owner.proxy;
    const http10 = versionMinor === 0;
    // HTTP/1.1 requires Host (RFC 9112 3.2), as node:http's requireHostHeader does.
    const d =
      !http10 && head.hostFields === 0 && url.charCodeAt(0) === 0x2f
        ? missingHost
        : proxy.decide(url, head, false, this.remoteAddress);
    if (d.kind === 'reply') {
      let extra = '';
      for (const [k, v] of d.headers) extra += `${k}: ${v}\r\n`;
      const close = this.writeSimple(
        d.status,
        d.body,
        d.contentType,
        extra,
        keepAlive,
        http10,
        method === 'HEAD',
      );
      proxy.finished(
        new LeanLogSource(method, url, head.host, this.remoteAddress, http10, headers),
        d.route,
        d.target,
        d.status,
        started,
        0,
        Buffer.byteLength(d.body),
      );
      this.responded(close);
      return;
    }
    if (head.absoluteHost) setHostHeader(headers, head.host);
    if (head.hasBody && hasExpectContinue(headers)) this.socket.write(continueLine, 'latin1');
    const x = new LeanExchange(proxy, d, this, method, url, headers, head, http10, keepAlive, started);
    this.current = x;
    x.send(d.target);
  }

  /** Writes a complete short response; returns whether the connection must close after it. */
  writeSimple(
    status: number,
    body: string,
    contentType: string,
    extraHeaders: string,
    keepAlive: boolean,
    http10: boolean,
    head: boolean,
  ): boolean {
    const close = !keepAlive || this.owner.draining;
    const len = Buffer.byteLength(body);
    let s = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Unknown'}\r\n${extraHeaders}`;
    if (len > 0) s += `Content-Type: ${contentType}\r\n`;
    s += `Content-Length: ${len}\r\n`;
    if (close) s += 'Connection: close\r\n';
    else if (http10) s += 'Connection: keep-alive\r\n';
    s += '\r\n';
    if (len > 0 && !head) s += body;
    this.socket.write(s, 'utf8');
    return close;
  }

  /** The active exchange finished writing its response. */
  exchangeDone(close: boolean): void {
    this.current = undefined;
    this.responded(close);
  }

  private responded(close: boolean): void {
    if (close || this.clientEnded || this.state === State.Closed) {
      this.close();
      return;
    }
    // The request body may still be arriving (an early answer): read and drop it first.
    if (!this.requestComplete) {
      this.readOn();
      return;
    }
    this.next();
  }

  /** Starts the next pipelined request, or goes idle. */
  private next(): void {
    const q = this.queue;
    const p = q?.shift();
    if (p === undefined) {
      this.state = State.Idle;
      this.since = performance.now();
      if (this.owner.draining) this.close();
      else this.readOn();
      return;
    }
    this.start(p.method, p.url, p.headers, p.versionMinor, p.keepAlive, p.head);
    const cur = this.current;
    if (cur !== undefined) {
      for (const c of p.chunks) cur.pushBody(c);
      if (p.complete) {
        this.requestComplete = true;
        cur.endBody();
      }
    } else if (p.complete) {
      this.requestComplete = true;
    }
    if (q !== undefined && q.length === 0) this.readOn();
  }

  private handOverUpgrade(
    up: { method: string; url: string; headers: string[]; versionMinor: number },
    rest: Buffer,
  ): void {
    this.socket.removeListener('data', this.onData);
    this.socket.removeListener('end', this.onEnd);
    this.socket.removeListener('close', this.onClose);
    this.socket.removeListener('error', this.onSocketError);
    this.owner.connections.delete(this);
    this.state = State.Closed;
    // The WebSocket proxy reads the socket from JS: hand the reads back, reading on.
    this.unconsume();
    this.readOn();
    // Not now: this may run inside the parser's own execute (consumed reads), which must not
    // free it under itself (node:http defers it the same way).
    setImmediate(closeParser, this.parser);
    this.owner.upgrades.handle(upgradeRequestShim(up, this.socket), this.socket, Buffer.from(rest));
  }

  private parseError(err: ParseError): void {
    const code = err.code ?? '';
    const status = code === 'HPE_HEADER_OVERFLOW' ? 431 : 400;
    const cur = this.current;
    if (this.state === State.Busy && cur !== undefined) {
      // The request was already forwarded and its body is broken (a bad chunk): the upstream
      // request is abandoned, and the client told why if no response has started yet.
      if (cur.responseStarted()) this.socket.destroy();
      else {
        this.fail(status, err);
        cur.connectionClosed();
      }
      return;
    }
    this.fail(status, err);
  }

  private fail(status: number, _err: Error, extraHeaders = ''): void {
    if (this.state === State.Closed) return;
    if (this.socket.writable) {
      this.socket.end(
        `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\n${extraHeaders}Connection: close\r\nContent-Length: 0\r\n\r\n`,
      );
    }
    this.state = State.Closed;
    this.socket.destroySoon();
  }

  checkDeadlines(now: number): void {
    const o = this.owner.opts;
    if (this.state === State.Headers && o.headerTimeoutMs > 0 && now - this.since > o.headerTimeoutMs) {
      this.fail(408, new Error('header timeout'));
    } else if (this.state === State.Idle && o.idleTimeoutMs > 0 && now - this.since > o.idleTimeoutMs) {
      this.close();
    } else if (
      this.state === State.Busy &&
      !this.requestComplete &&
      ((o.requestTimeoutMs > 0 && now - this.since > o.requestTimeoutMs) || this.bodyStalled(now))
    ) {
      // A slow upload: the upstream exchange is abandoned, the client told why if it can be.
      const cur = this.current;
      if (cur !== undefined && !cur.responseStarted()) {
        // Closed first, so the abandoned exchange does not answer 502 before the 408.
        this.fail(408, new Error('request timeout'));
        cur.connectionClosed();
      } else {
        this.socket.destroy();
      }
    }
  }

  /**
   * No body byte arrived for --client-body-timeout while Cairn was reading (a paused socket is
   * waiting on the upstream, not on the client). Checked by the sweeper from socket.bytesRead, so
   * the request path does no timer or clock work for it.
   */
  private bodyStalled(now: number): boolean {
    const limit = this.owner.opts.bodyTimeoutMs ?? 0;
    if (limit <= 0) return false;
    const read = this.socket.bytesRead;
    if (read !== this.bodyBytesSeen || this.bodyProgressAt < this.since || this.socket.isPaused()) {
      this.bodyBytesSeen = read;
      this.bodyProgressAt = now;
      return false;
    }
    return now - this.bodyProgressAt > limit;
  }

  closeIfIdle(): void {
    if (this.state === State.Idle) this.close();
  }

  private close(): void {
    this.state = State.Closed;
    this.socket.end();
  }

  get draining(): boolean {
    return this.owner.draining;
  }

  /** The connection was answered with an error or closed: nothing more may be written. */
  get closed(): boolean {
    return this.state === State.Closed;
  }

  /** The client socket drained: the active exchange may resume its upstream (one closure per connection). */
  readonly onDrain = (): void => {
    this.current?.drained();
  };

  resumeReading(): void {
    if (this.queue === undefined || this.queue.length === 0) this.readOn();
  }

  /** Stops reading the client (request body backpressure, pipelined requests queued). */
  pauseReading(): void {
    const h = this.handle;
    if (h === undefined) {
      this.socket.pause();
      return;
    }
    // Consumed: nothing reaches the socket's stream buffer, so stop the handle itself.
    if (h.reading === true) {
      h.reading = false;
      h.readStop();
    }
  }

  private readOn(): void {
    const h = this.handle;
    if (h === undefined) {
      this.socket.resume();
      return;
    }
    if (h.reading !== true && this.state !== State.Closed && !this.socket.destroyed) {
      h.reading = true;
      h.readStart();
    }
  }

  private unconsume(): void {
    const h = this.handle;
    if (h === undefined) return;
    this.handle = undefined;
    h._consumed = false;
    try {
      this.parser.unconsume();
    } catch {
      // the handle is gone already
    }
  }
}

function closeParser(p: ParserBinding): void {
  try {
    p.close();
  } catch {
    // already freed
  }
}

function hasExpectContinue(headers: readonly string[]): boolean {
  for (let i = 0; i + 1 < headers.length; i += 2) {
    const k = headers[i] as string;
    if (k.length === 6 && k.toLowerCase() === 'expect')
      return (headers[i + 1] as string).toLowerCase() === '100-continue';
  }
  return false;
}

/** The request body as undici reads it: fed by the parser, paused with the socket. */
class RequestBody extends Readable {
  private readonly conn: H1Connection;

  constructor(conn: H1Connection) {
    super({ highWaterMark: 64 * 1024 });
    this.conn = conn;
  }

  override _read(): void {
    this.conn.resumeReading();
  }
}

/** An exchange whose client side is a lean HTTP/1.1 connection. */
class LeanExchange extends Exchange {
  private readonly conn: H1Connection;
  readonly url: string;
  readonly host: string;
  private readonly headers: string[];
  private readonly http10: boolean;
  private readonly keepAlive: boolean;
  private body: RequestBody | undefined;
  /** Body chunks that arrived before undici asked for the stream. */
  private early: Buffer[] | undefined;
  private bodyEnded = false;
  private headWritten = false;
  private pendingHead: string | undefined;
  private chunked = false;
  private noBody = false;
  private closeAfter = false;

  constructor(
    proxy: HttpProxy,
    d: Forward,
    conn: H1Connection,
    method: string,
    url: string,
    headers: string[],
    head: RequestHead,
    http10: boolean,
    keepAlive: boolean,
    started: number,
  ) {
    super(proxy, d.runtime, d.route, method, d.path, head.hasBody, started);
    this.conn = conn;
    this.url = url;
    this.host = head.host;
    this.headers = headers;
    this.http10 = http10;
    this.keepAlive = keepAlive;
  }

  logSource(): LogSource {
    return new LeanLogSource(
      this.method,
      this.url,
      this.host,
      this.conn.remoteAddress,
      this.http10,
      this.headers,
    );
  }

  // ---- request body, fed by the connection's parser ----

  pushBody(chunk: Buffer): void {
    const b = this.body;
    if (b === undefined) {
      (this.early ??= []).push(Buffer.from(chunk));
      return;
    }
    // The parser's buffer is reused after the callback: the stream must own its bytes.
    if (!b.push(Buffer.from(chunk))) this.conn.pauseReading();
  }

  endBody(): void {
    this.bodyEnded = true;
    this.body?.push(null);
  }

  bodyAborted(): void {
    this.body?.destroy();
  }

  /** The client connection closed. */
  connectionClosed(): void {
    this.clientGone();
  }

  protected requestBody(): Readable {
    if (this.body !== undefined) return this.body;
    const b = new RequestBody(this.conn);
    this.body = b;
    for (const c of this.early ?? []) b.push(c);
    this.early = undefined;
    if (this.bodyEnded) b.push(null);
    return b;
  }

  protected bodyUntouched(): boolean {
    return this.body === undefined || !this.body.readableDidRead;
  }

  protected rawRequestHeaders(): readonly string[] {
    return this.headers;
  }

  protected forwardBase(): Pick<ForwardContext, 'remoteAddress' | 'tls' | 'httpVersion' | 'localPort'> {
    return {
      remoteAddress: this.conn.remoteAddress,
      tls: false,
      httpVersion: this.http10 ? '1.0' : '1.1',
      localPort: this.conn.localPort,
    };
  }

  // ---- response ----

  drained(): void {
    this.resumeUpstream?.();
  }

  responseStarted(): boolean {
    return this.status !== 0;
  }

  protected headSent(): boolean {
    return this.status !== 0;
  }

  protected writeHead(status: number, rawHeaders: readonly (Buffer | string)[]): void {
    const flat = filterResponseHeaders(rawHeaders);
    let s = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Unknown'}\r\n`;
    for (let i = 0; i + 1 < flat.length; i += 2) s += `${flat[i]}: ${flat[i + 1]}\r\n`;
    this.noBody = this.method === 'HEAD' || status === 204 || status === 304;
    let close = !this.keepAlive || this.conn.draining;
    if (!this.noBody && contentLength(rawHeaders) < 0) {
      // Body length unknown (chunked or close-delimited upstream): re-frame for this client.
      if (this.http10) close = true;
      else {
        this.chunked = true;
        s += 'Transfer-Encoding: chunked\r\n';
      }
    }
    if (close) s += 'Connection: close\r\n';
    else if (this.http10) s += 'Connection: keep-alive\r\n';
    this.closeAfter = close;
    this.pendingHead = `${s}\r\n`;
  }

  protected writeData(chunk: Buffer): boolean {
    if (this.noBody) return true;
    const sock = this.conn.socket;
    const head = this.pendingHead;
    if (head !== undefined) {
      this.pendingHead = undefined;
      this.headWritten = true;
      const framed = this.chunked ? `${head}${chunk.length.toString(16)}\r\n` : head;
      const tail = this.chunked ? '\r\n' : '';
      if (framed.length + chunk.length + tail.length <= headWriteLimit) {
        // Head and first chunk in one write (a whole short response: one syscall). Copying up to
        // 64 KB costs less than the chunk left to the GC (see releaseChunk).
        const r = writeHeadDirect(sock, framed, chunk, tail, this.conn.onDrain);
        // Queued: libuv sends the rest, then `onDrain` resumes the upstream.
        if (r !== Direct.NotTaken) {
          // Its bytes were copied into the write buffer, queued or not.
          if (this.privateChunks) releaseChunk(chunk);
          return r === Direct.Done;
        }
        if (chunk.length <= smallBody) {
          const body = chunk.toString('latin1');
          return this.afterWrite(sock, sock.write(`${framed}${body}${tail}`, 'latin1'));
        }
      }
      sock.cork();
      sock.write(head, 'latin1');
      const ok = this.writeFramed(sock, chunk);
      sock.uncork();
      return this.afterWrite(sock, ok);
    }
    if (!this.chunked) {
      const r = writeDirect(sock, chunk, this.conn.onDrain);
      if (r === Direct.Done) {
        // The kernel has every byte; a queued write still reads from the chunk.
        if (this.privateChunks) releaseChunk(chunk);
        return true;
      }
      if (r === Direct.Queued) return false;
    }
    return this.afterWrite(sock, this.writeFramed(sock, chunk));
  }

  /** After a socket.write(): whether the upstream may go on sending. */
  private afterWrite(sock: Socket, ok: boolean): boolean {
    // write() answers false for any chunk at or above the socket's highWaterMark (16 KB) even
    // when the kernel took it all at once; pausing the upstream for that would cost a
    // readStop/readStart pair and a 'drain' hop per big chunk (the 64 KB regression). Only a
    // write really left queued is backpressure.
    if (ok || sock.writableLength === 0) return true;
    sock.once('drain', this.conn.onDrain);
    return false;
  }

  private writeFramed(sock: Socket, chunk: Buffer): boolean {
    if (!this.chunked) return sock.write(chunk);
    sock.write(`${chunk.length.toString(16)}\r\n`, 'latin1');
    sock.write(chunk);
    return sock.write('\r\n', 'latin1');
  }

  protected endResponse(): void {
    const sock = this.conn.socket;
    const head = this.pendingHead;
    if (head !== undefined) {
      this.pendingHead = undefined;
      this.headWritten = true;
      sock.write(this.chunked && !this.noBody ? `${head}0\r\n\r\n` : head, 'latin1');
    } else if (this.chunked && !this.noBody) {
      sock.write('0\r\n\r\n', 'latin1');
    }
  }

  protected replyError(status: number, body: string): void {
    if (this.conn.closed) {
      // Already answered (408, 400) and closing: the exchange was abandoned for the client's sake.
      this.closeAfter = true;
      return;
    }
    this.closeAfter = this.conn.writeSimple(
      status,
      body,
      'text/plain; charset=utf-8',
      '',
      this.keepAlive,
      this.http10,
      this.method === 'HEAD',
    );
    this.headWritten = true;
  }

  protected cutClient(): void {
    this.closeAfter = true;
    this.conn.socket.destroy();
  }

  protected released(): void {
    this.conn.socket.removeListener('drain', this.conn.onDrain);
    this.conn.exchangeDone(this.closeAfter || !this.headWritten);
  }
}

function headerValue(headers: readonly string[], lower: string): string {
  for (let i = 0; i + 1 < headers.length; i += 2) {
    const k = headers[i] as string;
    if (k.length === lower.length && k.toLowerCase() === lower) return headers[i + 1] as string;
  }
  return '';
}

class LeanLogSource implements LogSource, LogSourceProvider {
  readonly method: string;
  readonly url: string;
  readonly host: string;
  readonly remote: string;
  readonly httpVersion: string;
  private readonly headers: readonly string[];

  constructor(
    method: string,
    url: string,
    host: string,
    remote: string,
    http10: boolean,
    headers: readonly string[],
  ) {
    this.method = method;
    this.url = url;
    this.host = host;
    this.remote = remote;
    this.httpVersion = http10 ? '1.0' : '1.1';
    this.headers = headers;
  }

  userAgent(): string {
    return headerValue(this.headers, 'user-agent');
  }

  referer(): string {
    return headerValue(this.headers, 'referer');
  }

  forwardedFor(): string {
    return scanRequestHead(this.headers).forwardedFor;
  }

  logSource(): LogSource {
    return this;
  }
}

/** What the WebSocket proxy reads from a request, built for the rare upgrade path. */
function upgradeRequestShim(
  up: { method: string; url: string; headers: string[]; versionMinor: number },
  socket: Socket,
): IncomingMessage {
  const headers: Record<string, string> = {};
  for (let i = 0; i + 1 < up.headers.length; i += 2) {
    const k = (up.headers[i] as string).toLowerCase();
    const v = up.headers[i + 1] as string;
    headers[k] = headers[k] === undefined ? v : `${headers[k]}, ${v}`;
  }
  const shim = {
    method: up.method,
    url: up.url,
    headers,
    rawHeaders: up.headers,
    httpVersion: `1.${up.versionMinor}`,
    httpVersionMajor: 1,
    httpVersionMinor: up.versionMinor,
    socket,
  };
  return shim as unknown as IncomingMessage;
}
