// The HTTP data plane forwarding requests over real sockets: a CairnServer in-process with a file
// registry, echo upstreams on 127.0.0.1:0, undici / node:http / raw-socket clients.
//
// fabio vectors transcribed here (live_binary, proxy_redirect, proxy_forwarding,
// path_normalization, proxy_noroute) with the upstream ports of this run in place of fabio's.
// Deliberate difference from the "upstream request headers" vector: Forwarded has no
// `by=<local ip>`. fabio auto-detects a local IP; Cairn adds `by=` only when a local IP is
// configured (HttpProxyOptions.localIp), and no config key sets it yet.

import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { expect } from 'chai';
import { type Cairn, type RegistryContent, rawHeader, rawRequest, startCairn } from './helpers/cairn.ts';
import { bodyBytes, closeAll, type Echo, sha256, startUpstream, type Upstream } from './helpers/upstream.ts';

function echoOf(text: string): Echo {
  return JSON.parse(text) as Echo;
}

/** fabio's live_binary table (observed on fabio 1.6.3) with this run's upstream ports. */
function liveBinaryTable(a: number, b: number, c: number): string {
  return [
    `route add svc-a /app http://127.0.0.1:${a}/ tags "v1"`,
    `route add svc-b /app http://127.0.0.1:${b}/ tags "v2"`,
    'route weight svc-b /app weight 0.2 tags "v2"',
    `route add svc-c /strip/me http://127.0.0.1:${c}/ opts "strip=/strip"`,
    `route add svc-c /pre http://127.0.0.1:${c}/ opts "prepend=/base"`,
    `route add svc-a example.com/ http://127.0.0.1:${a}/`,
    `route add svc-b *.example.com/ http://127.0.0.1:${b}/`,
    `route add svc-c /old http://127.0.0.1:${c}/new$path opts "redirect=301"`,
  ].join('\n');
}

