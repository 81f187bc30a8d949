// The lean HTTP/1.1 listener on the wire: raw sockets write exact bytes and read exact answers,
// so framing, keep-alive, pipelining, smuggling shapes and timeouts are checked byte for byte.
// The same cases also run on `--http1-engine node` (node:http), which must behave the same.

import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { expect } from 'chai';
import { type Cairn, startCairn } from './helpers/cairn.ts';

/** An upstream that echoes `METHOD URL` and, for /chunked, answers without Content-Length. */
async function startWireUpstream(): Promise<{ port: number; close(): Promise<void> }> {
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString();
      if (req.url?.startsWith('/chunked')) {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.write('part1;');
        setTimeout(() => res.end('part2'), 10);
        return;
      }
      const text = `${req.method} ${req.url} ${body}`;
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(text) });
      res.end(req.method === 'HEAD' ? undefined : text);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Opens a connection, writes `data` (pieces with pauses), collects everything until close or `untilMs`. */
function exchange(
  port: number,
  pieces: readonly (string | Buffer)[],
  opts: { untilMs?: number; pauseMs?: number } = {},
): Promise<{ text: string; closed: boolean }> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let closed = false;
    const finish = () => resolve({ text: Buffer.concat(chunks).toString('latin1'), closed });
    const timer = setTimeout(() => {
      sock.destroy();
      finish();
    }, opts.untilMs ?? 1500);
    sock.on('data', (c: Buffer) => chunks.push(c));
    sock.on('error', reject);
    sock.on('close', () => {
      closed = true;
      clearTimeout(timer);
      finish();
    });
    sock.on('connect', async () => {
      for (const p of pieces) {
        sock.write(p);
        if (opts.pauseMs !== undefined) await new Promise((r) => setTimeout(r, opts.pauseMs));
      }
    });
  });
}

