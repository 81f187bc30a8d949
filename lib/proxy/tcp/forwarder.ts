// The TCP forwarding engine: a client connection that has found its route gets a target from the
// route's balancer, an upstream connection (with retries on connect failure and passive health),
// an optional PROXY protocol header, and a byte pipe in both directions.
//
// The pipe honours half-close (a FIN from one side is passed on; the other side may keep sending),
// applies backpressure (a side whose peer cannot keep up is paused, so nothing buffers without
// bound), and closes on idle timeout. A table swap never touches an open session: it keeps the
// target it connected to; a target that left the table only gets an optional drain deadline.
//
// Hot path: one TcpSession object per connection and no closures: the socket event handlers are
// module-level functions that find their session through a symbol property on the socket.

import net, { type Socket } from 'node:net';
import { isDenied } from '../../../routing/access.ts';
import type { Route, RouteTarget } from '../../../routing/types.ts';
import type { TableRuntime } from '../../controller.ts';
import type { TargetHealth, TargetState } from '../../health/target-health.ts';
import { DnsCache } from '../dns-cache.ts';
import { encodeProxyV1, encodeProxyV2, type ProxyAddress, type ProxyHeader } from './proxy-protocol.ts';
import { useOnread } from './client-onread.ts';
import type { TcpCounters, TcpStats } from './stats.ts';
import {
  coarseClock,
  LIST_ACTIVITY,
  LIST_CONNECT,
  type Timed,
  type TimeoutList,
  TimeoutLists,
} from './timeout-lists.ts';

/** Per-listener behaviour of the sessions it starts. */
export interface TcpSessionOptions {
  /** Upstream connect timeout, ms. */
  readonly connectTimeoutMs: number;
  /** Close a session with no traffic in either direction for this long; 0 = never. */
  readonly idleTimeoutMs: number;
  /** After one side has sent its FIN, close when the other is silent this long. */
  readonly halfCloseTimeoutMs: number;
  /** Sessions to a target that left the table are closed after this; 0 = left to finish. */
  readonly drainMs: number;
}

export interface TcpForwarderOptions {
  /** `retries=` for routes that do not set one. */
  readonly defaultRetries: number;
}

/** Where a client connection really comes from, when a PROXY header said so. */
export type ClientPeer = ProxyHeader | undefined;

const kSession = Symbol('cairn.tcpSession');
type Tagged = Socket & { [kSession]?: TcpSession | undefined };

// Sockets read into this one buffer (net's `onread`) instead of getting a freshly allocated
// Buffer, a push() into the stream and a 'data' event (and nextTicks) per read; each chunk is
// copied out before the next read can overwrite it. Worth ~10 % of the proxy's CPU on small
// exchanges. Upstream sockets get it from `connect()`, plain client sockets from
// client-onread.ts (which falls back to 'data' events where it cannot apply it).
const sharedReadBuffer = Buffer.allocUnsafe(64 * 1024);
const upstreamOnread = { buffer: sharedReadBuffer, callback: onUpRead };
/** Client bytes held while the upstream connects before the client is paused. */
const EARLY_LIMIT = 64 * 1024;
// One options object for every upstream socket (the constructor copies what it needs).
const upstreamSocketOptions: net.SocketConstructorOpts & { noDelay: boolean } = {
  allowHalfOpen: true,
  noDelay: true,
  onread: upstreamOnread,
};

export class TcpForwarder {
  readonly health: TargetHealth;
  readonly stats: TcpStats;
  readonly opts: TcpForwarderOptions;
  /** Sessions from the first upstream connect attempt until both sockets have closed. */
  readonly open = new Set<TcpSession>();
  /** Created on the first connect (most servers have no TCP listener). */
  private dns: DnsCache | undefined;
  /** Connect deadlines, idle and half-close timeouts of the sessions (see timeout-lists.ts). */
  readonly timeouts = new TimeoutLists();
  private liveKeys: ReadonlySet<string> | undefined;
  // `connect()` options per target, built once: targets are immutable and belong to one table.
  private readonly connectOpts = new WeakMap<RouteTarget, net.TcpSocketConnectOpts>();

  constructor(health: TargetHealth, stats: TcpStats, opts: TcpForwarderOptions) {
    this.health = health;
    this.stats = stats;
    this.opts = opts;
  }

