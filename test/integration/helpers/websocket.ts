// A minimal WebSocket upstream (RFC 6455) on node:http's 'upgrade' event: handshake, a frame
// parser for masked client frames, and an echo of text/binary messages. Enough to prove that
// Cairn splices both directions and propagates closes; not a general WebSocket server.

import { createHash } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

export const OP_TEXT = 0x1;
export const OP_BINARY = 0x2;
export const OP_CLOSE = 0x8;
export const OP_PING = 0x9;
export const OP_PONG = 0xa;

export interface Frame {
  readonly opcode: number;
  readonly payload: Buffer;
}

export interface WsConnection {
  readonly socket: Duplex;
  readonly request: http.IncomingMessage;
  /** Messages received from the client, in order. */
  readonly received: Frame[];
  closed: boolean;
  send(opcode: number, payload: Buffer | string): void;
}

export interface WsUpstream {
  readonly port: number;
  readonly connections: WsConnection[];
  /** Sent to every new connection right after the handshake (proves upstream -> client). */
  greeting: string | undefined;
  /** Do not answer a FIN from the client side with our own (misbehaving upstream). */
  ignoreFin: boolean;
  close(): Promise<void>;
}

/** An unmasked (server) frame. */
export function encodeFrame(opcode: number, payload: Buffer | string): Buffer {
  const data = typeof payload === 'string' ? Buffer.from(payload) : payload;
  let head: Buffer;
  if (data.length < 126) {
    head = Buffer.from([0x80 | opcode, data.length]);
  } else if (data.length < 65_536) {
    head = Buffer.alloc(4);
    head[0] = 0x80 | opcode;
    head[1] = 126;
    head.writeUInt16BE(data.length, 2);
  } else {
    head = Buffer.alloc(10);
    head[0] = 0x80 | opcode;
    head[1] = 127;
    head.writeBigUInt64BE(BigInt(data.length), 2);
  }
  return Buffer.concat([head, data]);
}

/** Parses complete frames (masked or not) from `buf`; returns them and the unparsed rest. */
export function parseFrames(buf: Buffer): { frames: Frame[]; rest: Buffer } {
  const frames: Frame[] = [];
  let at = 0;
  for (;;) {
    if (buf.length - at < 2) break;
    const b0 = buf[at] as number;
    const b1 = buf[at + 1] as number;
    let len = b1 & 0x7f;
    let p = at + 2;
    if (len === 126) {
      if (buf.length - p < 2) break;
      len = buf.readUInt16BE(p);
      p += 2;
    } else if (len === 127) {
      if (buf.length - p < 8) break;
      len = Number(buf.readBigUInt64BE(p));
      p += 8;
    }
    const masked = (b1 & 0x80) !== 0;
    const maskAt = p;
    if (masked) p += 4;
    if (buf.length - p < len) break;
    const payload = Buffer.from(buf.subarray(p, p + len));
    if (masked)
      for (let i = 0; i < len; i++) payload[i] = (payload[i] as number) ^ (buf[maskAt + (i & 3)] as number);
    frames.push({ opcode: b0 & 0x0f, payload });
    at = p + len;
  }
  return { frames, rest: buf.subarray(at) };
}

export async function startWsUpstream(): Promise<WsUpstream> {
  const connections: WsConnection[] = [];
  const sockets = new Set<Socket | Duplex>();
  const server = http.createServer((_req, res) => {
    res.writeHead(426, { 'content-type': 'text/plain' });
    res.end('websocket only\n');
  });
  const up: WsUpstream = {
    port: 0,
    connections,
    greeting: undefined,
    ignoreFin: false,
    close: async () => {
      for (const s of sockets) s.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    const key = req.headers['sec-websocket-key'];
    if (typeof key !== 'string' || String(req.headers.upgrade).toLowerCase() !== 'websocket') {
      socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    const accept = createHash('sha1')
      .update(key + GUID)
      .digest('base64');
    socket.write(
      'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
        `Sec-WebSocket-Accept: ${accept}\r\n\r\n`,
    );
    const conn: WsConnection = {
      socket,
      request: req,
      received: [],
      closed: false,
      send: (opcode, payload) => {
        if (!socket.destroyed) socket.write(encodeFrame(opcode, payload));
      },
    };
    connections.push(conn);
    socket.once('close', () => (conn.closed = true));
    socket.on('error', () => socket.destroy());
    if (up.greeting !== undefined) conn.send(OP_TEXT, up.greeting);
    let pending: Buffer = head;
    const onData = (chunk: Buffer): void => {
      const { frames, rest } = parseFrames(pending.length === 0 ? chunk : Buffer.concat([pending, chunk]));
      pending = rest;
      for (const f of frames) {
        if (f.opcode === OP_CLOSE) {
          conn.received.push(f);
          conn.send(OP_CLOSE, f.payload);
          socket.end();
          return;
        }
        if (f.opcode === OP_PING) {
          conn.send(OP_PONG, f.payload);
          continue;
        }
        conn.received.push(f);
        if (f.opcode === OP_TEXT || f.opcode === OP_BINARY) conn.send(f.opcode, f.payload);
      }
    };
    socket.on('data', onData);
    // The peer sent FIN without a close frame: finish our side too, as WebSocket servers do,
    // unless told to ignore it (a misbehaving upstream).
    socket.once('end', () => {
      if (!up.ignoreFin) socket.end();
    });
    if (head.length > 0) onData(Buffer.alloc(0));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return Object.assign(up, { port: (server.address() as AddressInfo).port });
}
