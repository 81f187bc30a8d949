// A small fake Consul HTTP API for the adapter's edge-case unit tests (index going backwards,
// 500s, 429s, malformed bodies, outages). It implements only what the adapter reads, with
// Consul's blocking semantics: `?index=N&wait=D` holds the request until the endpoint's index
// exceeds N or D passes. Every behaviour tested here is also tested against a real agent in
// test/integration/consul*.test.ts.

import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export interface FakeCheck {
  CheckID: string;
  Status: string;
}

export interface FakeInstance {
  node: string;
  id: string;
  service: string;
  tags: string[];
  address?: string;
  port: number;
  weights?: { Passing: number; Warning: number };
  checks: FakeCheck[];
  modifyIndex?: number;
}

export type Fault =
  | { readonly status: number; readonly body?: string; readonly headers?: Record<string, string> }
  | { readonly malformed: string }
  /** Answer with this X-Consul-Index (e.g. lower than before). */
  | { readonly index: number };

export interface SeenRequest {
  readonly method: string;
  readonly path: string;
  readonly query: URLSearchParams;
  readonly token: string | undefined;
}

const nodeAddress = '10.0.0.1';

export class FakeConsul {
  /** The global raft index; every mutation bumps it. */
  raft = 100;
  catalogIndex = 100;
  checksIndex = 100;
  kvIndex = 100;
  readonly nodes = new Map<string, FakeCheck[]>([['n1', [{ CheckID: 'serfHealth', Status: 'passing' }]]]);
  readonly instances = new Map<string, FakeInstance>();
  readonly kv = new Map<string, { value: string; modifyIndex: number }>();
  readonly requests: SeenRequest[] = [];
  /** Faults by path prefix, consumed one per request (`times`), or forever when times < 0. */
  private readonly faults: { prefix: string; fault: Fault; times: number }[] = [];
  private readonly waiters = new Set<() => void>();
  private readonly sockets = new Set<Socket>();
  private server: http.Server | undefined;
  port = 0;

