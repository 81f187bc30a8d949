// Bad HTTP input on both HTTP/1.1 engines (`--http1-engine lean`, the default, and `node`): every
// shape gets a clear status (or, once a request is already on its way upstream, a closed
// connection), nothing crashes, and nothing leaks (no request left in flight, no connection left
// open, nothing reaches the upstream that should not). Exact bytes on raw sockets.
//
// test/integration/http1-wire.test.ts already covers Content-Length + Transfer-Encoding (400),
// oversized headers (431), a stalled slowloris and a stalled body; this suite adds the other
// smuggling shapes and the rest of issue #10's "Bad input" list.

import net from 'node:net';
import { expect } from 'chai';
import { type Cairn, startCairn } from '../../integration/helpers/cairn.ts';
import { type Echo, type Upstream, closeAll, startUpstream } from '../../integration/helpers/upstream.ts';

interface Exchanged {
  readonly text: string;
  readonly closed: boolean;
  readonly ms: number;
}

/** Writes `pieces` (with a pause between them), reads until the server closes or `untilMs`. */
function exchange(
  port: number,
  pieces: readonly (string | Buffer)[],
  opts: { untilMs?: number; pauseMs?: number; destroyAfterWrite?: boolean } = {},
): Promise<Exchanged> {
  return new Promise((resolve) => {
    const started = Date.now();
    const sock = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let closed = false;
    let done = false;
    const finish = (): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve({ text: Buffer.concat(chunks).toString('latin1'), closed, ms: Date.now() - started });
    };
    const timer = setTimeout(() => {
      sock.destroy();
      finish();
    }, opts.untilMs ?? 2000);
    sock.on('data', (c: Buffer) => chunks.push(c));
    sock.on('error', () => {});
    sock.on('close', () => {
      closed = true;
      finish();
    });
    sock.on('connect', async () => {
      for (const p of pieces) {
        if (sock.destroyed) return;
        sock.write(p);
        if (opts.pauseMs !== undefined) await new Promise((r) => setTimeout(r, opts.pauseMs));
      }
      if (opts.destroyAfterWrite === true) {
        sock.destroy();
      }
    });
  });
}

function statusOf(text: string): number {
  const m = /^HTTP\/1\.[01] (\d{3}) /.exec(text);
  return m === null ? 0 : Number(m[1]);
}

function bodyOf(text: string): string {
  const i = text.indexOf('\r\n\r\n');
  return i < 0 ? '' : text.slice(i + 4);
}

async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Nothing left behind: no request in flight in Cairn or upstream, no client connection open. */
async function expectNoLeak(cairn: Cairn, up: Upstream): Promise<void> {
  await until(() => cairn.server.proxy.active === 0, 5000, 'proxy.active == 0');
  await until(() => up.inFlight === 0, 5000, 'upstream in flight == 0');
  await until(() => cairn.server.clientConnections() === 0, 5000, 'client connections closed');
}

/** Smuggling shapes: each must be refused with 400 before anything reaches the upstream. */
const smuggling: readonly (readonly [name: string, request: string])[] = [
  [
    'two Content-Length headers with different values',
    'POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!',
  ],
  ['Content-Length with a sign', 'POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\nhello'],
  ['Content-Length not a number', 'POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5x\r\n\r\nhello'],
  ['Content-Length negative', 'POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n'],
  [
    'Transfer-Encoding: chunked, identity (chunked not last)',
    'POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n',
  ],
  [
    'two Transfer-Encoding headers, chunked not last',
    'POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n0\r\n\r\n',
  ],
  [
    'obfuscated Transfer-Encoding: xchunked',
    'POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n',
  ],
  [
    'space before the colon (Transfer-Encoding : chunked)',
    'POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n',
  ],
  [
    'vertical tab before the value',
    'POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\x0bchunked\r\n\r\n0\r\n\r\n',
  ],
  ['obs-fold (a header continued on the next line)', 'GET /a HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n 2\r\n\r\n'],
  ['bare LF line endings', 'GET /a HTTP/1.1\nHost: x\n\n'],
  ['bare CR inside a header line', 'GET /a HTTP/1.1\r\nHost: x\rX-B: 1\r\n\r\n'],
  ['NUL in a header value', 'GET /a HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n'],
  ['a space inside the request target', 'GET /a b HTTP/1.1\r\nHost: x\r\n\r\n'],
  ['an unknown HTTP version', 'GET /a HTTP/7.1\r\nHost: x\r\n\r\n'],
  [
    'Content-Length with chunked in HTTP/1.0',
    'POST /a HTTP/1.0\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
  ],
];

