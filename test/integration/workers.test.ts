// `--workers 2` through the real CLI (node lib/cli/main.ts): a control process and two worker
// processes on one SO_REUSEPORT port, real upstreams on loopback. Both workers serve; a registry
// change reaches both within a second; metrics are summed over the workers; a worker killed with
// SIGKILL under load loses only what it had in flight and comes back; SIGTERM drains without
// cutting a request; workers leave when their control process dies.

import { expect } from 'chai';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { StatusJson } from '../../lib/admin/status-json.ts';
import { type RegistryContent, registryYaml } from './helpers/cairn.ts';
import { startUpstream, type Upstream } from './helpers/upstream.ts';
import { type EchoUpstream, echoUpstream } from './tcp-helpers.ts';
import { freePort } from '../support/servers.ts';
import net from 'node:net';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const cli = join(root, 'lib', 'cli', 'main.ts');

interface Cluster {
  readonly child: ChildProcess;
  readonly port: number;
  readonly admin: number;
  readonly logs: string[];
  readonly exited: Promise<number | null>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function writeRegistry(file: string, content: RegistryContent): Promise<void> {
  // Write-then-rename, as config managers do: the watcher never sees a half-written file.
  await writeFile(`${file}.tmp`, registryYaml(content));
  await rename(`${file}.tmp`, file);
}

async function startCluster(registry: string, extra: string[] = []): Promise<Cluster> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env))
    if (!k.startsWith('CAIRN_') && v !== undefined) env[k] = v;
  const child = spawn(
    process.execPath,
    [
      cli,
      '--registry',
      `file:${registry}`,
      '--listen',
      '127.0.0.1:0',
      '--admin',
      '127.0.0.1:0',
      '--workers',
      '2',
      '--shutdown-wait',
      '5s',
      ...extra,
    ],
    { cwd: root, env, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  const logs: string[] = [];
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  let buffered = '';
  const started = new Promise<{ port: number; admin: number }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`cairn did not start:\n${logs.join('\n')}`)), 30_000);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`cairn exited with ${code}:\n${logs.join('\n')}`));
    });
    child.stderr?.setEncoding('utf8').on('data', (d: string) => {
      buffered += d;
      let nl = buffered.indexOf('\n');
      while (nl >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        logs.push(line);
        try {
          const j = JSON.parse(line) as { msg?: string; listen?: string[]; admin?: { port: number } };
          if (j.msg === 'cairn started' && j.listen !== undefined && j.admin !== undefined) {
            clearTimeout(timer);
            const port = Number((j.listen[0] ?? '').split(':').pop());
            resolve({ port, admin: j.admin.port });
          }
        } catch {
          // not a log line
        }
        nl = buffered.indexOf('\n');
      }
    });
  });
  const { port, admin } = await started;
  return { child, port, admin, logs, exited };
}

interface Res {
  readonly status: number;
  readonly body: string;
}

