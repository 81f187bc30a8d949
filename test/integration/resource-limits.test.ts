// Resource limits: --max-per-target (concurrent upstream requests per target, 503 beyond) and
// --max-conns on every HTTP listener kind (lean, node:http, TLS). TCP listeners' maxconn= is
// tested in tcp-proxy.test.ts.

import http from 'node:http';
import net from 'node:net';
import tls from 'node:tls';
import { expect } from 'chai';
import { request } from 'undici';
import { type Cairn, startCairn } from './helpers/cairn.ts';
import { type Upstream, closeAll, startUpstream } from './helpers/upstream.ts';
import { makeCerts } from './tcp-helpers.ts';

/** An upstream that holds every response until release() is called. */
async function holdingUpstream(name: string): Promise<{ up: Upstream; release(): void }> {
  const held: http.ServerResponse[] = [];
  let open = false;
  const up = await startUpstream(name, (_req, res) => {
    if (open) res.end(name);
    else held.push(res);
  });
  return {
    up,
    release: () => {
      open = true;
      for (const r of held.splice(0)) r.end(name);
    },
  };
}

async function get(
  cairn: Cairn,
  path: string,
): Promise<{ status: number; text: string; retryAfter: unknown }> {
  const r = await request(`${cairn.origin}${path}`, { headers: { host: 'x' }, reset: true });
  return { status: r.statusCode, text: await r.body.text(), retryAfter: r.headers['retry-after'] };
}

async function until(cond: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('--max-per-target', function () {
  this.timeout(20_000);
  let a: { up: Upstream; release(): void };
  let b: { up: Upstream; release(): void };
  let cairn: Cairn;

  before(async () => {
    a = await holdingUpstream('a');
    b = await holdingUpstream('b');
    cairn = await startCairn(
      {
        routes: [
          `route add s /held http://127.0.0.1:${a.up.port}/`,
          `route add s /held http://127.0.0.1:${b.up.port}/`,
        ].join('\n'),
      },
      { args: ['--max-per-target', '2', '--strategy', 'rr'] },
    );
  });

  after(async () => {
    await cairn?.stop(0);
    await closeAll([a?.up, b?.up]);
  });

  it("holds at most N requests per target; beyond every target's limit it answers 503 at once", async () => {
    const held = Array.from({ length: 4 }, () => get(cairn, '/held'));
    await until(() => a.up.inFlight + b.up.inFlight === 4);
    expect(a.up.inFlight).to.equal(2);
    expect(b.up.inFlight).to.equal(2);
    const started = Date.now();
    const over = await get(cairn, '/held');
    expect(over.status).to.equal(503);
    expect(over.text).to.equal('upstream busy (--max-per-target)\n');
    expect(over.retryAfter).to.equal('1');
    expect(Date.now() - started).to.be.below(1000);
    a.release();
    b.release();
    const done = await Promise.all(held);
    expect(done.map((r) => r.status)).to.deep.equal([200, 200, 200, 200]);
    // the slots are free again
    expect((await get(cairn, '/held')).status).to.equal(200);
    await until(() => cairn.server.proxy.active === 0);
  });
});

/** Opens `n` connections and reports, per connection, whether it was accepted and kept open. */
async function openConnections(
  connect: () => net.Socket | tls.TLSSocket,
  n: number,
  readyEvent: 'connect' | 'secureConnect',
): Promise<{ sockets: net.Socket[]; closedEarly: number }> {
  const sockets: net.Socket[] = [];
  let closedEarly = 0;
  for (let i = 0; i < n; i++) {
    const s = connect();
    s.on('error', () => {});
    sockets.push(s);
    await new Promise<void>((resolve) => {
      s.once(readyEvent, () => resolve());
      s.once('close', () => resolve());
    });
  }
  // refused connections are closed by the server right after accept
  await new Promise((r) => setTimeout(r, 300));
  for (const s of sockets) if (s.destroyed || s.readyState === 'closed') closedEarly++;
  return { sockets, closedEarly };
}

describe('--max-conns on every HTTP listener kind', function () {
  this.timeout(20_000);
  let up: Upstream;

  before(async () => {
    up = await startUpstream('echo');
  });
  after(async () => {
    await closeAll([up]);
  });

  for (const engine of ['lean', 'node'] as const) {
    it(`plain HTTP (--http1-engine ${engine}): connections beyond the limit are closed`, async () => {
      const cairn = await startCairn(
        { routes: `route add s / http://127.0.0.1:${up.port}/` },
        { args: ['--http1-engine', engine, '--max-conns', '3'] },
      );
      try {
        const { sockets, closedEarly } = await openConnections(
          () => net.connect(cairn.port, '127.0.0.1'),
          5,
          'connect',
        );
        expect(closedEarly).to.equal(2);
        for (const s of sockets) s.destroy();
        await until(() => cairn.server.clientConnections() === 0);
        expect((await get(cairn, '/after')).status).to.equal(200);
      } finally {
        await cairn.stop(0);
      }
    });
  }

  it('TLS (proto=https, maxconn= on the listener): connections beyond the limit are closed', async () => {
    const certs = makeCerts(['limits.test']);
    const c = certs.cert('limits.test');
    const cairn = await startCairn(
      { routes: `route add s / http://127.0.0.1:${up.port}/` },
      { args: ['--listen', `127.0.0.1:0;proto=https;cert=${c.certFile};key=${c.keyFile};maxconn=2`] },
    );
    try {
      const port = cairn.server.addresses()[1]?.port ?? 0;
      const { sockets, closedEarly } = await openConnections(
        () => tls.connect({ port, host: '127.0.0.1', servername: 'limits.test', rejectUnauthorized: false }),
        4,
        'secureConnect',
      );
      expect(closedEarly).to.equal(2);
      for (const s of sockets) s.destroy();
    } finally {
      await cairn.stop(0);
      certs.remove();
    }
  });
});
