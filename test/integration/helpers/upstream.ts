// Test upstreams: real HTTP servers on 127.0.0.1:0 that echo what they received, count their TCP
// connections, and can be told to misbehave (answer a status, hang, reset, delay).
//
// The default behaviour ('echo') reads the whole request body and answers 200 with a JSON
// description of the request. Control headers sent by the test (they pass through Cairn like any
// other header) vary one answer without reconfiguring the server:
//   x-test-status: N    answer with status N (no body for 1xx/204/304, HEAD gets headers only)
//   x-test-delay: MS    wait before answering
//   x-test-size: N      stream N bytes of body (16 KiB chunks, content derived from the offset)

import { createHash } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import net from 'node:net';

export interface SeenRequest {
  readonly method: string;
  readonly url: string;
  readonly httpVersion: string;
  readonly headers: http.IncomingHttpHeaders;
  readonly rawHeaders: string[];
}

/** What the echo behaviour answers (JSON). */
export interface Echo extends SeenRequest {
  readonly upstream: string;
  readonly bodyLength: number;
  readonly bodySha256: string;
}

export type Behaviour =
  | 'echo'
  /** Destroys the connection as soon as the request headers arrive. */
  | 'reset'
  /** Reads the whole request body, then destroys the connection without answering. */
  | 'reset-after-body'
  /** Never answers (the connection stays open until the server closes). */
  | 'hang'
  | { readonly status: number }
  | ((req: http.IncomingMessage, res: http.ServerResponse) => void);

export interface Upstream {
  readonly name: string;
  readonly port: number;
  /** `http://127.0.0.1:<port>` */
  readonly origin: string;
  readonly server: http.Server;
  behaviour: Behaviour;
  /** Every request received (before the behaviour ran), in arrival order. */
  readonly requests: SeenRequest[];
  /** TCP connections accepted so far. */
  connections: number;
  /** TCP connections open now. */
  readonly openConnections: number;
  /** Requests whose client (Cairn) went away before the response finished. */
  aborted: number;
  /** Requests currently being answered. */
  inFlight: number;
  /** Responses written completely (the last byte handed to the OS). */
  completed: number;
  close(): Promise<void>;
}

/** Deterministic body bytes: byte i of a streamed body is `i % 251`. */
export function bodyBytes(offset: number, length: number): Buffer {
  const b = Buffer.allocUnsafe(length);
  for (let i = 0; i < length; i++) b[i] = (offset + i) % 251;
  return b;
}

export function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

export async function startUpstream(name: string, behaviour: Behaviour = 'echo'): Promise<Upstream> {
  const sockets = new Set<Socket>();
  const requests: SeenRequest[] = [];
  const server = http.createServer();
  const up: Upstream = {
    name,
    port: 0,
    origin: '',
    server,
    behaviour,
    requests,
    connections: 0,
    aborted: 0,
    inFlight: 0,
    completed: 0,
    get openConnections() {
      return sockets.size;
    },
    close: async () => {
      server.closeAllConnections();
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  server.on('connection', (s: Socket) => {
    up.connections++;
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  server.on('request', (req, res) => {
    requests.push({
      method: req.method ?? '',
      url: req.url ?? '',
      httpVersion: req.httpVersion,
      headers: req.headers,
      rawHeaders: req.rawHeaders,
    });
    up.inFlight++;
    res.once('finish', () => up.completed++);
    res.once('close', () => {
      up.inFlight--;
      if (!res.writableFinished) up.aborted++;
    });
    behave(up, up.behaviour, req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return Object.assign(up, { port, origin: `http://127.0.0.1:${port}` });
}

function behave(up: Upstream, b: Behaviour, req: http.IncomingMessage, res: http.ServerResponse): void {
  if (typeof b === 'function') return b(req, res);
  if (b === 'reset') {
    req.socket.destroy();
    return;
  }
  if (b === 'hang') return;
  readBody(req).then(
    (body) => {
      if (b === 'reset-after-body') {
        req.socket.destroy();
        return;
      }
      if (b !== 'echo') {
        res.writeHead(b.status, { 'content-type': 'text/plain', 'x-upstream': up.name });
        res.end(`${up.name} says ${b.status}\n`);
        return;
      }
      const delay = Number(req.headers['x-test-delay'] ?? 0);
      if (delay > 0) setTimeout(() => echo(up, req, res, body), delay);
      else echo(up, req, res, body);
    },
    () => req.socket.destroy(),
  );
}

function echo(up: Upstream, req: http.IncomingMessage, res: http.ServerResponse, body: Buffer): void {
  if (res.destroyed) return;
  const status = Number(req.headers['x-test-status'] ?? 200);
  if (status === 204 || status === 304) {
    res.writeHead(status, { 'x-upstream': up.name });
    res.end();
    return;
  }
  const size = req.headers['x-test-size'];
  if (size !== undefined) {
    streamBody(res, status, up.name, Number(size));
    return;
  }
  const e: Echo = {
    upstream: up.name,
    method: req.method ?? '',
    url: req.url ?? '',
    httpVersion: req.httpVersion,
    headers: req.headers,
    rawHeaders: req.rawHeaders,
    bodyLength: body.length,
    bodySha256: sha256(body),
  };
  const json = JSON.stringify(e);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': String(Buffer.byteLength(json)),
    'x-upstream': up.name,
  });
  res.end(json);
}

function streamBody(res: http.ServerResponse, status: number, name: string, size: number): void {
  res.writeHead(status, { 'content-type': 'application/octet-stream', 'x-upstream': name });
  let offset = 0;
  const more = (): void => {
    while (offset < size) {
      const n = Math.min(16_384, size - offset);
      const ok = res.write(bodyBytes(offset, n));
      offset += n;
      if (!ok) {
        res.once('drain', more);
        return;
      }
    }
    res.end();
  };
  more();
}

export function readBody(req: http.IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.once('end', () => resolve(Buffer.concat(chunks)));
    req.once('error', reject);
    req.once('aborted', () => reject(new Error('aborted')));
  });
}

/** A loopback port nothing listens on (bound, then released): connecting to it is refused. */
export async function refusedPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

export async function closeAll(upstreams: readonly (Upstream | undefined)[]): Promise<void> {
  await Promise.all(upstreams.map((u) => u?.close()));
}
