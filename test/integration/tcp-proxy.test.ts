// TCP port routes end to end over real sockets: `--listen 127.0.0.1:0;proto=tcp` and instances
// tagged `urlprefix-:PORT proto=tcp` (fabio's form). Balancing, half-close, backpressure, idle
// timeout, max connections, connect failures with retries and passive ejection, allow/deny on
// the client address, p2c by open connections, and the counters the metrics exporter reads.

import { spawn } from 'node:child_process';
import net from 'node:net';
import { expect } from 'chai';
import {
  Client,
  type EchoUpstream,
  echoUpstream,
  freePort,
  service,
  sleep,
  startTcpCairn,
  type TcpCairn,
  waitFor,
} from './tcp-helpers.ts';

describe('tcp: port routes', function () {
  this.timeout(15_000);
  let a: EchoUpstream;
  let b: EchoUpstream;
  let cairn: TcpCairn;
  let port: number;

  before(async () => {
    a = await echoUpstream('a', { greet: true, onEnd: 'bye' });
    b = await echoUpstream('b', { greet: true, onEnd: 'bye' });
    cairn = await startTcpCairn(['127.0.0.1:0;proto=tcp', '127.0.0.1:0;proto=tcp']);
    port = cairn.tcpPorts[0] as number;
    await cairn.update({ services: [service('db', [a, b], [`urlprefix-:${port} proto=tcp`])] });
  });

  after(async () => {
    await cairn?.stop();
    await a?.close();
    await b?.close();
  });

  it('relays bytes both ways, unchanged', async () => {
    const c = await Client.connect(port);
    await c.read(2);
    const payload = Buffer.alloc(256 * 1024);
    for (let i = 0; i < payload.length; i++) payload[i] = (i * 31) & 0xff;
    c.socket.write(payload);
    const back = await c.read(payload.length, 5000);
    expect(back.equals(payload)).to.equal(true);
    c.destroy();
  });

  it('spreads connections over the instances with weighted round-robin', async () => {
    const seen: string[] = [];
    for (let i = 0; i < 6; i++) {
      const c = await Client.connect(port);
      seen.push((await c.read(2)).toString().trim());
      c.destroy();
    }
    expect(seen.filter((n) => n === 'a')).to.have.length(3);
    expect(seen.filter((n) => n === 'b')).to.have.length(3);
    // Interleaved, not three of one then three of the other.
    for (let i = 1; i < seen.length; i++) expect(seen[i]).to.not.equal(seen[i - 1]);
  });

  it('passes a half-close on: the client FIN reaches the upstream, its answer still comes back', async () => {
    const c = await Client.connect(port);
    await c.read(2);
    c.socket.end('last words');
    const got = await c.read(13);
    expect(got.toString()).to.equal('last wordsbye');
    expect(await c.waitClosed()).to.equal(true);
    expect(c.ended).to.equal(true);
  });

  it('forwards what the client sends before the upstream is connected, its FIN included', async () => {
    // Written with the connect, so it reaches Cairn while it is still connecting upstream: held,
    // then sent first. More than the 64 KB Cairn holds before it stops reading the client.
    const payload = Buffer.alloc(200 * 1024);
    for (let i = 0; i < payload.length; i++) payload[i] = (i * 7) & 0xff;
    const s = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    const c = new Client(s);
    s.end(payload);
    await c.read(2); // the upstream's greeting
    const back = await c.read(payload.length + 3, 5000);
    expect(back.subarray(0, payload.length).equals(payload)).to.equal(true);
    expect(back.subarray(payload.length).toString()).to.equal('bye');
    expect(await c.waitClosed()).to.equal(true);
  });

  it('closes a connection on a port without a route', async () => {
    const other = cairn.tcpPorts[1] as number;
    const before = cairn.server.tcp.stats.rejected.noRoute;
    const c = await Client.connect(other);
    expect(await c.waitClosed(1000)).to.equal(true);
    expect(cairn.server.tcp.stats.rejected.noRoute).to.equal(before + 1);
  });

  it('counts connections and bytes per route and target', async () => {
    const stats = cairn.server.tcp.stats;
    const total = stats.all.total;
    const inBefore = stats.all.bytesIn;
    const c = await Client.connect(port);
    const name = (await c.read(2)).toString().trim();
    expect(await c.exchange('0123456789')).to.equal('0123456789');
    await waitFor(() => stats.all.open >= 1);
    c.destroy();
    await waitFor(() => stats.all.open === 0, 2000, 'sessions closed');
    expect(stats.all.total).to.equal(total + 1);
    expect(stats.all.bytesIn).to.equal(inBefore + 10);
    const targets = [...stats.targets()].filter((t) => t.route === `:${port}`);
    expect(targets.map((t) => t.service)).to.deep.equal(['db', 'db']);
    const mine = targets.find((t) => t.target.endsWith(`:${(name === 'a' ? a : b).port}`));
    expect(mine?.counters.bytesOut).to.be.greaterThan(0);
    const route = [...stats.routes()].find(([src]) => src === `:${port}`)?.[1];
    expect(route?.total).to.be.greaterThan(0);
  });

  it('resolves instances registered by host name', async () => {
    const other = cairn.tcpPorts[1] as number;
    await cairn.update({
      services: [
        service('db', [a, b], [`urlprefix-:${port} proto=tcp`]),
        {
          name: 'named',
          instances: [
            { id: 'n1', address: 'localhost', port: a.port, tags: [`urlprefix-:${other} proto=tcp`] },
          ],
        },
      ],
    });
    const c = await Client.connect(other);
    expect((await c.read(2)).toString()).to.equal('a\n');
    expect(await c.exchange('by name')).to.equal('by name');
    c.destroy();
  });

  it('counts open sessions in the target health state (p2c reads it)', async () => {
    const c = await Client.connect(port);
    const name = (await c.read(2)).toString().trim();
    const key = `db|tcp://127.0.0.1:${(name === 'a' ? a : b).port}|`;
    expect(cairn.server.health.inFlight(key)).to.equal(1);
    c.destroy();
    await waitFor(() => cairn.server.health.inFlight(key) === 0, 2000, 'in-flight back to 0');
  });
});

