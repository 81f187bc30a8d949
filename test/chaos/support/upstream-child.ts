// A test upstream in its own process, for faults that need a real process to die (SIGKILL) or to
// come back on the same port. Usage: node upstream-child.ts NAME [PORT] [DELAY_MS]
// Prints `listening <port>` once bound. Answers every request 200 with `x-upstream: NAME` after
// DELAY_MS (or the request's x-test-delay), reading the whole request body first.

import http from 'node:http';
import type { AddressInfo } from 'node:net';

const name = process.argv[2] ?? 'child';
const port = Number(process.argv[3] ?? 0);
const delayMs = Number(process.argv[4] ?? 0);

const server = http.createServer((req, res) => {
  req.resume();
  req.once('end', () => {
    const delay = Number(req.headers['x-test-delay'] ?? delayMs);
    const answer = (): void => {
      if (res.destroyed) return;
      const body = `${name} ${req.url ?? ''}\n`;
      res.writeHead(200, {
        'content-type': 'text/plain',
        'content-length': String(Buffer.byteLength(body)),
        'x-upstream': name,
      });
      res.end(body);
    };
    if (delay > 0) setTimeout(answer, delay);
    else answer();
  });
});
server.keepAliveTimeout = 30_000;
server.listen(port, '127.0.0.1', () => {
  process.stdout.write(`listening ${(server.address() as AddressInfo).port}\n`);
});
process.on('SIGTERM', () => {
  server.close(() => process.exit(0));
  server.closeIdleConnections();
});
