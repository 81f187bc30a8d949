// A Node service that registers itself in etcd for Cairn with the library call (no sidecar):
//
//   ETCD=http://127.0.0.1:2379 SERVICE=api ADDRESS=127.0.0.1 PORT=8083 \
//     TAGS='urlprefix-/api strip=/api;canary' node examples/etcd/node-service.ts
//
// It answers every request with its name, serves /health, and on SIGTERM/SIGINT first revokes
// its registration (Cairn stops sending it traffic at once), then closes its server.
// In a project of your own, import `register` from the cairn-lb package instead of this path.

import http from 'node:http';
import { register } from '../../lib/register/registrar.ts';

const env = process.env;
const service = env.SERVICE ?? 'api';
const port = Number(env.PORT ?? 8083);
const address = env.ADDRESS ?? '127.0.0.1';
const name = env.NAME ?? `${service}@${address}:${port}`;

const server = http.createServer((req, res) => {
  res.writeHead(200, { 'content-type': 'text/plain', 'x-upstream': name });
  res.end(req.url === '/health' ? 'ok\n' : `hello from ${name}\n`);
});
await new Promise<void>((resolve) => server.listen(port, env.LISTEN ?? '0.0.0.0', resolve));

const registration = await register({
  endpoints: (env.ETCD ?? 'http://127.0.0.1:2379').split(','),
  prefix: env.ETCD_PREFIX ?? '/cairn',
  service,
  address,
  port,
  tags: (env.TAGS ?? `urlprefix-/${service}`).split(';').filter((t) => t.trim() !== ''),
  ttlSeconds: 10,
  check: { url: `http://127.0.0.1:${port}/health`, intervalMs: 5000 },
  onEvent: (e) => console.log(JSON.stringify(e)),
});
console.log(JSON.stringify({ type: 'listening', name, key: registration.key }));

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, () => {
    // Deregister first, so no new request is routed here while the server drains.
    void registration
      .stop()
      .catch((e: unknown) => console.error(`deregistration failed: ${String(e)}`))
      .finally(() => {
        server.close(() => process.exit(0));
        // Keep-alive connections from Cairn would hold close() open; requests in flight finish.
        server.closeIdleConnections();
        setTimeout(() => process.exit(0), 5000).unref();
      });
  });
}
