// One TCP listener: accepts client connections, reads what must be read before a route can be
// chosen (a PROXY protocol header, a TLS ClientHello), looks the route up on the live table and
// hands the connection to the forwarder.
//
// Modes:
//   tcp            route by the listener's port (`urlprefix-:5432 proto=tcp`); with a TLS
//                  context (`proto=tcp;cert=...`) the client's TLS is terminated first.
//   tcp+sni        route by the ClientHello's server name on this port; the bytes go upstream
//                  untouched. No name, or no route for it: the port's plain route if the table
//                  has one (`urlprefix-:443 proto=tcp+sni`), else the connection is refused with
//                  a TLS `unrecognized_name` alert.
//   https+tcp+sni  as tcp+sni, but a connection without an SNI route is TLS-terminated here
//                  and served as HTTPS by the HTTP side (`fallback`).
//   src            tcp-dynamic: route by a fixed `ip:port` src (see dynamic.ts).
// Garbage (not a PROXY header / not a ClientHello) is dropped at the first byte that proves it;
// a client that sends nothing in time is dropped when the prelude timeout fires.

import net, { type AddressInfo, type Server, type Socket } from 'node:net';
import type { Server as TlsServer, TLSSocket } from 'node:tls';
import type { Route, RouteTable } from '../../../routing/types.ts';
import type { TableRuntime } from '../../controller.ts';
import { HELLO_ERROR, HELLO_INCOMPLETE, readClientHello } from './client-hello.ts';
import type { ClientPeer, TcpForwarder, TcpSessionOptions } from './forwarder.ts';
import { PROXY_ERROR, PROXY_INCOMPLETE, type ProxyHeader, readProxyHeader } from './proxy-protocol.ts';
import type { TcpStats } from './stats.ts';
import { listenOn } from '../../workers/listen.ts';

export type TcpListenMode = 'tcp' | 'tcp+sni' | 'https+tcp+sni' | 'src';

/** Where the live table comes from (the Controller). */
export interface RuntimeSource {
  readonly current: TableRuntime;
}

export interface TcpListenerOptions {
  readonly mode: TcpListenMode;
  /** Mode `src`: the route src (`ip:port`) this listener serves. */
  readonly src?: string;
  readonly session: TcpSessionOptions;
  /** Expect a PROXY protocol header (v1 or v2) before anything else. */
  readonly proxyProtocol: boolean;
  /** Time the client has to send its PROXY header, ms. */
  readonly proxyTimeoutMs: number;
  /** Time the client has to send its ClientHello, ms. */
  readonly helloTimeoutMs: number;
  /** Concurrent client connections; 0 = no limit. */
  readonly maxConnections: number;
  /** Mode `tcp` with cert=: terminates TLS before routing by port (not listening itself). */
  readonly tls?: TlsServer;
  /** Mode `https+tcp+sni`: the HTTPS server (not listening) that takes non-SNI-routed connections. */
  readonly fallback?: TlsServer;
}

export interface TcpListenerDeps {
  readonly runtime: RuntimeSource;
  readonly forwarder: TcpForwarder;
  readonly stats: TcpStats;
}

/** TLS fatal alert `unrecognized_name` (RFC 6066 3): a clean "no such name here" to the client. */
const UNRECOGNIZED_NAME_ALERT = Buffer.from([0x15, 0x03, 0x01, 0x00, 0x02, 0x02, 0x70]);

export class TcpListener {
  readonly server: Server;
  /**
   * Client connections of this listener that are not (yet) forwarded sessions: reading their
   * prelude, in TLS termination, or served by the HTTPS side. (Forwarded sessions are tracked by
   * the forwarder.)
   */
  readonly sockets = new Set<Socket>();
  readonly opts: TcpListenerOptions;
  private readonly deps: TcpListenerDeps;
  /** The bound port (the listener's own port, once listening). */
  port = 0;

  constructor(deps: TcpListenerDeps, opts: TcpListenerOptions) {
    this.deps = deps;
    this.opts = opts;
    this.server = net.createServer({ allowHalfOpen: true, noDelay: true }, (s) => this.accept(s));
    if (opts.maxConnections > 0) this.server.maxConnections = opts.maxConnections;
    opts.tls?.on('secureConnection', (s: TLSSocket) => this.dispatch(s, undefined, peerOfTls(s), '', false));
    // Failed handshakes are the client's problem; the socket is closed by the TLS server.
    opts.tls?.on('tlsClientError', ignore);
  }