  get address(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(port = 0): Promise<void> {
    const server = http.createServer((req, res) => void this.handle(req, res));
    server.on('connection', (s: Socket) => {
      this.sockets.add(s);
      s.once('close', () => this.sockets.delete(s));
    });
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
    this.port = (server.address() as AddressInfo).port;
    this.server = server;
  }

  /** Closes the listener and every connection (long-polls included): Consul is gone. */
  async stop(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    if (s === undefined) return;
    for (const w of this.waiters) w();
    for (const sock of this.sockets) sock.destroy();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }

  /** Open connections right now (long-polls and idle keep-alive ones). */
  get openConnections(): number {
    return this.sockets.size;
  }

  /** Blocking requests held open right now, by path. */
  readonly waiting = new Map<string, number>();

  fault(prefix: string, fault: Fault, times = 1): void {
    this.faults.push({ prefix, fault, times });
  }

  clearFaults(): void {
    this.faults.length = 0;
  }

  count(pathPrefix: string): number {
    return this.requests.filter((r) => r.path.startsWith(pathPrefix)).length;
  }

  // ---- mutations --------------------------------------------------------------------------------

  private bump(kind: 'catalog' | 'checks' | 'kv' | 'both'): number {
    this.raft++;
    if (kind === 'catalog' || kind === 'both') this.catalogIndex = this.raft;
    if (kind === 'checks' || kind === 'both') this.checksIndex = this.raft;
    if (kind === 'kv') this.kvIndex = this.raft;
    const ws = [...this.waiters];
    this.waiters.clear();
    for (const w of ws) w();
    return this.raft;
  }

  register(i: FakeInstance): void {
    const idx = this.bump(i.checks.length > 0 ? 'both' : 'catalog');
    if (!this.nodes.has(i.node)) this.nodes.set(i.node, [{ CheckID: 'serfHealth', Status: 'passing' }]);
    this.instances.set(`${i.node}/${i.id}`, { ...i, modifyIndex: idx });
  }

  /** Re-registers with changes that touch no check (weights, port...): only the catalog moves. */
  modify(node: string, id: string, change: Partial<FakeInstance>): void {
    const cur = this.instances.get(`${node}/${id}`);
    if (cur === undefined) throw new Error(`no instance ${node}/${id}`);
    const idx = this.bump('catalog');
    this.instances.set(`${node}/${id}`, { ...cur, ...change, modifyIndex: idx });
  }

  deregister(node: string, id: string): void {
    this.bump('both');
    this.instances.delete(`${node}/${id}`);
  }

  setCheck(node: string, id: string, checkId: string, status: string): void {
    const cur = this.instances.get(`${node}/${id}`);
    const c = cur?.checks.find((x) => x.CheckID === checkId);
    if (c === undefined) throw new Error(`no check ${checkId}`);
    c.Status = status;
    this.bump('checks');
  }

  setNodeCheck(node: string, checkId: string, status: string): void {
    const list = this.nodes.get(node) ?? [];
    const c = list.find((x) => x.CheckID === checkId);
    if (c === undefined) list.push({ CheckID: checkId, Status: status });
    else c.Status = status;
    this.nodes.set(node, list);
    this.bump('checks');
  }

  putKv(key: string, value: string): void {
    this.kv.set(key, { value, modifyIndex: this.bump('kv') });
  }

  /** Consul rebuilt: same data, every index far lower than before. */
  restart(): void {
    this.raft = 5;
    this.catalogIndex = 5;
    this.checksIndex = 5;
    this.kvIndex = 5;
    for (const i of this.instances.values()) i.modifyIndex = 5;
    const ws = [...this.waiters];
    this.waiters.clear();
    for (const w of ws) w();
  }

  // ---- HTTP -------------------------------------------------------------------------------------

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://fake');
    const token = req.headers['x-consul-token'];
    this.requests.push({
      method: req.method ?? 'GET',
      path: url.pathname,
      query: url.searchParams,
      token: typeof token === 'string' ? token : undefined,
    });
    let body = '';
    for await (const chunk of req) body += String(chunk);
    const f = this.faults.find((x) => url.pathname.startsWith(x.prefix) && x.times !== 0);
    let forcedIndex: number | undefined;
    if (f !== undefined) {
      if (f.times > 0) f.times--;
      const fault = f.fault;
      if ('status' in fault) {
        res.writeHead(fault.status, { 'content-type': 'text/plain', ...(fault.headers ?? {}) });
        res.end(fault.body ?? 'fake failure');
        return;
      }
      if ('malformed' in fault) {
        res.writeHead(200, { 'content-type': 'application/json', 'x-consul-index': String(this.raft) });
        res.end(fault.malformed);
        return;
      }
      forcedIndex = fault.index;
    }
    const answer = this.route(req.method ?? 'GET', url, body);
    if (answer === undefined) {
      res.writeHead(404);
      res.end();
      return;
    }
    const wantIndex = Number(url.searchParams.get('index') ?? '0');
    const wait = parseWait(url.searchParams.get('wait'));
    if (forcedIndex === undefined && wantIndex > 0 && answer.index() <= wantIndex) {
      this.waiting.set(url.pathname, (this.waiting.get(url.pathname) ?? 0) + 1);
      res.once('close', () => this.waiting.set(url.pathname, (this.waiting.get(url.pathname) ?? 1) - 1));
      await new Promise<void>((resolve) => {
        const done = (): void => {
          clearTimeout(timer);
          this.waiters.delete(done);
          resolve();
        };
        const timer = setTimeout(done, wait);
        this.waiters.add(done);
        // Re-check when woken: only this endpoint's index counts.
      });
      if (this.server === undefined) return;
    }
    const idx = forcedIndex ?? answer.index();
    const payload = answer.body();
    if (payload === undefined) {
      res.writeHead(404, { 'x-consul-index': String(idx) });
      res.end();
      return;
    }
    const text = JSON.stringify(payload);
    res.writeHead(200, { 'content-type': 'application/json', 'x-consul-index': String(idx) });
    res.end(text);
  }

