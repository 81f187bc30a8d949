// Direct writes to a socket's libuv handle (lib/proxy/h1/direct-write.ts), on real loopback
// sockets: the fast path is really on, bytes arrive whole and in order when mixed with
// socket.write(), a write the kernel cannot take whole is queued and reported when gone, and a
// busy socket is left to its own write path.

import { once } from 'node:events';
import net, { type Server, type Socket } from 'node:net';
import { expect } from 'chai';
import {
  Direct,
  directWriteAvailable,
  releaseChunk,
  writeDirect,
  writeHeadDirect,
} from '../../lib/proxy/h1/direct-write.ts';

interface Pair {
  client: Socket;
  peer: Socket;
  server: Server;
}

async function pair(): Promise<Pair> {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as net.AddressInfo).port;
  const accepted = once(server, 'connection') as Promise<[Socket]>;
  const client = net.connect({ port, host: '127.0.0.1' });
  await once(client, 'connect');
  const [peer] = await accepted;
  return { client, peer, server };
}

function close(p: Pair): void {
  p.client.destroy();
  p.peer.destroy();
  p.server.close();
}

function readAll(s: Socket, bytes: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  let n = 0;
  return new Promise((resolve, reject) => {
    s.on('error', reject);
    s.on('data', (c: Buffer) => {
      parts.push(c);
      n += c.length;
      if (n >= bytes) resolve(Buffer.concat(parts));
    });
  });
}