  /**
   * Forwards `client` along `route`. `prelude` holds bytes already read from the client (a
   * ClientHello) that must reach the upstream first; `clientEnded` says the client's FIN came
   * with them. Never throws; every outcome is counted.
   */
  forward(
    client: Socket,
    runtime: TableRuntime,
    route: Route,
    so: TcpSessionOptions,
    prelude: Buffer | undefined,
    peer: ClientPeer,
    clientEnded = false,
  ): void {
    const target = runtime.balancer(route)?.pick();
    if (target === undefined) {
      this.stats.rejected.noTarget++;
      client.destroy();
      return;
    }
    const o = target.opts;
    if (o.allow !== undefined || o.deny !== undefined) {
      const addr = peer?.source?.address ?? client.remoteAddress ?? '';
      if (isDenied(o.allow, o.deny, addr, '')) {
        this.stats.rejected.denied++;
        client.destroy();
        return;
      }
    }
    const s = new TcpSession(this, client, runtime, route, so, prelude, peer, clientEnded);
    s.connect(target);
  }

  /**
   * A new table is live: sessions to targets it no longer has get their drain deadline (if the
   * listener set one); sessions to targets that came back lose it.
   */
  onTableSwap(liveKeys: ReadonlySet<string>): void {
    this.liveKeys = liveKeys;
    for (const s of this.open) s.checkDrain(liveKeys);
    this.stats.retain(liveKeys);
  }

  isLive(key: string): boolean {
    return this.liveKeys === undefined || this.liveKeys.has(key);
  }

  /** Host names of instances are resolved through a TTL cache (IP addresses skip the lookup). */
  lookup(): DnsCache['lookup'] {
    return (this.dns ??= new DnsCache()).lookup;
  }

  /** Where to connect for `target` (cached per target object). */
  connectOptions(target: RouteTarget): net.TcpSocketConnectOpts {
    let o = this.connectOpts.get(target);
    if (o === undefined) {
      const { hostname, port } = target.url;
      o =
        net.isIP(hostname) !== 0 ? { host: hostname, port } : { host: hostname, port, lookup: this.lookup() };
      this.connectOpts.set(target, o);
    }
    return o;
  }

  /** Closes every session now (the end of a shutdown drain). */
  destroyAll(): void {
    for (const s of [...this.open]) s.destroy();
  }
}

export class TcpSession implements Timed {
  private readonly fwd: TcpForwarder;
  readonly client: Socket;
  private readonly runtime: TableRuntime;
  readonly route: Route;
  private readonly so: TcpSessionOptions;
  private readonly prelude: Buffer | undefined;
  private readonly peer: ClientPeer;
  private readonly routeCounters: TcpCounters;
  private readonly all: TcpCounters;
  private clientEndedEarly: boolean;
  target: RouteTarget | undefined;
  private state: TargetState | undefined;
  private counters: TcpCounters | undefined;
  private up: Socket | undefined;
  private tried: RouteTarget[] | undefined;
  private connected = false;
  // Membership of one timeout list at a time (connect deadline, then idle or half-close).
  timedPrev: Timed | undefined = undefined;
  timedNext: Timed | undefined = undefined;
  timedList: TimeoutList | undefined = undefined;
  timedSince = 0;
  private attemptOpen = false;
  private clientClosed = false;
  private upClosed = false;
  private finished = false;
  private halfClosed = false;
  /** Both sides sent their FIN; a socket was then closed without a shutdown() of its own. */
  private closedAfterBothFins = false;
  private upDrainHooked = false;
  private clientDrainHooked = false;
  /** The client socket reads through `onClientRead` (not 'data' events). */
  private readonly clientOnread: boolean;
  /** Client bytes read before the upstream connected (onread clients), written first. */
  private early: Buffer | undefined;
  /** holdEarly() stopped the client's reading (EARLY_LIMIT reached). */
  private earlyStopped = false;
  private drainTimer: NodeJS.Timeout | undefined;

  constructor(
    fwd: TcpForwarder,
    client: Socket,
    runtime: TableRuntime,
    route: Route,
    so: TcpSessionOptions,
    prelude: Buffer | undefined,
    peer: ClientPeer,
    clientEnded: boolean,
  ) {
    this.fwd = fwd;
    this.client = client;
    this.runtime = runtime;
    this.route = route;
    this.so = so;
    this.prelude = prelude;
    this.peer = peer;
    this.clientEndedEarly = clientEnded;
    this.routeCounters = fwd.stats.route(route);
    this.all = fwd.stats.all;
    this.routeCounters.open++;
    this.routeCounters.total++;
    this.all.open++;
    this.all.total++;
    fwd.open.add(this);
    (client as Tagged)[kSession] = this;
    client.on('error', ignore);
    client.on('close', onClientClose);
    // Read from now on, also while the upstream connects (bytes read early are held, see
    // holdEarly), so a client that leaves meanwhile is noticed.
    this.clientOnread =
      prelude === undefined && !isTls(client) && useOnread(client, sharedReadBuffer, onClientRead);
  }

