// The admin listener over real sockets: the fabio-compatible JSON API, live stats, the SSE stream
// (a registry change reaches a client within 1 s), the overrides API with compare-and-swap,
// /metrics, /health while draining, and the web UI's assets.

import { spawnSync } from 'node:child_process';
import http from 'node:http';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { request } from 'undici';
import { type Cairn, type RegistryContent, startCairn, waitFor } from './helpers/cairn.ts';
import { closeAll, refusedPort, startUpstream, type Upstream } from './helpers/upstream.ts';

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));

interface Reply {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly text: string;
  json<T = unknown>(): T;
}

async function admin(
  c: Cairn,
  path: string,
  init: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<Reply> {
  const a = c.server.adminAddress();
  if (a === undefined) throw new Error('admin not listening');
  const r = await request(`http://127.0.0.1:${a.port}${path}`, {
    method: (init.method ?? 'GET') as 'GET',
    ...(init.headers !== undefined ? { headers: init.headers } : {}),
    ...(init.body !== undefined ? { body: init.body } : {}),
  });
  const text = await r.body.text();
  return { status: r.statusCode, headers: r.headers, text, json: <T>() => JSON.parse(text) as T };
}

interface SseEvent {
  readonly event: string;
  readonly data: unknown;
  readonly at: number;
}

/** A minimal EventSource over node:http: collects parsed events until closed. */
class SseClient {
  readonly events: SseEvent[] = [];
  private readonly req: http.ClientRequest;
  readonly connected: Promise<void>;

  constructor(port: number) {
    let buffer = '';
    this.req = http.get({ host: '127.0.0.1', port, path: '/api/events' });
    this.connected = new Promise((resolve, reject) => {
      this.req.once('error', reject);
      this.req.once('response', (res) => {
        expect(res.headers['content-type']).to.match(/^text\/event-stream/);
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          buffer += chunk;
          let end: number;
          while ((end = buffer.indexOf('\n\n')) >= 0) {
            const frame = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            let event = 'message';
            let data = '';
            for (const line of frame.split('\n')) {
              if (line.startsWith('event: ')) event = line.slice(7);
              else if (line.startsWith('data: ')) data += line.slice(6);
            }
            if (data !== '') this.events.push({ event, data: JSON.parse(data), at: Date.now() });
          }
        });
        resolve();
      });
    });
  }

  of<T>(event: string): (SseEvent & { data: T })[] {
    return this.events.filter((e) => e.event === event) as (SseEvent & { data: T })[];
  }

  close(): void {
    this.req.destroy();
  }
}

interface RouteRowJson {
  service: string;
  src: string;
  dst: string;
  id: number;
  healthy: boolean;
  health: string;
  weight: number;
  weight_effective: number;
  tags?: string[];
  stats: {
    req_per_sec_1m: number;
    p50_ms: number | null;
    p99_ms: number | null;
    errors_5xx_ratio_1m: number;
    connect_errors_ratio_1m: number;
    open: number;
    requests_total: number;
  };
}

function services(ups: Record<string, Upstream>, tags: (name: string) => string[]): RegistryContent {
  const byService = new Map<string, Upstream[]>();
  for (const [name, u] of Object.entries(ups)) {
    const svc = name.replace(/\d+$/, '');
    byService.set(svc, [...(byService.get(svc) ?? []), u]);
  }
  return {
    services: [...byService].map(([name, list]) => ({
      name,
      instances: list.map((u) => ({ id: u.name, address: '127.0.0.1', port: u.port, tags: tags(name) })),
    })),
  };
}

