// Writes straight to a socket's libuv handle, past net.Socket's Writable machinery, for the lean
// HTTP/1.1 paths' two writes per exchange (the request head upstream, the response to the
// client). socket.write() costs a WriteWrap object, the Writable's state bookkeeping and a
// nextTick per write even when the kernel takes every byte at once, which on loopback it almost
// always does; profiled at 2 KB responses that plumbing was ~7 % of the proxy's CPU. Here the
// write request object is reused while writes complete synchronously, and only a write the
// kernel could not take whole keeps its request (libuv then sends the rest and calls back).
//
// Order is safe to mix with socket.write(): both end in the same libuv stream, whose try-write
// refuses while anything is queued, so bytes leave in call order. What the socket's Writable no
// longer sees is only these bytes: writableLength and 'drain' do not count them, hence the
// `queued` callback below for backpressure. Not a public API (`process.binding('stream_wrap')`,
// the binding net.js itself uses); when it is missing, every call answers NotTaken and the
// caller's socket.write() path runs as before.

import type { Socket } from 'node:net';
import { getSystemErrorName } from 'node:util';

/** What became of a direct write. */
export const Direct = {
  /** The kernel took every byte. */
  Done: 0,
  /** Part is queued in libuv: `queued` runs when it has gone (not on error: the socket is destroyed). */
  Queued: 1,
  /** Nothing written (socket connecting, corked, ending, or with writes queued): use socket.write(). */
  NotTaken: 2,
} as const;
export type Direct = (typeof Direct)[keyof typeof Direct];

interface StreamWrapBinding {
  WriteWrap: new () => WriteReq;
  streamBaseState: Int32Array;
  kLastWriteWasAsync: number;
}

interface WriteReq {
  handle: unknown;
  oncomplete: ((this: WriteReq, status: number) => void) | undefined;
  buffer: unknown;
  socket: Socket | undefined;
  queued: (() => void) | undefined;
}

interface WritableHandle {
  writeLatin1String(req: WriteReq, data: string): number;
  writeBuffer(req: WriteReq, data: Uint8Array): number;
}

interface SocketInternals {
  _handle: WritableHandle | null;
  connecting: boolean;
}

const binding = loadBinding();

function loadBinding(): StreamWrapBinding | undefined {
  try {
    const b = (process as unknown as { binding(name: string): Partial<StreamWrapBinding> }).binding(
      'stream_wrap',
    );
    if (typeof b.WriteWrap !== 'function' || !(b.streamBaseState instanceof Int32Array)) return undefined;
    if (typeof b.kLastWriteWasAsync !== 'number') return undefined;
    return b as StreamWrapBinding;
  } catch {
    return undefined;
  }
}

/** The request object for the next write; replaced whenever a write keeps it. */
let spare: WriteReq | undefined;

function onQueuedWriteDone(this: WriteReq, status: number): void {
  const socket = this.socket;
  const queued = this.queued;
  this.socket = undefined;
  this.queued = undefined;
  this.buffer = undefined;
  if (socket === undefined) return;
  if (status < 0) {
    const name = getSystemErrorName(status);
    const err = Object.assign(new Error(`write ${name}`), { code: name, errno: status, syscall: 'write' });
    socket.destroy(err);
    return;
  }
  queued?.();
}

/**
 * Writes `data` (a latin1 string or bytes) to the socket's handle when nothing else is queued on
 * the socket. A Buffer must not be changed until Done is answered or `queued` has run.
 */