/** Chunked bodies that break after the headers were valid (the request may already be forwarded). */
const badChunks: readonly (readonly [name: string, body: string])[] = [
  ['chunk size not hex', 'zz\r\nhello\r\n0\r\n\r\n'],
  ['chunk size overflowing 64 bits', 'fffffffffffffffffff\r\nhello\r\n0\r\n\r\n'],
  ['chunk data longer than its size', '2\r\nhello\r\n0\r\n\r\n'],
  ['chunk size with a space', '5 \r\nhello\r\n0\r\n\r\n'],
];

const invalidHosts: readonly (readonly [name: string, head: string])[] = [
  ['a space inside Host', 'GET /a HTTP/1.1\r\nHost: a b.example\r\n\r\n'],
  ['a path inside Host', 'GET /a HTTP/1.1\r\nHost: evil.example/x\r\n\r\n'],
  ['userinfo inside Host', 'GET /a HTTP/1.1\r\nHost: user@evil.example\r\n\r\n'],
  ['a backslash inside Host', 'GET /a HTTP/1.1\r\nHost: evil.example\\x\r\n\r\n'],
  ['an unclosed IPv6 literal', 'GET /a HTTP/1.1\r\nHost: [::1\r\n\r\n'],
  ['a non-numeric port', 'GET /a HTTP/1.1\r\nHost: a.example:80x\r\n\r\n'],
  ['two Host headers', 'GET /a HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\n\r\n'],
  ['no Host in HTTP/1.1', 'GET /a HTTP/1.1\r\nX-A: 1\r\n\r\n'],
];

/**
 * fabio's path_normalization vectors (fabio HEAD proxy/http_integration_test.go
 * TestProxyPathNormalization: url-decode, path.Clean, keep a trailing slash), copied from
 * /work/shared/fabio-vectors.json, plus Cairn's own traversal shapes. `upstream` is the path the
 * upstream sees through the catch-all route `/`.
 */
const pathVectors: readonly (readonly [request: string, upstream: string])[] = [
  ['/foo%2Fbar', '/foo/bar'],
  ['/foo/../bar', '/bar'],
  ['/foo//bar', '/foo/bar'],
  ['/api%2F..%2Fv2//users/', '/v2/users/'],
  ['/api/users/', '/api/users/'],
  // Cairn's own: dot segments never climb above the root, encoded dots are dots
  ['/../../etc/passwd', '/etc/passwd'],
  ['/%2e%2e/%2E%2E/etc/passwd', '/etc/passwd'],
  ['/a/./b/%2e/c', '/a/b/c'],
];

/** Requests that reach the `/secret` route (deny=127.0.0.0/8) only once normalised: all 403. */
const traversalsToSecret: readonly string[] = [
  '/pub/../secret/x',
  '/pub/%2e%2e/secret/x',
  '/pub/%2E%2e%2fsecret/x',
  '/pub%2F..%2Fsecret/x',
  '//secret/x',
  '/./secret/x',
  '/pub/..//secret/x',
];

