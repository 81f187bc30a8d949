// A service that registers itself in Consul: `node examples/consul/node-service.ts`.
//
// It answers every request with its id and the time, registers with a route tag and a TTL
// check, reports "passing" every 5 s (miss it for 15 s and Consul marks it critical: Cairn stops
// sending traffic), and deregisters on SIGTERM/SIGINT so Cairn stops at once.
//
// Environment: CONSUL (http://127.0.0.1:8500), CONSUL_HTTP_TOKEN, SERVICE (clock), ID
// (SERVICE-PORT), ADDRESS (127.0.0.1), PORT (8080), TAGS (route tags separated by ';',
// default urlprefix-/SERVICE).

import http from 'node:http';

const env = process.env;
const consul = env.CONSUL ?? 'http://127.0.0.1:8500';
const service = env.SERVICE ?? 'clock';
const port = Number(env.PORT ?? '8080');
const id = env.ID ?? `${service}-${port}`;
const address = env.ADDRESS ?? '127.0.0.1';
const tags = (env.TAGS ?? `urlprefix-/${service}`).split(';').filter((t) => t !== '');
const headers: Record<string, string> = env.CONSUL_HTTP_TOKEN
  ? { 'x-consul-token': env.CONSUL_HTTP_TOKEN }
  : {};

async function put(path: string, body?: unknown): Promise<void> {
  const r = await fetch(`${consul}${path}`, {
    method: 'PUT',
    headers,
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  if (!r.ok) throw new Error(`PUT ${path}: HTTP ${r.status} ${await r.text()}`);
}

const server = http.createServer((req, res) => {
  res.writeHead(200, { 'content-type': 'text/plain' });
  res.end(`${id}: ${new Date().toISOString()} ${req.method} ${req.url}\n`);
});
await new Promise<void>((resolve) => server.listen(port, resolve));

const checkId = `${id}-ttl`;
for (;;) {
  try {
    await put('/v1/agent/service/register', {
      ID: id,
      Name: service,
      Address: address,
      Port: port,
      Tags: tags,
      Check: { CheckID: checkId, TTL: '15s', DeregisterCriticalServiceAfter: '10m' },
    });
    break;
  } catch (e) {
    console.error(`registering ${id} failed (${(e as Error).message}); retrying`);
    await new Promise((r) => setTimeout(r, 1000));
  }
}
console.log(`${id} registered as ${service} at ${address}:${port} with tags ${JSON.stringify(tags)}`);

const beat = async (): Promise<void> => {
  await put(`/v1/agent/check/pass/${encodeURIComponent(checkId)}`).catch((e: Error) =>
    console.error(e.message),
  );
};
await beat();
const timer = setInterval(() => void beat(), 5000);

let stopping = false;
const stop = async (): Promise<void> => {
  if (stopping) return;
  stopping = true;
  clearInterval(timer);
  await put(`/v1/agent/service/deregister/${encodeURIComponent(id)}`).catch((e: Error) =>
    console.error(e.message),
  );
  server.close();
  console.log(`${id} deregistered`);
  process.exit(0);
};
process.on('SIGTERM', () => void stop());
process.on('SIGINT', () => void stop());