async function waitForIdle(c: Cairn): Promise<void> {
  const deadline = Date.now() + 3000;
  while (c.server.proxy.active > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  expect(c.server.proxy.active).to.equal(0);
}

function statusLines(text: string): string[] {
  return text.match(/HTTP\/1\.[01] \d{3} [^\r]*/g) ?? [];
}

for (const engine of ['lean', 'node'] as const) {
  describe(`HTTP/1.1 on the wire (--http1-engine ${engine})`, function () {
    this.timeout(15_000);
    let up: { port: number; close(): Promise<void> };
    let cairn: Cairn;

    before(async () => {
      up = await startWireUpstream();
      cairn = await startCairn(
        {
          services: [
            {
              name: 'w',
              instances: [{ id: 'w1', address: '127.0.0.1', port: up.port, tags: ['urlprefix-/'] }],
            },
          ],
        },
        {
          args: [
            '--http1-engine',
            engine,
            '--client-header-timeout',
            '400ms',
            '--client-idle-timeout',
            '600ms',
            '--max-header-size',
            '4096',
          ],
        },
      );
    });

    after(async () => {
      await cairn?.stop(0);
      await up?.close();
    });

    it('answers pipelined requests in order on one connection', async () => {
      const r = await exchange(cairn.port, [
        'GET /a HTTP/1.1\r\nHost: x\r\n\r\nPOST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabcGET /c HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
      ]);
      expect(statusLines(r.text)).to.have.length(3);
      const bodies = r.text.match(/(GET|POST) \/[abc] (abc)?/g);
      expect(bodies).to.deep.equal(['GET /a ', 'POST /b abc', 'GET /c ']);
      expect(r.closed).to.equal(true);
    });

    it('rejects Content-Length together with Transfer-Encoding (request smuggling) with 400 and closes', async () => {
      const r = await exchange(cairn.port, [
        'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
      ]);
      expect(statusLines(r.text)[0]).to.match(/^HTTP\/1\.1 400 /);
      expect(r.closed).to.equal(true);
    });

    it('answers 431 for headers over --max-header-size', async () => {
      const r = await exchange(cairn.port, [
        `GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(8000)}\r\n\r\n`,
      ]);
      expect(statusLines(r.text)[0]).to.match(/^HTTP\/1\.1 431 /);
    });

    it('closes HTTP/1.0 connections unless they ask for keep-alive', async () => {
      const plain = await exchange(cairn.port, ['GET /h10 HTTP/1.0\r\nHost: x\r\n\r\n']);
      expect(statusLines(plain.text)).to.have.length(1);
      expect(plain.text).to.include('GET /h10');
      expect(plain.closed).to.equal(true);
      const ka = await exchange(
        cairn.port,
        ['GET /k1 HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\n\r\n'],
        {
          untilMs: 300,
        },
      );
      expect(ka.text.toLowerCase()).to.include('connection: keep-alive');
      expect(ka.closed).to.equal(false);
    });

    it('re-frames an upstream body of unknown length: chunked for HTTP/1.1, close-delimited for HTTP/1.0', async () => {
      const r11 = await exchange(cairn.port, [
        'GET /chunked HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
      ]);
      expect(r11.text.toLowerCase()).to.include('transfer-encoding: chunked');
      const body = r11.text.slice(r11.text.indexOf('\r\n\r\n') + 4);
      const decoded = body.replace(/(^|\r\n)[0-9a-f]+\r\n/g, '').replace(/\r\n$/, '');
      expect(decoded).to.equal('part1;part2');
      expect(body.endsWith('0\r\n\r\n')).to.equal(true);
      const r10 = await exchange(cairn.port, ['GET /chunked HTTP/1.0\r\nHost: x\r\n\r\n']);
      expect(r10.text.toLowerCase()).to.not.include('transfer-encoding');
      expect(r10.text.endsWith('part1;part2')).to.equal(true);
      expect(r10.closed).to.equal(true);
    });

    it('answers HEAD with the headers only, Content-Length kept', async () => {
      const r = await exchange(cairn.port, [
        'HEAD /h HTTP/1.1\r\nHost: x\r\n\r\nGET /after HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
      ]);
      expect(statusLines(r.text)).to.have.length(2);
      expect(r.text).to.include('GET /after');
      expect(r.text).to.not.include('HEAD /h');
    });

    it('sends 100 Continue for Expect: 100-continue, then the answer', async () => {
      const r = await exchange(
        cairn.port,
        [
          'PUT /up HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n',
          'hello',
        ],
        { pauseMs: 100 },
      );
      expect(statusLines(r.text)).to.deep.equal(['HTTP/1.1 100 Continue', 'HTTP/1.1 200 OK']);
      expect(r.text).to.include('PUT /up hello');
    });

    it('drains the body of a request it answers itself, and keeps the connection', async () => {
      const c2 = await startCairn(
        { routes: 'route add w /only http://127.0.0.1:1/' },
        { args: ['--http1-engine', engine] },
      );
      try {
        const r = await exchange(
          c2.port,
          [
            'POST /nowhere HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n01234',
            '56789GET /nowhere2 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
          ],
          { pauseMs: 50 },
        );
        expect(statusLines(r.text)).to.deep.equal(['HTTP/1.1 404 Not Found', 'HTTP/1.1 404 Not Found']);
      } finally {
        await c2.stop(0);
      }
    });

    it('answers 408 to a client that does not finish its headers in time (slowloris)', async () => {
      const started = Date.now();
      const r = await exchange(cairn.port, ['GET / HTTP/1.1\r\n', 'Host: x\r\n'], {
        untilMs: 3000,
        pauseMs: 150,
      });
      expect(r.closed).to.equal(true);
      expect(Date.now() - started).to.be.below(2500);
      if (engine === 'lean') expect(statusLines(r.text)[0]).to.match(/^HTTP\/1\.1 408 /);
    });

    it('gives up on a request whose body does not arrive within --request-timeout', async () => {
      const c2 = await startCairn(
        {
          services: [
            {
              name: 'w',
              instances: [{ id: 'w1', address: '127.0.0.1', port: up.port, tags: ['urlprefix-/'] }],
            },
          ],
        },
        { args: ['--http1-engine', engine, '--request-timeout', '500ms'] },
      );
      try {
        const started = Date.now();
        const r = await exchange(
          c2.port,
          ['POST /slow HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n012'],
          {
            untilMs: 4000,
          },
        );
        expect(r.closed).to.equal(true);
        expect(Date.now() - started).to.be.below(3000);
        expect(r.text).to.not.include('POST /slow');
        await waitForIdle(c2);
      } finally {
        await c2.stop(0);
      }
    });

    it('closes idle keep-alive connections after --client-idle-timeout', async () => {
      const started = Date.now();
      const r = await exchange(cairn.port, ['GET /idle HTTP/1.1\r\nHost: x\r\n\r\n'], { untilMs: 4000 });
      expect(r.text).to.include('GET /idle');
      expect(r.closed).to.equal(true);
      expect(Date.now() - started).to.be.below(3000);
    });
  });
}
