// The lean HTTP/1.1 upstream client (lib/proxy/h1/lean-pool.ts) against real upstream servers on
// port 0: keep-alive reuse (counted upstream connections), bodies both ways with backpressure,
// bodyless and close-delimited responses, Connection: close, the stale keep-alive race, every
// timeout, the connection limit, graceful close, DNS through the cache and 1xx responses. Each
// failure must carry the error code Exchange classifies (retries, ejection, 502/504).

import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import net, { type AddressInfo, type LookupFunction } from 'node:net';
import { Readable } from 'node:stream';
import { expect } from 'chai';
import { Pool } from 'undici';
import type { RouteTarget } from '../../routing/types.ts';
import { DnsCache } from '../../lib/proxy/dns-cache.ts';
import {
  LeanPool,
  type LeanPoolOptions,
  type UpstreamHandler,
  type UpstreamRequest,
} from '../../lib/proxy/h1/lean-pool.ts';
import { Upstreams } from '../../lib/proxy/upstreams.ts';
import { type Cairn, startCairn } from './helpers/cairn.ts';
import { bodyBytes, type Echo, sha256, startUpstream, type Upstream } from './helpers/upstream.ts';

interface Result {
  status: number;
  informational: number[];
  headers: Map<string, string>;
  body: Buffer;
  error: (Error & { code?: string }) | undefined;
}

/** A handler that collects the response (or error) and resolves once the exchange is over. */
function collect(opts: { pauseFirstMs?: number } = {}): { handler: UpstreamHandler; done: Promise<Result> } {
  const r: Result = {
    status: 0,
    informational: [],
    headers: new Map(),
    body: Buffer.alloc(0),
    error: undefined,
  };
  const chunks: Buffer[] = [];
  let resolve!: (r: Result) => void;
  const done = new Promise<Result>((res) => (resolve = res));
  let paused = false;
  const handler: UpstreamHandler = {
    onConnect() {},
    onHeaders(status, raw, resume) {
      if (status < 200) {
        r.informational.push(status);
        return true;
      }
      r.status = status;
      for (let i = 0; i + 1 < raw.length; i += 2)
        r.headers.set(String(raw[i]).toLowerCase(), String(raw[i + 1]));
      if (opts.pauseFirstMs !== undefined && !paused) {
        paused = true;
        setTimeout(resume, opts.pauseFirstMs);
        return false;
      }
      return true;
    },
    onData(chunk) {
      chunks.push(chunk);
      return true;
    },
    onComplete() {
      r.body = Buffer.concat(chunks);
      resolve(r);
    },
    onError(err) {
      r.error = err;
      r.body = Buffer.concat(chunks);
      resolve(r);
    },
  };
  return { handler, done };
}

function send(
  pool: LeanPool,
  req: Partial<UpstreamRequest> = {},
  opts: { pauseFirstMs?: number } = {},
): Promise<Result> {
  const c = collect(opts);
  pool.dispatch({ path: '/', method: 'GET', headers: ['host', 'upstream.test'], ...req }, c.handler);
  return c.done;
}

const fast: LeanPoolOptions = {
  connectTimeoutMs: 2_000,
  headersTimeoutMs: 5_000,
  bodyTimeoutMs: 0,
  keepAliveTimeoutMs: 30_000,
};

/** A real upstream that counts the TCP connections it accepted. */
interface Counted {
  readonly port: number;
  connections: number;
  readonly sockets: Set<net.Socket>;
  close(): Promise<void>;
}

async function httpUpstream(handler: http.RequestListener): Promise<Counted> {
  const server = http.createServer({ keepAliveTimeout: 60_000 }, handler);
  return listen(server);
}

/** A raw TCP upstream: `onData(socket, data, n)` answers by hand (n = request number on the socket). */
async function rawUpstream(onData: (socket: net.Socket, data: Buffer, n: number) => void): Promise<Counted> {
  const server = net.createServer((socket) => {
    let n = 0;
    socket.on('data', (d) => onData(socket, d, n++));
    socket.on('error', () => {});
  });
  return listen(server);
}