describe('admin API (real sockets)', function () {
  this.timeout(15_000);

  let ups: Upstream[] = [];
  let cairn: Cairn | undefined;
  const clients: SseClient[] = [];

  afterEach(async () => {
    for (const c of clients.splice(0)) c.close();
    await cairn?.stop();
    cairn = undefined;
    await closeAll(ups);
    ups = [];
  });

  it("/api/routes: fabio's fields and shape (recorded from fabio 1.6.3), plus Cairn's", async () => {
    const svc = await startUpstream('svc');
    ups = [svc];
    const dst = `http://127.0.0.1:${svc.port}/`;
    const c = await startCairn({ routes: `route add svc / ${dst}` });
    cairn = c;
    const rows = (await admin(c, '/api/routes')).json<Record<string, unknown>[]>();
    expect(rows).to.have.length(1);
    const row = rows[0] as Record<string, unknown>;
    // fabio's object, key for key (fabio leaves `tags` out when there are none).
    const fabio = {
      service: 'svc',
      host: '',
      path: '/',
      src: '/',
      dst,
      opts: '',
      weight: 1,
      cmd: 'route add',
      rate1: 0,
      pct99: 0,
    };
    const fabioKeys = Object.keys(fabio);
    expect(Object.fromEntries(Object.entries(row).filter(([k]) => fabioKeys.includes(k)))).to.deep.equal(
      fabio,
    );
    expect(row).to.not.have.property('tags');
    expect(row).to.include({ healthy: true, health: 'passing', weight_effective: 1, proto: 'http' });
    expect(row.stats).to.deep.equal({
      req_per_sec_1m: 0,
      req_per_sec_5m: 0,
      p50_ms: null,
      p99_ms: null,
      errors_5xx_ratio_1m: 0,
      connect_errors_ratio_1m: 0,
      open: 0,
      requests_total: 0,
    });
  });

  it('/api/routes?raw: the route commands, byte for byte as fabio 1.6.3 prints them', async () => {
    const table = `route add svc-a /app http://127.0.0.1:18081/ tags "v1"
route add svc-b /app http://127.0.0.1:18082/ tags "v2"
route weight svc-b /app weight 0.2 tags "v2"
route add svc-c /strip/me http://127.0.0.1:18083/ opts "strip=/strip"
route add svc-c /pre http://127.0.0.1:18083/ opts "prepend=/base"
route add svc-a example.com/ http://127.0.0.1:18081/
route add svc-b *.example.com/ http://127.0.0.1:18082/
route add svc-c /old http://127.0.0.1:18083/new$path opts "redirect=301"`;
    const c = await startCairn({ routes: table });
    cairn = c;
    const r = await admin(c, '/api/routes?raw');
    expect(r.status).to.equal(200);
    expect(r.text).to.equal(
      [
        'route add svc-a example.com/ http://127.0.0.1:18081/',
        'route add svc-b *.example.com/ http://127.0.0.1:18082/',
        'route add svc-c /strip/me http://127.0.0.1:18083/ opts "strip=/strip"',
        'route add svc-c /pre http://127.0.0.1:18083/ opts "prepend=/base"',
        'route add svc-c /old http://127.0.0.1:18083/new$path opts "redirect=301"',
        'route add svc-a /app http://127.0.0.1:18081/ tags "v1"',
        'route add svc-b /app http://127.0.0.1:18082/ weight 0.2000 tags "v2"',
      ].join('\n'),
    );
  });

  it('live stats per target: req/s, p50/p99, 5xx and connect-error rates, open requests', async () => {
    const ok = await startUpstream('ok1');
    const bad = await startUpstream('bad1', { status: 500 });
    const slow = await startUpstream('slow1', 'hang');
    ups = [ok, bad, slow];
    const dead = await refusedPort();
    const c = await startCairn(
      {
        services: [
          {
            name: 'ok',
            instances: [{ id: 'ok1', address: '127.0.0.1', port: ok.port, tags: ['urlprefix-/ok'] }],
          },
          {
            name: 'bad',
            instances: [{ id: 'bad1', address: '127.0.0.1', port: bad.port, tags: ['urlprefix-/bad'] }],
          },
          {
            name: 'slow',
            instances: [{ id: 'slow1', address: '127.0.0.1', port: slow.port, tags: ['urlprefix-/slow'] }],
          },
          {
            name: 'dead',
            instances: [
              { id: 'dead1', address: '127.0.0.1', port: dead, tags: ['urlprefix-/dead retries=0'] },
            ],
          },
        ],
      },
      { args: ['--eject-after', '0'] },
    );
    cairn = c;
    for (let i = 0; i < 20; i++) expect((await c.fetch('/ok/x')).status).to.equal(200);
    for (let i = 0; i < 4; i++) expect((await c.fetch('/bad/x')).status).to.equal(500);
    for (let i = 0; i < 3; i++) expect((await c.fetch('/dead/x')).status).to.equal(502);
    const hanging = c.fetch('/slow/x').catch(() => undefined);
    await waitFor(() => slow.inFlight === 1, 2000, 'the slow request to arrive');
    // The live windows sample once a second.
    const swaps = c.server.telemetry.traffic.second;
    await waitFor(() => c.server.telemetry.traffic.second > swaps, 2000, 'a stats tick');

    const rows = (await admin(c, '/api/routes')).json<RouteRowJson[]>();
    const by = (svc: string) => rows.find((r) => r.service === svc) as RouteRowJson;
    expect(by('ok').stats.requests_total).to.equal(20);
    expect(by('ok').stats.req_per_sec_1m).to.be.greaterThan(0);
    expect(by('ok').stats.p50_ms).to.be.a('number');
    expect(by('ok').stats.p99_ms as number).to.be.at.least(by('ok').stats.p50_ms as number);
    expect(by('ok').stats.errors_5xx_ratio_1m).to.equal(0);
    expect(by('bad').stats.errors_5xx_ratio_1m).to.equal(1);
    expect(by('dead').stats.connect_errors_ratio_1m).to.equal(1);
    expect(by('dead').stats.errors_5xx_ratio_1m).to.equal(1); // Cairn answered 502
    expect(by('slow').stats.open).to.equal(1);

    const metrics = (await admin(c, '/metrics')).text;
    expect(metrics).to.include(
      `cairn_upstream_errors_total{service="dead",target="http://127.0.0.1:${dead}/",kind="connect"} 3`,
    );
    expect(metrics).to.include('cairn_requests_total{route="/ok",service="ok",code="2xx"} 20');
    expect(metrics).to.include('cairn_requests_total{route="/bad",service="bad",code="5xx"} 4');
    slow.behaviour = 'echo';
    await c.stopServer(0);
    await hanging;
  });

  it('/api/explain: the same JSON as `cairn explain`', async () => {
    const u = await startUpstream('api1');
    ups = [u];
    const content = services({ api1: u }, () => ['urlprefix-/api strip=/api', 'urlprefix-www.example.com/']);
    const c = await startCairn(content);
    cairn = c;
    const url = 'http://www.example.com/api/users';
    const r = await admin(c, `/api/explain?url=${encodeURIComponent(url)}`);
    expect(r.status).to.equal(200);
    const cli = spawnSync(
      process.execPath,
      ['lib/cli/main.ts', 'explain', '--registry', `file:${c.file}`, url],
      {
        cwd: repoRoot,
        encoding: 'utf8',
      },
    );
    expect(cli.status, cli.stderr).to.equal(0);
    expect(r.json()).to.deep.equal(JSON.parse(cli.stdout));
    expect(r.json()).to.deep.include({ target: `http://127.0.0.1:${u.port}/` });
    expect((await admin(c, '/api/explain')).status).to.equal(400);
    expect((await admin(c, '/api/explain?url=ftp://x/')).json()).to.have.property('error');
  });

  it('/api/status: version, registry state up/stale with since and error, problems', async () => {
    const u = await startUpstream('api1');
    ups = [u];
    const c = await startCairn({
      services: [
        {
          name: 'api',
          instances: [
            {
              id: 'api1',
              address: '127.0.0.1',
              port: u.port,
              tags: ['urlprefix-/api', 'urlprefix-/x strip=nolead'],
            },
          ],
        },
      ],
    });
    cairn = c;
    const s1 = (await admin(c, '/api/status')).json<{
      version: string;
      registries: { name: string; state: string; since: string; error?: string }[];
      problems: { source: string; service?: string; instance?: string; reason: string }[];
      manual_store: string;
      admin: { readonly: boolean; token_required: boolean };
    }>();
    expect(s1.version).to.equal(c.server.controller.current.table.version);
    expect(s1.registries).to.have.length(1);
    expect(s1.registries[0]).to.deep.include({ name: `file:${c.file}`, state: 'up' });
    expect(
      s1.problems.some((p) => p.source === 'tag' && p.service === 'api' && p.instance === 'api1'),
    ).to.equal(true);
    expect(s1.manual_store).to.equal(`file:${c.file}`);
    expect(s1.admin).to.deep.equal({ readonly: false, token_required: false });

    const before = Date.now();
    await c.writeRaw('services: [ this is not yaml');
    await waitFor(() => c.registryError() !== '', 3000, 'the registry to fail');
    const s2 = (await admin(c, '/api/status')).json<typeof s1>();
    const reg = s2.registries[0] as (typeof s1.registries)[number];
    expect(reg.state).to.equal('stale');
    expect(reg.error).to.be.a('string').and.not.equal('');
    expect(Date.parse(reg.since)).to.be.at.least(before - 5);
    expect(s2.version).to.equal(s1.version); // the last good table keeps serving
  });

  it('/api/events: a registry change reaches an SSE client within 1 s, then stats ticks', async () => {
    const u1 = await startUpstream('web1');
    const u2 = await startUpstream('web2');
    ups = [u1, u2];
    const c = await startCairn(services({ web1: u1 }, () => ['urlprefix-/']));
    cairn = c;
    const sse = new SseClient(c.server.adminAddress()?.port ?? 0);
    clients.push(sse);
    await sse.connected;

    const written = Date.now();
    await c.writeRaw(
      `services:\n  - name: web\n    instances:\n      - { id: web1, address: 127.0.0.1, port: ${u1.port}, tags: ["urlprefix-/"] }\n      - { id: web2, address: 127.0.0.1, port: ${u2.port}, tags: ["urlprefix-/"] }\n`,
    );
    await waitFor(() => sse.of('swap').length > 0, 3000, 'a swap event');
    const swap = sse.of<{ version: string; added: string[]; removed: string[]; changed: unknown[] }>(
      'swap',
    )[0];
    expect(swap?.at as number).to.be.below(written + 1000);
    expect(swap?.data.version).to.equal(c.server.controller.current.table.version);
    expect(swap?.data.added).to.deep.equal([`route add web / http://127.0.0.1:${u2.port}/ weight 0.5000`]);
    expect(swap?.data.changed).to.have.length(1); // web1 went from 100 % to 50 %

    await c.writeRaw('services: [ broken');
    await waitFor(() => sse.of('registry').length > 0, 3000, 'a registry event');
    expect(sse.of<{ state: string }>('registry')[0]?.data.state).to.equal('stale');

    await c.fetch('/');
    await waitFor(
      () =>
        sse
          .of<{ rows: { stats: { requests_total: number } }[] }>('stats')
          .some((e) => e.data.rows.some((r) => r.stats.requests_total > 0)),
      3000,
      'a stats tick with the request',
    );
    const history = (await admin(c, '/api/history')).json<{ seq: number; previous: string }[]>();
    expect(history.length).to.equal(2);
    expect(history[1]?.previous).to.equal(''); // the first table
  });

  it('/api/manual: read, check, save (routing changes), stale version 409, bad line 400', async () => {
    const a = await startUpstream('a1');
    const b = await startUpstream('b1');
    ups = [a, b];
    const c = await startCairn(services({ a1: a }, () => ['urlprefix-/app']));
    cairn = c;
    const m0 = (await admin(c, '/api/manual')).json<{ value: string; version: string }>();
    expect(m0.value).to.equal('');
    expect(m0.version).to.be.a('string');

    const override = `route add b /app http://127.0.0.1:${b.port}/ weight 1 tags "x"`;
    const check = await admin(c, '/api/manual/check', {
      method: 'POST',
      body: JSON.stringify({ value: override }),
    });
    expect(check.json()).to.deep.include({ errors: 0 });
    expect(check.json<{ changes: { added: string[] } }>().changes.added).to.have.length(1);
    expect(await readFile(c.file, 'utf8')).to.not.include('route add b'); // a check saves nothing

    const put = (value: string, version: string | number) =>
      admin(c, '/api/manual', {
        method: 'PUT',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ value, version }),
      });
    const bad = await put('route add b /app\nroute nonsense', m0.version);
    expect(bad.status).to.equal(400);
    expect(bad.json<{ problems: { line: number }[] }>().problems.map((p) => p.line)).to.include(2);
    expect(await readFile(c.file, 'utf8')).to.not.include('nonsense');

    const before = c.server.controller.current.table.version;
    const ok = await put(override, m0.version);
    expect(ok.status).to.equal(200);
    const m1 = ok.json<{ value: string; version: string }>();
    expect(m1.value).to.equal(override);
    expect(m1.version).to.not.equal(m0.version);
    await waitFor(() => c.server.controller.current.table.version !== before, 3000, 'the override to apply');
    expect((await c.fetch('/app/x')).headers['x-upstream']).to.equal('b1');
    expect((await admin(c, '/api/manual')).json()).to.deep.equal(m1);

    const stale = await put('route del b', m0.version);
    expect(stale.status).to.equal(409);
    expect(stale.json()).to.deep.include({ value: override, version: m1.version });
    expect((await put(override, 12)).status).to.equal(409); // fabio-style numeric versions are accepted
    expect((await admin(c, '/api/manual', { method: 'PUT', body: 'not json' })).status).to.equal(400);
    expect((await admin(c, '/api/manual', { method: 'DELETE' })).status).to.equal(405);
  });

  it('/api/manual: refused from a foreign Host or Origin without a token', async () => {
    const c = await startCairn({ routes: '' });
    cairn = c;
    const m = (await admin(c, '/api/manual')).json<{ version: string }>();
    const body = JSON.stringify({ value: 'route add a /a http://10.0.0.1/', version: m.version });
    const port = c.server.adminAddress()?.port ?? 0;
    const foreign = await admin(c, '/api/manual', {
      method: 'PUT',
      headers: { host: `evil.example:${port}` },
      body,
    });
    expect(foreign.status).to.equal(403);
    const cors = await admin(c, '/api/manual', {
      method: 'PUT',
      headers: { origin: 'https://evil.example' },
      body,
    });
    expect(cors.status).to.equal(403);
  });

  it('/metrics: Prometheus text with every DESIGN.md metric; labels of removed routes go away', async () => {
    const a = await startUpstream('a1');
    const b = await startUpstream('b1');
    ups = [a, b];
    const c = await startCairn({
      services: [
        { name: 'a', instances: [{ id: 'a1', address: '127.0.0.1', port: a.port, tags: ['urlprefix-/a'] }] },
        { name: 'b', instances: [{ id: 'b1', address: '127.0.0.1', port: b.port, tags: ['urlprefix-/b'] }] },
      ],
    });
    cairn = c;
    await c.fetch('/a/1');
    await c.fetch('/b/1');
    await c.fetch('/nowhere');
    const r = await admin(c, '/metrics');
    expect(r.status).to.equal(200);
    expect(r.headers['content-type']).to.match(/^text\/plain; version=0\.0\.4/);
    for (const name of [
      'cairn_requests_total',
      'cairn_request_duration_seconds',
      'cairn_upstream_errors_total',
      'cairn_target_up',
      'cairn_table_swaps_total',
      'cairn_registry_up',
      'cairn_config_problems',
      'cairn_tcp_connections_total',
      'cairn_open_connections',
      'process_cpu_user_seconds_total',
    ]) {
      expect(r.text, name).to.match(new RegExp(`^# TYPE ${name} `, 'm'));
    }
    expect(r.text).to.include('cairn_requests_total{route="/b",service="b",code="2xx"} 1');
    expect(r.text).to.include('cairn_requests_total{route="",service="",code="4xx"} 1');
    expect(r.text).to.include(`cairn_target_up{service="b",target="http://127.0.0.1:${b.port}/"} 1`);
    expect(r.text).to.include(`cairn_registry_up{registry="file:${c.file}"} 1`);
    expect(r.text).to.match(/^cairn_table_swaps_total 1$/m);

    await c.update({
      services: [
        { name: 'a', instances: [{ id: 'a1', address: '127.0.0.1', port: a.port, tags: ['urlprefix-/a'] }] },
      ],
    });
    const after = (await admin(c, '/metrics')).text;
    expect(after).to.not.include('service="b"');
    expect(after).to.include('cairn_requests_total{route="/a",service="a",code="2xx"} 1');
    expect(after).to.match(/^cairn_table_swaps_total 2$/m);
  });

  it('--metrics=false: no per-request recording; the rest of /metrics stays', async () => {
    const a = await startUpstream('a1');
    ups = [a];
    const c = await startCairn(
      services({ a1: a }, () => ['urlprefix-/']),
      { args: ['--metrics=false'] },
    );
    cairn = c;
    expect((await c.fetch('/')).status).to.equal(200);
    const text = (await admin(c, '/metrics')).text;
    expect(text).to.not.match(/^cairn_requests_total\{/m);
    expect(text).to.match(/^cairn_target_up\{/m);
    expect((await admin(c, '/api/status')).json()).to.deep.include({ metrics: false });
  });

  it('/health: 200 OK, 503 while draining', async () => {
    const slow = await startUpstream('slow1', 'hang');
    ups = [slow];
    const c = await startCairn(services({ slow1: slow }, () => ['urlprefix-/']));
    cairn = c;
    const h = await admin(c, '/health');
    expect([h.status, h.text]).to.deep.equal([200, 'OK\n']);
    const inflight = c.fetch('/').catch(() => undefined);
    await waitFor(() => slow.inFlight === 1, 2000, 'the request to arrive');
    const stopping = c.stopServer(3000);
    await waitFor(() => c.server.isDraining, 1000, 'draining');
    const d = await admin(c, '/health');
    expect(d.status).to.equal(503);
    slow.behaviour = 'echo';
    await slow.close();
    await stopping;
    await inflight;
  });

  it('serves the web UI: the page (CSP, no CDN) and its modules as JavaScript', async () => {
    const c = await startCairn({ routes: '' });
    cairn = c;
    const page = await admin(c, '/');
    expect(page.status).to.equal(200);
    expect(page.headers['content-type']).to.match(/^text\/html/);
    expect(page.headers['content-security-policy']).to.include("default-src 'self'");
    expect(page.text).to.not.match(/(?:src|href)="(?:https?:)?\/\//); // nothing from the network
    const entry = /<script type="module" src="([^"]+)"/.exec(page.text)?.[1] as string;
    expect(entry).to.equal('/ui/app.ts');
    const app = await admin(c, entry);
    expect(app.headers['content-type']).to.match(/^text\/javascript/);
    expect(app.text).to.include('new EventSource');
    expect(app.text).to.not.match(/import type|: HistoryEntry|as MessageEvent<string>/);
    const api = await admin(c, '/ui/api.ts');
    expect(api.text).to.include('/api/manual');
    expect(api.text).to.not.match(/^import type/m);
    expect((await admin(c, '/ui/style.css')).headers['content-type']).to.match(/^text\/css/);
    for (const p of ['/ui/page.ts', '/ui/nope.ts', '/ui/../server.ts', '/ui/%2e%2e%2fserver.ts', '/nope']) {
      expect((await admin(c, p)).status, p).to.equal(404);
    }
    expect((await admin(c, '/api/routes', { method: 'POST' })).status).to.equal(405);
  });
});