describe('tcp: backpressure', function () {
  this.timeout(15_000);

  it('stops reading from the client when the upstream does not read (no unbounded buffering)', async () => {
    const stalled = await echoUpstream('s', { stall: true });
    const cairn = await startTcpCairn(['127.0.0.1:0;proto=tcp']);
    try {
      const port = cairn.tcpPorts[0] as number;
      await cairn.update({ services: [service('sink', [stalled], [`urlprefix-:${port} proto=tcp`])] });
      const c = await Client.connect(port);
      const chunk = Buffer.alloc(64 * 1024, 1);
      let written = 0;
      // Write until the client's own socket reports a full buffer, for at most 64 MB.
      while (written < 64 * 1024 * 1024) {
        written += chunk.length;
        if (!c.socket.write(chunk)) {
          await Promise.race([new Promise((r) => c.socket.once('drain', r)), sleep(300)]);
          if (c.socket.writableLength > 0) break;
        }
      }
      await sleep(200);
      const [s] = [...cairn.server.tcp.forwarder.open];
      expect(s, 'a session').to.not.equal(undefined);
      // What Cairn holds for this session: the upstream write queue and the client read buffer.
      const held = (s?.upstream()?.writableLength ?? 0) + (s?.client.readableLength ?? 0);
      expect(held).to.be.lessThan(4 * 1024 * 1024);
      expect(written).to.be.lessThan(64 * 1024 * 1024);
      c.destroy();
    } finally {
      await cairn.stop();
      await stalled.close();
    }
  });
});