  /** Starts one upstream connect attempt to `target`. */
  connect(target: RouteTarget): void {
    this.target = target;
    const state = this.fwd.health.state(target.key);
    this.state = state;
    state.inFlight++;
    const counters = this.fwd.stats.target(this.route, target);
    this.counters = counters;
    counters.open++;
    counters.total++;
    this.attemptOpen = true;
    const up = new net.Socket(upstreamSocketOptions) as Tagged;
    up[kSession] = this;
    this.up = up;
    this.fwd.timeouts.list(LIST_CONNECT, this.so.connectTimeoutMs).add(this);
    up.on('error', onUpError);
    up.on('close', onUpClose);
    up.on('connect', onUpConnect);
    up.connect(this.fwd.connectOptions(target));
  }

  /** Upstream connected: send what must go first, then pipe both ways. */
  onConnected(up: Socket): void {
    this.connected = true;
    this.timedList?.remove(this);
    this.fwd.health.recordSuccess(this.state as TargetState);
    const client = this.client;
    const target = this.target as RouteTarget;
    const pxy = target.rawOpts.pxyproto;
    // What goes first, in one write: PROXY header, prelude (ClientHello), bytes read early.
    let first = this.prelude;
    if (pxy !== undefined && pxy !== 'false') {
      const header =
        pxy === 'v2'
          ? encodeProxyV2(this.source(), this.destination())
          : encodeProxyV1(this.source(), this.destination());
      first = first === undefined ? header : Buffer.concat([header, first]);
    }
    const early = this.early;
    if (early !== undefined) {
      this.early = undefined;
      this.countIn(early.length);
      first = first === undefined ? early : Buffer.concat([first, early]);
    }
    if (first !== undefined) up.write(first);
    if (!this.fwd.isLive(target.key)) this.startDrain();
    // 'drain' and 'timeout' listeners are added when first needed: most short sessions never
    // see backpressure, and listeners are a measurable part of a connection's cost.
    if (!this.clientOnread) client.on('data', onClientData);
    client.on('end', onClientEnd);
    up.on('end', onUpEnd);
    if (this.so.idleTimeoutMs > 0) this.fwd.timeouts.list(LIST_ACTIVITY, this.so.idleTimeoutMs).add(this);
    // A client that sent its FIN while we were connecting (an empty connection emits 'end'
    // without being read) has nothing more to send: pass the FIN on now.
    if (this.clientEndedEarly || client.readableEnded) {
      this.clientEndedEarly = false;
      this.halfClose();
      up.end();
    }
    // A 'data' client starts flowing now; an onread client has been reading all along, unless
    // holdEarly() stopped it (resuming costs a tick and stream work, so only then).
    if (!this.clientOnread || this.earlyStopped) client.resume();
  }

  private source(): ProxyAddress | undefined {
    const s = this.peer?.source;
    if (s !== undefined) return s;
    const c = this.client;
    return c.remoteAddress === undefined ? undefined : { address: c.remoteAddress, port: c.remotePort ?? 0 };
  }

  private destination(): ProxyAddress | undefined {
    const d = this.peer?.destination;
    if (d !== undefined) return d;
    const c = this.client;
    return c.localAddress === undefined ? undefined : { address: c.localAddress, port: c.localPort ?? 0 };
  }

  /** A deadline passed: the connect attempt (connect list), or the session's idle time. */
  timedOut(list: TimeoutList): void {
    const up = this.up;
    if (list.kind === LIST_CONNECT) {
      if (!this.connected && up !== undefined) this.connectFailed(up);
    } else {
      this.destroy();
    }
  }

  /** The current attempt failed before connecting: count it, then try another target. */
  connectFailed(up: Socket): void {
    this.timedList?.remove(this);
    this.up = undefined;
    up.destroy();
    const target = this.target as RouteTarget;
    this.fwd.health.recordFailure(this.state as TargetState, this.route.targets);
    (this.counters as TcpCounters).connectErrors++;
    this.routeCounters.connectErrors++;
    this.all.connectErrors++;
    this.endAttempt();
    if (this.clientClosed) return this.finish();
    const tried = this.tried ?? (this.tried = []);
    tried.push(target);
    const limit = target.opts.retries ?? this.fwd.opts.defaultRetries;
    const next = tried.length <= limit ? this.nextTarget(tried) : undefined;
    if (next !== undefined) {
      this.connect(next);
      return;
    }
    this.fwd.stats.rejected.connectFailed++;
    this.client.destroy();
  }