export function writeDirect(socket: Socket, data: string | Uint8Array, queued: () => void): Direct {
  const b = binding;
  const s = socket as unknown as SocketInternals;
  const handle = s._handle;
  if (
    b === undefined ||
    handle === null ||
    s.connecting ||
    socket.destroyed ||
    socket.writableEnded ||
    socket.writableLength !== 0 ||
    socket.writableCorked !== 0
  )
    return Direct.NotTaken;
  const req = spare ?? new b.WriteWrap();
  spare = undefined;
  req.handle = handle;
  const err = typeof data === 'string' ? handle.writeLatin1String(req, data) : handle.writeBuffer(req, data);
  if (err !== 0) {
    // Nothing was written (a failing write fails before sending): the socket's own write path
    // repeats it and turns the error into the socket's 'error' and close, as it always does.
    // The request object is not reused: a failed write may have bound it to a native request.
    return Direct.NotTaken;
  }
  if (b.streamBaseState[b.kLastWriteWasAsync] === 0) {
    req.handle = undefined;
    spare = req;
    return Direct.Done;
  }
  // libuv holds this request until the rest is sent: it is not reusable, and keeps the bytes alive.
  req.oncomplete = onQueuedWriteDone;
  req.buffer = data;
  req.socket = socket;
  req.queued = queued;
  return Direct.Queued;
}

/** Whether this Node exposes what writeDirect needs (tests check the fast path is really on). */
export function directWriteAvailable(): boolean {
  return binding !== undefined;
}

/** Reused for a response head and its first body bytes, copied together into one write. */
const scratchSize = 64 * 1024;
/** The most bytes (head, body and tail together) writeHeadDirect takes. */
export const headWriteLimit = scratchSize;
let scratch = Buffer.allocUnsafeSlow(scratchSize);
/** The last view of `scratch` written: responses of one size (the usual case) reuse it. */
let view = scratch.subarray(0, 0);

/** Buffer's latin1 writer without the encoding dispatch of buf.write() (present since Node 0.x, untyped). */
interface Latin1Writer {
  latin1Write(s: string, offset: number): number;
}

/**
 * `head` (latin1), `body` and `tail` (latin1) as one direct write through a reused buffer: one
 * syscall, and none of the latin1 string conversions and concatenation that writing them as a
 * single string costs (four copies of the body). NotTaken when it does not fit or the socket is
 * busy; `body` is never kept.
 */
export function writeHeadDirect(
  socket: Socket,
  head: string,
  body: Uint8Array,
  tail: string,
  queued: () => void,
): Direct {
  const n = head.length + body.length + tail.length;
  if (n > scratchSize || binding === undefined) return Direct.NotTaken;
  const buf = scratch;
  const w = buf as unknown as Latin1Writer;
  let at = w.latin1Write(head, 0);
  buf.set(body, at);
  at += body.length;
  if (tail.length > 0) w.latin1Write(tail, at);
  if (view.length !== n || view.buffer !== buf.buffer) view = buf.subarray(0, n);
  const r = writeDirect(socket, view, queued);
  // A queued write keeps reading from this buffer until libuv is done with it.
  if (r === Direct.Queued) scratch = Buffer.allocUnsafeSlow(scratchSize);
  return r;
}

let detachable = true;

/**
 * Frees a body chunk's memory now instead of at the next GC: detaches its ArrayBuffer. Only for a
 * chunk nobody else references, whose bytes were already copied on (to the kernel, or into the
 * write buffer), and which has the whole ArrayBuffer to itself.
 *
 * Why: each body chunk from Node's parser is a fresh malloc'd ArrayBuffer, which V8 counts as
 * external memory until a GC sweeps it. Proxying 64 KB responses, that is hundreds of MB a second:
 * V8 answered it with a full mark-compact (7 ms) every 64 MB, 14 a second, which set p99 at 45 ms.
 * At 2 KB it doubled the scavenges' pauses. Detached at once, the memory is never there to count.
 */
export function releaseChunk(chunk: Uint8Array): void {
  const ab = chunk.buffer;
  if (!detachable || chunk.byteOffset !== 0 || ab.byteLength !== chunk.byteLength) return;
  try {
    (ab as ArrayBuffer).transfer(0);
  } catch {
    // A buffer that may not be detached (or no transfer() at all): stop trying.
    detachable = false;
  }
}
