// The TCP data plane as the server wires it: one forwarder and one set of counters shared by
// every TCP listener (static `proto=tcp|tcp+sni|https+tcp+sni` ones and `tcp-dynamic` managers),
// listener options resolved from the listener spec and the global defaults, and the table-swap
// and shutdown hooks.

import type { Server as TlsServer } from 'node:tls';
import type { ListenSpec } from '../../config/listen.ts';
import type { TargetHealth } from '../../health/target-health.ts';
import type { Logger } from '../../logging.ts';
import { isTcpProto } from '../../../routing/table.ts';
import type { RouteTable } from '../../../routing/types.ts';
import { DynamicTcpListeners } from './dynamic.ts';
import { TcpForwarder } from './forwarder.ts';
import { type RuntimeSource, TcpListener, type TcpListenerOptions } from './listener.ts';
import { TcpStats } from './stats.ts';

export interface TcpEngineOptions {
  readonly connectTimeoutMs: number;
  /** `retries=` for routes without one. */
  readonly defaultRetries: number;
  /** Default max client connections per listener (0 = none); `maxconn=` overrides. */
  readonly maxConnections: number;
  /** Default idle timeout of TCP sessions (0 = none); `it=` overrides. */
  readonly idleTimeoutMs: number;
  /** After a FIN from one side, close when the other side is silent this long. */
  readonly halfCloseTimeoutMs: number;
  /** Time a client has to send its ClientHello (tcp+sni); `rt=` overrides. */
  readonly helloTimeoutMs: number;
  /** Time a client has to send its PROXY header; `pxytimeout=` overrides. */
  readonly proxyTimeoutMs: number;
  /** tcp-dynamic bind retry interval; `refresh=` overrides. */
  readonly dynamicRetryMs: number;
}

export const defaultTcpEngineOptions: TcpEngineOptions = {
  connectTimeoutMs: 5000,
  defaultRetries: 2,
  maxConnections: 0,
  idleTimeoutMs: 0,
  halfCloseTimeoutMs: 60_000,
  helloTimeoutMs: 5000,
  proxyTimeoutMs: 5000,
  dynamicRetryMs: 5000,
};

/** TLS servers (not listening) a TCP listener hands connections to. */
export interface TcpTlsServers {
  /** `proto=tcp;cert=...`: terminates TLS, then the plain bytes are forwarded by port. */
  readonly terminate?: TlsServer;
  /** `proto=https+tcp+sni`: serves connections without an SNI route as HTTPS. */
  readonly https?: TlsServer;
}

export class TcpEngine {
  readonly stats = new TcpStats();
  readonly forwarder: TcpForwarder;
  readonly listeners: TcpListener[] = [];
  readonly dynamic: DynamicTcpListeners[] = [];
  private readonly runtime: RuntimeSource;
  private readonly opts: TcpEngineOptions;
  private readonly logger: Logger | undefined;

  constructor(
    runtime: RuntimeSource,
    health: TargetHealth,
    opts: Partial<TcpEngineOptions>,
    logger?: Logger,
  ) {
    this.runtime = runtime;
    this.opts = { ...defaultTcpEngineOptions, ...opts };
    this.logger = logger;
    this.forwarder = new TcpForwarder(health, this.stats, { defaultRetries: this.opts.defaultRetries });
  }

  /** The options a listener spec gives its listener (defaults filled in). */
  listenerOptions(spec: ListenSpec, tls: TcpTlsServers = {}): TcpListenerOptions {
    const o = this.opts;
    const mode = spec.proto === 'tcp+sni' || spec.proto === 'https+tcp+sni' ? spec.proto : 'tcp';
    return {
      mode,
      session: {
        connectTimeoutMs: spec.connectTimeoutMs ?? o.connectTimeoutMs,
        idleTimeoutMs: spec.idleTimeoutMs ?? o.idleTimeoutMs,
        halfCloseTimeoutMs: o.halfCloseTimeoutMs,
        drainMs: spec.drainMs ?? 0,
      },
      proxyProtocol: spec.proxyProtocol,
      proxyTimeoutMs: spec.proxyProtocolTimeoutMs ?? o.proxyTimeoutMs,
      helloTimeoutMs: spec.readTimeoutMs ?? o.helloTimeoutMs,
      maxConnections: spec.maxConnections ?? o.maxConnections,
      ...(mode === 'tcp' && tls.terminate !== undefined ? { tls: tls.terminate } : {}),
      ...(mode === 'https+tcp+sni' && tls.https !== undefined ? { fallback: tls.https } : {}),
    };
  }

  /** Opens a static TCP listener (proto tcp, tcp+sni, https+tcp+sni). Rejects on bind errors. */
  async listen(spec: ListenSpec, tls: TcpTlsServers = {}): Promise<TcpListener> {
    const l = new TcpListener(
      { runtime: this.runtime, forwarder: this.forwarder, stats: this.stats },
      this.listenerOptions(spec, tls),
    );
    await l.listen(spec.port, spec.address === '' ? undefined : spec.address);
    this.listeners.push(l);
    return l;
  }

  /** Starts a tcp-dynamic manager and opens the listeners the current table asks for. */
  async listenDynamic(spec: ListenSpec): Promise<DynamicTcpListeners> {
    const wildcard = spec.address === '' || spec.address === '0.0.0.0' || spec.address === '::';
    const base = this.listenerOptions(spec);
    const d = new DynamicTcpListeners(
      { runtime: this.runtime, forwarder: this.forwarder, stats: this.stats },
      {
        base: {
          session: base.session,
          proxyProtocol: base.proxyProtocol,
          proxyTimeoutMs: base.proxyTimeoutMs,
          helloTimeoutMs: base.helloTimeoutMs,
          maxConnections: base.maxConnections,
        },
        onlyHost: wildcard ? '' : spec.address,
        retryMs: spec.refreshMs ?? this.opts.dynamicRetryMs,
      },
      this.logger,
    );
    this.dynamic.push(d);
    await d.sync();
    return d;
  }

  /** A new table is live: drain deadlines for removed targets, dynamic listeners follow. */
  onTableSwap(table: RouteTable): void {
    // Only TCP routes' targets: sessions and counters here belong to those alone (a target key
    // names its dst, scheme included), and a 10,000-route HTTP table should not keep a 10,000-key
    // set in every process for a TCP engine that has nothing to drain.
    const live = new Set<string>();
    for (const r of table.routes) if (isTcpProto(r.proto)) for (const t of r.targets) live.add(t.key);
    this.forwarder.onTableSwap(live);
    for (const d of this.dynamic) void d.sync();
  }

  /** Forwarded TCP sessions open right now (what a graceful shutdown waits for). */
  get openSessions(): number {
    return this.forwarder.open.size;
  }

  /** Shutdown, step 1: no new connections on dynamic listeners (static ones the server closes). */
  async stopAccepting(): Promise<void> {
    await Promise.all(this.dynamic.map((d) => d.close()));
  }

  /** Shutdown, last step: cut whatever is still open. */
  destroyAll(): void {
    this.forwarder.destroyAll();
    for (const l of this.listeners) l.destroyAll();
    for (const d of this.dynamic) d.destroyAll();
  }
}