for (const engine of ['lean', 'node'] as const) {
  describe(`bad HTTP input (--http1-engine ${engine})`, function () {
    this.timeout(30_000);
    let up: Upstream;
    let cairn: Cairn;

    before(async () => {
      up = await startUpstream('echo');
      const u = `http://127.0.0.1:${up.port}/`;
      cairn = await startCairn(
        {
          routes: [
            `route add echo / ${u}`,
            `route add echo /secret ${u} opts "deny=ip:127.0.0.0/8"`,
            `route add other other.example/ ${u}`,
          ].join('\n'),
        },
        {
          args: [
            '--http1-engine',
            engine,
            '--client-header-timeout',
            '1s',
            '--request-timeout',
            '1500ms',
            '--max-header-size',
            '8192',
          ],
        },
      );
    });

    after(async () => {
      await cairn?.stop(0);
      await closeAll([up]);
    });

    describe('request smuggling shapes -> 400, nothing forwarded', () => {
      for (const [name, req] of smuggling) {
        it(name, async () => {
          const before = up.requests.length;
          const r = await exchange(cairn.port, [req]);
          expect(statusOf(r.text), r.text).to.equal(400);
          expect(r.closed).to.equal(true);
          expect(up.requests.length).to.equal(before);
        });
      }

      for (const [name, body] of badChunks) {
        it(`invalid chunked body: ${name} -> 400 or cut, never a complete upstream request`, async () => {
          const before = up.completed;
          const r = await exchange(cairn.port, [
            `POST /chunks HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n${body}`,
          ]);
          expect(r.closed).to.equal(true);
          const status = statusOf(r.text);
          expect([0, 400], r.text).to.include(status);
          await expectNoLeak(cairn, up);
          expect(up.completed).to.equal(before);
        });
      }
    });

    describe('header limits', () => {
      it('over 100 header fields -> 431 (--max-header-count default), 100 are fine', async () => {
        const many = (n: number): string => Array.from({ length: n }, (_, i) => `X-H${i}: ${i}\r\n`).join('');
        const ok = await exchange(cairn.port, [
          `GET /ok HTTP/1.1\r\nHost: x\r\n${many(98)}Connection: close\r\n\r\n`,
        ]);
        expect(statusOf(ok.text)).to.equal(200);
        const before = up.requests.length;
        const r = await exchange(cairn.port, [`GET /many HTTP/1.1\r\nHost: x\r\n${many(101)}\r\n`]);
        expect(statusOf(r.text), r.text).to.equal(431);
        expect(r.closed).to.equal(true);
        expect(up.requests.length).to.equal(before);
      });

      it('a header block over --max-header-size sent in many small pieces -> 431', async () => {
        const line = `X-Big: ${'a'.repeat(100)}\r\n`;
        const pieces = [
          'GET /big HTTP/1.1\r\nHost: x\r\n',
          ...Array.from({ length: 90 }, () => line),
          '\r\n',
        ];
        const r = await exchange(cairn.port, pieces);
        expect(statusOf(r.text)).to.equal(431);
        expect(r.closed).to.equal(true);
      });
    });

    describe('Host', () => {
      for (const [name, req] of invalidHosts) {
        it(`${name} -> 400`, async () => {
          const before = up.requests.length;
          const r = await exchange(cairn.port, [req]);
          expect(statusOf(r.text), r.text).to.equal(400);
          expect(up.requests.length).to.equal(before);
        });
      }

      it('valid hosts pass: name:port, IPv4, [IPv6]:port, trailing dot, empty Host in HTTP/1.0', async () => {
        for (const host of [
          'a.example:8080',
          '127.0.0.1',
          '[::1]:80',
          'a.example.',
          'xn--bcher-kva.example',
        ]) {
          const r = await exchange(cairn.port, [
            `GET /h HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`,
          ]);
          expect(statusOf(r.text), host).to.equal(200);
        }
        const r10 = await exchange(cairn.port, ['GET /h10 HTTP/1.0\r\n\r\n']);
        expect(statusOf(r10.text)).to.equal(200);
      });
    });

    describe('request targets', () => {
      it('absolute-form: the URL names the host (RFC 9112 3.2.2), Host is ignored', async () => {
        const r = await exchange(cairn.port, [
          'GET http://other.example/abs?q=1 HTTP/1.1\r\nHost: not-routed.example\r\nConnection: close\r\n\r\n',
        ]);
        expect(statusOf(r.text), r.text).to.equal(200);
        const e = JSON.parse(bodyOf(r.text)) as Echo;
        expect(e.url).to.equal('/abs?q=1');
        expect(e.headers.host).to.equal('other.example');
        // the route is chosen by the URL's host too: a host-only route matches it
        const r2 = await exchange(cairn.port, [
          'GET http://other.example:80/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
        ]);
        expect(statusOf(r2.text)).to.equal(200);
      });

      it('absolute-form with a bad authority or scheme -> 400', async () => {
        for (const target of [
          'http://a b/x',
          'http:///x',
          'ftp://other.example/x',
          'http://u@other.example/x',
        ]) {
          const r = await exchange(cairn.port, [`GET ${target} HTTP/1.1\r\nHost: x\r\n\r\n`]);
          expect(statusOf(r.text), target).to.be.oneOf([400]);
        }
      });

      it('CONNECT -> 405, never a tunnel', async () => {
        const before = up.connections;
        const r = await exchange(
          cairn.port,
          [
            `CONNECT 127.0.0.1:${up.port} HTTP/1.1\r\nHost: 127.0.0.1:${up.port}\r\n\r\n`,
            'GET /through-tunnel HTTP/1.1\r\nHost: x\r\n\r\n',
          ],
          { pauseMs: 100 },
        );
        expect(statusOf(r.text), r.text).to.be.oneOf([400, 405]);
        expect(r.closed).to.equal(true);
        expect(up.requests.some((q) => q.url === '/through-tunnel')).to.equal(false);
        expect(up.connections).to.equal(before);
      });

      for (const [path, upstream] of pathVectors) {
        it(`path ${path} is normalised to ${upstream} before lookup and upstream`, async () => {
          const r = await exchange(cairn.port, [
            `GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`,
          ]);
          expect(statusOf(r.text)).to.equal(200);
          expect((JSON.parse(bodyOf(r.text)) as Echo).url).to.equal(upstream);
        });
      }

      it('dot segments and encoded slashes cannot bypass a route and its access rules', async () => {
        for (const path of traversalsToSecret) {
          const r = await exchange(cairn.port, [
            `GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`,
          ]);
          expect(statusOf(r.text), path).to.equal(403);
        }
        expect(up.requests.some((q) => q.url.includes('secret'))).to.equal(false);
      });

      it('invalid percent-encoding -> 400', async () => {
        for (const path of ['/a%', '/a%4', '/a%zz', '/%c0%ae%c0%ae/x']) {
          const r = await exchange(cairn.port, [
            `GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`,
          ]);
          expect(statusOf(r.text), path).to.be.oneOf(path.startsWith('/%c0') ? [200, 400] : [400]);
        }
      });
    });

    describe('slow and vanishing clients', () => {
      it('slowloris: headers dribbled one line at a time -> 408 at --client-header-timeout', async () => {
        const lines = ['GET /slow HTTP/1.1\r\n', ...Array.from({ length: 40 }, (_, i) => `X-D${i}: 1\r\n`)];
        const r = await exchange(cairn.port, lines, { pauseMs: 100, untilMs: 6000 });
        expect(r.closed).to.equal(true);
        // 1 s timeout, checked every 0.5 s: bounded well under the 4 s of dribbling
        expect(r.ms).to.be.below(3500);
        expect(statusOf(r.text), r.text).to.equal(408);
        await expectNoLeak(cairn, up);
      });

      it('slow body: bytes keep trickling in -> 408 at --request-timeout, upstream request abandoned', async () => {
        const pieces = ['POST /slow-body HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n'];
        for (let i = 0; i < 60; i++) pieces.push('x');
        const r = await exchange(cairn.port, pieces, { pauseMs: 100, untilMs: 8000 });
        expect(r.closed).to.equal(true);
        expect(r.ms).to.be.below(4500);
        expect(statusOf(r.text), r.text).to.be.oneOf([0, 408]);
        if (engine === 'lean') expect(statusOf(r.text)).to.equal(408);
        await expectNoLeak(cairn, up);
      });

      it('stalled body: no byte for --client-body-timeout -> 408 (lean) or cut (node), upstream abandoned', async () => {
        // its own Cairn: --request-timeout off (the default), --client-body-timeout 1s
        const c2 = await startCairn(
          { routes: `route add echo / http://127.0.0.1:${up.port}/` },
          { args: ['--http1-engine', engine, '--client-body-timeout', '1s'] },
        );
        try {
          const completed = up.completed;
          const r = await exchange(
            c2.port,
            ['POST /stalled HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n', 'abc', 'def'],
            { pauseMs: 300, untilMs: 8000 },
          );
          expect(r.closed).to.equal(true);
          expect(r.ms).to.be.within(900, 4000);
          if (engine === 'lean') expect(statusOf(r.text), r.text).to.equal(408);
          else expect(statusOf(r.text), r.text).to.be.oneOf([0, 408]);
          await expectNoLeak(c2, up);
          expect(up.completed).to.equal(completed);
          // a body that keeps coming, slowly but with no pause that long, is not cut
          const slow = ['POST /steady HTTP/1.1\r\nHost: x\r\nContent-Length: 8\r\nConnection: close\r\n\r\n'];
          for (let i = 0; i < 8; i++) slow.push('z');
          const ok = await exchange(c2.port, slow, { pauseMs: 250, untilMs: 8000 });
          expect(statusOf(ok.text), ok.text).to.equal(200);
        } finally {
          await c2.stop(0);
        }
      });

      it('client gone mid-body: the upstream request is aborted, nothing stays open', async () => {
        const before = up.aborted;
        const completed = up.completed;
        await exchange(
          cairn.port,
          ['POST /gone HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n', Buffer.alloc(20_000, 1)],
          { pauseMs: 100, destroyAfterWrite: true },
        );
        await expectNoLeak(cairn, up);
        expect(up.completed).to.equal(completed);
        expect(up.aborted).to.be.at.least(before);
        // and Cairn still answers
        const r = await exchange(cairn.port, ['GET /after HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n']);
        expect(statusOf(r.text)).to.equal(200);
      });

      it('200 clients that vanish at random points of their request leave nothing behind', async () => {
        const full = 'POST /burst HTTP/1.1\r\nHost: x\r\nContent-Length: 64\r\n\r\n' + 'y'.repeat(64);
        const runs: Promise<Exchanged>[] = [];
        for (let i = 0; i < 200; i++) {
          const cut = (i * 37) % full.length;
          runs.push(exchange(cairn.port, [full.slice(0, cut)], { destroyAfterWrite: true, untilMs: 2000 }));
        }
        await Promise.all(runs);
        await expectNoLeak(cairn, up);
        const r = await exchange(cairn.port, ['GET /after HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n']);
        expect(statusOf(r.text)).to.equal(200);
      });
    });
  });
}