/** One request on its own connection (so the kernel picks a worker for each). */
function get(port: number, path: string, headers: Record<string, string> = {}): Promise<Res> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, agent: false, headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.setTimeout(10_000, () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

async function status(c: Cluster): Promise<StatusJson> {
  const r = await get(c.admin, '/api/status');
  return JSON.parse(r.body) as StatusJson;
}

async function metric(c: Cluster, series: string): Promise<number> {
  const r = await get(c.admin, '/metrics');
  const line = r.body.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? 0 : Number(line.slice(series.length + 1));
}

async function until<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(20);
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function stopCluster(c: Cluster): Promise<void> {
  if (c.child.exitCode === null && c.child.signalCode === null) {
    c.child.kill('SIGTERM');
    await Promise.race([c.exited, sleep(10_000)]);
    if (c.child.exitCode === null) c.child.kill('SIGKILL');
  }
}

describe('--workers 2 (control process and two workers)', function () {
  this.timeout(60_000);
  let dir: string;
  let registry: string;
  let a: Upstream;
  let b: Upstream;
  let echo: EchoUpstream;
  let tcpPort: number;
  let cluster: Cluster;
  let onlyA: RegistryContent;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cairn-workers-'));
    registry = join(dir, 'routes.yaml');
    a = await startUpstream('a');
    b = await startUpstream('b');
    echo = await echoUpstream('echo');
    tcpPort = await freePort();
    onlyA = {
      services: [
        { name: 'a', instances: [{ id: 'a1', address: '127.0.0.1', port: a.port, tags: ['urlprefix-/a'] }] },
        {
          name: 'echo',
          instances: [
            { id: 'e1', address: '127.0.0.1', port: echo.port, tags: [`urlprefix-:${tcpPort} proto=tcp`] },
          ],
        },
      ],
    };
    await writeRegistry(registry, onlyA);
    cluster = await startCluster(registry, ['--listen', `127.0.0.1:${tcpPort};proto=tcp`]);
  });

  after(async () => {
    await stopCluster(cluster);
    await a.close();
    await b.close();
    await echo.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('both workers serve, /api/status lists them, and /metrics sums their counters', async () => {
    const s0 = await status(cluster);
    expect(s0.workers).to.have.length(2);
    const pids = new Set(s0.workers?.map((w) => w.pid));
    expect(pids.size).to.equal(2);
    for (const w of s0.workers ?? []) {
      expect(w.state).to.equal('listening');
      expect(w.table_version).to.equal(s0.version);
      expect(w.pid).to.not.equal(cluster.child.pid);
    }
    const n = 40;
    const results = await Promise.all(Array.from({ length: n }, () => get(cluster.port, '/a/x')));
    expect(results.map((r) => r.status)).to.deep.equal(Array(n).fill(200));
    // Workers report every second; the kernel spread 40 connections over both of them.
    const s = await until('both workers reporting traffic', 5_000, async () => {
      const st = await status(cluster);
      const served = st.workers?.map((w) => w.requests) ?? [];
      return served.reduce((x, y) => x + y, 0) === n ? st : undefined;
    });
    const served = s.workers?.map((w) => w.requests) ?? [];
    expect(
      served.every((x) => x > 0),
      `requests per worker: ${served.join(', ')}`,
    ).to.equal(true);
    // Prometheus: one series, the sum of both workers' counters.
    expect(await metric(cluster, 'cairn_requests_total{route="/a",service="a",code="2xx"}')).to.equal(n);
    expect(await metric(cluster, 'cairn_request_duration_seconds_count{route="/a",service="a"}')).to.equal(n);
    expect(await metric(cluster, 'cairn_workers')).to.equal(2);
    expect(await metric(cluster, 'cairn_routes')).to.equal(2);
    // The live columns of /api/routes add the workers up too.
    // (the rates and percentiles cover the control's last tick, a second at most behind).
    const row = await until('/api/routes live stats', 5_000, async () => {
      const rows = JSON.parse((await get(cluster.admin, '/api/routes')).body) as {
        src: string;
        stats: { requests_total: number; p50_ms: number | null; req_per_sec_1m: number };
      }[];
      const r = rows.find((x) => x.src === '/a');
      return r !== undefined && r.stats.p50_ms !== null ? r : undefined;
    });
    expect(row.stats.requests_total).to.equal(n);
    expect(row.stats.req_per_sec_1m).to.be.greaterThan(0);
  });

  it('TCP listeners run in the workers too', async () => {
    const before = (await status(cluster)).workers?.map((w) => w.requests) ?? [];
    const n = 20;
    const replies = await Promise.all(
      Array.from(
        { length: n },
        (_, i) =>
          new Promise<string>((resolve, reject) => {
            const s = net.connect(tcpPort, '127.0.0.1', () => s.end(`ping ${i}`));
            let got = '';
            s.setEncoding('utf8').on('data', (d: string) => (got += d));
            s.on('close', () => resolve(got));
            s.on('error', reject);
          }),
      ),
    );
    expect(replies).to.deep.equal(Array.from({ length: n }, (_, i) => `ping ${i}`));
    // Connections count as the TCP route's traffic, reported by whichever worker took them.
    await until('both workers reporting the connections', 5_000, async () => {
      const now = (await status(cluster)).workers?.map((w) => w.requests) ?? [];
      const added = now.map((x, i) => x - (before[i] ?? 0));
      return added.reduce((x, y) => x + y, 0) === n ? true : undefined;
    });
    expect(await metric(cluster, `cairn_tcp_connections_total{route=":${tcpPort}",service="echo"}`)).to.equal(
      n,
    );
  });

  it('a registry change reaches both workers within 1 s', async () => {
    const before = await status(cluster);
    const written = Date.now();
    await writeRegistry(registry, {
      services: [
        ...(onlyA.services ?? []),
        { name: 'b', instances: [{ id: 'b1', address: '127.0.0.1', port: b.port, tags: ['urlprefix-/b'] }] },
      ],
    });
    const s = await until('both workers on the new table', 5_000, async () => {
      const st = await status(cluster);
      if (st.version === before.version) return undefined;
      return st.workers?.every((w) => w.table_version === st.version) === true ? st : undefined;
    });
    const fromWrite = Date.now() - written;
    const fromSwap = Date.now() - Date.parse(s.built_at);
    // Upper bounds (admin polled every 20 ms): file write -> every worker, control swap -> every worker.
    expect(fromWrite, `file write to both workers: ${fromWrite} ms`).to.be.below(1000);
    expect(fromSwap, `control swap to both workers: ${fromSwap} ms`).to.be.below(1000);
    const results = await Promise.all(Array.from({ length: 20 }, () => get(cluster.port, '/b/y')));
    expect(results.map((r) => r.status)).to.deep.equal(Array(20).fill(200));
    expect(results.every((r) => (JSON.parse(r.body) as { upstream: string }).upstream === 'b')).to.equal(
      true,
    );
  });

  it('SIGKILL of a worker under load loses only requests it had in flight; it is restarted', async () => {
    const s0 = await status(cluster);
    const victim = s0.workers?.[0];
    expect(victim?.pid).to.be.a('number');
    const concurrency = 8;
    const deadline = Date.now() + 8_000;
    const maxRequests = 600;
    let sent = 0;
    let ok = 0;
    const failures: string[] = [];
    const client = async () => {
      while (sent < maxRequests && Date.now() < deadline) {
        sent++;
        try {
          // 20 ms upstream time: a worker always has requests in flight when it is killed.
          const r = await get(cluster.port, '/a/load', { 'x-test-delay': '20' });
          if (r.status === 200) ok++;
          else failures.push(`status ${r.status}`);
        } catch (err) {
          failures.push((err as NodeJS.ErrnoException).code ?? (err as Error).message);
        }
      }
    };
    const load = Promise.all(Array.from({ length: concurrency }, client));
    await sleep(400);
    process.kill(victim?.pid as number, 'SIGKILL');
    await load;
    // Every client has at most one request in flight, so at most `concurrency` can be lost.
    expect(failures.length, `failures: ${failures.join(', ')}`).to.be.at.most(concurrency);
    expect(ok + failures.length).to.equal(sent);
    expect(ok).to.be.greaterThan(sent - concurrency - 1);
    const s1 = await until('the killed worker restarted', 10_000, async () => {
      const st = await status(cluster);
      const w = st.workers?.find((x) => x.id === victim?.id);
      return w !== undefined && w.state === 'listening' && w.pid !== victim?.pid ? st : undefined;
    });
    const restarted = s1.workers?.find((x) => x.id === victim?.id);
    expect(restarted?.restarts).to.equal(1);
    expect(restarted?.table_version).to.equal(s1.version);
    expect(await metric(cluster, 'cairn_worker_restarts_total')).to.equal(1);
    // The new worker serves: new connections keep landing on both.
    const after = await Promise.all(Array.from({ length: 30 }, () => get(cluster.port, '/a/z')));
    expect(after.map((r) => r.status)).to.deep.equal(Array(30).fill(200));
    const s2 = await until('the restarted worker reporting traffic', 5_000, async () => {
      const st = await status(cluster);
      const w = st.workers?.find((x) => x.id === victim?.id);
      return w !== undefined && w.requests > 0 ? st : undefined;
    });
    expect(s2.workers?.every((w) => w.requests > 0)).to.equal(true);
    console.log(`      (SIGKILL under load: ${sent} requests, ${failures.length} lost in flight)`);
  });

  it('SIGTERM drains both workers: requests in flight complete, then everything exits', async () => {
    const s = await status(cluster);
    const pids = (s.workers ?? []).map((w) => w.pid as number);
    const slow = Array.from({ length: 8 }, () => get(cluster.port, '/a/slow', { 'x-test-delay': '800' }));
    await until('8 requests in flight at the upstream', 5_000, async () =>
      a.inFlight >= 8 ? true : undefined,
    );
    const t0 = Date.now();
    cluster.child.kill('SIGTERM');
    const results = await Promise.all(slow);
    expect(results.map((r) => r.status)).to.deep.equal(Array(8).fill(200));
    expect(await cluster.exited).to.equal(0);
    expect(Date.now() - t0).to.be.below(5_000 + 3_000);
    for (const pid of pids) expect(alive(pid), `worker ${pid} still running`).to.equal(false);
    // New connections are refused once the workers have closed their listeners.
    const refused = await get(cluster.port, '/a/late').then(
      () => 'answered',
      (err: NodeJS.ErrnoException) => err.code,
    );
    expect(refused).to.equal('ECONNREFUSED');
  });

  it('workers exit when their control process dies', async () => {
    const c = await startCluster(registry);
    try {
      const s = await status(c);
      const pids = (s.workers ?? []).map((w) => w.pid as number);
      c.child.kill('SIGKILL');
      await c.exited;
      await until('the workers gone', 10_000, async () => (pids.some(alive) ? undefined : true));
    } finally {
      await stopCluster(c);
    }
  });
});

describe('--workers 2 with a 10,000-route table', function () {
  this.timeout(60_000);
  let dir: string;
  let registry: string;
  let up: Upstream;
  let cluster: Cluster | undefined;

  const routes = (n: number): RegistryContent => ({
    services: Array.from({ length: n }, (_, i) => ({
      name: `svc${i}`,
      instances: [{ id: `i${i}`, address: '127.0.0.1', port: up.port, tags: [`urlprefix-/svc${i}/`] }],
    })),
  });

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cairn-workers-10k-'));
    registry = join(dir, 'routes.yaml');
    up = await startUpstream('up');
    await writeRegistry(registry, routes(10_000));
  });

  after(async () => {
    if (cluster !== undefined) await stopCluster(cluster);
    await up.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('a change reaches both workers (serialised once, rebuilt and version-checked by each)', async () => {
    const c = await startCluster(registry);
    cluster = c;
    const first = await status(c);
    expect(first.routes).to.equal(10_000);
    const rolledOut = (version: string) =>
      c.logs
        .map((l) => {
          try {
            return JSON.parse(l) as Record<string, unknown>;
          } catch {
            return {};
          }
        })
        .find((j) => j.msg === 'workers: every worker runs the new table' && j.version === version);
    await writeRegistry(registry, routes(10_001));
    const s = await until('the 10,001-route table', 20_000, async () => {
      const st = await status(c);
      return st.routes === 10_001 ? st : undefined;
    });
    const line = await until('both workers on it', 20_000, async () => rolledOut(s.version));
    const workers = (await status(c)).workers ?? [];
    expect(workers.every((w) => w.table_version === s.version)).to.equal(true);
    // Swap in the control to both workers running it: IPC, parse, rebuild, version check, swap.
    expect(line.slowestWorkerMs as number).to.be.below(10_000);
    console.log(
      `      (10,001 routes: ${line.bytes as number} bytes serialised in ${line.serialiseMs as number} ms; ` +
        `IPC + rebuild + swap, slowest worker: ${line.slowestWorkerMs as number} ms, of which rebuild ${line.slowestRebuildMs as number} ms)`,
    );
    const r = await get(c.port, '/svc10000/x');
    expect(r.status).to.equal(200);
  });
});