  /** Another available target of the route, not tried yet (the client has sent nothing that was lost). */
  private nextTarget(tried: readonly RouteTarget[]): RouteTarget | undefined {
    const b = this.runtime.balancer(this.route);
    if (b === undefined) return undefined;
    for (let i = 0; i < this.route.targets.length; i++) {
      const t = b.pick();
      if (t === undefined) return undefined;
      if (!tried.includes(t) && this.fwd.isLive(t.key)) return t;
    }
    return undefined;
  }

  onUpClosed(up: Socket): void {
    if (!this.connected) {
      // Closed while connecting: by us because the client left (errors go through connectFailed).
      this.timedList?.remove(this);
      this.up = undefined;
      this.endAttempt();
      if (this.clientClosed) this.finish();
      else this.client.destroy();
      return;
    }
    this.upClosed = true;
    if (!this.closedAfterBothFins && !closedCleanly(up)) this.client.destroy();
    if (this.clientClosed) this.finish();
  }

  onClientClosed(): void {
    this.clientClosed = true;
    const up = this.up;
    if (up === undefined) return this.finish();
    if (!this.connected) {
      up.destroy();
      return;
    }
    if (!this.closedAfterBothFins && !closedCleanly(this.client)) up.destroy();
    if (this.upClosed) this.finish();
  }

  /**
   * `from` sent its FIN; pass it on to `to`. When `to` has sent its FIN already and everything
   * written to it is with the kernel, close `to` outright: close() sends the FIN after the queued
   * bytes, and skips a shutdown() round trip through the event loop (a few % of a short
   * connection's cost). Otherwise shut down its sending side and let it finish.
   */
  passFin(to: Socket): void {
    this.halfClose();
    // (Not for TLS-terminated clients: they are owed a close_notify, which end() sends.)
    if (to.readableEnded && to.writableLength === 0 && !to.writableEnded && !isTls(to)) {
      this.closedAfterBothFins = true;
      to.destroy();
    } else {
      to.end();
    }
  }

  /** One side sent its FIN: the other may keep talking, but not silently forever. */
  halfClose(): void {
    if (this.halfClosed) return;
    this.halfClosed = true;
    const idle = this.so.idleTimeoutMs;
    const grace = this.so.halfCloseTimeoutMs;
    const t = idle > 0 && idle < grace ? idle : grace;
    // Every chunk either way refreshes `timedSince` (pipeToUp, pipeToClient).
    if (t > 0) this.fwd.timeouts.list(LIST_ACTIVITY, t).add(this);
  }

  /** Applies or lifts the drain deadline after a table swap. */
  checkDrain(liveKeys: ReadonlySet<string>): void {
    const t = this.target;
    if (t === undefined || !this.connected) return;
    if (liveKeys.has(t.key)) {
      if (this.drainTimer !== undefined) {
        clearTimeout(this.drainTimer);
        this.drainTimer = undefined;
      }
    } else {
      this.startDrain();
    }
  }

  private startDrain(): void {
    if (this.so.drainMs <= 0 || this.drainTimer !== undefined) return;
    this.drainTimer = setTimeout(destroySession, this.so.drainMs, this);
    this.drainTimer.unref();
  }

  destroy(): void {
    this.up?.destroy();
    this.client.destroy();
  }

  countIn(n: number): void {
    (this.counters as TcpCounters).bytesIn += n;
    this.routeCounters.bytesIn += n;
    this.all.bytesIn += n;
  }

  countOut(n: number): void {
    (this.counters as TcpCounters).bytesOut += n;
    this.routeCounters.bytesOut += n;
    this.all.bytesOut += n;
  }

  pipeToUp(chunk: Buffer): void {
    this.timedSince = coarseClock.now;
    this.countIn(chunk.length);
    const up = this.up as Socket;
    if (up.write(chunk)) return;
    this.client.pause();
    if (!this.upDrainHooked) {
      this.upDrainHooked = true;
      up.on('drain', onUpDrain);
    }
  }

