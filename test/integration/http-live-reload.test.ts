// Live reload and graceful shutdown over real sockets: the registry file is rewritten while client
// loops keep sending requests, and CairnServer.stop() runs while a slow request is in flight.

import net from 'node:net';
import { expect } from 'chai';
import { Agent, request } from 'undici';
import {
  type Cairn,
  type RegistryContent,
  type RegistryInstance,
  startCairn,
  waitFor,
} from './helpers/cairn.ts';
import { closeAll, startUpstream, type Upstream } from './helpers/upstream.ts';

interface Sample {
  readonly start: number;
  readonly end: number;
  readonly status: number;
  readonly upstream: string;
}

/** Service "app" on the given instances; u1 also serves /slow1 so a slow request lands on it. */
function appRegistry(instances: readonly RegistryInstance[]): RegistryContent {
  return { services: [{ name: 'app', instances }] };
}

function inst(u: Upstream, weight = 1, extraTags: readonly string[] = []): RegistryInstance {
  return { id: u.name, address: '127.0.0.1', port: u.port, weight, tags: ['urlprefix-/app', ...extraTags] };
}

/** Whether connecting to the port is refused (nothing listens any more). */
function connectRefused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(false);
    });
    s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code === 'ECONNREFUSED'));
  });
}

describe('HTTP proxy: live reload under traffic (real sockets)', function () {
  this.timeout(10_000);

  let ups: Upstream[] = [];
  let cairn: Cairn | undefined;

  afterEach(async () => {
    await cairn?.stop();
    cairn = undefined;
    await closeAll(ups);
    ups = [];
  });

  it('applies every edit within 1 s, ignores a broken one, drains removed targets, fails no request', async () => {
    ups = await Promise.all(['u1', 'u2', 'u3'].map((n) => startUpstream(n)));
    const [u1, u2, u3] = ups as [Upstream, Upstream, Upstream];
    const c = await startCairn(appRegistry([inst(u1, 1, ['urlprefix-/slow1']), inst(u2)]));
    cairn = c;

    // Client loops: 4 concurrent workers, bounded by count and time.
    const samples: Sample[] = [];
    const failures: string[] = [];
    let stop = false;
    const deadline = Date.now() + 7000;
    const worker = async (): Promise<void> => {
      while (!stop && samples.length < 20_000 && Date.now() < deadline) {
        const start = Date.now();
        try {
          const r = await c.fetch('/app/loop');
          const upstream = String(r.headers['x-upstream']);
          samples.push({ start, end: Date.now(), status: r.status, upstream });
          if (r.status !== 200) failures.push(`${r.status} ${r.text.trim()}`);
        } catch (e) {
          failures.push(String(e));
        }
      }
    };
    const loops = Promise.all([worker(), worker(), worker(), worker()]);
    const servedSince = (t: number, name: string): boolean =>
      samples.some((s) => s.start >= t && s.upstream === name);
    /** Waits until `cond` holds, at most 1 s after the edit at `t0`. */
    const within1s = (t0: number, cond: () => boolean, what: string): Promise<void> =>
      waitFor(cond, Math.max(0, 1000 - (Date.now() - t0)), `${what} within 1 s of the edit`);

    try {
      await waitFor(() => servedSince(0, 'u1') && servedSince(0, 'u2'), 2000, 'traffic on u1 and u2');

      // 1. Add a target.
      let t0 = Date.now();
      await c.update(appRegistry([inst(u1, 1, ['urlprefix-/slow1']), inst(u2), inst(u3)]));
      await within1s(t0, () => servedSince(t0, 'u3'), 'u3 serving');

      // 2. Change weights: u3 gets 3 of every 5 picks.
      t0 = Date.now();
      await c.update(appRegistry([inst(u1, 1, ['urlprefix-/slow1']), inst(u2), inst(u3, 3)]));
      const reweighted = Date.now();
      expect(reweighted - t0, 'weight change live').to.be.below(1000);
      await waitFor(() => samples.filter((s) => s.start >= reweighted).length >= 200, 3000, '200 requests');
      const after = samples.filter((s) => s.start >= reweighted).slice(0, 200);
      const share = after.filter((s) => s.upstream === 'u3').length / after.length;
      expect(share, 'u3 share after weight 3:1:1').to.be.within(0.5, 0.7);

      // 3. Remove u1 while a slow request is in flight on it.
      const slow = c.fetch('/slow1/slow', { headers: { 'x-test-delay': '800' } });
      await waitFor(() => u1.requests.some((r) => r.url === '/slow1/slow'), 2000, 'slow request at u1');
      expect(c.server.upstreams.size).to.equal(3);
      t0 = Date.now();
      await c.update(appRegistry([inst(u2), inst(u3, 3)]));
      const removed = Date.now();
      expect(removed - t0, 'removal live').to.be.below(1000);
      // Its pool left the table at once (closed gracefully: the slow request still finishes).
      expect(c.server.upstreams.size).to.equal(2);
      const slowResponse = await slow;
      expect(slowResponse.status, 'drained request').to.equal(200);
      expect(slowResponse.headers['x-upstream']).to.equal('u1');
      await waitFor(() => u1.openConnections === 0, 2000, "u1's pool to close its connections");
      expect(samples.filter((s) => s.start >= removed && s.upstream === 'u1')).to.deep.equal([]);

      // 4. A broken edit is reported and ignored: the last good table keeps serving.
      const version = c.server.controller.current.table.version;
      t0 = Date.now();
      await c.writeRaw('services:\n  - name: app\n    instances: [ {id: u1, port: \n');
      await within1s(t0, () => c.registryError() !== '', 'registry error reported');
      const broken = Date.now();
      await waitFor(() => samples.filter((s) => s.start >= broken).length >= 50, 3000, '50 requests');
      expect(c.server.controller.current.table.version).to.equal(version);
      const servedBy = new Set(samples.filter((s) => s.start >= broken).map((s) => s.upstream));
      expect([...servedBy].sort()).to.deep.equal(['u2', 'u3']);

      // 5. A good edit again: u1 is back.
      t0 = Date.now();
      await c.update(appRegistry([inst(u1), inst(u2), inst(u3)]));
      await within1s(t0, () => servedSince(t0, 'u1'), 'u1 serving again');
      expect(c.registryError()).to.equal('');
      expect(c.server.upstreams.size).to.equal(3);
    } finally {
      stop = true;
      await loops;
    }
    expect(failures).to.deep.equal([]);
    expect(samples.length).to.be.above(200);
  });
});

