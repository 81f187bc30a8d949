import { expect } from 'chai';
import net, { type AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { useOnread } from '../../lib/proxy/tcp/client-onread.ts';

// `onread` on accepted sockets relies on Node internals (client-onread.ts); the TCP proxy falls
// back to 'data' events without it, so only this test notices when a Node upgrade breaks it.

interface Accepted {
  readonly server: net.Server;
  readonly client: net.Socket;
  readonly accepted: net.Socket;
}

async function pair(): Promise<Accepted> {
  let accepted: (s: net.Socket) => void = () => {};
  const got = new Promise<net.Socket>((resolve) => (accepted = resolve));
  const server = net.createServer({ allowHalfOpen: true }, (s) => accepted(s));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const client = net.connect((server.address() as AddressInfo).port, '127.0.0.1');
  return { server, client, accepted: await got };
}

describe('tcp client onread (one shared read buffer for accepted sockets)', () => {
  it('delivers reads to the callback, pauses and resumes reading, and still ends', async () => {
    const { server, client, accepted } = await pair();
    try {
      const chunks: string[] = [];
      let stop = false;
      const buffer = Buffer.alloc(4096);
      const applied = useOnread(accepted, buffer, (n, buf) => {
        chunks.push(buf.toString('utf8', 0, n));
        return !stop;
      });
      expect(applied, 'onread applied to an accepted socket (Node internals changed?)').to.equal(true);
      accepted.pause();
      client.write('held');
      await sleep(50);
      expect(chunks).to.deep.equal([]); // paused: the kernel keeps the bytes
      accepted.resume();
      await sleep(50);
      expect(chunks.join('')).to.equal('held');
      stop = true; // the callback returns false: reading stops (backpressure)
      client.write('a');
      await sleep(50);
      client.write('b');
      await sleep(50);
      expect(chunks.join('')).to.equal('helda');
      stop = false;
      accepted.resume();
      const ended = new Promise<void>((resolve) => accepted.once('end', resolve));
      client.end();
      await ended;
      expect(chunks.join('')).to.equal('heldab');
      expect(accepted.readableLength).to.equal(0);
    } finally {
      client.destroy();
      accepted.destroy();
      server.close();
    }
  });

  it('refuses a socket that already has bytes in its stream buffer', async () => {
    const { server, client, accepted } = await pair();
    try {
      accepted.pause();
      client.write('early');
      await sleep(50);
      accepted.read(0); // pulls the bytes into the stream buffer
      await sleep(20);
      expect(accepted.readableLength).to.be.greaterThan(0);
      expect(useOnread(accepted, Buffer.alloc(16), () => true)).to.equal(false);
    } finally {
      client.destroy();
      accepted.destroy();
      server.close();
    }
  });
});
