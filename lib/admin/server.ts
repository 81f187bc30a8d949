// The admin listener's JSON API (fabio-compatible `/api/routes`, `/api/explain`, `/api/status`,
// `/health`). It only reads the live table and stats; it never touches the request path.

import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { explainUrl, parseExplainUrl } from '../../routing/explain.ts';
import { tableConfig } from '../../routing/table.ts';
import { normalizeRequestPath } from '../proxy/request-path.ts';
import type { CairnServer } from '../server.ts';

export interface RouteJson {
  service: string;
  host: string;
  path: string;
  src: string;
  dst: string;
  opts: string;
  weight: number;
  tags: string[];
  cmd: string;
  rate1: number;
  pct99: number;
  healthy: boolean;
  weight_effective: number;
  stats: { requests: number; failures: number; in_flight: number };
}

export class AdminServer {
  private readonly cairn: CairnServer;
  private readonly server: http.Server;

  constructor(cairn: CairnServer) {
    this.cairn = cairn;
    this.server = http.createServer((req, res) => {
      try {
        this.handle(req, res);
      } catch (err) {
        send(res, 500, { error: (err as Error).message });
      }
    });
  }

  async listen(address: string, port: number): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, address === '' ? undefined : address, () => resolve());
    });
  }

  address(): { port: number; address: string } {
    const a = this.server.address() as AddressInfo;
    return { port: a.port, address: a.address };
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://admin');
    const runtime = this.cairn.controller.current;
    const table = runtime.table;
    switch (url.pathname) {
      case '/health':
        if (this.cairn.isDraining) return text(res, 503, 'draining\n');
        return text(res, 200, 'OK\n');
      case '/api/routes': {
        if (url.searchParams.has('raw')) return text(res, 200, `${tableConfig(table, false).join('\n')}\n`);
        return send(res, 200, this.routes());
      }
      case '/api/explain': {
        const target = url.searchParams.get('url');
        if (target === null || target === '') return send(res, 400, { error: 'url parameter required' });
        const parsed = parseExplainUrl(target);
        if (typeof parsed === 'string') return send(res, 400, { error: parsed });
        return send(
          res,
          200,
          explainUrl(table, target, {
            strategy: this.cairn.config.strategy,
            health: this.cairn.health,
            balancer: (r) => runtime.balancer(r),
            normalizePath: (p) => normalizeRequestPath(p) ?? p,
          }),
        );
      }
      case '/api/status':
        return send(res, 200, {
          version: table.version,
          routes: table.routes.length,
          swaps: this.cairn.controller.swapCount,
          built_at: new Date(runtime.builtAt).toISOString(),
          registries: this.cairn.controller.registryInfos().map((r) => ({
            name: r.name,
            state: r.status === 'down' && r.snapshot !== undefined ? 'stale' : r.status,
            since: new Date(r.since).toISOString(),
            last_change: new Date(r.lastChange).toISOString(),
            ...(r.error !== undefined ? { error: r.error } : {}),
          })),
          problems: table.problems,
          excluded: table.excluded,
        });
      default:
        return text(res, 404, 'not found\n');
    }
  }

  private routes(): RouteJson[] {
    const out: RouteJson[] = [];
    const health = this.cairn.health;
    for (const r of this.cairn.controller.current.table.routes) {
      for (const t of r.targets) {
        const s = health.state(t.key);
        out.push({
          service: t.service,
          host: r.host,
          path: r.path,
          src: r.src,
          dst: t.dst,
          opts: Object.keys(t.rawOpts)
            .sort()
            .map((k) => `${k}=${t.rawOpts[k]}`)
            .join(' '),
          weight: t.share,
          tags: [...t.tags],
          cmd: 'route add',
          rate1: 0,
          pct99: 0,
          healthy: health.isAvailable(t.key),
          weight_effective: t.share,
          stats: { requests: s.requests, failures: s.failures, in_flight: s.inFlight },
        });
      }
    }
    return out;
  }
}

function send(res: http.ServerResponse, status: number, body: unknown): void {
  const s = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(s) });
  res.end(s);
}

function text(res: http.ServerResponse, status: number, body: string): void {
  res.writeHead(status, {
    'content-type': 'text/plain; charset=utf-8',
    'content-length': Buffer.byteLength(body),
  });
  res.end(body);
}