async function listen(server: net.Server): Promise<Counted> {
  const sockets = new Set<net.Socket>();
  const c = {
    port: 0,
    connections: 0,
    sockets,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
  server.on('connection', (s: net.Socket) => {
    c.connections++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  c.port = (server.address() as AddressInfo).port;
  return c;
}

async function waitFor(cond: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** A distinct response body per n: 64 KB-1 MB (or 6 MB and more when n >= 10000) of bytes that depend on n. */
function bigBody(n: number): Buffer {
  const len = n >= 10_000 ? 6 * 1024 * 1024 + n : 64 * 1024 + ((n * 7919) % (960 * 1024));
  const b = Buffer.allocUnsafe(len);
  for (let i = 0; i < len; i++) b[i] = (i * 31 + n * 17 + (i >> 8)) & 0xff;
  return b;
}

describe('lean upstream pool (real sockets)', function () {
  this.timeout(15_000);
  const cleanups: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });
  function pool(port: number, opts: Partial<LeanPoolOptions> = {}): LeanPool {
    const p = new LeanPool('127.0.0.1', port, { ...fast, ...opts });
    cleanups.push(() => void p.close());
    return p;
  }
  async function upstream(u: Promise<Counted>): Promise<Counted> {
    const c = await u;
    cleanups.push(() => c.close());
    return c;
  }

  it('reuses one keep-alive connection for sequential requests (connections counted upstream)', async () => {
    const up = await upstream(httpUpstream((req, res) => res.end(`hello ${req.url}`)));
    const p = pool(up.port);
    for (let i = 0; i < 50; i++) {
      const r = await send(p, { path: `/n${i}` });
      expect(r.error).to.equal(undefined);
      expect(r.status).to.equal(200);
      expect(r.body.toString()).to.equal(`hello /n${i}`);
    }
    expect(up.connections).to.equal(1);
    expect(p.opened).to.equal(1);
    expect(p.idleConnections).to.equal(1);
  });

  it('opens one connection per concurrent request and reuses them afterwards', async () => {
    const up = await upstream(httpUpstream((_req, res) => setTimeout(() => res.end('ok'), 20)));
    const p = pool(up.port);
    for (let round = 0; round < 3; round++) {
      const rs = await Promise.all(Array.from({ length: 8 }, () => send(p)));
      for (const r of rs) expect(r.status).to.equal(200);
    }
    expect(up.connections).to.equal(8);
  });

  it('never opens more than `connections` sockets; the rest wait in the queue', async () => {
    let active = 0;
    let peak = 0;
    const up = await upstream(
      httpUpstream((_req, res) => {
        active++;
        peak = Math.max(peak, active);
        setTimeout(() => {
          active--;
          res.end('ok');
        }, 20);
      }),
    );
    const p = pool(up.port, { connections: 2 });
    const rs = await Promise.all(Array.from({ length: 10 }, () => send(p)));
    for (const r of rs) expect(r.status).to.equal(200);
    expect(up.connections).to.equal(2);
    expect(peak).to.be.at.most(2);
  });

  it('streams a 4 MB content-length request body with backpressure', async () => {
    const up = await upstream(
      httpUpstream((req, res) => {
        const h = createHash('sha256');
        let n = 0;
        // A slow reader: pauses now and then so the proxy side must wait for 'drain'.
        req.on('data', (d: Buffer) => {
          h.update(d);
          n += d.length;
          req.pause();
          setTimeout(() => req.resume(), 1);
        });
        req.on('end', () => res.end(`${n} ${h.digest('hex')} ${req.headers['content-length']}`));
      }),
    );
    const p = pool(up.port);
    const data = randomBytes(4 * 1024 * 1024);
    const body = Readable.from(
      (function* () {
        for (let i = 0; i < data.length; i += 65536) yield data.subarray(i, i + 65536);
      })(),
    );
    const r = await send(p, {
      method: 'POST',
      headers: ['host', 'x', 'content-length', String(data.length)],
      body,
    });
    expect(r.error).to.equal(undefined);
    expect(r.body.toString()).to.equal(`${data.length} ${sha(data)} ${data.length}`);
    // The socket is reused after a body request too.
    expect((await send(p)).status).to.equal(200);
    expect(up.connections).to.equal(1);
  });

  it('sends a body of unknown length chunked', async () => {
    const up = await upstream(
      httpUpstream((req, res) => {
        const parts: Buffer[] = [];
        req.on('data', (d: Buffer) => parts.push(d));
        req.on('end', () => res.end(`${req.headers['transfer-encoding']} ${sha(Buffer.concat(parts))}`));
      }),
    );
    const p = pool(up.port);
    const data = randomBytes(300_000);
    const body = Readable.from([
      data.subarray(0, 1),
      Buffer.alloc(0),
      data.subarray(1, 200_000),
      data.subarray(200_000),
    ]);
    const r = await send(p, { method: 'PUT', body });
    expect(r.body.toString()).to.equal(`chunked ${sha(data)}`);
  });

  it('sends content-length: 0 for a POST without body', async () => {
    const up = await upstream(httpUpstream((req, res) => res.end(`${req.headers['content-length']}`)));
    const r = await send(pool(up.port), { method: 'POST' });
    expect(r.body.toString()).to.equal('0');
  });

  it('adds Host when the request has none', async () => {
    const up = await upstream(httpUpstream((req, res) => res.end(`${req.headers.host}`)));
    const r = await send(pool(up.port), { headers: [] });
    expect(r.body.toString()).to.equal(`127.0.0.1:${up.port}`);
  });

  it('handles HEAD, 204 and 304 responses without a body and keeps the socket', async () => {
    const up = await upstream(
      httpUpstream((req, res) => {
        if (req.url === '/204') res.writeHead(204).end();
        else if (req.url === '/304') res.writeHead(304, { etag: '"x"' }).end();
        else
          res
            .writeHead(200, { 'content-length': '1000', 'content-type': 'text/plain' })
            .end(req.method === 'HEAD' ? undefined : 'x'.repeat(1000));
      }),
    );
    const p = pool(up.port);
    const head = await send(p, { method: 'HEAD' });
    expect(head.status).to.equal(200);
    expect(head.headers.get('content-length')).to.equal('1000');
    expect(head.body.length).to.equal(0);
    expect((await send(p, { path: '/204' })).status).to.equal(204);
    expect((await send(p, { path: '/304' })).status).to.equal(304);
    const full = await send(p);
    expect(full.body.length).to.equal(1000);
    expect(up.connections).to.equal(1);
  });

  it('reads a close-delimited response to the end, then uses a new socket', async () => {
    const body = 'y'.repeat(70_000);
    const up = await upstream(
      rawUpstream((s) => {
        s.write('HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\n');
        s.write(body.slice(0, 1000));
        setTimeout(() => s.end(body.slice(1000)), 20);
      }),
    );
    const p = pool(up.port);
    const r = await send(p);
    expect(r.error).to.equal(undefined);
    expect(r.body.toString()).to.equal(body);
    const r2 = await send(p);
    expect(r2.body.length).to.equal(body.length);
    expect(up.connections).to.equal(2);
  });

  it('honours Connection: close from the upstream (next request on a new socket)', async () => {
    const up = await upstream(
      httpUpstream((_req, res) => {
        res.setHeader('connection', 'close');
        res.end('bye');
      }),
    );
    const p = pool(up.port);
    for (let i = 0; i < 3; i++) expect((await send(p)).body.toString()).to.equal('bye');
    expect(up.connections).to.equal(3);
  });

  it('retries once on a fresh socket when a reused keep-alive socket dies before answering (the stale-socket race)', async () => {
    const up = await upstream(
      rawUpstream((s, _d, n) => {
        // First request on each socket answered keep-alive; the second one is dropped unanswered,
        // as a server does that closes an idle connection just as the request arrives.
        if (n === 0) s.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok');
        else s.destroy();
      }),
    );
    const p = pool(up.port);
    expect((await send(p)).status).to.equal(200);
    const r = await send(p);
    expect(r.error).to.equal(undefined);
    expect(r.status).to.equal(200);
    expect(up.connections).to.equal(2);
  });

  it('does not retry a fresh socket that dies before answering (the error reaches the handler)', async () => {
    const up = await upstream(rawUpstream((s) => s.destroy()));
    const r = await send(pool(up.port));
    expect(r.error?.code).to.be.oneOf(['UND_ERR_SOCKET', 'ECONNRESET', 'EPIPE']);
    expect(up.connections).to.equal(1);
  });

  it('reports a refused connection as ECONNREFUSED', async () => {
    const probe = await listen(net.createServer());
    const port = probe.port;
    await probe.close();
    const r = await send(pool(port));
    expect(r.error?.code).to.equal('ECONNREFUSED');
  });

  it('times out a connect that never completes (UND_ERR_CONNECT_TIMEOUT)', async () => {
    // A lookup that never answers keeps the socket connecting, like an unreachable host.
    const never: LookupFunction = () => {};
    // (A name, not an IP: net skips the lookup for IP literals.)
    const p = new LeanPool('unreachable.test', 1, { ...fast, connectTimeoutMs: 150, lookup: never });
    cleanups.push(() => void p.close());
    const t0 = Date.now();
    const r = await new Promise<Result>((resolve) => {
      const c = collect();
      p.dispatch({ path: '/', method: 'GET', headers: [] }, c.handler);
      void c.done.then(resolve);
    });
    expect(r.error?.code).to.equal('UND_ERR_CONNECT_TIMEOUT');
    expect(Date.now() - t0).to.be.within(140, 2000);
  });

  it('times out response headers (UND_ERR_HEADERS_TIMEOUT)', async () => {
    const up = await upstream(rawUpstream(() => {}));
    const t0 = Date.now();
    const r = await send(pool(up.port, { headersTimeoutMs: 200 }));
    expect(r.error?.code).to.equal('UND_ERR_HEADERS_TIMEOUT');
    expect(Date.now() - t0).to.be.within(190, 3000);
  });

  it('times out a stalled response body (UND_ERR_BODY_TIMEOUT) but not a paused one', async () => {
    const up = await upstream(
      rawUpstream((s) => {
        s.write('HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc');
      }),
    );
    const r = await send(pool(up.port, { bodyTimeoutMs: 200 }));
    expect(r.status).to.equal(200);
    expect(r.error?.code).to.equal('UND_ERR_BODY_TIMEOUT');
    expect(r.body.toString()).to.equal('abc');

    const up2 = await upstream(httpUpstream((_req, res) => res.end('whole body')));
    const r2 = await send(pool(up2.port, { bodyTimeoutMs: 100 }), {}, { pauseFirstMs: 400 });
    expect(r2.error).to.equal(undefined);
    expect(r2.body.toString()).to.equal('whole body');
  });

  it('reports an upstream reset mid-body after the headers', async () => {
    const up = await upstream(
      rawUpstream((s) => {
        s.write('HTTP/1.1 200 OK\r\ncontent-length: 100000\r\n\r\npartial');
        setTimeout(() => s.resetAndDestroy(), 30);
      }),
    );
    const r = await send(pool(up.port));
    expect(r.status).to.equal(200);
    expect(r.error?.code).to.be.oneOf(['ECONNRESET', 'UND_ERR_SOCKET']);
  });

  it('answers a malformed response with a parse error, not a crash', async () => {
    const up = await upstream(rawUpstream((s) => s.end('NOT HTTP AT ALL\r\n\r\n')));
    const r = await send(pool(up.port));
    expect(r.error).to.not.equal(undefined);
    expect(r.error?.code).to.match(/^HPE_/);
  });

  it('closes idle sockets after the keep-alive timeout', async () => {
    const up = await upstream(httpUpstream((_req, res) => res.end('ok')));
    const p = pool(up.port, { keepAliveTimeoutMs: 150 });
    expect((await send(p)).status).to.equal(200);
    expect(p.connections).to.equal(1);
    await waitFor(() => p.connections === 0 && up.sockets.size === 0);
    expect((await send(p)).status).to.equal(200);
    expect(up.connections).to.equal(2);
  });

  it('drops an idle socket the upstream closed, and uses a new one', async () => {
    const up = await upstream(httpUpstream((_req, res) => res.end('ok')));
    const p = pool(up.port);
    expect((await send(p)).status).to.equal(200);
    for (const s of up.sockets) s.end();
    await waitFor(() => p.connections === 0);
    expect((await send(p)).status).to.equal(200);
    expect(up.connections).to.equal(2);
  });

  it('close() lets in-flight and queued requests finish, then closes every socket and refuses new ones', async () => {
    const up = await upstream(httpUpstream((_req, res) => setTimeout(() => res.end('late'), 150)));
    const p = new LeanPool('127.0.0.1', up.port, { ...fast, connections: 1 });
    const a = send(p);
    const b = send(p);
    await waitFor(() => up.connections === 1);
    const closed = p.close();
    const [ra, rb] = await Promise.all([a, b]);
    expect(ra.body.toString()).to.equal('late');
    expect(rb.body.toString()).to.equal('late');
    await closed;
    await waitFor(() => up.sockets.size === 0);
    expect(p.connections).to.equal(0);
    const r = await send(p);
    expect(r.error?.code).to.equal('UND_ERR_CLOSED');
  });

  it('aborting cuts the upstream request and reports the abort', async () => {
    const up = await upstream(rawUpstream(() => {}));
    const p = pool(up.port);
    let abort: ((err?: Error) => void) | undefined;
    const c = collect();
    const h: UpstreamHandler = {
      ...c.handler,
      onConnect(a) {
        abort = a;
      },
    };
    p.dispatch({ path: '/', method: 'GET', headers: [] }, h);
    await waitFor(() => up.sockets.size === 1);
    abort?.(new Error('client closed'));
    const r = await c.done;
    expect(r.error?.message).to.equal('client closed');
    await waitFor(() => up.sockets.size === 0);
  });

  it('keeps every field of a long response head (over 32 fields, split across reads)', async () => {
    const fields = Array.from({ length: 80 }, (_, i) => `x-field-${i}: value-${i}-${'v'.repeat(40)}\r\n`);
    const up = await upstream(
      rawUpstream((s) => {
        s.write(`HTTP/1.1 200 OK\r\ncontent-length: 2\r\n${fields.slice(0, 50).join('')}`);
        setTimeout(() => s.write(`${fields.slice(50).join('')}\r\nok`), 30);
      }),
    );
    const r = await send(pool(up.port));
    expect(r.status).to.equal(200);
    expect(r.body.toString()).to.equal('ok');
    for (let i = 0; i < 80; i++)
      expect(r.headers.get(`x-field-${i}`)).to.equal(`value-${i}-${'v'.repeat(40)}`);
    expect(r.headers.get('content-length')).to.equal('2');
  });

  it('passes 1xx responses to the handler, then the final response', async () => {
    const up = await upstream(
      rawUpstream((s) => {
        s.write('HTTP/1.1 103 Early Hints\r\nlink: </a.css>; rel=preload\r\n\r\n');
        setTimeout(
          () => s.write('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\ncontent-length: 4\r\n\r\ndone'),
          20,
        );
      }),
    );
    const p = pool(up.port);
    const r = await send(p);
    expect(r.informational).to.deep.equal([103, 100]);
    expect(r.status).to.equal(201);
    expect(r.body.toString()).to.equal('done');
    // And the socket is still usable.
    expect((await send(p)).status).to.equal(201);
    expect(up.connections).to.equal(1);
  });

  it('resolves host names through the DNS cache (one lookup for many connections)', async () => {
    const up = await upstream(httpUpstream((_req, res) => setTimeout(() => res.end('ok'), 10)));
    const dns = new DnsCache(30);
    cleanups.push(() => dns.close());
    let lookups = 0;
    const counting = ((host: string, o: object, cb: () => void) => {
      lookups++;
      (dns.lookup as unknown as (h: string, o: object, cb: () => void) => void)(host, o, cb);
    }) as unknown as LookupFunction;
    const p = new LeanPool('localhost', up.port, { ...fast, lookup: counting });
    cleanups.push(() => void p.close());
    const rs = await Promise.all(Array.from({ length: 4 }, () => send(p)));
    for (const r of rs) expect(r.status).to.equal(200);
    expect(lookups).to.equal(4); // every connect asks the cache ...
    expect(dns.size).to.be.at.least(1); // ... which resolved the name once and kept it
  });

  describe('Upstreams.pool() chooses the client', () => {
    const target = (url: string, opts: Record<string, unknown> = {}) =>
      ({ url: new URL(url), opts, key: url }) as unknown as RouteTarget;

    it('lean for plain HTTP, undici for TLS, undici for everything with --upstream-engine undici', async () => {
      const lean = new Upstreams({ engine: 'lean' });
      const undici = new Upstreams({ engine: 'undici' });
      try {
        expect(lean.pool(target('http://127.0.0.1:8080/'))).to.be.instanceOf(LeanPool);
        expect(lean.pool(target('https://127.0.0.1:8443/'))).to.be.instanceOf(Pool);
        expect(lean.undiciPool(target('http://127.0.0.1:8080/'))).to.be.instanceOf(Pool);
        expect(undici.pool(target('http://127.0.0.1:8080/'))).to.be.instanceOf(Pool);
      } finally {
        await lean.close();
        await undici.close();
      }
    });

    it('retain() closes the pools of departed targets after their in-flight requests', async () => {
      const up = await upstream(httpUpstream((_req, res) => setTimeout(() => res.end('drained'), 150)));
      const ups = new Upstreams({ engine: 'lean' });
      cleanups.push(() => ups.close());
      const t = target(`http://127.0.0.1:${up.port}/`);
      const p = ups.pool(t) as LeanPool;
      const inflight = send(p);
      await waitFor(() => up.connections === 1);
      ups.retain([]);
      expect(ups.size).to.equal(0);
      expect((await inflight).body.toString()).to.equal('drained');
      await waitFor(() => up.sockets.size === 0);
    });
  });

  // End to end through Cairn, on both upstream engines: the undici path stays tested.
  for (const engine of ['lean', 'undici'] as const) {
    describe(`through Cairn with --upstream-engine ${engine}`, () => {
      let up: Upstream | undefined;
      let hang: Upstream | undefined;
      let cairn: Cairn | undefined;
      beforeEach(async () => {
        up = await startUpstream('echo');
        hang = await startUpstream('hang', 'hang');
        cairn = await startCairn(
          {
            services: [
              { name: 'echo', instances: [{ address: '127.0.0.1', port: up.port, tags: ['urlprefix-/'] }] },
              {
                name: 'hang',
                instances: [{ address: '127.0.0.1', port: hang.port, tags: ['urlprefix-/hang'] }],
              },
            ],
          },
          { args: ['--upstream-engine', engine, '--response-timeout', '300ms', '--retries', '0'] },
        );
      });
      afterEach(async () => {
        await cairn?.stop();
        await up?.close();
        await hang?.close();
      });

      it('reuses one upstream connection for sequential requests', async () => {
        for (let i = 0; i < 30; i++) {
          const r = await (cairn as Cairn).fetch(`/n${i}`);
          expect(r.status).to.equal(200);
          expect((JSON.parse(r.text) as Echo).url).to.equal(`/n${i}`);
        }
        expect((up as Upstream).connections).to.equal(1);
      });

      it('forwards a 1 MB POST body intact, and HEAD without a body', async () => {
        const body = bodyBytes(0, 1 << 20);
        const r = await (cairn as Cairn).fetch('/upload', { method: 'POST', body });
        const echo = JSON.parse(r.text) as Echo;
        expect(echo.bodyLength).to.equal(body.length);
        expect(echo.bodySha256).to.equal(sha256(body));
        expect(echo.headers['x-forwarded-for']).to.equal('127.0.0.1');
        const h = await (cairn as Cairn).fetch('/head', { method: 'HEAD' });
        expect(h.status).to.equal(200);
        expect(h.body.length).to.equal(0);
      });

      it('relays many concurrent big responses intact, with fast and slow readers', async function () {
        // Response heads and first body bytes go out through one reused buffer on the lean path
        // (lib/proxy/h1/direct-write.ts): a buffer reused while a client write still needs it
        // would corrupt some other response. Every response here is distinct (its own length
        // and content), read by 32 keep-alive clients at once, some of them slowly.
        this.timeout(60_000);
        const big = await upstream(
          httpUpstream((req, res) => {
            const n = Number(new URL(req.url ?? '/', 'http://x').searchParams.get('n'));
            const body = bigBody(n);
            res.writeHead(200, { 'content-length': body.length });
            res.end(body);
          }),
        );
        await (cairn as Cairn).update({
          services: [
            { name: 'big', instances: [{ address: '127.0.0.1', port: big.port, tags: ['urlprefix-/big'] }] },
          ],
        });
        const agent = new http.Agent({ keepAlive: true, maxSockets: 32 });
        cleanups.push(() => agent.destroy());
        const get = (n: number, slow: boolean) =>
          new Promise<string>((resolve, reject) => {
            http
              .get({ host: '127.0.0.1', port: (cairn as Cairn).port, path: `/big?n=${n}`, agent }, (res) => {
                const h = createHash('sha256');
                let stalls = 0;
                res.on('data', (c: Buffer) => {
                  h.update(c);
                  // Stalls long enough for the kernel buffers to fill: Cairn's writes queue.
                  if (slow && stalls++ < 3) {
                    res.pause();
                    setTimeout(() => res.resume(), 40);
                  }
                });
                res.on('end', () => resolve(h.digest('hex')));
                res.on('error', reject);
              })
              .on('error', reject);
          });
        let checked = 0;
        await Promise.all(
          Array.from({ length: 32 }, async (_, client) => {
            for (let i = 0; i < 4; i++) {
              // Every 4th client reads slowly and gets 6 MB: more than the kernel buffers hold.
              const slow = client % 4 === 0;
              const n = client * 100 + i + (slow ? 10_000 : 0);
              expect(await get(n, slow)).to.equal(sha(bigBody(n)), `response ${n}`);
              checked++;
            }
          }),
        );
        expect(checked).to.equal(32 * 4);
      });

      it('answers 504 when the upstream sends no headers in time', async () => {
        const r = await (cairn as Cairn).fetch('/hang');
        expect(r.status).to.equal(504);
      });
    });
  }
});
