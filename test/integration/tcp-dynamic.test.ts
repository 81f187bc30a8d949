// fabio's `proto=tcp-dynamic`: a listener per `ip:port` TCP route, opened when the route appears
// in the table and closed when it goes (its open connections stay). The registry file is
// rewritten to change the table, as an operator would.

import { expect } from 'chai';
import net from 'node:net';
import {
  Client,
  type EchoUpstream,
  echoUpstream,
  freePort,
  service,
  startTcpCairn,
  type TcpCairn,
  waitFor,
} from './tcp-helpers.ts';

function refused(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, host);
    s.once('connect', () => {
      s.destroy();
      resolve(false);
    });
    s.once('error', () => resolve(true));
  });
}

async function eventually(cond: () => Promise<boolean>, what: string, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('tcp-dynamic: listeners follow the ip:port routes of the table', function () {
  this.timeout(20_000);
  let a: EchoUpstream;
  let b: EchoUpstream;
  let cairn: TcpCairn;

  before(async () => {
    a = await echoUpstream('a', { greet: true });
    b = await echoUpstream('b', { greet: true });
    cairn = await startTcpCairn(['127.0.0.1:0;proto=tcp-dynamic;refresh=200ms']);
  });
  after(async () => {
    await cairn?.stop();
    await a?.close();
    await b?.close();
  });

  const dyn = () => cairn.server.tcp.dynamic[0];
  const srcs = () => (dyn()?.addresses() ?? []).map((x) => x.src).sort();

  it('opens a listener when a route appears and closes it when it goes, leaving its connections open', async () => {
    const p1 = await freePort();
    const p2 = await freePort();
    await cairn.update({
      services: [
        service('a', [a], [`urlprefix-127.0.0.1:${p1} proto=tcp`]),
        service('b', [b], [`urlprefix-127.0.0.1:${p2} proto=tcp`]),
      ],
    });
    await waitFor(() => srcs().length === 2, 3000, 'two dynamic listeners');
    expect(srcs()).to.deep.equal([`127.0.0.1:${p1}`, `127.0.0.1:${p2}`].sort());
    const ca = await Client.connect(p1);
    expect((await ca.read(2)).toString()).to.equal('a\n');
    const cb = await Client.connect(p2);
    expect((await cb.read(2)).toString()).to.equal('b\n');

    // Route a goes: its listener closes, its open connection keeps working.
    await cairn.update({ services: [service('b', [b], [`urlprefix-127.0.0.1:${p2} proto=tcp`])] });
    await eventually(() => refused(p1), 'listener a closed');
    expect(srcs()).to.deep.equal([`127.0.0.1:${p2}`]);
    expect(await ca.exchange('still open')).to.equal('still open');
    expect(await cb.exchange('b too')).to.equal('b too');
    ca.destroy();
    cb.destroy();

    // And comes back.
    await cairn.update({
      services: [
        service('a', [a], [`urlprefix-127.0.0.1:${p1} proto=tcp`]),
        service('b', [b], [`urlprefix-127.0.0.1:${p2} proto=tcp`]),
      ],
    });
    await waitFor(() => srcs().length === 2, 3000, 'listener a back');
    const again = await Client.connect(p1);
    expect((await again.read(2)).toString()).to.equal('a\n');
    again.destroy();
  });

  it("ignores :port routes and routes on other addresses than the listener's", async () => {
    const p = await freePort();
    const q = await freePort('127.0.0.2');
    await cairn.update({
      services: [
        service('a', [a], [`urlprefix-:${p} proto=tcp`]),
        service('b', [b], [`urlprefix-127.0.0.2:${q} proto=tcp`]),
      ],
    });
    await waitFor(() => srcs().length === 0, 3000, 'no dynamic listeners');
    expect(await refused(p)).to.equal(true);
    expect(await refused(q, '127.0.0.2')).to.equal(true);
  });

  it('retries a bind that failed (address in use) every refresh=', async () => {
    const blocker = net.createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', () => r()));
    const p = (blocker.address() as net.AddressInfo).port;
    await cairn.update({ services: [service('a', [a], [`urlprefix-127.0.0.1:${p} proto=tcp`])] });
    await waitFor(() => dyn()?.failed.has(`127.0.0.1:${p}`) === true, 3000, 'bind failure recorded');
    expect(dyn()?.failed.get(`127.0.0.1:${p}`)).to.equal('EADDRINUSE');
    await new Promise<void>((r) => blocker.close(() => r()));
    await waitFor(() => srcs().includes(`127.0.0.1:${p}`), 3000, 'bound after retry');
    const c = await Client.connect(p);
    expect((await c.read(2)).toString()).to.equal('a\n');
    c.destroy();
  });
});

describe('tcp-dynamic on all addresses', function () {
  this.timeout(15_000);

  it('binds routes on any local address', async () => {
    const a = await echoUpstream('a', { greet: true });
    const cairn = await startTcpCairn([':0;proto=tcp-dynamic']);
    try {
      const q = await freePort('127.0.0.2');
      await cairn.update({ services: [service('a', [a], [`urlprefix-127.0.0.2:${q} proto=tcp`])] });
      await waitFor(() => (cairn.server.tcp.dynamic[0]?.addresses().length ?? 0) === 1, 3000, 'listener');
      const c = await Client.connect(q, '127.0.0.2');
      expect((await c.read(2)).toString()).to.equal('a\n');
      c.destroy();
    } finally {
      await cairn.stop();
      await a.close();
    }
  });
});
