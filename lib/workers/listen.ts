// How every proxy listener binds its port. A single process binds as usual; in a worker process
// (`--workers N`, N > 1) every listener sets SO_REUSEPORT, so N workers hold the same port and the
// kernel spreads incoming connections across them.
//
// A process-wide switch rather than an option threaded through every listener: the worker entry
// flips it once before anything listens.

import type { Server } from 'node:net';

let reusePort = false;

/** Called once by the worker entry, before any listener opens. */
export function useReusePort(on: boolean): void {
  reusePort = on;
}

export function reusingPorts(): boolean {
  return reusePort;
}

/** Platforms where Node's `listen({ reusePort })` works (elsewhere it throws). */
export function reusePortSupported(platform: NodeJS.Platform = process.platform): boolean {
  return platform === 'linux' || platform === 'freebsd';
}

export function listenOn(
  server: Server,
  port: number,
  host: string | undefined,
  onListening: () => void,
): void {
  if (!reusePort) {
    server.listen(port, host, onListening);
    return;
  }
  server.listen({ port, ...(host !== undefined ? { host } : {}), reusePort: true }, onListening);
}
