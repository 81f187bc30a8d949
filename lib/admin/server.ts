// The admin listener: the web UI and its JSON API (fabio-compatible where fabio has the
// endpoint), server-sent events and Prometheus metrics. DESIGN.md section 8 is the contract;
// README.md documents every endpoint.
//
// It only reads the live table, the telemetry and the registries; the request path never waits
// on it. The one mutation, PUT /api/manual, goes through AdminAccess.

import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { explainUrl, parseExplainUrl } from '../../routing/explain.ts';
import { tableConfig } from '../../routing/table.ts';
import { tableOptions } from '../config/index.ts';
import { normalizeRequestPath } from '../proxy/request-path.ts';
import type { CairnServer } from '../server.ts';
import type { TelemetryEvent } from '../stats/telemetry.ts';
import { AdminAccess } from './access.ts';
import { EventStream } from './events.ts';
import { checkManual, chooseManualStore, type ManualStore } from './manual.ts';
import { routeRows } from './routes-json.ts';
import { statusJson } from './status-json.ts';
import { UiAssets } from './ui-assets.ts';

export type { RouteRow } from './routes-json.ts';

const maxBody = 1 << 20;

class HttpError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

// Same-origin only; no inline script or style, so injected markup could not run anything.
const uiSecurityHeaders = {
  'content-security-policy':
    "default-src 'self'; img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
};

export class AdminServer {
  private readonly cairn: CairnServer;
  private readonly server: http.Server;
  private readonly access: AdminAccess;
  private readonly events = new EventStream();
  private readonly assets = new UiAssets();
  private readonly unsubscribe: () => void;
  private manualStore: ManualStore | undefined;
  /** Last `stats` payload per row id, so a tick sends only what changed. */
  private lastStats = new Map<number, string>();