describe('tcp: timeouts and limits', function () {
  this.timeout(15_000);
  let up: EchoUpstream;
  before(async () => {
    up = await echoUpstream('u');
  });
  after(async () => up?.close());

  it('closes an idle session after it= and keeps a busy one', async () => {
    const cairn = await startTcpCairn(['127.0.0.1:0;proto=tcp;it=300ms']);
    try {
      const port = cairn.tcpPorts[0] as number;
      await cairn.update({ services: [service('db', [up], [`urlprefix-:${port} proto=tcp`])] });
      const idle = await Client.connect(port);
      const busy = await Client.connect(port);
      expect(await idle.exchange('x')).to.equal('x');
      const started = Date.now();
      for (let i = 0; i < 8; i++) {
        await sleep(100);
        expect(await busy.exchange(`ping${i}`)).to.equal(`ping${i}`);
      }
      expect(idle.closed || idle.ended).to.equal(true);
      expect(busy.closed || busy.ended).to.equal(false);
      const closedAt = await idle.closedAt;
      expect(closedAt - started).to.be.within(200, 1000);
      busy.destroy();
    } finally {
      await cairn.stop();
    }
  });

  it('refuses connections beyond maxconn= until one closes', async () => {
    const cairn = await startTcpCairn(['127.0.0.1:0;proto=tcp;maxconn=2']);
    try {
      const port = cairn.tcpPorts[0] as number;
      await cairn.update({ services: [service('db', [up], [`urlprefix-:${port} proto=tcp`])] });
      const c1 = await Client.connect(port);
      const c2 = await Client.connect(port);
      expect(await c1.exchange('1')).to.equal('1');
      expect(await c2.exchange('2')).to.equal('2');
      const c3 = await Client.connect(port);
      expect(await c3.waitClosed(1000)).to.equal(true);
      c1.destroy();
      await sleep(100);
      const c4 = await Client.connect(port);
      expect(await c4.exchange('4')).to.equal('4');
      c2.destroy();
      c4.destroy();
    } finally {
      await cairn.stop();
    }
  });

  it('gives up on a connect that does not complete within ct=', async function () {
    // A listener that never accepts, with its accept queue full: the kernel leaves further SYNs
    // unanswered, so a connect to it neither succeeds nor fails. Node always accepts, hence python.
    const hole = blackhole();
    if (hole === undefined) return this.skip();
    const cairn = await startTcpCairn(['127.0.0.1:0;proto=tcp;ct=300ms'], ['--eject-after', '0']);
    const fillers: net.Socket[] = [];
    try {
      const bport = await hole.port;
      for (let i = 0; i < 3; i++) {
        const f = net.connect(bport, '127.0.0.1');
        f.on('error', () => {});
        fillers.push(f);
      }
      await sleep(100);
      const port = cairn.tcpPorts[0] as number;
      await cairn.update({
        services: [service('slow', [{ port: bport }], [`urlprefix-:${port} proto=tcp retries=0`])],
      });
      const errors = cairn.server.tcp.stats.all.connectErrors;
      const started = Date.now();
      const c = await Client.connect(port);
      expect(await c.waitClosed(3000)).to.equal(true);
      expect(Date.now() - started).to.be.within(250, 1500);
      expect(cairn.server.tcp.stats.all.connectErrors).to.equal(errors + 1);
    } finally {
      for (const f of fillers) f.destroy();
      hole.kill();
      await cairn.stop();
    }
  });
});

/** A python listener with backlog 0 that never accepts (undefined when python3 is missing). */
function blackhole(): { port: Promise<number>; kill: () => void } | undefined {
  const script = [
    'import socket, time',
    's = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(0)',
    'print(s.getsockname()[1], flush=True)',
    'time.sleep(60)',
  ].join('\n');
  let child: ReturnType<typeof spawn>;
  try {
    child = spawn('python3', ['-c', script], { stdio: ['ignore', 'pipe', 'ignore'] });
  } catch {
    return undefined;
  }
  const port = new Promise<number>((resolve, reject) => {
    child.once('error', reject);
    child.stdout?.once('data', (d: Buffer) => resolve(Number(d.toString().trim())));
  });
  return { port, kill: () => child.kill() };
}

describe('tcp: connect failures, retries, passive ejection', function () {
  this.timeout(15_000);
  let good1: EchoUpstream;
  let good2: EchoUpstream;
  let deadPort: number;
  let cairn: TcpCairn;
  let port: number;

  before(async () => {
    good1 = await echoUpstream('g1', { greet: true });
    good2 = await echoUpstream('g2', { greet: true });
    deadPort = await freePort();
    cairn = await startTcpCairn(['127.0.0.1:0;proto=tcp'], ['--eject-after', '3', '--eject-time', '30s']);
    port = cairn.tcpPorts[0] as number;
  });

  after(async () => {
    await cairn?.stop();
    await good1?.close();
    await good2?.close();
  });

  it('tries the next instance when one refuses the connection, and ejects it after repeated failures', async () => {
    await cairn.update({
      services: [service('db', [good1, { port: deadPort }, good2], [`urlprefix-:${port} proto=tcp`])],
    });
    const deadKey = `db|tcp://127.0.0.1:${deadPort}|`;
    const seen: string[] = [];
    for (let i = 0; i < 12; i++) {
      const c = await Client.connect(port);
      seen.push((await c.read(3)).toString().trim());
      c.destroy();
    }
    // Every client got a working upstream; none was dropped.
    expect(seen.every((n) => n === 'g1' || n === 'g2')).to.equal(true);
    expect(cairn.server.health.isEjected(deadKey)).to.equal(true);
    const errs = cairn.server.tcp.stats.all.connectErrors;
    expect(errs).to.equal(3);
    // Ejected: no more attempts at it.
    for (let i = 0; i < 4; i++) {
      const c = await Client.connect(port);
      await c.read(3);
      c.destroy();
    }
    expect(cairn.server.tcp.stats.all.connectErrors).to.equal(errs);
  });

  it('closes the client when every instance fails (after retries=)', async () => {
    const dead2 = await freePort();
    await cairn.update({
      services: [
        service('gone', [{ port: deadPort }, { port: dead2 }], [`urlprefix-:${port} proto=tcp retries=1`]),
      ],
    });
    const rejected = cairn.server.tcp.stats.rejected.connectFailed;
    const errs = cairn.server.tcp.stats.all.connectErrors;
    const c = await Client.connect(port);
    expect(await c.waitClosed(2000)).to.equal(true);
    expect(c.take().length).to.equal(0);
    expect(cairn.server.tcp.stats.rejected.connectFailed).to.equal(rejected + 1);
    expect(cairn.server.tcp.stats.all.connectErrors).to.equal(errs + 2);
  });

  it('with retries=0 gives up after the first failure', async () => {
    await cairn.update({
      services: [service('once', [{ port: deadPort }, good1], [`urlprefix-:${port} proto=tcp retries=0`])],
    });
    // Round-robin starts at the first target (the dead one).
    const c = await Client.connect(port);
    expect(await c.waitClosed(2000)).to.equal(true);
    const c2 = await Client.connect(port);
    expect((await c2.read(3)).toString()).to.equal('g1\n');
    c2.destroy();
  });
});