describe('direct socket writes', () => {
  it('is available on the pinned Node (the lean paths really skip the Writable)', () => {
    expect(directWriteAvailable()).to.equal(true);
  });

  it('writes strings and bytes whole and in order with socket.write()', async () => {
    const p = pair();
    const { client, peer } = await p;
    try {
      const got = readAll(peer, 14);
      expect(writeDirect(client, 'abc', () => {})).to.equal(Direct.Done);
      client.write('def');
      // The Writable may still count "def" as queued: then the direct path stays out of its way.
      const r = writeDirect(client, Buffer.from('ghi'), () => {});
      if (r === Direct.NotTaken) client.write('ghi');
      expect(writeHeadDirect(client, 'H:', Buffer.from('body'), '\r\n', () => {})).to.be.oneOf([
        Direct.Done,
        Direct.NotTaken,
      ]);
      await new Promise((r2) => setTimeout(r2, 50));
      const all = (await got).toString('latin1');
      expect(all.startsWith('abcdefghi')).to.equal(true);
      if (all.length > 9) expect(all).to.equal('abcdefghiH:body\r\n');
    } finally {
      close(await p);
    }
  });

  it('queues what the kernel cannot take and reports it once sent', async () => {
    const p = await pair();
    try {
      p.peer.pause();
      const big = Buffer.alloc(32 * 1024 * 1024, 7);
      big[big.length - 1] = 9;
      let sent = false;
      const r = writeDirect(p.client, big, () => {
        sent = true;
      });
      expect(r).to.equal(Direct.Queued);
      // Written after the queued bytes, through the socket's own path: arrives after them.
      p.client.write('tail');
      const got = readAll(p.peer, big.length + 4);
      p.peer.resume();
      const all = await got;
      expect(all.length).to.equal(big.length + 4);
      expect(all[big.length - 1]).to.equal(9);
      expect(all.subarray(big.length).toString()).to.equal('tail');
      await new Promise((r2) => setTimeout(r2, 20));
      expect(sent).to.equal(true);
    } finally {
      close(p);
    }
  });

  it('a queued head keeps its bytes: the next head goes through a fresh buffer', async () => {
    const p = await pair();
    try {
      p.peer.pause();
      const big = Buffer.alloc(16 * 1024 * 1024, 1);
      expect(writeDirect(p.client, big, () => {})).to.equal(Direct.Queued);
      // libuv has bytes queued: these cannot be sent now, so each keeps its buffer.
      expect(writeHeadDirect(p.client, 'HEAD-ONE\r\n', Buffer.from('first body'), '', () => {})).to.equal(
        Direct.Queued,
      );
      expect(writeHeadDirect(p.client, 'HEAD-TWO\r\n', Buffer.from('second body'), '!', () => {})).to.equal(
        Direct.Queued,
      );
      const tail = 'HEAD-ONE\r\nfirst bodyHEAD-TWO\r\nsecond body!';
      const got = readAll(p.peer, big.length + tail.length);
      p.peer.resume();
      const all = await got;
      expect(all.subarray(big.length).toString('latin1')).to.equal(tail);
    } finally {
      close(p);
    }
  });

  it('heads of the same and of other sizes in a row each arrive whole (the reused view)', async () => {
    const p = await pair();
    const { client, peer } = p;
    const sizes = [300, 300, 300, 120, 300, 4000, 4000, 300];
    const expected: Buffer[] = [];
    const got = readAll(
      peer,
      sizes.reduce((a, n) => a + n + 10, 0),
    );
    sizes.forEach((n, i) => {
      const head = `H${i}:${'h'.repeat(6)}\r\n`.slice(0, 10);
      const body = Buffer.alloc(n, 97 + i);
      expected.push(Buffer.from(head, 'latin1'), body);
      expect(writeHeadDirect(client, head, body, '', () => {})).to.equal(Direct.Done);
    });
    expect((await got).equals(Buffer.concat(expected))).to.equal(true);
    close(p);
  });

  it('releaseChunk detaches a chunk that owns its whole ArrayBuffer, and nothing else', () => {
    const own = Buffer.from(new Uint8Array(2048).fill(7).buffer);
    releaseChunk(own);
    expect(own.buffer.byteLength).to.equal(0);
    expect(own.length).to.equal(0);

    const pooled = Buffer.from('a short string, from the shared pool');
    const slab = new Uint8Array(4096).fill(1);
    const view = Buffer.from(slab.buffer, 1024, 1024);
    const head = Buffer.from(slab.buffer, 0, 1024);
    for (const b of [pooled, view, head]) releaseChunk(b);
    expect(pooled.toString()).to.equal('a short string, from the shared pool');
    expect(slab.length).to.equal(4096);
    expect(view[0]).to.equal(1);
    expect(head.length).to.equal(1024);
  });

  it('leaves a connecting, corked or ended socket to socket.write()', async () => {
    const p = await pair();
    try {
      const connecting = net.connect({
        port: (p.server.address() as net.AddressInfo).port,
        host: '127.0.0.1',
      });
      expect(writeDirect(connecting, 'x', () => {})).to.equal(Direct.NotTaken);
      connecting.destroy();
      p.client.cork();
      expect(writeDirect(p.client, 'x', () => {})).to.equal(Direct.NotTaken);
      p.client.uncork();
      p.client.end();
      expect(writeDirect(p.client, 'x', () => {})).to.equal(Direct.NotTaken);
      const destroyed = new net.Socket();
      expect(writeDirect(destroyed, 'x', () => {})).to.equal(Direct.NotTaken);
    } finally {
      close(p);
    }
  });

  it('a queued write to a peer that resets destroys the socket with the error', async () => {
    const p = await pair();
    try {
      p.peer.pause();
      let sent = false;
      const r = writeDirect(p.client, Buffer.alloc(32 * 1024 * 1024), () => {
        sent = true;
      });
      expect(r).to.equal(Direct.Queued);
      const closed = new Promise((resolve) => p.client.on('close', resolve));
      let error: Error | undefined;
      p.client.on('error', (e) => {
        error = e;
      });
      p.peer.resetAndDestroy();
      await closed;
      expect(p.client.destroyed).to.equal(true);
      // Reported by whichever side of the socket saw the reset first: its read or the write.
      expect((error as { code?: string } | undefined)?.code).to.be.oneOf(['ECONNRESET', 'EPIPE']);
      expect(sent).to.equal(false);
    } finally {
      close(p);
    }
  });
});