  /** `n` bytes read from the client into the shared buffer; false pauses the client (backpressure). */
  pipeToUpFrom(shared: Buffer, n: number): boolean {
    this.timedSince = coarseClock.now;
    const chunk = Buffer.allocUnsafe(n);
    shared.copy(chunk, 0, 0, n);
    if (!this.connected) return this.holdEarly(chunk);
    this.countIn(n);
    const up = this.up as Socket;
    if (up.write(chunk)) return true;
    if (!this.upDrainHooked) {
      this.upDrainHooked = true;
      up.on('drain', onUpDrain);
    }
    return false;
  }

  /**
   * Keeps client bytes that arrive while the upstream connects (a client usually sends its
   * request at once). Reading stops once EARLY_LIMIT bytes are held; onConnected() writes them
   * first and resumes the client.
   */
  private holdEarly(chunk: Buffer): boolean {
    const held = this.early === undefined ? chunk : Buffer.concat([this.early, chunk]);
    this.early = held;
    if (held.length < EARLY_LIMIT) return true;
    this.earlyStopped = true;
    return false;
  }

  /** `n` bytes read into the shared upstream buffer; false pauses the upstream (backpressure). */
  pipeToClient(shared: Buffer, n: number): boolean {
    this.timedSince = coarseClock.now;
    this.countOut(n);
    const chunk = Buffer.allocUnsafe(n);
    shared.copy(chunk, 0, 0, n);
    if (this.client.write(chunk)) return true;
    if (!this.clientDrainHooked) {
      this.clientDrainHooked = true;
      this.client.on('drain', onClientDrain);
    }
    return false;
  }

  upstream(): Socket | undefined {
    return this.up;
  }

  get isConnected(): boolean {
    return this.connected;
  }

  private endAttempt(): void {
    if (!this.attemptOpen) return;
    this.attemptOpen = false;
    (this.state as TargetState).inFlight--;
    (this.counters as TcpCounters).open--;
  }

  private finish(): void {
    if (this.finished) return;
    this.finished = true;
    this.endAttempt();
    this.timedList?.remove(this);
    this.routeCounters.open--;
    this.all.open--;
    if (this.drainTimer !== undefined) clearTimeout(this.drainTimer);
    this.fwd.open.delete(this);
    // Unlink the dead sockets from each other: an object the scavenger keeps alive a little
    // longer (a closed handle, a queued tick) then does not drag the whole session along.
    (this.client as Tagged)[kSession] = undefined;
    const up = this.up as Tagged | undefined;
    if (up !== undefined) up[kSession] = undefined;
  }
}

/** A socket that closed after its FIN in and its FIN out: nothing was cut. */
function closedCleanly(s: Socket): boolean {
  return s.readableEnded && s.writableFinished;
}

function ignore(): void {}

function isTls(s: Socket): boolean {
  return (s as Socket & { encrypted?: boolean }).encrypted === true;
}

function destroySession(s: TcpSession): void {
  s.destroy();
}

function session(sock: Socket): TcpSession | undefined {
  return (sock as Tagged)[kSession];
}

function onUpConnect(this: Socket): void {
  const s = session(this);
  if (s !== undefined && s.upstream() === this) s.onConnected(this);
}

function onUpError(this: Socket): void {
  const s = session(this);
  if (s === undefined || s.upstream() !== this) return;
  if (s.isConnected) s.destroy();
  else s.connectFailed(this);
}

function onUpClose(this: Socket): void {
  const s = session(this);
  if (s !== undefined && s.upstream() === this) s.onUpClosed(this);
}

function onClientClose(this: Socket): void {
  session(this)?.onClientClosed();
}

function onClientData(this: Socket, chunk: Buffer): void {
  (session(this) as TcpSession).pipeToUp(chunk);
}

function onClientRead(this: Socket, n: number, buf: Buffer): boolean {
  const s = session(this);
  return s === undefined ? false : s.pipeToUpFrom(buf, n);
}

function onUpRead(this: Socket, n: number, buf: Buffer): boolean {
  const s = session(this);
  return s === undefined ? false : s.pipeToClient(buf, n);
}

function onClientDrain(this: Socket): void {
  session(this)?.upstream()?.resume();
}

function onUpDrain(this: Socket): void {
  session(this)?.client.resume();
}

function onClientEnd(this: Socket): void {
  const s = session(this);
  const up = s?.upstream();
  if (s !== undefined && up !== undefined) s.passFin(up);
}

function onUpEnd(this: Socket): void {
  const s = session(this);
  if (s !== undefined) s.passFin(s.client);
}