describe('tcp: allow/deny on the client address', function () {
  this.timeout(15_000);
  let up: EchoUpstream;
  let cairn: TcpCairn;
  let port: number;

  before(async () => {
    up = await echoUpstream('u');
    cairn = await startTcpCairn(['127.0.0.1:0;proto=tcp']);
    port = cairn.tcpPorts[0] as number;
  });
  after(async () => {
    await cairn?.stop();
    await up?.close();
  });

  const cases: [string, boolean][] = [
    ['allow=ip:127.0.0.0/8', true],
    ['allow=ip:10.0.0.0/8', false],
    ['deny=ip:127.0.0.1', false],
    ['deny=ip:192.168.0.0/16,ip:::1', true],
  ];
  for (const [opt, passes] of cases) {
    it(`${opt}: ${passes ? 'forwards' : 'closes without contacting the upstream'}`, async () => {
      await cairn.update({ services: [service('db', [up], [`urlprefix-:${port} proto=tcp ${opt}`])] });
      const conns = up.conns.length;
      const denied = cairn.server.tcp.stats.rejected.denied;
      const c = await Client.connect(port);
      if (passes) {
        expect(await c.exchange('hi')).to.equal('hi');
        c.destroy();
      } else {
        expect(await c.waitClosed(1000)).to.equal(true);
        expect(up.conns.length).to.equal(conns);
        expect(cairn.server.tcp.stats.rejected.denied).to.equal(denied + 1);
      }
    });
  }
});

describe('tcp: p2c picks the instance with fewer open connections', function () {
  this.timeout(15_000);

  it('sends new connections away from the busy instance', async () => {
    const x = await echoUpstream('x', { greet: true });
    const y = await echoUpstream('y', { greet: true });
    const cairn = await startTcpCairn(['127.0.0.1:0;proto=tcp'], ['--strategy', 'p2c']);
    const held: Client[] = [];
    try {
      const port = cairn.tcpPorts[0] as number;
      await cairn.update({ services: [service('db', [x, y], [`urlprefix-:${port} proto=tcp`])] });
      // Open connections until one instance holds 3 more than the other.
      let diff = 0;
      for (let i = 0; i < 40 && Math.abs(diff) < 3; i++) {
        const c = await Client.connect(port);
        const n = (await c.read(2)).toString().trim();
        if ((n === 'x') === diff >= 0) {
          held.push(c);
          diff += n === 'x' ? 1 : -1;
        } else {
          c.destroy();
        }
      }
      await sleep(50);
      const busy = diff > 0 ? 'x' : 'y';
      // With two targets p2c compares both: every new connection goes to the idle one.
      for (let i = 0; i < 5; i++) {
        const c = await Client.connect(port);
        const n = (await c.read(2)).toString().trim();
        expect(n).to.not.equal(busy);
        c.destroy();
        await sleep(20);
      }
    } finally {
      for (const c of held) c.destroy();
      await cairn.stop();
      await x.close();
      await y.close();
    }
  });
});
