// Test fixtures for the TCP data plane: echo upstreams that record what they received, TLS echo
// upstreams, a client that talks over a raw socket, and Cairn with TCP listeners.

import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net, { type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import tls from 'node:tls';
import { type Cairn, type RegistryContent, startCairn, waitFor } from './helpers/cairn.ts';

export { sleep, waitFor };

export interface UpstreamConn {
  readonly socket: Socket;
  /** Everything received on this connection, in order. */
  readonly received: Buffer[];
  ended: boolean;
}

export interface EchoUpstream {
  readonly name: string;
  readonly port: number;
  readonly conns: UpstreamConn[];
  /** Connections open right now. */
  open(): number;
  /** All bytes received on connection `i`. */
  bytes(i: number): Buffer;
  close(): Promise<void>;
}

export interface EchoOptions {
  /** On the client's FIN: answer `bye` then close ('bye'), or just close ('close', default). */
  readonly onEnd?: 'bye' | 'close';
  /** Do not read at all (backpressure tests). */
  readonly stall?: boolean;
  /** Say the upstream's name first on every connection (distribution tests). */
  readonly greet?: boolean;
  readonly tls?: { cert: Buffer; key: Buffer };
}

/** An upstream that echoes every byte back (over TLS when `tls` is given). */
export async function echoUpstream(name: string, o: EchoOptions = {}): Promise<EchoUpstream> {
  const conns: UpstreamConn[] = [];
  const sockets = new Set<Socket>();
  const onSocket = (s: Socket) => {
    const c: UpstreamConn = { socket: s, received: [], ended: false };
    conns.push(c);
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    if (o.greet === true) s.write(`${name}\n`);
    if (o.stall === true) {
      s.pause();
      return;
    }
    s.on('data', (d: Buffer) => {
      c.received.push(d);
      s.write(d);
    });
    s.on('end', () => {
      c.ended = true;
      if (o.onEnd === 'bye') s.end('bye');
      else s.end();
    });
  };
  const server =
    o.tls !== undefined
      ? tls.createServer({ cert: o.tls.cert, key: o.tls.key, allowHalfOpen: true }, onSocket)
      : net.createServer({ allowHalfOpen: true }, onSocket);
  // Raw connections too: a TLS server's handshake may never complete (garbage, timeouts).
  const raw = new Set<Socket>();
  server.on('connection', (s: Socket) => {
    raw.add(s);
    s.on('close', () => raw.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const port = (server.address() as AddressInfo).port;
  return {
    name,
    port,
    conns,
    open: () => sockets.size,
    bytes: (i) => Buffer.concat(conns[i]?.received ?? []),
    close: async () => {
      for (const s of sockets) s.destroy();
      for (const s of raw) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A port nothing listens on (bound once by the OS, then released). */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((resolve) => s.listen(0, host, () => resolve()));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

/** A raw client connection with promise helpers. */
export class Client {
  readonly socket: Socket;
  private buf = Buffer.alloc(0);
  private waiters: (() => void)[] = [];
  ended = false;
  closed = false;
  /** When the peer ended or closed the connection (ms since the epoch). */
  readonly closedAt: Promise<number>;

  constructor(socket: Socket) {
    this.socket = socket;
    socket.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.wake();
    });
    let done: (t: number) => void = () => {};
    this.closedAt = new Promise((resolve) => (done = resolve));
    socket.on('end', () => {
      this.ended = true;
      this.wake();
      done(Date.now());
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      this.closed = true;
      this.wake();
      done(Date.now());
    });
  }

  static connect(port: number, host = '127.0.0.1'): Promise<Client> {
    return new Promise((resolve, reject) => {
      const s = net.connect({ port, host, allowHalfOpen: true });
      s.once('connect', () => resolve(new Client(s)));
      s.once('error', reject);
    });
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** Everything received so far (consumed). */
  take(): Buffer {
    const b = this.buf;
    this.buf = Buffer.alloc(0);
    return b;
  }

  /** Waits for `n` bytes (or the end of the stream) and returns them. */
  async read(n: number, timeoutMs = 2000): Promise<Buffer> {
    const deadline = Date.now() + timeoutMs;
    while (this.buf.length < n && !this.ended && !this.closed) {
      if (Date.now() > deadline)
        throw new Error(`timed out waiting for ${n} bytes (have ${this.buf.length})`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.max(1, deadline - Date.now()));
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(out.length);
    return out;
  }

  /** Writes `data` and reads back as many bytes. */
  async exchange(data: string | Buffer, timeoutMs = 2000): Promise<string> {
    const b = typeof data === 'string' ? Buffer.from(data) : data;
    this.socket.write(b);
    return (await this.read(b.length, timeoutMs)).toString();
  }

  /** Waits until the peer has closed (or ended) the connection; resolves to false on timeout. */
  async waitClosed(timeoutMs = 2000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed && !this.ended) {
      if (Date.now() > deadline) return false;
      await sleep(5);
    }
    return true;
  }

  destroy(): void {
    this.socket.destroy();
  }
}

export interface TcpCairn extends Cairn {
  /** Bound ports of the TCP listeners, in the order given. */
  readonly tcpPorts: number[];
}

/**
 * Cairn with the given TCP listener specs (`127.0.0.1:0;proto=tcp...`) after its default HTTP
 * listener, and an empty registry (tests write routes once they know the ports).
 */
export async function startTcpCairn(
  listeners: readonly string[],
  args: readonly string[] = [],
  content: RegistryContent = { services: [] },
): Promise<TcpCairn> {
  const cairn = await startCairn(content, { args: [...listeners.flatMap((l) => ['--listen', l]), ...args] });
  const addrs = cairn.server.addresses();
  return Object.assign(cairn, { tcpPorts: addrs.slice(1).map((a) => a.port) });
}

/** One registry service whose instances are the given upstreams, all with the same tags. */
export function service(
  name: string,
  upstreams: readonly { port: number }[],
  tags: readonly string[],
): NonNullable<RegistryContent['services']>[number] {
  return {
    name,
    instances: upstreams.map((u, i) => ({
      id: `${name}-${i + 1}`,
      address: '127.0.0.1',
      port: u.port,
      tags,
    })),
  };
}

export interface CertFiles {
  readonly dir: string;
  /** PEM paths and contents of a self-signed certificate per name. */
  cert(name: string): { certFile: string; keyFile: string; cert: Buffer; key: Buffer };
  remove(): void;
}

/** Self-signed EC certificates made with openssl at test time. */
export function makeCerts(names: readonly string[]): CertFiles {
  const dir = mkdtempSync(join(tmpdir(), 'cairn-tcp-certs-'));
  for (const n of names) {
    const base = n.replace(/[^a-z0-9.-]/gi, '_');
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-days',
        '2',
        '-subj',
        `/CN=${n}`,
        '-addext',
        `subjectAltName=DNS:${n}`,
        '-keyout',
        join(dir, `${base}.key`),
        '-out',
        join(dir, `${base}.crt`),
      ],
      { stdio: 'ignore' },
    );
  }
  return {
    dir,
    cert: (n) => {
      const base = n.replace(/[^a-z0-9.-]/gi, '_');
      const certFile = join(dir, `${base}.crt`);
      const keyFile = join(dir, `${base}.key`);
      return { certFile, keyFile, cert: readFileSync(certFile), key: readFileSync(keyFile) };
    },
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

export interface TlsResult {
  /** CN of the certificate the client saw (which server terminated TLS). */
  readonly peerCn: string;
  readonly echoed: string;
}

/**
 * TLS client through `port` with SNI `servername` ('' = none): completes the handshake, sends
 * `message`, reads it back. `wrap` may interpose on the raw socket (fragmenting writes).
 */
export function tlsExchange(
  port: number,
  servername: string,
  message: string,
  socket?: import('node:stream').Duplex,
): Promise<TlsResult> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({
      ...(socket !== undefined ? { socket } : { port, host: '127.0.0.1' }),
      ...(servername !== '' ? { servername } : {}),
      rejectUnauthorized: false,
    });
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error('tls exchange timed out'));
    }, 3000);
    let got = '';
    s.once('secureConnect', () => s.write(message));
    s.on('data', (d: Buffer) => {
      got += d.toString();
      if (got.length >= message.length) {
        clearTimeout(timer);
        const cn = s.getPeerCertificate().subject?.CN ?? '';
        s.destroy();
        resolve({ peerCn: Array.isArray(cn) ? cn.join(',') : cn, echoed: got });
      }
    });
    s.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    s.once('close', () => {
      clearTimeout(timer);
      reject(new Error('closed before the echo'));
    });
  });
}

/** Bytes a real TLS client (node:tls) sends first: its ClientHello. */
export function captureClientHello(servername: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const server = net.createServer((s) => {
      s.once('data', (d: Buffer) => {
        resolve(d);
        s.destroy();
        server.close();
      });
    });
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as AddressInfo).port;
      const c = tls.connect({ port, host: '127.0.0.1', ...(servername !== '' ? { servername } : {}) });
      c.on('error', () => {});
      c.setTimeout(2000, () => reject(new Error('no ClientHello')));
    });
  });
}

export async function stopAll(
  ...things: ({ close(): Promise<void> } | { stop(): Promise<void> } | undefined)[]
): Promise<void> {
  for (const t of things) {
    if (t === undefined) continue;
    if ('stop' in t) await t.stop();
    else await t.close();
  }
}
