// `onread` (read into one caller-owned buffer, one callback per read) for ACCEPTED sockets.
//
// `net.connect({ onread })` makes a socket skip the Readable machinery on its data path: no
// Buffer per read, no push()/addChunk()/'data' emit, no nextTick per chunk. For a proxy that
// copies every chunk to the other socket anyway this is most of the stream cost (the upstream
// side uses it and saves ~10 % of the CPU of small exchanges). Node offers the option only to
// sockets it creates for `connect()`; an accepted socket has the same fields (set to null by the
// Socket constructor) and its handle the same `useUserBuffer()`, so the option can be applied
// right after accept. That relies on Node internals (the `kBuffer`/`kBufferCb`/`kBufferGen`
// symbol properties, present in Node 18 to 24), so it is checked on the first socket and, when
// anything looks different, never used: callers fall back to 'data' events.
//
// With the option on, `socket.pause()`/`resume()` stop and start the handle's reading directly
// (Node's Socket handles that case), and EOF still arrives as 'end'.

import type { Socket } from 'node:net';

interface Symbols {
  readonly buffer: symbol;
  readonly callback: symbol;
}

/** undefined = not probed yet; null = not available in this Node. */
let symbols: Symbols | null | undefined;

function probe(s: Socket): Symbols | null {
  let buffer: symbol | undefined;
  let callback: symbol | undefined;
  let gen: symbol | undefined;
  for (const sym of Object.getOwnPropertySymbols(s)) {
    if (sym.description === 'kBuffer') buffer = sym;
    else if (sym.description === 'kBufferCb') callback = sym;
    else if (sym.description === 'kBufferGen') gen = sym;
  }
  if (buffer === undefined || callback === undefined || gen === undefined) return null;
  const fields = s as unknown as Record<symbol, unknown>;
  if (fields[buffer] !== null || fields[callback] !== null || fields[gen] !== null) return null;
  return { buffer, callback };
}

type ReadCallback = (this: Socket, n: number, buf: Buffer) => boolean;

/**
 * Switches an accepted plain TCP socket (nothing read into its stream buffer yet) to reading
 * into `buffer` with `callback`. Returns false, changing nothing, when that is not possible.
 */
export function useOnread(s: Socket, buffer: Buffer, callback: ReadCallback): boolean {
  if (symbols === undefined) symbols = probe(s);
  if (symbols === null) return false;
  const handle = (s as unknown as { _handle?: { useUserBuffer?: (b: Buffer) => void } | null })._handle;
  if (handle === null || handle === undefined || typeof handle.useUserBuffer !== 'function') return false;
  if (s.readableLength !== 0 || s.readableEnded || s.destroyed) return false;
  const fields = s as unknown as Record<symbol, unknown>;
  fields[symbols.buffer] = buffer;
  fields[symbols.callback] = callback;
  handle.useUserBuffer(buffer);
  return true;
}

/** For tests: forget the probe result. */
export function resetOnreadProbe(): void {
  symbols = undefined;
}