  private route(
    method: string,
    url: URL,
    body: string,
  ): { index: () => number; body: () => unknown } | undefined {
    const p = url.pathname;
    if (p === '/v1/catalog/services') {
      return {
        index: () => this.catalogIndex,
        body: () => {
          const out: Record<string, string[]> = { consul: [] };
          for (const i of this.instances.values())
            out[i.service] = [...new Set([...(out[i.service] ?? []), ...i.tags])];
          return out;
        },
      };
    }
    if (p === '/v1/health/state/any') {
      // The one filter the adapter sends (Consul's bexpr, evaluated server-side).
      const notPassing = url.searchParams.get('filter') === 'Status != "passing"';
      return {
        index: () => this.checksIndex,
        body: () =>
          this.allChecks().filter((c) => !notPassing || (c as { Status: string }).Status !== 'passing'),
      };
    }
    if (p.startsWith('/v1/health/service/')) {
      const name = decodeURIComponent(p.slice('/v1/health/service/'.length));
      return { index: () => this.raft, body: () => this.healthService(name) };
    }
    if (p === '/v1/catalog/nodes') {
      return {
        index: () => this.catalogIndex,
        body: () => [...this.nodes.keys()].map((n) => ({ Node: n, Address: nodeAddress })),
      };
    }
    if (p.startsWith('/v1/catalog/node/')) {
      const node = decodeURIComponent(p.slice('/v1/catalog/node/'.length));
      return {
        index: () => this.catalogIndex,
        body: () => {
          if (!this.nodes.has(node)) return undefined;
          const services: Record<string, unknown> = {};
          for (const i of this.instances.values()) {
            if (i.node === node)
              services[i.id] = { ID: i.id, Service: i.service, ModifyIndex: i.modifyIndex };
          }
          return { Node: { Node: node }, Services: services };
        },
      };
    }
    if (p.startsWith('/v1/kv/')) {
      const key = p.slice('/v1/kv/'.length);
      if (method === 'PUT') {
        const cas = url.searchParams.get('cas');
        const cur = this.kv.get(key);
        const ok = cas === null || Number(cas) === (cur?.modifyIndex ?? 0);
        if (ok) this.putKv(key, body);
        return { index: () => this.kvIndex, body: () => ok };
      }
      const recurse = url.searchParams.has('recurse');
      return {
        index: () => this.kvIndex,
        body: () => {
          const list = [...this.kv.entries()]
            .filter(([k]) => (recurse ? k.startsWith(key) : k === key))
            .sort(([a], [b]) => (a < b ? -1 : 1))
            .map(([k, v]) => ({
              Key: k,
              Value: Buffer.from(v.value).toString('base64'),
              ModifyIndex: v.modifyIndex,
            }));
          return list.length === 0 ? undefined : list;
        },
      };
    }
    if (p === '/v1/agent/service/register' || p.startsWith('/v1/agent/service/deregister/')) {
      return { index: () => this.raft, body: () => null };
    }
    return undefined;
  }

  private allChecks(): unknown[] {
    const out: unknown[] = [];
    for (const [node, checks] of this.nodes) {
      for (const c of checks)
        out.push({ Node: node, ...c, ServiceID: '', ServiceName: '', ServiceTags: [], ModifyIndex: 1 });
    }
    for (const i of this.instances.values()) {
      for (const c of i.checks) {
        out.push({
          Node: i.node,
          ...c,
          ServiceID: i.id,
          ServiceName: i.service,
          ServiceTags: i.tags,
          ModifyIndex: this.raft,
        });
      }
    }
    return out;
  }

  private healthService(name: string): unknown[] {
    const out: unknown[] = [];
    for (const i of this.instances.values()) {
      if (i.service !== name) continue;
      const nodeChecks = (this.nodes.get(i.node) ?? []).map((c) => ({ Node: i.node, ...c, ServiceID: '' }));
      out.push({
        Node: { Node: i.node, Address: nodeAddress, Datacenter: 'dc1' },
        Service: {
          ID: i.id,
          Service: i.service,
          Tags: i.tags,
          Address: i.address ?? '',
          Port: i.port,
          ...(i.weights !== undefined ? { Weights: i.weights } : {}),
          ModifyIndex: i.modifyIndex,
        },
        Checks: [
          ...nodeChecks,
          ...i.checks.map((c) => ({ Node: i.node, ...c, ServiceID: i.id, ServiceName: name })),
        ],
      });
    }
    return out;
  }
}

function parseWait(w: string | null): number {
  if (w === null) return 300_000;
  const m = /^(\d+)(ms|s|m)$/.exec(w);
  if (m === null) return 300_000;
  const n = Number(m[1]);
  return m[2] === 'ms' ? n : m[2] === 's' ? n * 1000 : n * 60_000;
}
