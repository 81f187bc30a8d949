// WebSocket pass-through over real sockets: undici's WebSocket client -> Cairn -> a minimal
// RFC 6455 echo upstream (helpers/websocket.ts). Also a raw-socket handshake to see the 101.

import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { expect } from 'chai';
import { WebSocket } from 'undici';
import { type Cairn, startCairn, waitFor } from './helpers/cairn.ts';
import { refusedPort } from './helpers/upstream.ts';
import { OP_CLOSE, OP_TEXT, startWsUpstream, type WsUpstream } from './helpers/websocket.ts';

interface Client {
  readonly ws: WebSocket;
  readonly messages: (string | Buffer)[];
  closed: { code: number; reason: string } | undefined;
}

function connect(url: string): Promise<Client> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.binaryType = 'arraybuffer';
    const c: Client = { ws, messages: [], closed: undefined };
    ws.addEventListener('message', (e) => {
      c.messages.push(typeof e.data === 'string' ? e.data : Buffer.from(e.data as ArrayBuffer));
    });
    ws.addEventListener('close', (e) => (c.closed = { code: e.code, reason: e.reason }));
    ws.addEventListener('open', () => resolve(c), { once: true });
    ws.addEventListener('error', () => reject(new Error(`websocket to ${url} failed`)), { once: true });
  });
}