  listen(port: number, host: string | undefined): Promise<void> {
    return new Promise((resolve, reject) => {
      const onError = (err: Error) => reject(err);
      this.server.once('error', onError);
      listenOn(this.server, port, host, () => {
        this.server.removeListener('error', onError);
        this.port = (this.server.address() as AddressInfo).port;
        resolve();
      });
    });
  }

  /** Stops accepting; open connections are left alone (the caller drains or destroys them). */
  close(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  destroyAll(): void {
    for (const s of this.sockets) s.destroy();
  }

  private accept(socket: Socket): void {
    const o = this.opts;
    if (o.proxyProtocol || o.mode === 'tcp+sni' || o.mode === 'https+tcp+sni' || o.tls !== undefined) {
      this.track(socket);
      if (o.tls !== undefined && !o.proxyProtocol) {
        socket.on('error', ignore);
        o.tls.emit('connection', socket);
      } else {
        new Prelude(this, socket).start();
      }
    } else {
      // Plain TCP: the socket is forwarded (the forwarder tracks its session) or closed right
      // here, so it needs no tracking of its own.
      this.dispatch(socket, undefined, undefined, '', false);
    }
  }

  /** Sockets that spend time here (prelude, TLS, HTTPS side) are tracked for shutdown. */
  private track(socket: Socket): void {
    this.sockets.add(socket);
    (socket as Socket & { [kListener]?: TcpListener })[kListener] = this;
    socket.on('close', onAcceptedClose);
  }

  /** The prelude is complete: route and forward (or hand over, or refuse). */
  dispatch(
    socket: Socket,
    rest: Buffer | undefined,
    peer: ClientPeer,
    serverName: string,
    ended: boolean,
  ): void {
    const o = this.opts;
    const runtime = this.deps.runtime.current;
    const tcp = runtime.table.tcp;
    let route: Route | undefined;
    if (o.mode === 'tcp') {
      route = tcp.lookupPort(this.port);
    } else if (o.mode === 'src') {
      route = routeBySrc(runtime.table, o.src ?? '');
    } else {
      if (serverName !== '') route = tcp.lookupSni(serverName, this.port);
      if (route === undefined) {
        if (o.mode === 'https+tcp+sni' && o.fallback !== undefined) {
          this.deps.stats.rejected.toHttps++;
          handOver(socket, rest, o.fallback);
          return;
        }
        route = tcp.lookupPort(this.port);
        if (route === undefined) {
          this.deps.stats.rejected.noRoute++;
          socket.end(UNRECOGNIZED_NAME_ALERT, () => socket.destroy());
          return;
        }
      }
    }
    if (route === undefined) {
      this.deps.stats.rejected.noRoute++;
      socket.destroy();
      return;
    }
    this.deps.forwarder.forward(socket, runtime, route, o.session, rest, peer, ended);
  }

  /** After the PROXY header on a TLS-terminating listener: the rest goes through TLS. */
  startTls(socket: Socket, rest: Buffer | undefined, peer: ClientPeer): void {
    peers.set(socket, peer);
    handOver(socket, rest, this.opts.tls as TlsServer);
  }

  rejectPrelude(socket: Socket, timedOut: boolean): void {
    const r = this.deps.stats.rejected;
    if (timedOut) r.preludeTimeout++;
    else r.badPrelude++;
    socket.destroy();
  }
}

/** Gives a raw client connection to a (non-listening) TLS server, bytes already read first. */
function handOver(socket: Socket, rest: Buffer | undefined, server: TlsServer): void {
  socket.pause();
  // TLSSocket feeds the socket's buffered bytes to the TLS engine before reading more.
  if (rest !== undefined && rest.length > 0) socket.unshift(rest);
  socket.on('error', ignore);
  server.emit('connection', socket);
}

// PROXY header info of raw sockets handed to a TLS-terminating server, found again from the
// TLSSocket that server creates (its `_parent` is the raw socket it wraps).
const peers = new WeakMap<Socket, ClientPeer>();

function peerOfTls(s: TLSSocket): ClientPeer {
  const parent = (s as unknown as { _parent?: Socket })._parent;
  return parent === undefined ? undefined : peers.get(parent);
}

const STAGE_PROXY = 0;
const STAGE_HELLO = 1;

/** Reads a connection's first bytes (PROXY header, ClientHello) with a deadline. */
class Prelude {
  private readonly listener: TcpListener;
  private readonly socket: Socket;
  private buf: Buffer | undefined;
  private stage: number;
  private peer: ProxyHeader | undefined;
  private ended = false;
  private done = false;

