// Wiring: config -> registries -> controller -> listeners (+ admin). `CairnServer` runs in-process
// (integration tests start it on port 0); `runServer` adds signals and exit codes for the CLI.

import { readFileSync } from 'node:fs';
import http from 'node:http';
import http2 from 'node:http2';
import net, { type AddressInfo, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import type { RegistryAdapter, RegistryState } from '../registry-adapters/types.ts';
import type { RouteTarget } from '../routing/types.ts';
import { adminStartupProblem } from './admin/access.ts';
import { AdminServer } from './admin/server.ts';
import { type CairnConfig, type ListenSpec, tableOptions } from './config/index.ts';
import { isTcpListenProto } from './config/listen.ts';
import { Controller, type SwapEvent } from './controller.ts';
import { startDemo, type Demo } from './demo.ts';
import { TargetHealth } from './health/target-health.ts';
import { type CertStore, type LoadedCert, loadCertStore } from './tls-certs.ts';
import { type AccessLog, accessLogSink, createLogger, type Logger } from './logging.ts';
import { loadRealms } from './proxy/basic-auth.ts';
import { LeanHttpServer } from './proxy/h1/lean-server.ts';
import { HttpProxy } from './proxy/http-proxy.ts';
import { UpgradeProxy } from './proxy/upgrade.ts';
import { createRegistry } from './registries.ts';
import { Upstreams } from './proxy/upstreams.ts';
import { TcpEngine } from './proxy/tcp/engine.ts';
import { Telemetry } from './stats/telemetry.ts';
import { leanHeapHere, useLeanHeap, useOneCpuGc } from './workers/lean-heap.ts';
import { listenOn } from './workers/listen.ts';
import type { ClusterView } from './workers/view.ts';

export class StartupError extends Error {}

/** A request's Transfer-Encoding is absent, or its last coding is chunked. */
function transferEncodingOk(te: string | undefined): boolean {
  if (te === undefined) return true;
  const last = te
    .slice(te.lastIndexOf(',') + 1)
    .trim()
    .toLowerCase();
  return last === 'chunked';
}

interface Listener {
  readonly spec: ListenSpec;
  readonly server: http.Server | http2.Http2SecureServer | net.Server;
  readonly sockets: Set<Socket>;
  /** Set when the listener runs the lean HTTP/1.1 engine. */
  readonly lean?: LeanHttpServer;
}

export interface ServerDeps {
  readonly logger?: Logger;
  /** Where the access log goes (default stdout). */
  readonly accessLogOut?: NodeJS.WritableStream;
  /**
   * `single` (default): everything in this process. With `--workers N` (N > 1) the CLI's process
   * is the `control` (registries, table builds, admin; no proxy listeners) and N `worker`
   * processes run the listeners on tables they get from it (lib/workers/).
   */
  readonly mode?: 'single' | 'control' | 'worker';
  /** Control mode: drain the workers (their listeners are the data plane). */
  readonly drainListeners?: (waitMs: number) => Promise<void>;
}

export class CairnServer {
  readonly config: CairnConfig;
  readonly logger: Logger;
  readonly health: TargetHealth;
  readonly upstreams: Upstreams;
  readonly controller: Controller;
  readonly proxy: HttpProxy;
  readonly upgrades: UpgradeProxy;
  /** The TCP data plane (proto tcp, tcp+sni, https+tcp+sni, tcp-dynamic listeners). */
  readonly tcp: TcpEngine;
  readonly registries: RegistryAdapter[] = [];
  /** Live traffic, change history, metrics, registry states: what the admin listener reports. */
  readonly telemetry: Telemetry;
  private readonly listeners: Listener[] = [];
  private admin: AdminServer | undefined;
  private demo: Demo | undefined;
  private draining = false;
  private readonly accessLog: AccessLog | undefined;
  readonly mode: 'single' | 'control' | 'worker';
  private readonly drainListeners: ((waitMs: number) => Promise<void>) | undefined;
  /** Control mode: the worker pool, for the admin's status and metrics. */
  cluster: ClusterView | undefined;

  constructor(config: CairnConfig, deps: ServerDeps = {}) {
    this.config = config;
    this.mode = deps.mode ?? 'single';
    this.drainListeners = deps.drainListeners;
    this.logger = deps.logger ?? createLogger(config.logLevel);
    this.health = new TargetHealth({
      maxFailures: config.ejectAfter,
      baseEjectMs: config.ejectTimeMs,
      maxEjectMs: config.ejectTimeMs * 10,
    });
    this.upstreams = new Upstreams({
      connectTimeoutMs: config.connectTimeoutMs,
      headersTimeoutMs: config.responseTimeoutMs,
      keepAliveTimeoutMs: config.upstreamIdleTimeoutMs,
      engine: config.upstreamEngine,
    });
    this.controller = new Controller({
      build: tableOptions(config),
      strategy: config.strategy,
      health: this.health,
      onSwap: (e) => this.onSwap(e),
    });
    this.telemetry = new Telemetry(this);
    const accessLog = accessLogSink(config.accessLog, deps.accessLogOut);
    this.accessLog = accessLog;
    const realms = loadRealms(config.auth);
    this.proxy = new HttpProxy(this.controller, this.health, this.upstreams, {
      noRouteStatus: config.norouteStatus,
      defaultRetries: config.retries,
      trustedProxies: config.trustedProxies,
      maxPerTarget: config.maxPerTarget,
      realms,
      ...this.telemetry.proxyHooks(),
      ...(config.norouteHtmlFile !== undefined
        ? { noRouteBody: readFileSync(config.norouteHtmlFile, 'utf8') }
        : {}),
      ...(config.requestIdHeader !== undefined ? { requestIdHeader: config.requestIdHeader } : {}),
      ...(config.clientIpHeader !== undefined ? { clientIpHeader: config.clientIpHeader } : {}),
      ...(accessLog !== undefined
        ? { accessLog: accessLog.write, accessLogHeaders: config.accessLog === 'combined' }
        : {}),
    });
    this.tcp = new TcpEngine(
      this.controller,
      this.health,
      {
        connectTimeoutMs: config.connectTimeoutMs,
        defaultRetries: config.retries,
        maxConnections: config.maxConns,
      },
      this.logger,
    );
    this.upgrades = new UpgradeProxy(this.health, this.upstreams, {
      defaultRetries: config.retries,
      trustedProxies: config.trustedProxies,
      decide: (url, head, tls, remote) => this.proxy.decide(url, head, tls, remote),
    });
  }

  /**
   * node:http / http2 request listener: the header-field limit (--max-header-count, 431) for
   * HTTP/1.x, which node:http only enforces by dropping fields silently; then the proxy.
   */
  private readonly handleChecked = (
    req: http.IncomingMessage | http2.Http2ServerRequest,
    res: http.ServerResponse | http2.Http2ServerResponse,
  ): void => {
    if (req.httpVersionMajor === 1 && req.rawHeaders.length > this.config.maxHeaderCount * 2) {
      const r = res as http.ServerResponse;
      r.shouldKeepAlive = false;
      r.writeHead(431, { connection: 'close', 'content-length': '0' });
      r.end();
      return;
    }
    if (req.httpVersionMajor === 1 && !transferEncodingOk(req.headers['transfer-encoding'])) {
      // RFC 9112 6.3: a request whose Transfer-Encoding does not end in chunked has no knowable
      // length; node:http lets `xchunked` through, and the upstream would read it another way.
      const r = res as http.ServerResponse;
      r.shouldKeepAlive = false;
      const body = 'invalid transfer-encoding\n';
      r.writeHead(400, { connection: 'close', 'content-type': 'text/plain', 'content-length': body.length });
      r.end(body);
      return;
    }
    const bodyTimeout = this.config.clientBodyTimeoutMs;
    if (bodyTimeout > 0 && req.httpVersionMajor === 1 && hasRequestBody(req.headers)) {
      // --client-body-timeout: a socket idle that long while the body is read is cut (node:http
      // destroys a socket whose timeout nobody handles); the listener's own timeout is put back
      // once the body is in.
      const sock = req.socket;
      const before = sock.timeout ?? 0;
      sock.setTimeout(bodyTimeout);
      req.once('end', () => sock.setTimeout(before));
    }
    this.proxy.handle(req, res);
  };

  get isDraining(): boolean {
    return this.draining;
  }

  /** Addresses actually bound (port 0 resolved), in listen order. */
  addresses(): { spec: ListenSpec; port: number; address: string }[] {
    return this.listeners.map((l) => {
      const a = l.server.address() as AddressInfo;
      return { spec: l.spec, port: a.port, address: a.address };
    });
  }

  adminAddress(): { port: number; address: string } | undefined {
    return this.admin?.address();
  }

  /** Client connections open on the HTTP listeners (TCP listeners' sessions are counted by the engine). */
  clientConnections(): number {
    let n = 0;
    for (const l of this.listeners) if (!isTcpListenProto(l.spec.proto)) n += l.sockets.size;
    return n;
  }

  async start(): Promise<void> {
    const adminProblem = adminStartupProblem(this.config);
    if (adminProblem !== undefined) throw new StartupError(adminProblem);
    if (this.mode === 'worker') {
      // Tables come from the control process (installTable), the first one before this call.
      for (const spec of this.config.listen) await this.listen(spec);
      this.telemetry.start();
      return;
    }
    let specs = this.config.registries;
    if (this.config.demo) {
      this.demo = await startDemo();
      specs = [
        ...specs,
        { kind: 'file', path: this.demo.registryFile, text: `file:${this.demo.registryFile}` },
      ];
      this.logger.info(
        { registry: this.demo.registryFile },
        'demo: backends started; edit the registry file to change routing live',
      );
    }
    for (const spec of specs) {
      try {
        this.registries.push(await createRegistry(spec, this.config));
      } catch (err) {
        throw new StartupError(`--registry ${spec.text}: ${(err as Error).message}`);
      }
    }
    for (const r of this.registries) {
      await r.start(
        (snapshot) => this.controller.updateSnapshotSoon(r.name, snapshot),
        (state) => this.onRegistryState(state),
      );
    }
    // Let the first snapshots land before traffic arrives.
    this.controller.rebuild();
    if (this.mode === 'single') for (const spec of this.config.listen) await this.listen(spec);
    this.telemetry.start();
    this.admin = new AdminServer(this);
    await this.admin.listen(this.config.admin.address, this.config.admin.port);
    // The control process logs its start once its workers listen.
    if (this.mode === 'single')
      this.logger.info(
        { listen: this.addresses().map((a) => `${a.address}:${a.port}`), admin: this.adminAddress() },
        'cairn started',
      );
  }

  private onRegistryState(state: RegistryState): void {
    const status = state.state === 'up' ? 'up' : 'down';
    this.controller.setStatus(state.registry, status, state.error);
    this.telemetry.onRegistryState(state);
    if (state.state !== 'up')
      this.logger.warn(
        { registry: state.registry, state: state.state, error: state.error },
        'registry problem',
      );
  }

  private onSwap(e: SwapEvent): void {
    this.tcp.onTableSwap(e.current);
    this.telemetry.onSwap(e);
    const live: RouteTarget[] = [];
    for (const r of e.current.routes) for (const t of r.targets) live.push(t);
    // Pools of targets that left are closed once their in-flight requests finish.
    this.upstreams.retain(live);
    this.health.retainOnly(new Set(live.map((t) => t.key)));
    // Workers run the control's tables: it logs the swap and the problems once for the pool.
    if (this.mode === 'worker') {
      this.logger.debug(
        { version: e.current.version, routes: e.current.routes.length },
        'routing table swapped',
      );
      return;
    }
    this.logger.info(
      { version: e.current.version, routes: e.current.routes.length, problems: e.current.problems.length },
      'routing table swapped',
    );
    for (const p of e.current.problems) {
      this.logger.warn(
        { source: p.source, service: p.service, line: p.line, input: p.input },
        `config problem: ${p.reason}`,
      );
    }
  }

  private async listen(spec: ListenSpec): Promise<void> {
    if (isTcpListenProto(spec.proto)) return this.listenTcp(spec);
    const sockets = new Set<Socket>();
    let server: http.Server | http2.Http2SecureServer | net.Server;
    let lean: LeanHttpServer | undefined;
    const c = this.config;
    const headersTimeout = spec.readTimeoutMs ?? c.clientHeaderTimeoutMs;
    const timeouts = {
      keepAliveTimeout: spec.idleTimeoutMs ?? c.clientIdleTimeoutMs,
      // node:http wants headersTimeout <= requestTimeout (when the latter is set).
      headersTimeout: c.requestTimeoutMs > 0 ? Math.min(headersTimeout, c.requestTimeoutMs) : headersTimeout,
      requestTimeout: c.requestTimeoutMs,
    };
    if (spec.proto === 'https' || spec.proto === 'grpcs') {
      server = this.httpsServer(spec, timeouts.keepAliveTimeout);
    } else if (c.http1Engine === 'lean') {
      lean = new LeanHttpServer(this.proxy, this.upgrades, {
        headerTimeoutMs: timeouts.headersTimeout,
        idleTimeoutMs: timeouts.keepAliveTimeout,
        maxHeaderSize: c.maxHeaderSize,
        maxHeaderCount: c.maxHeaderCount,
        requestTimeoutMs: c.requestTimeoutMs,
        bodyTimeoutMs: c.clientBodyTimeoutMs,
      });
      server = lean.server;
    } else {
      const s = http.createServer(
        {
          ...timeouts,
          maxHeaderSize: c.maxHeaderSize,
          // How often node:http checks the header timeout; its 30 s default would let a
          // slowloris client sit far past --client-header-timeout.
          connectionsCheckingInterval: Math.max(250, Math.min(timeouts.headersTimeout / 2, 30_000)),
        },
        this.handleChecked,
      );
      // node:http keeps only the first maxHeadersCount fields; one more than the limit is enough
      // for handleChecked to see that a request went over it.
      s.maxHeadersCount = c.maxHeaderCount + 1;
      s.on('upgrade', this.upgrades.handle);
      // Cairn is a reverse proxy: CONNECT never opens a tunnel (node:http would just drop it).
      s.on('connect', (_req: http.IncomingMessage, socket: Duplex) => {
        socket.end(
          'HTTP/1.1 405 Method Not Allowed\r\nAllow: GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS\r\nConnection: close\r\nContent-Length: 0\r\n\r\n',
        );
      });
      s.on('clientError', (err, socket) => {
        const code = (err as { code?: string }).code;
        if (!socket.writable) return socket.destroy();
        const status = code === 'HPE_HEADER_OVERFLOW' ? 431 : code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
        socket.end(
          `HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`,
        );
      });
      server = s;
    }
    const maxConns = spec.maxConnections ?? c.maxConns;
    if (maxConns > 0) server.maxConnections = maxConns;
    server.on('connection', (sock: Socket) => {
      sockets.add(sock);
      sock.once('close', () => sockets.delete(sock));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) =>
        reject(
          new StartupError(
            `--listen ${spec.text}: ${err.code === 'EADDRINUSE' ? 'address in use' : err.message}`,
          ),
        ),
      );
      listenOn(server, spec.port, spec.address === '' ? undefined : spec.address, () => resolve());
    });
    this.listeners.push({ spec, server, sockets, ...(lean !== undefined ? { lean } : {}) });
  }

  private certStore(spec: ListenSpec): CertStore {
    if (spec.cert === undefined)
      throw new StartupError(`--listen ${spec.text}: proto=${spec.proto} needs cert=FILE`);
    try {
      return loadCertStore(spec.cert, spec.key);
    } catch (err) {
      throw new StartupError(`--listen ${spec.text}: cannot load certificate: ${(err as Error).message}`);
    }
  }

  /** The HTTPS side of a listener (https, grpcs, and https+tcp+sni's non-SNI-routed connections). */
  private httpsServer(spec: ListenSpec, keepAliveTimeoutMs: number): http2.Http2SecureServer {
    const store = this.certStore(spec);
    const first = store.certs[0] as LoadedCert;
    // HTTP/2 and HTTP/1.1 on one port, negotiated by ALPN.
    const s = http2.createSecureServer(
      {
        cert: first.cert,
        key: first.key,
        SNICallback: store.sniCallback,
        allowHTTP1: true,
        maxSessionMemory: 64,
        ...(spec.ca !== undefined ? { ca: readFileSync(spec.ca), requestCert: true } : {}),
      },
      this.handleChecked,
    );
    s.setTimeout(keepAliveTimeoutMs);
    s.on('upgrade', this.upgrades.handle);
    return s;
  }

  /** TCP listeners: static ones join `listeners` (addresses, drain); tcp-dynamic ones manage their own. */
  private async listenTcp(spec: ListenSpec): Promise<void> {
    const fail = (err: unknown) => {
      const code = (err as NodeJS.ErrnoException).code;
      return new StartupError(
        `--listen ${spec.text}: ${code === 'EADDRINUSE' ? 'address in use' : (err as Error).message}`,
      );
    };
    if (spec.proto === 'tcp-dynamic') {
      try {
        await this.tcp.listenDynamic(spec);
      } catch (err) {
        throw fail(err);
      }
      return;
    }
    const servers: { terminate?: tls.Server; https?: tls.Server } = {};
    if (spec.proto === 'https+tcp+sni') {
      servers.https = this.httpsServer(spec, spec.idleTimeoutMs ?? this.config.clientIdleTimeoutMs);
    } else if (spec.cert !== undefined) {
      const store = this.certStore(spec);
      const first = store.certs[0] as LoadedCert;
      servers.terminate = tls.createServer({
        cert: first.cert,
        key: first.key,
        SNICallback: store.sniCallback,
        allowHalfOpen: true,
        ...(spec.ca !== undefined ? { ca: readFileSync(spec.ca), requestCert: true } : {}),
      });
    }
    let listener;
    try {
      listener = await this.tcp.listen(spec, servers);
    } catch (err) {
      throw fail(err);
    }
    this.listeners.push({ spec, server: listener.server, sockets: listener.sockets });
  }

  /**
   * Graceful stop: refuse new connections, let in-flight requests finish (up to `waitMs`), close
   * idle keep-alive connections, then everything.
   */
  async stop(waitMs = this.config.shutdownWaitMs): Promise<void> {
    this.draining = true;
    // Registries where Cairn registered itself (Consul --consul-register): leave them first, then
    // give clients and health checks a moment to notice, and only then stop accepting.
    const selfRegistered = this.registries.filter(
      (r): r is RegistryAdapter & { deregisterSelf(): Promise<void> } =>
        typeof (r as { deregisterSelf?: unknown }).deregisterSelf === 'function',
    );
    if (selfRegistered.length > 0 && waitMs > 0) {
      const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref());
      await Promise.race([Promise.all(selfRegistered.map((r) => r.deregisterSelf())), sleep(2_000)]);
      await sleep(Math.min(2_000, waitMs / 4));
    }
    if (this.drainListeners !== undefined) await this.drainListeners(waitMs);
    const closed = this.listeners.map(
      (l) => new Promise<void>((resolve) => (l.server as http.Server).close(() => resolve())),
    );
    for (const l of this.listeners) {
      if (l.lean !== undefined) l.lean.beginDrain();
      else if ('closeIdleConnections' in l.server) (l.server as http.Server).closeIdleConnections();
    }
    const tcpClosed = this.tcp.stopAccepting();
    const deadline = Date.now() + waitMs;
    // Open TCP sessions (database connections, ...) get the same grace as HTTP requests.
    while ((this.proxy.active > 0 || this.tcp.openSessions > 0) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
      for (const l of this.listeners) {
        if (l.lean !== undefined) l.lean.beginDrain();
        else if ('closeIdleConnections' in l.server) (l.server as http.Server).closeIdleConnections();
      }
    }
    for (const l of this.listeners) l.lean?.stop();
    for (const l of this.listeners) for (const s of l.sockets) s.destroy();
    this.tcp.destroyAll();
    await tcpClosed;
    for (const s of this.upgrades.open) s.destroy();
    await Promise.all(closed);
    for (const r of this.registries) await r.stop();
    await this.admin?.close();
    this.telemetry.stop();
    await this.upstreams.close();
    await this.demo?.stop();
    try {
      this.accessLog?.flush();
    } catch {
      // stdout already gone
    }
  }
}