/** Raw handshake: the status line and headers Cairn answers with. */
function rawHandshake(port: number, path: string): Promise<{ head: string; key: string }> {
  return new Promise((resolve, reject) => {
    const key = randomBytes(16).toString('base64');
    const sock = net.connect(port, '127.0.0.1');
    let buf = '';
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error('handshake timed out'));
    }, 3000);
    sock.setEncoding('latin1');
    sock.on('data', (d: string) => {
      buf += d;
      const end = buf.indexOf('\r\n\r\n');
      if (end >= 0) {
        clearTimeout(timer);
        sock.destroy();
        resolve({ head: buf.slice(0, end), key });
      }
    });
    sock.on('error', reject);
    sock.write(
      `GET ${path} HTTP/1.1\r\nHost: ws.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
    );
  });
}

describe('WebSocket through Cairn (real sockets)', function () {
  this.timeout(10_000);

  let up: WsUpstream;
  let cairn: Cairn;
  const clients: Client[] = [];

  before(async () => {
    up = await startWsUpstream();
    cairn = await startCairn({
      services: [
        {
          name: 'ws',
          instances: [
            {
              address: '127.0.0.1',
              port: up.port,
              tags: ['urlprefix-/ws', 'urlprefix-/stripped strip=/stripped'],
            },
          ],
        },
      ],
    });
  });

  afterEach(async () => {
    const open = clients.splice(0);
    for (const c of open) if (c.closed === undefined) c.ws.close();
    await waitFor(() => open.every((c) => c.closed !== undefined), 2000, 'clients closed');
    up.greeting = undefined;
  });

  after(async () => {
    await cairn?.stop();
    await up?.close();
  });

  async function open(path: string): Promise<Client> {
    const c = await connect(`ws://127.0.0.1:${cairn.port}${path}`);
    clients.push(c);
    return c;
  }

  it('upgrades with 101 and a valid Sec-WebSocket-Accept', async () => {
    const { head, key } = await rawHandshake(cairn.port, '/ws/raw');
    const lines = head.split('\r\n');
    expect(lines[0]).to.match(/^HTTP\/1\.1 101 /);
    const accept = createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
    const header = (n: string) =>
      lines
        .find((l) => l.toLowerCase().startsWith(`${n}:`))
        ?.slice(n.length + 1)
        .trim();
    expect(header('sec-websocket-accept')).to.equal(accept);
    expect(header('upgrade')?.toLowerCase()).to.equal('websocket');
    expect(header('connection')?.toLowerCase()).to.equal('upgrade');
  });

  it('echoes messages both ways (text, 70 KB binary) and forwards the request headers', async () => {
    up.greeting = 'welcome';
    const before = up.connections.length;
    const c = await open('/ws/chat?room=1');
    await waitFor(() => c.messages.length === 1, 2000, 'greeting from the upstream');
    expect(c.messages[0]).to.equal('welcome');
    c.ws.send('hello');
    const big = randomBytes(70_000);
    c.ws.send(big);
    await waitFor(() => c.messages.length === 3, 2000, 'echoes');
    expect(c.messages[1]).to.equal('hello');
    expect(Buffer.compare(c.messages[2] as Buffer, big)).to.equal(0);
    const conn = up.connections[before];
    expect(conn?.received.map((f) => f.opcode)).to.deep.equal([OP_TEXT, 0x2]);
    const h = conn?.request.headers ?? {};
    expect(conn?.request.url).to.equal('/ws/chat?room=1');
    expect(h.host).to.equal(`127.0.0.1:${cairn.port}`);
    expect(h['x-forwarded-for']).to.equal('127.0.0.1');
    expect(h['x-forwarded-proto']).to.equal('http');
  });

  it('applies strip= to the upgrade request path', async () => {
    const before = up.connections.length;
    const c = await open('/stripped/ws/x');
    c.ws.send('ping');
    await waitFor(() => c.messages.length === 1, 2000, 'echo');
    expect(up.connections[before]?.request.url).to.equal('/ws/x');
  });

  it('a client close reaches the upstream and both connections end', async () => {
    const before = up.connections.length;
    const c = await open('/ws/close-client');
    c.ws.send('x');
    await waitFor(() => c.messages.length === 1, 2000, 'echo');
    c.ws.close(1000, 'bye');
    const conn = up.connections[before];
    await waitFor(() => conn?.closed === true, 2000, 'upstream socket closed');
    expect(conn?.received.at(-1)?.opcode).to.equal(OP_CLOSE);
    expect(conn?.received.at(-1)?.payload.readUInt16BE(0)).to.equal(1000);
    await waitFor(() => c.closed !== undefined, 2000, 'client closed');
    expect(c.closed?.code).to.equal(1000);
    await waitFor(
      () => cairn.server.upgrades.open.size === 0,
      2000,
      `Cairn forgets the pair (${cairn.server.upgrades.open.size})`,
    );
  });

  it('an upstream close (close frame) reaches the client', async () => {
    const before = up.connections.length;
    const c = await open('/ws/close-upstream');
    const conn = up.connections[before];
    const reason = Buffer.from([0x03, 0xe9, ...Buffer.from('going')]); // 1001 "going"
    conn?.send(OP_CLOSE, reason);
    conn?.socket.end();
    await waitFor(() => c.closed !== undefined, 2000, 'client closed');
    expect(c.closed).to.deep.equal({ code: 1001, reason: 'going' });
    await waitFor(
      () => cairn.server.upgrades.open.size === 0,
      2000,
      `Cairn forgets the pair (${cairn.server.upgrades.open.size})`,
    );
  });

  it('an upstream that drops the connection closes the client (1006)', async () => {
    const before = up.connections.length;
    const c = await open('/ws/drop');
    up.connections[before]?.socket.destroy();
    await waitFor(() => c.closed !== undefined, 2000, 'client closed');
    expect(c.closed?.code).to.equal(1006);
  });

  it('a client that hangs up right after the handshake frees the pair', async () => {
    const before = up.connections.length;
    await rawHandshake(cairn.port, '/ws/hangup');
    await waitFor(() => up.connections[before]?.closed === true, 2000, 'upstream socket closed');
    await waitFor(() => cairn.server.upgrades.open.size === 0, 2000, 'Cairn forgets the pair');
  });

  it('closes a half-closed pair whose upstream ignores the FIN, after the grace period', async () => {
    const grace = cairn.server.upgrades.halfCloseGraceMs;
    cairn.server.upgrades.halfCloseGraceMs = 200;
    up.ignoreFin = true;
    try {
      const started = Date.now();
      // The client sends FIN right after the 101; the upstream never answers it with its own.
      await rawHandshake(cairn.port, '/ws/half-open');
      expect(cairn.server.upgrades.open.size).to.equal(1);
      await waitFor(() => cairn.server.upgrades.open.size === 0, 3000, 'Cairn closes the pair');
      expect(Date.now() - started).to.be.at.least(150);
    } finally {
      cairn.server.upgrades.halfCloseGraceMs = grace;
      up.ignoreFin = false;
    }
  });

  it('passes an upstream that refuses the upgrade through with its own status', async () => {
    // The upstream answers 400 to a handshake without Sec-WebSocket-Key.
    const r = await new Promise<string>((resolve, reject) => {
      const sock = net.connect(cairn.port, '127.0.0.1');
      let buf = '';
      sock.setEncoding('latin1');
      sock.on('data', (d: string) => (buf += d));
      sock.on('end', () => resolve(buf));
      sock.on('error', reject);
      sock.write(
        'GET /ws/nokey HTTP/1.1\r\nHost: ws.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n',
      );
    });
    expect(r.split('\r\n')[0]).to.match(/^HTTP\/1\.1 400 /);
  });

  it('retries an upgrade on another target when the connection is refused', async () => {
    const refused = await refusedPort();
    const other = await startCairn({
      routes: [
        `route add ws /ws http://127.0.0.1:${refused}/`,
        `route add ws /ws http://127.0.0.1:${up.port}/`,
      ].join('\n'),
    });
    try {
      for (let i = 0; i < 4; i++) {
        const c = await connect(`ws://127.0.0.1:${other.port}/ws/retry/${i}`);
        clients.push(c);
        c.ws.send(`m${i}`);
        await waitFor(() => c.messages.length === 1, 2000, 'echo');
        expect(c.messages[0]).to.equal(`m${i}`);
      }
    } finally {
      for (const c of clients) c.ws.close();
      await waitFor(() => clients.every((c) => c.closed !== undefined), 2000, 'clients closed');
      await other.stop();
    }
  });

  it('answers 502 when no target accepts the connection', async () => {
    const other = await startCairn({ routes: `route add ws /ws http://127.0.0.1:${await refusedPort()}/` });
    try {
      const { head } = await rawHandshake(other.port, '/ws/none');
      expect(head.split('\r\n')[0]).to.match(/^HTTP\/1\.1 502 /);
    } finally {
      await other.stop();
    }
  });

  it('answers a redirect route with the redirect, never an upgrade', async () => {
    const other = await startCairn({
      routes: `route add ws /old http://127.0.0.1:${up.port}/new$path opts "redirect=301"`,
    });
    const before = up.connections.length;
    try {
      const { head } = await rawHandshake(other.port, '/old/chat?x=1');
      const lines = head.split('\r\n');
      expect(lines[0]).to.match(/^HTTP\/1\.1 301 /);
      expect(lines).to.include(`Location: http://127.0.0.1:${up.port}/new/old/chat?x=1`);
      expect(up.connections.length).to.equal(before);
    } finally {
      await other.stop();
    }
  });

  it('does not let an upgrade bypass auth= (no credentials: refused, upstream never reached)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cairn-ws-auth-'));
    const htpasswd = join(dir, 'users');
    await writeFile(htpasswd, `bob:{SHA}${createHash('sha1').update('s3cret').digest('base64')}\n`);
    const other = await startCairn(
      {
        services: [
          {
            name: 'ws',
            instances: [{ address: '127.0.0.1', port: up.port, tags: ['urlprefix-/ws auth=team'] }],
          },
        ],
      },
      { args: ['--auth', `name=team;type=basic;file=${htpasswd}`] },
    );
    const before = up.connections.length;
    try {
      const { head } = await rawHandshake(other.port, '/ws/secret');
      expect(head.split('\r\n')[0]).to.match(/^HTTP\/1\.1 401 /);
      expect(up.connections.length).to.equal(before);
    } finally {
      await other.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('keeps an idle WebSocket open past the client header and request timeouts', async () => {
    const other = await startCairn(
      { routes: `route add ws /ws http://127.0.0.1:${up.port}/` },
      {
        args: [
          '--client-header-timeout',
          '300ms',
          '--request-timeout',
          '400ms',
          '--client-idle-timeout',
          '300ms',
        ],
      },
    );
    try {
      const c = await connect(`ws://127.0.0.1:${other.port}/ws/idle`);
      clients.push(c);
      await sleep(1200);
      expect(c.closed).to.equal(undefined);
      c.ws.send('still here');
      await waitFor(() => c.messages.length === 1, 2000, 'echo after idling');
      expect(c.messages[0]).to.equal('still here');
    } finally {
      for (const c of clients) c.ws.close();
      await waitFor(() => clients.every((c) => c.closed !== undefined), 2000, 'clients closed');
      await other.stop();
    }
  });

  it('answers an upgrade without a route with 404', async () => {
    const { head } = await rawHandshake(cairn.port, '/nowhere');
    expect(head.split('\r\n')[0]).to.match(/^HTTP\/1\.1 404 /);
  });
});