describe('HTTP proxy: forwarding (real sockets)', function () {
  this.timeout(10_000);

  let a: Upstream; // svc-a
  let b: Upstream; // svc-b
  let c: Upstream; // svc-c
  let echo: Upstream; // service "echo", registered with tags
  let other: Upstream; // second target of /hostcustom
  let hop: Upstream; // answers with hop-by-hop headers
  let pool: Upstream; // keep-alive counting
  let sse: Upstream; // server-sent events
  let releaseSse: (() => void) | undefined;
  let cairn: Cairn;
  let fabioTrust: Cairn;

  before(async () => {
    [a, b, c, echo, other, pool] = (await Promise.all(
      ['svc-a', 'svc-b', 'svc-c', 'echo', 'other', 'pool'].map((n) => startUpstream(n)),
    )) as [Upstream, Upstream, Upstream, Upstream, Upstream, Upstream];
    hop = await startUpstream('hop', (req, res) => {
      if (req.headers['x-test-close'] !== undefined) {
        res.writeHead(200, { connection: 'close', 'content-length': '5' });
        res.end('close');
        return;
      }
      res.writeHead(200, [
        'Connection',
        'X-Resp-Hop, keep-alive',
        'X-Resp-Hop',
        'secret',
        'Keep-Alive',
        'timeout=123',
        'Proxy-Connection',
        'keep-alive',
        'Proxy-Authenticate',
        'Basic realm="next proxy"',
        'X-Kept',
        'yes',
        'Set-Cookie',
        'a=1; Path=/',
        'Set-Cookie',
        'b=2; HttpOnly',
        'Content-Type',
        'text/plain',
      ]);
      res.end('hop');
    });
    sse = await startUpstream('sse', (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      res.write('data: one\n\n');
      releaseSse = () => {
        res.write('data: two\n\n');
        res.end();
      };
    });
    const registry: RegistryContent = {
      services: [
        {
          name: 'echo',
          instances: [
            {
              id: 'echo-1',
              address: '127.0.0.1',
              port: echo.port,
              tags: [
                'urlprefix-/echo',
                'urlprefix-/norm/inner',
                'urlprefix-/hostdst host=dst',
                'urlprefix-/hostname host=foo.com',
                'urlprefix-/allow-local allow=ip:127.0.0.0/8',
                'urlprefix-/allow-ten allow=ip:10.0.0.0/8',
                'urlprefix-/deny-local deny=ip:127.0.0.0/8',
                'urlprefix-/deny-xff deny=ip:10.1.0.0/16',
              ],
            },
          ],
        },
        { name: 'hop', instances: [{ address: '127.0.0.1', port: hop.port, tags: ['urlprefix-/hop'] }] },
        { name: 'pool', instances: [{ address: '127.0.0.1', port: pool.port, tags: ['urlprefix-/pool'] }] },
        { name: 'sse', instances: [{ address: '127.0.0.1', port: sse.port, tags: ['urlprefix-/events'] }] },
      ],
      routes: [
        liveBinaryTable(a.port, b.port, c.port),
        `route add mock /hostcustom http://127.0.0.1:${echo.port}/ opts "host=foo.com"`,
        `route add mock /hostcustom http://127.0.0.1:${other.port}/ opts "host=bar.com"`,
      ].join('\n'),
    };
    cairn = await startCairn(registry, {
      args: ['--request-id-header', 'X-Request-Id', '--client-ip-header', 'X-Client-Ip'],
    });
    // fabio believes every X-Forwarded-For entry for access rules and keeps a client's X-Real-Ip.
    // Cairn does that only for trusted proxies (`--trusted-proxies`, default none: a client at
    // the edge would otherwise choose the address its access rules, backends and logs see). With
    // every address trusted it behaves as fabio there, which is what the vectors using this
    // instance check. The default is tested in test/integration/trusted-proxies.test.ts.
    fabioTrust = await startCairn(registry, {
      args: ['--request-id-header', 'X-Request-Id', '--trusted-proxies', '0.0.0.0/0,::/0'],
    });
  });

  after(async () => {
    await fabioTrust?.stop();
    await cairn?.stop();
    await closeAll([a, b, c, echo, other, hop, pool, sse]);
  });

  describe('request line and bodies', () => {
    it('passes the method through', async () => {
      for (const method of ['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'PURGE']) {
        const r = await cairn.fetch('/echo/m', { method });
        expect(r.status, method).to.equal(200);
        expect(echoOf(r.text).method).to.equal(method);
      }
    });

    it('passes path and query through byte for byte', async () => {
      const target =
        "/echo/A-b_c.~!$&'()*+,;=:@x/%7Euser?b=2&a=1&a=%2f&empty=&sp=%20&plus=a+b&q=?&dots=/x/../y";
      const r = await rawRequest(cairn.port, `GET ${target} HTTP/1.1\r\nHost: test.local`);
      expect(r.status).to.equal(200);
      // A `%7E` in the path is decoded and re-encoded by normalisation (unreserved: `~`).
      expect(echoOf(r.body).url).to.equal(target.replace('%7E', '~'));
      const bare = await rawRequest(cairn.port, 'GET /echo/q? HTTP/1.1\r\nHost: test.local');
      expect(echoOf(bare.body).url).to.equal('/echo/q?');
    });

    it('streams a 1 MB content-length request body', async () => {
      const body = bodyBytes(0, 1 << 20);
      const r = await cairn.fetch('/echo/upload', { method: 'POST', body });
      const e = echoOf(r.text);
      expect(r.status).to.equal(200);
      expect(e.bodyLength).to.equal(1 << 20);
      expect(e.bodySha256).to.equal(sha256(body));
      expect(e.headers['content-length']).to.equal(String(1 << 20));
      expect(e.headers['transfer-encoding']).to.equal(undefined);
    });

    it('streams a 1 MB chunked request body', async () => {
      const chunk = 16_384;
      async function* chunks(): AsyncGenerator<Buffer> {
        for (let off = 0; off < 1 << 20; off += chunk) yield bodyBytes(off, chunk);
      }
      const r = await cairn.fetch('/echo/chunked', { method: 'POST', body: Readable.from(chunks()) });
      const e = echoOf(r.text);
      expect(r.status).to.equal(200);
      expect(e.bodyLength).to.equal(1 << 20);
      expect(e.bodySha256).to.equal(sha256(bodyBytes(0, 1 << 20)));
      expect(e.headers['transfer-encoding']).to.equal('chunked');
      expect(e.headers['content-length']).to.equal(undefined);
    });

    it('streams a 1 MB response body', async () => {
      const r = await cairn.fetch('/echo/download', { headers: { 'x-test-size': String(1 << 20) } });
      expect(r.status).to.equal(200);
      expect(r.headers['x-upstream']).to.equal('echo');
      expect(r.body.length).to.equal(1 << 20);
      expect(sha256(r.body)).to.equal(sha256(bodyBytes(0, 1 << 20)));
    });

    it('response bodies around the one-write sizes arrive byte for byte, back to back', async () => {
      // Head and first chunk go out in one write up to 64 KB, and their memory is released as
      // soon as the bytes are copied on (releaseChunk): sizes on both sides of those edges.
      for (const size of [1, 2048, 16_384, 16_385, 65_000, 65_300, 65_536, 70_000, 200_000, 2048]) {
        const r = await cairn.fetch('/echo/download', { headers: { 'x-test-size': String(size) } });
        expect(r.status, `size ${size}`).to.equal(200);
        expect(r.body.length, `size ${size}`).to.equal(size);
        expect(sha256(r.body), `size ${size}`).to.equal(sha256(bodyBytes(0, size)));
      }
    });

    it('handles Expect: 100-continue', async () => {
      const result = await new Promise<{ continued: boolean; status: number; body: string }>(
        (resolve, reject) => {
          let continued = false;
          const req = http.request({
            host: '127.0.0.1',
            port: cairn.port,
            path: '/echo/continue',
            method: 'POST',
            agent: false,
            headers: { 'content-length': '5', expect: '100-continue' },
          });
          req.on('continue', () => {
            continued = true;
            req.end('hello');
          });
          req.on('response', (res) => {
            let body = '';
            res.setEncoding('utf8');
            res.on('data', (d: string) => (body += d));
            res.on('end', () => resolve({ continued, status: res.statusCode ?? 0, body }));
          });
          req.on('error', reject);
          req.flushHeaders();
        },
      );
      expect(result.continued).to.equal(true);
      expect(result.status).to.equal(200);
      const e = echoOf(result.body);
      expect(e.bodyLength).to.equal(5);
      expect(e.bodySha256).to.equal(sha256(Buffer.from('hello')));
    });
  });

  describe('responses', () => {
    it('passes status codes through with the upstream body', async () => {
      for (const status of [200, 201, 202, 400, 404, 418, 500, 502, 503]) {
        const r = await cairn.fetch('/echo/status', { headers: { 'x-test-status': String(status) } });
        expect(r.status, String(status)).to.equal(status);
        expect(r.headers['x-upstream']).to.equal('echo');
        expect(echoOf(r.text).url).to.equal('/echo/status');
      }
    });

    it('answers HEAD with the headers only', async () => {
      const head = await rawRequest(cairn.port, 'HEAD /echo/head HTTP/1.1\r\nHost: test.local');
      expect(head.status).to.equal(200);
      expect(head.body).to.equal('');
      // The upstream's Content-Length (of the body a GET would get) is passed through.
      expect(Number(rawHeader(head, 'content-length')[0])).to.be.above(100);
      expect(echo.requests.at(-1)?.method).to.equal('HEAD');
      // Over a keep-alive connection the next response is intact.
      expect((await cairn.fetch('/echo/head', { method: 'HEAD' })).status).to.equal(200);
      expect(echoOf((await cairn.fetch('/echo/after-head')).text).method).to.equal('GET');
    });

    for (const status of [204, 304]) {
      it(`answers ${status} without a body and keeps the connection usable`, async () => {
        const r = await rawRequest(
          cairn.port,
          `GET /echo/empty HTTP/1.1\r\nHost: test.local\r\nX-Test-Status: ${status}`,
        );
        expect(r.status).to.equal(status);
        expect(r.body).to.equal('');
        expect(rawHeader(r, 'transfer-encoding')).to.deep.equal([]);
        // And over a keep-alive connection the next response is intact.
        const again = await cairn.fetch('/echo/after', { headers: { 'x-test-status': String(status) } });
        expect(again.status).to.equal(status);
        expect((await cairn.fetch('/echo/after')).status).to.equal(200);
      });
    }

    it('flushes server-sent events immediately', async () => {
      const result = await new Promise<{ firstBeforeEnd: boolean; body: string }>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('first event not received within 2 s')), 2000);
        let body = '';
        let firstBeforeEnd = false;
        const req = http.get(
          { host: '127.0.0.1', port: cairn.port, path: '/events', agent: false },
          (res) => {
            res.setEncoding('utf8');
            res.on('data', (d: string) => {
              body += d;
              if (!firstBeforeEnd && body.includes('data: one\n\n')) {
                clearTimeout(timer);
                firstBeforeEnd = true;
                // The upstream has not ended the response yet: it only ends after this call.
                releaseSse?.();
              }
            });
            res.on('end', () => resolve({ firstBeforeEnd, body }));
          },
        );
        req.on('error', reject);
      });
      expect(result.firstBeforeEnd).to.equal(true);
      expect(result.body).to.equal('data: one\n\ndata: two\n\n');
    });

    it('applies backpressure: a client that stops reading stalls the upstream, then gets every byte', async () => {
      const size = 48 << 20; // more than every socket buffer on the way can hold
      const completedBefore = echo.completed;
      const result = await new Promise<{ length: number; sha: string; stalled: boolean }>(
        (resolve, reject) => {
          const hash = createHash('sha256');
          let length = 0;
          let stalled = false;
          const req = http.get(
            {
              host: '127.0.0.1',
              port: cairn.port,
              path: '/echo/big',
              agent: false,
              headers: { 'x-test-size': String(size) },
            },
            (res) => {
              const take = (d: Buffer): void => {
                length += d.length;
                hash.update(d);
              };
              res.once('data', (first: Buffer) => {
                take(first);
                res.pause();
                setTimeout(() => {
                  // Nothing read for 500 ms: the upstream must still be waiting to write.
                  stalled = echo.completed === completedBefore;
                  res.on('data', take);
                  res.resume();
                }, 500);
              });
              res.on('end', () => resolve({ length, sha: hash.digest('hex'), stalled }));
              res.on('error', reject);
            },
          );
          req.on('error', reject);
        },
      );
      expect(result.stalled, 'upstream stalled while the client did not read').to.equal(true);
      expect(result.length).to.equal(size);
      expect(result.sha).to.equal(sha256(bodyBytes(0, size)));
    });

    it('passes repeated response headers (Set-Cookie) through', async () => {
      const r = await rawRequest(cairn.port, 'GET /hop HTTP/1.1\r\nHost: test.local');
      expect(rawHeader(r, 'set-cookie')).to.deep.equal(['a=1; Path=/', 'b=2; HttpOnly']);
    });

    it('serves 200 concurrent requests correctly', async () => {
      const results = await Promise.all(
        Array.from({ length: 200 }, (_, i) => cairn.fetch(`/echo/concurrent/${i}`)),
      );
      results.forEach((r, i) => {
        expect(r.status).to.equal(200);
        expect(echoOf(r.text).url).to.equal(`/echo/concurrent/${i}`);
      });
    });

    it('keeps the client connection alive when the upstream closes its own', async () => {
      const r = await cairn.fetch('/hop', { headers: { 'x-test-close': '1' } });
      expect(r.status).to.equal(200);
      expect(r.headers.connection).to.not.equal('close');
    });

    it('reuses upstream keep-alive connections (200 sequential requests)', async () => {
      const before = pool.connections;
      for (let i = 0; i < 200; i++) {
        const r = await cairn.fetch(`/pool/${i}`);
        expect(r.status).to.equal(200);
      }
      expect(pool.requests.length).to.be.at.least(200);
      expect(pool.connections - before).to.be.at.most(2);
    });
  });

  describe('path rewriting and Host', () => {
    it('strip= removes the prefix and sets X-Forwarded-Prefix (live_binary "strip + X-Forwarded-Prefix")', async () => {
      const r = await cairn.fetch('/strip/me/file?q=1', { headers: { 'x-forwarded-prefix': '/client' } });
      const e = echoOf(r.text);
      expect(e.upstream).to.equal('svc-c');
      expect(e.url).to.equal('/me/file?q=1');
      expect(e.headers['x-forwarded-prefix']).to.equal('/strip');
    });

    it('strip= applies by string prefix (live_binary "strip applies by string prefix")', async () => {
      const e = echoOf((await cairn.fetch('/strip/mex')).text);
      expect(e.upstream).to.equal('svc-c');
      expect(e.url).to.equal('/mex');
    });

    it('prepend= puts a prefix in front (live_binary "prepend")', async () => {
      const e = echoOf((await cairn.fetch('/pre/x')).text);
      expect(e.upstream).to.equal('svc-c');
      expect(e.url).to.equal('/base/pre/x');
    });

    it('host=dst sends the target host:port as Host', async () => {
      const e = echoOf((await cairn.fetch('/hostdst', { headers: { host: 'client.example' } })).text);
      expect(e.headers.host).to.equal(`127.0.0.1:${echo.port}`);
      expect(e.headers['x-forwarded-host']).to.equal('client.example');
    });

    it('host=<name> sends that name as Host', async () => {
      const e = echoOf((await cairn.fetch('/hostname', { headers: { host: 'client.example' } })).text);
      expect(e.headers.host).to.equal('foo.com');
    });

    it('host=<name> per target (proxy_forwarding "host=name per target with rr")', async () => {
      const seen = new Map<string, string>();
      for (let i = 0; i < 2; i++) {
        const e = echoOf((await cairn.fetch('/hostcustom')).text);
        seen.set(String(e.headers.host), e.upstream);
      }
      expect(Object.fromEntries(seen)).to.deep.equal({ 'foo.com': 'echo', 'bar.com': 'other' });
    });

    it('passes the client Host through otherwise (live_binary "uppercase host with :80")', async () => {
      const e = echoOf((await cairn.fetch('/zzz', { headers: { host: 'EXAMPLE.com:80' } })).text);
      expect(e.upstream).to.equal('svc-a');
      expect(e.headers.host).to.equal('EXAMPLE.com:80');
      const plain = echoOf((await cairn.fetch('/echo/h', { headers: { host: 'Some.Host:8080' } })).text);
      expect(plain.headers.host).to.equal('Some.Host:8080');
    });

    it('routes exact hosts, globs and host-less paths like fabio (live_binary)', async () => {
      const cases: [path: string, host: string | undefined, upstream: string][] = [
        ['/zzz', 'example.com', 'svc-a'], // exact host
        ['/zzz', 'api.example.com', 'svc-b'], // glob host
        ['/app', 'api.example.com', 'svc-b'], // host route wins over host-less path route
        ['/apple', undefined, 'svc-a'], // /apple matches /app (string prefix)
      ];
      for (const [path, host, upstream] of cases) {
        // /apple: the first pick of /app's 80/20 schedule is svc-a.
        const r = await cairn.fetch(path, host === undefined ? {} : { headers: { host } });
        expect(echoOf(r.text).upstream, `${host ?? ''}${path}`).to.be.oneOf(
          path === '/apple' ? ['svc-a', 'svc-b'] : [upstream],
        );
      }
      const notFound = await cairn.fetch('/APP'); // prefix matcher is case-sensitive
      expect(notFound.status).to.equal(404);
    });

    it('normalises the path before lookup and forwarding (path_normalization vectors)', async () => {
      const vectors: [request: string, upstream: string][] = [
        ['/foo%2Fbar', '/foo/bar'],
        ['/foo/../bar', '/bar'],
        ['/foo//bar', '/foo/bar'],
        ['/api%2F..%2Fv2//users/', '/v2/users/'],
        ['/api/users/', '/api/users/'],
      ];
      for (const [path, want] of vectors) {
        const r = await rawRequest(cairn.port, `GET ${path} HTTP/1.1\r\nHost: example.com`);
        expect(echoOf(r.body).url, path).to.equal(want);
      }
      // The route is chosen on the normalised path: neither /x nor /norm%2Finner has a route.
      const dots = await rawRequest(cairn.port, 'GET /x/../echo/y?z=1 HTTP/1.1\r\nHost: test.local');
      expect(dots.status).to.equal(200);
      expect(echoOf(dots.body).url).to.equal('/echo/y?z=1');
      const slash = await rawRequest(cairn.port, 'GET /norm%2Finner/x HTTP/1.1\r\nHost: test.local');
      expect(slash.status).to.equal(200);
      expect(echoOf(slash.body).url).to.equal('/norm/inner/x');
      const bad = await rawRequest(cairn.port, 'GET /echo/%zz HTTP/1.1\r\nHost: test.local');
      expect(bad.status).to.equal(400);
    });
  });

  describe('forwarding headers', () => {
    it('sets X-Forwarded-*, X-Real-Ip and Forwarded (live_binary "upstream request headers")', async () => {
      const host = `127.0.0.1:${cairn.port}`;
      const e = echoOf((await cairn.fetch('/app/h', { headers: { 'x-forwarded-for': '10.1.1.1' } })).text);
      expect(e.headers.host).to.equal(host);
      expect(e.headers['x-forwarded-for']).to.equal('10.1.1.1, 127.0.0.1');
      expect(e.headers['x-forwarded-host']).to.equal(host);
      expect(e.headers['x-forwarded-port']).to.equal(String(cairn.port));
      expect(e.headers['x-forwarded-proto']).to.equal('http');
      expect(e.headers['x-real-ip']).to.equal('127.0.0.1');
      expect(e.headers['x-client-ip']).to.equal('127.0.0.1');
      expect(e.headers['x-request-id']).to.match(
        /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
      );
      // Deliberate difference: no `by=` (see the file comment).
      expect(e.headers.forwarded).to.equal('for=127.0.0.1; proto=http; httpproto=http/1.1');
    });

    it('replaces a client-sent request id with a fresh one per request', async () => {
      const sent = { 'x-request-id': 'client-chosen' };
      const one = echoOf((await cairn.fetch('/echo/id', { headers: sent })).text).headers['x-request-id'];
      const two = echoOf((await cairn.fetch('/echo/id', { headers: sent })).text).headers['x-request-id'];
      expect(one).to.not.equal('client-chosen');
      expect(one).to.not.equal(two);
    });

    it('appends to X-Forwarded-For, keeps client X-Forwarded-Proto/Host/Port and Forwarded', async () => {
      // X-Real-Ip from the client is kept only from a trusted proxy (fabioTrust: every address)
      const e = echoOf(
        (
          await fabioTrust.fetch('/echo/xff', {
            headers: {
              'x-forwarded-for': '203.0.113.7, 10.0.0.2',
              'x-forwarded-proto': 'https',
              'x-forwarded-host': 'public.example',
              'x-forwarded-port': '443',
              'x-real-ip': '203.0.113.7',
              forwarded: 'for=203.0.113.7; proto=https',
            },
          })
        ).text,
      );
      expect(e.headers['x-forwarded-for']).to.equal('203.0.113.7, 10.0.0.2, 127.0.0.1');
      expect(e.headers['x-forwarded-proto']).to.equal('https');
      expect(e.headers['x-forwarded-host']).to.equal('public.example');
      expect(e.headers['x-forwarded-port']).to.equal('443');
      expect(e.headers['x-real-ip']).to.equal('203.0.113.7');
      expect(e.headers.forwarded).to.equal('for=203.0.113.7; proto=https');
      expect(e.headers['x-forwarded-prefix']).to.equal(undefined);
    });

    it('removes hop-by-hop request headers, including those named in Connection', async () => {
      const r = await rawRequest(
        cairn.port,
        [
          'GET /echo/hop HTTP/1.1',
          'Host: test.local',
          'Connection: close, X-Hop, X-Forwarded-For',
          'X-Hop: secret',
          'Keep-Alive: timeout=9',
          'Proxy-Connection: keep-alive',
          'TE: trailers',
          'Trailer: X-Checksum',
          'Upgrade: foo/1',
          'Proxy-Authorization: Basic Zm9vOmJhcg==',
          'X-Forwarded-For: 10.9.9.9',
          'X-Normal: stays',
        ].join('\r\n'),
      );
      expect(r.status).to.equal(200);
      const h = echoOf(r.body).headers;
      for (const gone of [
        'x-hop',
        'keep-alive',
        'proxy-connection',
        'te',
        'trailer',
        'upgrade',
        'proxy-authorization',
      ]) {
        expect(h[gone], gone).to.equal(undefined);
      }
      expect(String(h.connection ?? '')).to.not.match(/x-hop/i);
      expect(h['x-normal']).to.equal('stays');
      // Naming X-Forwarded-For in Connection cannot make Cairn drop the chain.
      expect(h['x-forwarded-for']).to.equal('10.9.9.9, 127.0.0.1');
    });

    it('removes hop-by-hop response headers, including those named in Connection', async () => {
      const r = await rawRequest(cairn.port, 'GET /hop HTTP/1.1\r\nHost: test.local');
      expect(r.status).to.equal(200);
      expect(r.body).to.equal('hop');
      for (const gone of ['x-resp-hop', 'proxy-connection', 'proxy-authenticate']) {
        expect(rawHeader(r, gone), gone).to.deep.equal([]);
      }
      expect(rawHeader(r, 'keep-alive')).to.not.include('timeout=123');
      expect(rawHeader(r, 'x-kept')).to.deep.equal(['yes']);
    });
  });

  describe('redirects, access rules, no route', () => {
    it('redirect with $path keeps the query (live_binary)', async () => {
      const r = await cairn.fetch('/old/foo?x=1');
      expect(r.status).to.equal(301);
      expect(r.headers.location).to.equal(`http://127.0.0.1:${c.port}/new/old/foo?x=1`);
      expect(c.requests.some((q) => q.url.startsWith('/new'))).to.equal(false);
    });

    it('allow= and deny= answer 403, also for X-Forwarded-For entries', async () => {
      expect((await cairn.fetch('/allow-local')).status).to.equal(200);
      expect((await cairn.fetch('/allow-ten')).status).to.equal(403);
      expect((await cairn.fetch('/deny-local')).status).to.equal(403);
      expect((await cairn.fetch('/deny-xff')).status).to.equal(200);
      // every X-Forwarded-For entry counts only when every hop is trusted (fabio's behaviour)
      expect(
        (await cairn.fetch('/deny-xff', { headers: { 'x-forwarded-for': '10.1.2.3' } })).status,
      ).to.equal(200);
      const viaXff = await fabioTrust.fetch('/deny-xff', {
        headers: { 'x-forwarded-for': '192.0.2.1, 10.1.2.3' },
      });
      expect(viaXff.status).to.equal(403);
      expect(viaXff.text).to.equal('access denied\n');
    });

    it('no route answers 404 with a short plain body', async () => {
      const r = await cairn.fetch('/nothing/here');
      expect(r.status).to.equal(404);
      expect(r.text).to.equal('no route\n');
      expect(String(r.headers['content-type'])).to.match(/^text\/plain/);
    });
  });
});

