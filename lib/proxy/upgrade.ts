// WebSocket (and any HTTP/1.1 Upgrade) pass-through: route like a normal request, ask the
// upstream to upgrade through undici, then splice the two sockets together byte for byte.

import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import type { Dispatcher } from 'undici';
import { isDenied } from '../../routing/access.ts';
import type { Route, RouteTarget } from '../../routing/types.ts';
import type { Controller } from '../controller.ts';
import type { TargetHealth } from '../health/target-health.ts';
import { buildUpstreamHeaders } from './forward-headers.ts';
import { normalizeRequestPath, rewritePath, splitPathQuery } from './request-path.ts';
import type { Upstreams } from './upstreams.ts';

const statusText: Readonly<Record<number, string>> = {
  400: 'Bad Request',
  403: 'Forbidden',
  404: 'Not Found',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
};

export class UpgradeProxy {
  private readonly controller: Controller;
  private readonly health: TargetHealth;
  private readonly upstreams: Upstreams;
  /** Open upgraded connection pairs (for shutdown). */
  readonly open = new Set<Duplex>();

  constructor(controller: Controller, health: TargetHealth, upstreams: Upstreams) {
    this.controller = controller;
    this.health = health;
    this.upstreams = upstreams;
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
    const [rawPath, query] = splitPathQuery(req.url ?? '/');
    const path = normalizeRequestPath(rawPath);
    if (path === undefined) return reply(socket, 400);
    const tls = (req.socket as TLSSocket).encrypted === true;
    const host = req.headers.host ?? '';
    const runtime = this.controller.current;
    const route = runtime.table.http.lookup({ host, path, tls });
    if (route === undefined) return reply(socket, 404);
    const target = runtime.balancer(route)?.pick();
    if (target === undefined) return reply(socket, 503);
    const o = target.opts;
    if (o.allow !== undefined || o.deny !== undefined) {
      const xff = req.headers['x-forwarded-for'];
      if (isDenied(o.allow, o.deny, req.socket.remoteAddress ?? '', typeof xff === 'string' ? xff : '')) {
        return reply(socket, 403);
      }
    }
    const headers = buildUpstreamHeaders(req.rawHeaders, {
      remoteAddress: req.socket.remoteAddress ?? '',
      tls,
      httpVersion: req.httpVersion,
      localPort: req.socket.localPort ?? 0,
      // Not `upgrade: true`: undici's dispatch({ upgrade }) writes Upgrade and Connection itself
      // and rejects a request that carries either header (every upgrade answered 502).
      ...(o.strip !== undefined ? { stripPrefix: o.strip } : {}),
      ...(o.host !== undefined ? { hostOverride: o.host === 'dst' ? target.url.host : o.host } : {}),
    });
    const handler = new UpgradeHandler(this, route, target, socket, head);
    this.upstreams.pool(target).dispatch(
      {
        path: rewritePath(path, o.strip, o.prepend) + query,
        method: req.method ?? 'GET',
        headers,
        upgrade: req.headers.upgrade ?? 'websocket',
      },
      handler,
    );
  }

  recordFailure(route: Route, target: RouteTarget): void {
    this.health.recordFailure(this.health.state(target.key), route.targets);
  }
}

class UpgradeHandler implements Dispatcher.DispatchHandler {
  private readonly proxy: UpgradeProxy;
  private readonly route: Route;
  private readonly target: RouteTarget;
  private readonly client: Duplex;
  private readonly head: Buffer;

  constructor(proxy: UpgradeProxy, route: Route, target: RouteTarget, client: Duplex, head: Buffer) {
    this.proxy = proxy;
    this.route = route;
    this.target = target;
    this.client = client;
    this.head = head;
  }

  onConnect(abort: (err?: Error) => void): void {
    if (this.client.destroyed) abort(new Error('client closed'));
  }

  onHeaders(): boolean {
    return true;
  }

  onData(): boolean {
    return true;
  }

  onComplete(): void {
    // The upstream answered without upgrading.
    reply(this.client, 502);
  }

  onUpgrade(statusCode: number, rawHeaders: Buffer[] | string[] | null, upstream: Duplex): void {
    const client = this.client;
    let head = `HTTP/1.1 ${statusCode} Switching Protocols\r\n`;
    const raw = rawHeaders ?? [];
    for (let i = 0; i + 1 < raw.length; i += 2) head += `${String(raw[i])}: ${String(raw[i + 1])}\r\n`;
    head += '\r\n';
    client.write(head);
    if (this.head.length > 0) upstream.write(this.head);
    const open = this.proxy.open;
    open.add(client);
    const close = (): void => {
      open.delete(client);
      client.destroy();
      upstream.destroy();
    };
    upstream.on('error', close);
    client.on('error', close);
    upstream.on('close', close);
    client.on('close', close);
    upstream.pipe(client);
    client.pipe(upstream);
  }

  onError(err: Error): void {
    const code = (err as { code?: string }).code ?? '';
    if (code === 'ECONNREFUSED' || code === 'UND_ERR_CONNECT_TIMEOUT' || code === 'ECONNRESET') {
      this.proxy.recordFailure(this.route, this.target);
    }
    reply(this.client, 502);
  }
}

function reply(socket: Duplex, status: number): void {
  if (socket.destroyed) return;
  const text = statusText[status] ?? 'Error';
  socket.end(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
}