describe('HTTP proxy: graceful shutdown (real sockets)', function () {
  this.timeout(10_000);

  let up: Upstream | undefined;
  let cairn: Cairn | undefined;

  afterEach(async () => {
    await cairn?.stop();
    cairn = undefined;
    await up?.close();
    up = undefined;
  });

  it('stop() finishes the in-flight request, refuses new connections, then resolves', async () => {
    up = await startUpstream('slow');
    const u = up;
    const c = await startCairn(appRegistry([inst(u)]));
    cairn = c;
    // An idle keep-alive client connection must not hold the shutdown up.
    expect((await c.fetch('/app/warm')).status).to.equal(200);

    const agent = new Agent();
    let slowDoneAt = 0;
    const slow = request(`${c.origin}/app/slow`, {
      dispatcher: agent,
      headers: { 'x-test-delay': '1000' },
    }).then(async (r) => {
      const body = await r.body.text();
      slowDoneAt = Date.now();
      return { status: r.statusCode, body };
    });
    try {
      await waitFor(() => u.inFlight === 1, 2000, 'slow request at the upstream');
      const t0 = Date.now();
      let stoppedAt = 0;
      const stopping = c.stopServer(5000).then(() => (stoppedAt = Date.now()));

      expect(await connectRefused(c.port), 'new connection refused').to.equal(true);
      const r = await slow;
      expect(r.status).to.equal(200);
      expect(JSON.parse(r.body).url).to.equal('/app/slow');
      await stopping;
      expect(stoppedAt).to.be.at.least(slowDoneAt);
      expect(stoppedAt - t0).to.be.below(3000);
      expect(c.server.proxy.active).to.equal(0);
    } finally {
      await agent.destroy();
    }
  });

  it('stop() gives up on a request that outlives the shutdown wait', async () => {
    up = await startUpstream('hang', 'hang');
    const u = up;
    const c = await startCairn(appRegistry([inst(u)]));
    cairn = c;
    const agent = new Agent();
    const hung = request(`${c.origin}/app/hang`, { dispatcher: agent }).then(
      () => 'answered',
      () => 'cut',
    );
    try {
      await waitFor(() => u.inFlight === 1, 2000, 'request at the upstream');
      const t0 = Date.now();
      await c.stopServer(300);
      expect(Date.now() - t0).to.be.within(250, 2000);
      expect(await hung).to.equal('cut');
    } finally {
      await agent.destroy();
    }
  });
});
