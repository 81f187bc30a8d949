// Upstream failures through a real CairnServer: refused connections, resets, header timeouts,
// passive ejection and its limits, unavailable routes, clients that go away mid-response.
//
// Short timeouts and ejection times come from the config keys (--response-timeout, --eject-time).

import http from 'node:http';
import { expect } from 'chai';
import { type Cairn, type CairnOptions, startCairn, waitFor } from './helpers/cairn.ts';
import {
  bodyBytes,
  closeAll,
  refusedPort,
  sha256,
  startUpstream,
  type Upstream,
} from './helpers/upstream.ts';

/** Manual routes: `route add <svc> /path http://127.0.0.1:<port>/` for each port. */
function routesTo(path: string, ports: readonly number[]): string {
  return ports.map((p, i) => `route add svc${i} ${path} http://127.0.0.1:${p}/`).join('\n');
}

/** Target key of each upstream port on the route with `path`. */
function keysByPort(cairn: Cairn, path: string): Map<number, string> {
  const route = cairn.server.controller.current.table.routes.find((r) => r.path === path);
  if (route === undefined) throw new Error(`no route ${path}`);
  return new Map(route.targets.map((t) => [t.url.port, t.key]));
}

function key(keys: Map<number, string>, port: number): string {
  const k = keys.get(port);
  if (k === undefined) throw new Error(`no target on port ${port}`);
  return k;
}