describe('HTTP proxy: fabio vector tables (real sockets)', function () {
  this.timeout(10_000);
  let ups: Upstream[] = [];
  let cairn: Cairn | undefined;

  afterEach(async () => {
    await cairn?.stop();
    cairn = undefined;
    await closeAll(ups);
    ups = [];
  });

  for (const strategy of ['wrr', 'rr']) {
    it(`weighted 80/20 over 100 requests is exact (live_binary, --strategy ${strategy})`, async () => {
      ups = await Promise.all(['svc-a', 'svc-b', 'svc-c'].map((n) => startUpstream(n)));
      const [a, b, c] = ups as [Upstream, Upstream, Upstream];
      cairn = await startCairn(
        { routes: liveBinaryTable(a.port, b.port, c.port) },
        { args: ['--strategy', strategy] },
      );
      const counts: Record<string, number> = {};
      for (let i = 0; i < 100; i++) {
        const r = await cairn.fetch('/app/x');
        const name = String(r.headers['x-upstream']);
        counts[name] = (counts[name] ?? 0) + 1;
      }
      expect(counts).to.deep.equal({ 'svc-a': 80, 'svc-b': 20 });
    });
  }

  it('path redirects with $path and strip (proxy_redirect TestPathRedirect)', async () => {
    cairn = await startCairn({
      routes: [
        'route add mock / http://a.com/$path opts "redirect=301"',
        'route add mock /foo http://a.com/abc opts "redirect=301"',
        'route add mock /bar http://b.com/$path opts "redirect=302 strip=/bar"',
      ].join('\n'),
    });
    const vectors: [path: string, status: number, location: string][] = [
      ['/', 301, 'http://a.com/'],
      ['/aaa/bbb', 301, 'http://a.com/aaa/bbb'],
      ['/foo', 301, 'http://a.com/abc'],
      ['/bar', 302, 'http://b.com/'],
      ['/bar/aaa', 302, 'http://b.com/aaa'],
    ];
    for (const [path, status, location] of vectors) {
      const r = await cairn.fetch(path);
      expect(r.status, path).to.equal(status);
      expect(r.headers.location, path).to.equal(location);
    }
  });

  it('host redirect with $host$path (proxy_redirect TestHostRedirect)', async () => {
    cairn = await startCairn({ routes: 'route add https-redir *:80 https://$host$path opts "redirect=301"' });
    const r = await cairn.fetch('/baz', { headers: { host: 'c.com' } });
    expect(r.status).to.equal(301);
    expect(r.headers.location).to.equal('https://c.com/baz');
  });

  it('configurable no-route status (--noroute-status)', async () => {
    cairn = await startCairn({ routes: '' }, { args: ['--noroute-status', '410'] });
    const r = await cairn.fetch('/anything');
    expect(r.status).to.equal(410);
    expect(r.text).to.equal('no route\n');
  });

  it('no route -> status + HTML page (proxy_noroute, --noroute-html)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cairn-noroute-'));
    try {
      const page = join(dir, 'noroute.html');
      await writeFile(page, '<html>no route here</html>');
      cairn = await startCairn({ routes: '' }, { args: ['--noroute-status', '404', '--noroute-html', page] });
      const r = await cairn.fetch('/anything');
      expect(r.status).to.equal(404);
      expect(r.text).to.equal('<html>no route here</html>');
      expect(String(r.headers['content-type'])).to.match(/^text\/html/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
