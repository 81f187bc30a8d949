// Table swaps and shutdown with open TCP sessions, changing the table by rewriting the file
// registry: established connections are never cut by a swap; a removed target gets no new
// connections and its open ones finish (or are closed at the listener's drain= deadline); a
// graceful stop waits for open sessions up to the shutdown wait.

import { expect } from 'chai';
import {
  Client,
  type EchoUpstream,
  echoUpstream,
  service,
  sleep,
  startTcpCairn,
  type TcpCairn,
} from './tcp-helpers.ts';

describe('tcp: drain on table change', function () {
  this.timeout(20_000);
  let a: EchoUpstream;
  let b: EchoUpstream;
  let other: EchoUpstream;

  before(async () => {
    a = await echoUpstream('a', { greet: true });
    b = await echoUpstream('b', { greet: true });
    other = await echoUpstream('o');
  });
  after(async () => {
    for (const u of [a, b, other]) await u?.close();
  });

  async function withCairn(listen: string, fn: (c: TcpCairn, port: number) => Promise<void>): Promise<void> {
    const cairn = await startTcpCairn([listen]);
    try {
      await fn(cairn, cairn.tcpPorts[0] as number);
    } finally {
      await cairn.stop();
    }
  }

  it('keeps an established connection to a removed target; new connections go elsewhere', async () => {
    await withCairn('127.0.0.1:0;proto=tcp', async (cairn, port) => {
      await cairn.update({ services: [service('db', [a], [`urlprefix-:${port} proto=tcp`])] });
      const old = await Client.connect(port);
      expect((await old.read(2)).toString()).to.equal('a\n');
      const aConns = a.conns.length;

      await cairn.update({ services: [service('db', [b], [`urlprefix-:${port} proto=tcp`])] });
      for (let i = 0; i < 4; i++) {
        const c = await Client.connect(port);
        expect((await c.read(2)).toString()).to.equal('b\n');
        c.destroy();
      }
      expect(a.conns.length).to.equal(aConns);
      // Half a second and several exchanges later the old session still works.
      for (let i = 0; i < 5; i++) {
        await sleep(100);
        expect(await old.exchange(`old ${i}`)).to.equal(`old ${i}`);
      }
      old.destroy();
    });
  });

  it('closes connections to a removed target at the drain= deadline, and only those', async () => {
    await withCairn('127.0.0.1:0;proto=tcp;drain=400ms', async (cairn, port) => {
      await cairn.update({ services: [service('db', [a, b], [`urlprefix-:${port} proto=tcp`])] });
      const c1 = await Client.connect(port);
      const c2 = await Client.connect(port);
      const n1 = (await c1.read(2)).toString();
      const n2 = (await c2.read(2)).toString();
      const [toA, toB] = n1 === 'a\n' ? [c1, c2] : [c2, c1];
      expect([n1, n2].sort()).to.deep.equal(['a\n', 'b\n']);

      const t = Date.now();
      await cairn.update({ services: [service('db', [b], [`urlprefix-:${port} proto=tcp`])] });
      expect(await toA.exchange('before deadline')).to.equal('before deadline');
      const closedAt = await toA.closedAt;
      expect(closedAt - t).to.be.within(300, 1200);
      expect(await toB.exchange('unaffected')).to.equal('unaffected');
      toB.destroy();
    });
  });

  it('lifts the deadline when the target comes back before it', async () => {
    await withCairn('127.0.0.1:0;proto=tcp;drain=400ms', async (cairn, port) => {
      const routes = { services: [service('db', [a], [`urlprefix-:${port} proto=tcp`])] };
      await cairn.update(routes);
      const c = await Client.connect(port);
      await c.read(2);
      await cairn.update({ services: [service('db', [b], [`urlprefix-:${port} proto=tcp`])] });
      await sleep(100);
      await cairn.update(routes);
      await sleep(600);
      expect(await c.exchange('kept')).to.equal('kept');
      c.destroy();
    });
  });

  it('leaves sessions alone on swaps that do not remove their target', async () => {
    await withCairn('127.0.0.1:0;proto=tcp;drain=200ms', async (cairn, port) => {
      await cairn.update({ services: [service('db', [a], [`urlprefix-:${port} proto=tcp`])] });
      const c = await Client.connect(port);
      await c.read(2);
      for (let i = 0; i < 3; i++) {
        await cairn.update({
          services: [
            service('db', [a], [`urlprefix-:${port} proto=tcp`]),
            service('web', [other], [`urlprefix-/v${i}`]),
          ],
        });
      }
      await sleep(400);
      expect(await c.exchange('still here')).to.equal('still here');
      c.destroy();
    });
  });
});

describe('tcp: graceful shutdown', function () {
  this.timeout(15_000);

  it('waits for open sessions up to the shutdown wait, then closes them', async () => {
    const up = await echoUpstream('u');
    const cairn = await startTcpCairn(['127.0.0.1:0;proto=tcp']);
    try {
      const port = cairn.tcpPorts[0] as number;
      await cairn.update({ services: [service('db', [up], [`urlprefix-:${port} proto=tcp`])] });
      const lingering = await Client.connect(port);
      const finishing = await Client.connect(port);
      expect(await lingering.exchange('x')).to.equal('x');
      expect(await finishing.exchange('y')).to.equal('y');
      const t = Date.now();
      const stopped = cairn.stopServer(500);
      await sleep(100);
      // No new connections once stopping...
      const refused = await Client.connect(port).then(
        (c) => c.waitClosed(500),
        () => true,
      );
      expect(refused).to.equal(true);
      // ...but open sessions keep working until they end or the wait is over.
      expect(await lingering.exchange('during drain')).to.equal('during drain');
      finishing.socket.end();
      await stopped;
      const took = Date.now() - t;
      expect(took).to.be.within(400, 2000);
      expect(await lingering.waitClosed(500)).to.equal(true);
      expect(cairn.server.tcp.openSessions).to.equal(0);
    } finally {
      await cairn.stop();
      await up.close();
    }
  });

  it('returns as soon as the last session ends', async () => {
    const up = await echoUpstream('u');
    const cairn = await startTcpCairn(['127.0.0.1:0;proto=tcp']);
    try {
      const port = cairn.tcpPorts[0] as number;
      await cairn.update({ services: [service('db', [up], [`urlprefix-:${port} proto=tcp`])] });
      const c = await Client.connect(port);
      expect(await c.exchange('x')).to.equal('x');
      const t = Date.now();
      const stopped = cairn.stopServer(5000);
      setTimeout(() => c.socket.end(), 150);
      await stopped;
      expect(Date.now() - t).to.be.lessThan(1500);
    } finally {
      await cairn.stop();
      await up.close();
    }
  });
});