describe('HTTP proxy: upstream failures (real sockets)', function () {
  this.timeout(10_000);

  let ups: Upstream[] = [];
  let cairn: Cairn | undefined;

  async function start(ports: readonly number[], opts: CairnOptions = {}): Promise<Cairn> {
    cairn = await startCairn({ routes: routesTo('/x', ports) }, opts);
    return cairn;
  }

  async function upstreams(...behaviours: Parameters<typeof startUpstream>[1][]): Promise<Upstream[]> {
    const started = await Promise.all(behaviours.map((b, i) => startUpstream(`u${i}`, b)));
    ups.push(...started);
    return started;
  }

  afterEach(async () => {
    await cairn?.stop();
    cairn = undefined;
    await closeAll(ups);
    ups = [];
  });

  it('retries a refused connection on another target: the client sees 200', async () => {
    const [good] = (await upstreams('echo')) as [Upstream];
    const refused = await refusedPort();
    const c = await start([refused, good.port]);
    for (let i = 0; i < 10; i++) {
      const r = await c.fetch(`/x/${i}`);
      expect(r.status, `request ${i}`).to.equal(200);
      expect(r.headers['x-upstream']).to.equal('u0');
    }
    expect(good.requests.length).to.equal(10);
  });

  it('answers 502 with a short plain body when every target refuses', async () => {
    const c = await start([await refusedPort(), await refusedPort()]);
    const r = await c.fetch('/x');
    expect(r.status).to.equal(502);
    expect(String(r.headers['content-type'])).to.match(/^text\/plain/);
    expect(r.text).to.equal('upstream unavailable (ECONNREFUSED)\n');
  });

  it('retries an idempotent GET whose connection was reset before any answer', async () => {
    const [reset, good] = (await upstreams('reset', 'echo')) as [Upstream, Upstream];
    const c = await start([reset.port, good.port]);
    for (let i = 0; i < 4; i++) {
      const r = await c.fetch(`/x/${i}`);
      expect(r.status, `request ${i}`).to.equal(200);
      expect(r.headers['x-upstream']).to.equal('u1');
    }
    // The resetting target did get its share of first attempts.
    expect(reset.requests.length).to.be.at.least(1);
    expect(good.requests.length).to.equal(4);
  });

  it('does not retry a POST whose body was sent before the reset: 502', async () => {
    const [reset, good] = (await upstreams('reset-after-body', 'echo')) as [Upstream, Upstream];
    const c = await start([reset.port, good.port]);
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) {
      const r = await c.fetch(`/x/${i}`, { method: 'POST', body: 'payload-that-must-not-be-sent-twice' });
      statuses.push(r.status);
    }
    const failed = statuses.filter((s) => s === 502).length;
    expect(failed).to.be.at.least(1);
    expect(statuses.filter((s) => s === 200).length).to.equal(4 - failed);
    // Every POST reached exactly one upstream.
    expect(reset.requests.length).to.equal(failed);
    expect(good.requests.length).to.equal(4 - failed);
  });

  it('retries a POST on a refused connection (nothing was sent)', async () => {
    const [good] = (await upstreams('echo')) as [Upstream];
    const c = await start([await refusedPort(), good.port]);
    for (let i = 0; i < 4; i++) {
      const r = await c.fetch(`/x/${i}`, { method: 'POST', body: `body-${i}` });
      expect(r.status, `request ${i}`).to.equal(200);
      expect(JSON.parse(r.text).bodyLength).to.equal(`body-${i}`.length);
    }
  });

  it('retries=0 on a route turns retries off', async () => {
    const [good] = (await upstreams('echo')) as [Upstream];
    const refused = await refusedPort();
    cairn = await startCairn({
      routes: [
        `route add a /x http://127.0.0.1:${refused}/ opts "retries=0"`,
        `route add b /x http://127.0.0.1:${good.port}/ opts "retries=0"`,
      ].join('\n'),
    });
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) statuses.push((await cairn.fetch(`/x/${i}`)).status);
    expect(statuses.filter((s) => s === 502).length).to.be.at.least(1);
    expect(statuses.filter((s) => s === 200).length).to.equal(good.requests.length);
  });

  it('keeps retries within the global budget (20 % extra upstream requests)', async () => {
    const ports = [await refusedPort(), await refusedPort(), await refusedPort(), await refusedPort()];
    const c = await start(ports, { args: ['--retries', '3', '--eject-after', '0'] });
    const keys = [...keysByPort(c, '/x').values()];
    const n = 100;
    for (let i = 0; i < n; i++) expect((await c.fetch(`/x/${i}`)).status).to.equal(502);
    const attempts = keys.reduce((sum, k) => sum + c.server.health.state(k).requests, 0);
    // Without a budget: 4 attempts per request. With it: n + 20 % + the initial allowance (10).
    expect(attempts).to.be.at.most(n * 1.2 + 10 + 1);
    expect(attempts).to.be.above(n);
  });

  it('retries a 1 MB POST on a refused connection with the whole body', async () => {
    const [good] = (await upstreams('echo')) as [Upstream];
    const c = await start([await refusedPort(), good.port]);
    const body = bodyBytes(0, 1 << 20);
    for (let i = 0; i < 2; i++) {
      const r = await c.fetch(`/x/big/${i}`, { method: 'POST', body });
      expect(r.status).to.equal(200);
      expect(JSON.parse(r.text).bodySha256).to.equal(sha256(body));
    }
  });

  it('answers 504 when the upstream does not send headers in time', async () => {
    const [hang] = (await upstreams('hang')) as [Upstream];
    const c = await start([hang.port], { args: ['--response-timeout', '300ms'] });
    const started = Date.now();
    const r = await c.fetch('/x');
    expect(r.status).to.equal(504);
    expect(r.text).to.equal('upstream timeout\n');
    expect(Date.now() - started).to.be.within(250, 3000);
  });

  describe('passive ejection', () => {
    it('ejects a target after five 500s; later requests avoid it', async () => {
      const [bad, good] = (await upstreams({ status: 500 }, 'echo')) as [Upstream, Upstream];
      const c = await start([bad.port, good.port]);
      const badKey = key(keysByPort(c, '/x'), bad.port);
      for (let i = 0; i < 40 && bad.requests.length < 5; i++) await c.fetch(`/x/${i}`);
      expect(bad.requests.length).to.equal(5);
      expect(c.server.health.isEjected(badKey)).to.equal(true);
      for (let i = 0; i < 20; i++) {
        const r = await c.fetch(`/x/after/${i}`);
        expect(r.status).to.equal(200);
      }
      expect(bad.requests.length).to.equal(5);
    });

    it('--eject-after sets the number of consecutive failures', async () => {
      const [bad, good] = (await upstreams({ status: 502 }, 'echo')) as [Upstream, Upstream];
      const c = await start([bad.port, good.port], { args: ['--eject-after', '2'] });
      const badKey = key(keysByPort(c, '/x'), bad.port);
      for (let i = 0; i < 20 && bad.requests.length < 2; i++) await c.fetch(`/x/${i}`);
      expect(c.server.health.isEjected(badKey)).to.equal(true);
      for (let i = 0; i < 10; i++) await c.fetch('/x/after');
      expect(bad.requests.length).to.equal(2);
      expect(good.requests.length).to.be.at.least(10);
    });

    it("never ejects more than half of a route's targets", async () => {
      const failing = await upstreams({ status: 500 }, { status: 500 }, { status: 500 });
      const c = await start(failing.map((u) => u.port));
      const keys = [...keysByPort(c, '/x').values()];
      let maxEjected = 0;
      for (let i = 0; i < 60; i++) {
        const r = await c.fetch(`/x/${i}`);
        // The upstream's own 500, never Cairn's 503: the route keeps serving.
        expect(r.status).to.equal(500);
        expect(r.headers['x-upstream']).to.match(/^u\d$/);
        const ejected = keys.filter((k) => c.server.health.isEjected(k)).length;
        maxEjected = Math.max(maxEjected, ejected);
      }
      expect(maxEjected).to.equal(1);
    });

    it('brings an ejected target back after the backoff', async () => {
      const [bad, good] = (await upstreams({ status: 500 }, 'echo')) as [Upstream, Upstream];
      const c = await start([bad.port, good.port], { args: ['--eject-time', '300ms'] });
      const badKey = key(keysByPort(c, '/x'), bad.port);
      for (let i = 0; i < 40 && !c.server.health.isEjected(badKey); i++) await c.fetch(`/x/${i}`);
      expect(c.server.health.isEjected(badKey)).to.equal(true);
      const seen = bad.requests.length;
      bad.behaviour = 'echo'; // recovered while ejected
      // While ejected: no traffic to it.
      for (let i = 0; i < 5; i++) expect((await c.fetch('/x/ejected')).headers['x-upstream']).to.equal('u1');
      expect(bad.requests.length).to.equal(seen);
      await waitFor(() => c.server.health.isAvailable(badKey), 2000, 'backoff to end');
      const after: string[] = [];
      for (let i = 0; i < 4; i++) after.push(String((await c.fetch('/x/back')).headers['x-upstream']));
      expect(after).to.include('u0');
      expect(bad.requests.length).to.be.above(seen);
      expect(c.server.health.state(badKey).ejections).to.equal(0); // a success resets the backoff
    });
  });

  it('cuts the client connection when the upstream dies mid-response (no hang)', async () => {
    const [dying] = (await upstreams((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '100000' });
      res.write('partial body\n');
      setTimeout(() => res.socket?.destroy(), 50);
    })) as [Upstream];
    const c = await start([dying.port]);
    const outcome = await c.fetch('/x/dying').then(
      (r) => `complete ${r.status} ${r.body.length}`,
      (e: Error) => `cut: ${e.message}`,
    );
    expect(outcome).to.match(/^cut: /);
    await waitFor(() => c.server.proxy.active === 0, 2000, 'in-flight 0');
    dying.behaviour = 'echo';
    expect((await c.fetch('/x/next')).status).to.equal(200);
  });

  it('answers 503 when every target of the route is unavailable', async () => {
    const [u0, u1] = (await upstreams('echo', 'echo')) as [Upstream, Upstream];
    const c = await start([u0.port, u1.port]);
    const keys = [...keysByPort(c, '/x').values()];
    // What an active health check (`check=`) does when every instance fails it.
    for (const k of keys) c.server.health.state(k).checkOk = false;
    const r = await c.fetch('/x');
    expect(r.status).to.equal(503);
    expect(r.text).to.equal('no healthy target\n');
    expect(u0.requests.length + u1.requests.length).to.equal(0);
    for (const k of keys) c.server.health.state(k).checkOk = true;
    expect((await c.fetch('/x')).status).to.equal(200);
  });

  describe('client disconnects', () => {
    it('mid-response: aborts the upstream request, no crash, in-flight back to 0', async () => {
      const [slow] = (await upstreams((_req, res) => {
        res.writeHead(200, { 'content-type': 'text/plain' });
        const timer = setInterval(() => res.write('tick\n'), 20);
        res.once('close', () => clearInterval(timer));
      })) as [Upstream];
      const c = await start([slow.port]);
      const k = key(keysByPort(c, '/x'), slow.port);
      await new Promise<void>((resolve, reject) => {
        const req = http.get({ host: '127.0.0.1', port: c.port, path: '/x/stream', agent: false }, (res) => {
          res.once('data', () => {
            expect(c.server.proxy.active).to.equal(1);
            req.destroy();
            resolve();
          });
        });
        req.on('error', (e) => ((e as NodeJS.ErrnoException).code === 'ECONNRESET' ? undefined : reject(e)));
      });
      await waitFor(() => slow.aborted === 1, 2000, 'upstream request aborted');
      await waitFor(
        () => c.server.proxy.active === 0 && c.server.health.inFlight(k) === 0,
        2000,
        'in-flight 0',
      );
      slow.behaviour = 'echo';
      expect((await c.fetch('/x/next')).status).to.equal(200);
    });

    it('during the upload: aborts the upstream request, in-flight back to 0', async () => {
      const [sink] = (await upstreams('echo')) as [Upstream];
      const c = await start([sink.port]);
      await new Promise<void>((resolve) => {
        const req = http.request({
          host: '127.0.0.1',
          port: c.port,
          path: '/x/upload',
          method: 'POST',
          agent: false,
          headers: { 'content-length': String(1 << 20) },
        });
        req.on('error', () => resolve());
        req.write(bodyBytes(0, 64 * 1024));
        // Half the body is at the upstream: hang up.
        void waitFor(() => sink.inFlight === 1, 2000, 'upload at the upstream').then(() => req.destroy());
      });
      await waitFor(() => sink.aborted === 1, 2000, 'upstream request aborted');
      await waitFor(() => c.server.proxy.active === 0, 2000, 'in-flight 0');
      // The client went away: that is not the upstream's failure.
      expect(c.server.health.state(key(keysByPort(c, '/x'), sink.port)).failures).to.equal(0);
      expect((await c.fetch('/x/next')).status).to.equal(200);
    });

    it('while waiting for the upstream headers: aborts the upstream request', async () => {
      const [slow] = (await upstreams('echo')) as [Upstream];
      const c = await start([slow.port]);
      const k = key(keysByPort(c, '/x'), slow.port);
      await new Promise<void>((resolve) => {
        const req = http.get({
          host: '127.0.0.1',
          port: c.port,
          path: '/x/wait',
          agent: false,
          headers: { 'x-test-delay': '5000' },
        });
        req.on('error', () => resolve());
        // Give the request time to reach the upstream, then hang up.
        void waitFor(() => slow.inFlight === 1, 2000, 'request at the upstream').then(() => req.destroy());
      });
      await waitFor(() => slow.aborted === 1, 2000, 'upstream request aborted');
      await waitFor(
        () => c.server.proxy.active === 0 && c.server.health.inFlight(k) === 0,
        2000,
        'in-flight 0',
      );
      expect((await c.fetch('/x/next')).status).to.equal(200);
    });
  });
});