  constructor(listener: TcpListener, socket: Socket) {
    this.listener = listener;
    this.socket = socket;
    this.stage = listener.opts.proxyProtocol ? STAGE_PROXY : STAGE_HELLO;
  }

  start(): void {
    const s = this.socket;
    s.on('error', ignore);
    s.on('data', this.onData);
    s.on('end', this.onEnd);
    s.on('timeout', this.onTimeout);
    s.setTimeout(
      this.stage === STAGE_PROXY ? this.listener.opts.proxyTimeoutMs : this.listener.opts.helloTimeoutMs,
    );
  }

  private readonly onData = (chunk: Buffer): void => {
    this.buf = this.buf === undefined ? chunk : Buffer.concat([this.buf, chunk]);
    this.advance();
  };

  private readonly onEnd = (): void => {
    this.ended = true;
    this.advance();
  };

  private readonly onTimeout = (): void => {
    if (this.done) return;
    this.finish();
    this.listener.rejectPrelude(this.socket, true);
  };

  private advance(): void {
    if (this.done) return;
    const o = this.listener.opts;
    let buf = this.buf ?? Buffer.alloc(0);
    if (this.stage === STAGE_PROXY) {
      const r = readProxyHeader(buf);
      if (r.status === PROXY_INCOMPLETE) {
        if (this.ended) this.reject();
        return;
      }
      if (r.status === PROXY_ERROR) return this.reject();
      this.peer = r.header;
      buf = buf.subarray(r.consumed);
      this.buf = buf;
      if (o.mode === 'tcp' || o.mode === 'src') {
        this.finish();
        const rest = buf.length > 0 ? buf : undefined;
        if (o.tls !== undefined) this.listener.startTls(this.socket, rest, this.peer);
        else this.listener.dispatch(this.socket, rest, this.peer, '', this.ended);
        return;
      }
      this.stage = STAGE_HELLO;
      this.socket.setTimeout(o.helloTimeoutMs);
    }
    if (buf.length === 0) {
      if (this.ended) this.reject();
      return;
    }
    const h = readClientHello(buf);
    if (h.status === HELLO_INCOMPLETE) {
      if (this.ended) this.reject();
      return;
    }
    if (h.status === HELLO_ERROR) return this.reject();
    this.finish();
    this.listener.dispatch(this.socket, buf, this.peer, h.serverName, this.ended);
  }

  private reject(): void {
    this.finish();
    this.listener.rejectPrelude(this.socket, false);
  }

  /** Detaches the reader; the socket is left paused with nothing consumed beyond `buf`. */
  private finish(): void {
    this.done = true;
    const s = this.socket;
    s.pause();
    s.removeListener('data', this.onData);
    s.removeListener('end', this.onEnd);
    s.removeListener('timeout', this.onTimeout);
    s.setTimeout(0);
  }
}

function ignore(): void {}

const kListener = Symbol('cairn.tcpListener');

function onAcceptedClose(this: Socket): void {
  (this as Socket & { [kListener]?: TcpListener })[kListener]?.sockets.delete(this);
}

// The src -> route index of a table, built on first use (tcp-dynamic listeners route by src).
const bySrc = new WeakMap<RouteTable, Map<string, Route>>();

export function routeBySrc(table: RouteTable, src: string): Route | undefined {
  let m = bySrc.get(table);
  if (m === undefined) {
    m = new Map();
    for (const r of table.routes) if (r.proto === 'tcp' && !m.has(r.src)) m.set(r.src, r);
    bySrc.set(table, m);
  }
  return m.get(src);
}
