// `cairn --demo`: three small backends in-process and a file registry pointing at them, so a
// newcomer sees routing, weights, strip and a canary at once. The registry file is a real,
// watched file: edit it and the table changes live.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Demo {
  readonly registryFile: string;
  readonly backends: readonly { name: string; port: number }[];
  stop(): Promise<void>;
}

function backend(name: string): http.Server {
  return http.createServer((req, res) => {
    const body = JSON.stringify({
      backend: name,
      method: req.method,
      url: req.url,
      host: req.headers.host,
      forwarded_for: req.headers['x-forwarded-for'],
      forwarded_prefix: req.headers['x-forwarded-prefix'],
    });
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(`${body}`);
  });
}

async function listen(s: http.Server): Promise<number> {
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', () => resolve()));
  return (s.address() as AddressInfo).port;
}

export function demoRegistryYaml(ports: { api1: number; api2: number; canary: number; web: number }): string {
  return `# Cairn demo registry: edit and save, the routing table follows within a second.
services:
  - name: api
    instances:
      - { id: api-1, address: 127.0.0.1, port: ${ports.api1}, tags: ["urlprefix-/api strip=/api"] }
      - { id: api-2, address: 127.0.0.1, port: ${ports.api2}, tags: ["urlprefix-/api strip=/api"], weight: 2 }
      - { id: api-canary, address: 127.0.0.1, port: ${ports.canary}, tags: ["urlprefix-/api strip=/api", "canary"] }
  - name: web
    instances:
      - { id: web-1, address: 127.0.0.1, port: ${ports.web}, tags: ["urlprefix-/"] }
routes: |
  # 10 % of /api goes to the canary, whatever the number of other instances.
  route weight api /api weight 0.1 tags "canary"
`;
}

export async function startDemo(): Promise<Demo> {
  const names = ['api-1', 'api-2', 'api-canary', 'web-1'] as const;
  const servers = names.map((n) => backend(n));
  const ports = await Promise.all(servers.map(listen));
  const dir = mkdtempSync(join(tmpdir(), 'cairn-demo-'));
  const registryFile = join(dir, 'routes.yaml');
  writeFileSync(
    registryFile,
    demoRegistryYaml({ api1: ports[0] ?? 0, api2: ports[1] ?? 0, canary: ports[2] ?? 0, web: ports[3] ?? 0 }),
  );
  return {
    registryFile,
    backends: names.map((name, i) => ({ name, port: ports[i] ?? 0 })),
    async stop() {
      await Promise.all(
        servers.map(
          (s) =>
            new Promise<void>((resolve) => {
              s.closeAllConnections();
              s.close(() => resolve());
            }),
        ),
      );
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