  constructor(cairn: CairnServer) {
    this.cairn = cairn;
    this.access = new AdminAccess(cairn.config);
    this.server = http.createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        const status = err instanceof HttpError ? err.status : 500;
        if (!res.headersSent) send(res, status, { error: (err as Error).message });
        else res.destroy();
      });
    });
    this.unsubscribe = cairn.telemetry.subscribe((e) => this.onTelemetry(e));
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
    this.unsubscribe();
    this.events.close();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private get manual(): ManualStore {
    this.manualStore ??= chooseManualStore(this.cairn.registries, this.cairn.controller);
    return this.manualStore;
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://admin');
    const path = url.pathname;
    const method = req.method ?? 'GET';
    const read = method === 'GET' || method === 'HEAD';

    if (path === '/api/manual' || path === '/api/manual/check')
      return this.handleManual(req, res, path, method);
    if (!read) return send(res, 405, { error: `${method} not allowed on ${path}` }, { allow: 'GET, HEAD' });

    switch (path) {
      case '/':
      case '/index.html': {
        const page = this.assets.index();
        return body(res, 200, page.body, page.type, { ...uiSecurityHeaders, 'cache-control': 'no-cache' });
      }
      case '/health':
        if (this.cairn.isDraining) return body(res, 503, 'draining\n');
        // With --workers N the admin is up before the workers listen: not ready until one does,
        // so a HEALTHCHECK, keepalived or a test never sends traffic to a port nobody accepts on.
        if (this.cairn.cluster !== undefined && this.cairn.cluster.listening === 0)
          return body(res, 503, 'starting\n');
        return body(res, 200, 'OK\n');
      case '/metrics': {
        if (this.cairn.cluster !== undefined) {
          const merged = await this.cairn.cluster.metrics();
          return body(res, 200, merged.text, merged.contentType);
        }
        const m = this.cairn.telemetry.metrics;
        return body(res, 200, await m.exposition(), m.contentType);
      }
      case '/api/routes': {
        const table = this.cairn.controller.current.table;
        // fabio's body exactly: the lines, no trailing newline.
        if (url.searchParams.has('raw')) return body(res, 200, tableConfig(table, false).join('\n'));
        return send(res, 200, routeRows(table, this.cairn.telemetry));
      }
      case '/api/explain':
        return this.explain(res, url.searchParams.get('url'));
      case '/api/status':
        return send(res, 200, this.status());
      case '/api/history':
        return send(res, 200, this.cairn.telemetry.history.list());
      case '/api/events':
        if (method === 'HEAD') return body(res, 200, '', 'text/event-stream; charset=utf-8');
        this.events.open(req, res);
        return;
      default:
        if (path.startsWith('/ui/')) {
          const a = this.assets.get(path.slice(4));
          if (a !== undefined)
            return body(res, 200, a.body, a.type, { 'cache-control': 'no-cache', ...uiSecurityHeaders });
        }
        return body(res, 404, 'not found\n');
    }
  }

  private status(): ReturnType<typeof statusJson> {
    return statusJson(this.cairn, this.manual.where, {
      readonly: this.access.readonly,
      token_required: this.access.tokenRequired,
    });
  }

  private explain(res: http.ServerResponse, target: string | null): void {
    if (target === null || target.trim() === '') return send(res, 400, { error: 'url parameter required' });
    const parsed = parseExplainUrl(target);
    if (typeof parsed === 'string') return send(res, 400, { error: parsed });
    const runtime = this.cairn.controller.current;
    send(
      res,
      200,
      explainUrl(runtime.table, target, {
        strategy: this.cairn.config.strategy,
        health: this.cairn.health,
        balancer: (r) => runtime.balancer(r),
        normalizePath: (p) => normalizeRequestPath(p) ?? p,
      }),
    );
  }

  /** GET: `{value, version}`; PUT `{value, version}`: compare-and-swap; POST .../check: dry run. */
  private async handleManual(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    path: string,
    method: string,
  ): Promise<void> {
    const store = this.manual;
    if (path === '/api/manual/check') {
      if (method !== 'POST') return send(res, 405, { error: 'use POST' }, { allow: 'POST' });
      const { value } = parseManualBody(await readBody(req), false);
      return send(res, 200, this.check(value, store));
    }
    if (method === 'GET' || method === 'HEAD') {
      return send(res, 200, await store.read());
    }
    if (method !== 'PUT')
      return send(res, 405, { error: `${method} not allowed` }, { allow: 'GET, HEAD, PUT' });
    const allowed = this.access.checkMutation(req);
    if (!allowed.ok) {
      const extra: Record<string, string> =
        allowed.status === 401 ? { 'www-authenticate': 'Bearer realm="cairn admin"' } : {};
      return send(res, allowed.status, { error: allowed.reason }, extra);
    }
    const { value, version } = parseManualBody(await readBody(req), true);
    const checked = this.check(value, store);
    if (checked.errors > 0) {
      return send(res, 400, {
        error: `${checked.errors} bad line${checked.errors === 1 ? '' : 's'}; nothing was saved`,
        problems: checked.problems,
      });
    }
    const r = await store.write(value, version as string);
    if (r.ok) {
      this.cairn.logger.info({ store: store.where, version: r.version }, 'admin: manual routes saved');
      // fabio's shape; warnings (applied, but something was ignored) ride along when there are any.
      return send(res, 200, {
        value,
        version: r.version,
        ...(checked.problems.length > 0 ? { problems: checked.problems } : {}),
      });
    }
    if ('conflict' in r) {
      return send(res, 409, {
        error: 'version conflict: the overrides changed since they were read',
        value: r.conflict.value,
        version: r.conflict.version,
      });
    }
    return send(res, 502, { error: r.error });
  }

  private check(value: string, store: ManualStore): ReturnType<typeof checkManual> {
    return checkManual(value, this.cairn.controller, tableOptions(this.cairn.config), store.where);
  }

  private onTelemetry(e: TelemetryEvent): void {
    switch (e.type) {
      case 'swap':
        this.events.send('swap', e.entry);
        return;
      case 'registry': {
        const r = e.registry;
        this.events.send('registry', {
          name: r.name,
          state: r.state,
          since: new Date(r.since).toISOString(),
          last_change: new Date(r.lastChange).toISOString(),
          ...(r.error !== undefined ? { error: r.error } : {}),
        });
        return;
      }
      case 'tick':
        if (this.events.size > 0) this.sendStats(e.at);
        return;
    }
  }

  private sendStats(at: number): void {
    const rows = routeRows(this.cairn.controller.current.table, this.cairn.telemetry);
    const next = new Map<number, string>();
    const changed: unknown[] = [];
    for (const r of rows) {
      const payload = {
        id: r.id,
        health: r.health,
        ...(r.health_reason !== undefined ? { health_reason: r.health_reason } : {}),
        weight_effective: r.weight_effective,
        stats: r.stats,
      };
      const json = JSON.stringify(payload);
      next.set(r.id, json);
      if (this.lastStats.get(r.id) !== json) changed.push(payload);
    }
    this.lastStats = next;
    this.events.send('stats', { at, rows: changed });
  }
}

function parseManualBody(text: string, needVersion: boolean): { value: string; version?: string } {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new HttpError(400, 'expected a JSON body {"value": "...", "version": "..."}');
  }
  if (typeof doc !== 'object' || doc === null) throw new HttpError(400, 'expected a JSON object');
  const { value, version } = doc as { value?: unknown; version?: unknown };
  if (typeof value !== 'string') throw new HttpError(400, '"value" must be a string of route commands');
  if (!needVersion) return { value };
  // fabio's versions are numbers (Consul indexes); Cairn's are opaque strings. Both are accepted.
  if (typeof version !== 'string' && typeof version !== 'number')
    throw new HttpError(400, '"version" is required: the version GET /api/manual returned');
  return { value, version: String(version) };
}

async function readBody(req: http.IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > maxBody) throw new HttpError(413, 'body too large (limit 1 MiB)');
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function send(
  res: http.ServerResponse,
  status: number,
  data: unknown,
  headers: Record<string, string> = {},
): void {
  body(res, status, JSON.stringify(data), 'application/json; charset=utf-8', headers);
}

function body(
  res: http.ServerResponse,
  status: number,
  text: string,
  type = 'text/plain; charset=utf-8',
  headers: Record<string, string> = {},
): void {
  // nosniff on every answer: JSON carrying registry names (`<img onerror=...>`) is never HTML.
  res.writeHead(status, {
    'content-type': type,
    'content-length': Buffer.byteLength(text),
    'x-content-type-options': 'nosniff',
    ...headers,
  });
  res.end(res.req.method === 'HEAD' ? undefined : text);
}