/** The CLI's serve mode: start, log, stop on SIGTERM/SIGINT. */
export async function runServer(config: CairnConfig): Promise<void> {
  // Before any table is built (V8 sizes the heap from it): see lib/workers/lean-heap.ts.
  if (leanHeapHere(config.leanHeap, config.workers)) useLeanHeap();
  useOneCpuGc();
  if (config.workers > 1) {
    const { runControl } = await import('./workers/control.ts');
    return runControl(config);
  }
  let server: CairnServer;
  try {
    server = new CairnServer(config);
  } catch (err) {
    // Unreadable auth files or no-route page: configuration the user must fix.
    process.stderr.write(`cairn: ${(err as Error).message}\n`);
    process.exit(2);
  }
  try {
    await server.start();
  } catch (err) {
    process.stderr.write(`cairn: ${(err as Error).message}\n`);
    await server.stop(0).catch(() => {});
    process.exit(err instanceof StartupError ? 2 : 1);
  }
  let stopping = false;
  const onSignal = (sig: string) => {
    if (stopping) {
      process.exit(1);
    }
    stopping = true;
    server.logger.info({ signal: sig }, 'shutting down: draining in-flight requests');
    server.stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGTERM', () => onSignal('SIGTERM'));
  process.on('SIGINT', () => onSignal('SIGINT'));
}

function hasRequestBody(h: http.IncomingHttpHeaders): boolean {
  const len = h['content-length'];
  return h['transfer-encoding'] !== undefined || (len !== undefined && len !== '0');
}
