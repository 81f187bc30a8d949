// Helpers for the Consul integration tests: a CairnServer in-process reading a real Consul agent
// (`--registry consul:<agent>`), a small client for the agent's HTTP API (register, TTL checks,
// KV, ACL tokens), and traffic helpers that count which upstream answered.

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, request } from 'undici';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import {
  consulLoopbackArgs,
  findConsulBinary,
  freePort,
  type ManagedProcess,
  spawnManaged,
} from '../../support/servers.ts';
import { loadConfig } from '../../../lib/config/index.ts';
import { silentLogger } from '../../../lib/logging.ts';
import { CairnServer } from '../../../lib/server.ts';
import type { ConsulRegistry } from '../../../registry-adapters/consul/index.ts';

export interface ConsulCairn {
  readonly server: CairnServer;
  readonly origin: string;
  readonly adminOrigin: string;
  /** The Consul adapter (first registry). */
  readonly registry: ConsulRegistry;
  /** One request through Cairn: status, body and the answering upstream (`x-upstream`). */
  get(
    path: string,
    headers?: Record<string, string>,
  ): Promise<{ status: number; body: string; upstream: string }>;
  /** `n` sequential requests; how many each upstream answered ('' for non-2xx). */
  tally(path: string, n: number): Promise<Record<string, number>>;
  /** `/api/status` of the admin listener. */
  status(): Promise<AdminStatus>;
  /** The Consul registry's entry in /api/status. */
  registryStatus(): Promise<{ name: string; state: string; error?: string }>;
  stop(): Promise<void>;
}

export interface AdminStatus {
  readonly registries: { name: string; state: string; error?: string }[];
  readonly problems: { source: string; reason: string; input: string; severity: string }[];
  readonly excluded: { service: string; id: string; status: string }[];
}

/** Starts Cairn in-process on 127.0.0.1:0 (proxy and admin) with `--registry consul:<address>`. */
export async function startConsulCairn(address: string, args: readonly string[] = []): Promise<ConsulCairn> {
  const loaded = loadConfig(
    [
      '--listen',
      '127.0.0.1:0',
      '--admin',
      '127.0.0.1:0',
      '--registry',
      `consul:${address}`,
      '--log-level',
      'silent',
      ...args,
    ],
    {},
  );
  if (loaded.kind !== 'config') {
    throw new Error(`bad test config: ${loaded.kind === 'error' ? loaded.error.message : loaded.kind}`);
  }
  const server = new CairnServer(loaded.config, { logger: silentLogger() });
  await server.start();
  const origin = `http://127.0.0.1:${server.addresses()[0]?.port ?? 0}`;
  const adminOrigin = `http://127.0.0.1:${server.adminAddress()?.port ?? 0}`;
  const client = new Agent({ keepAliveTimeout: 5_000 });
  const get = async (path: string, headers: Record<string, string> = {}) => {
    const r = await request(`${origin}${path}`, { dispatcher: client, headers });
    const body = await r.body.text();
    const up = r.headers['x-upstream'];
    return { status: r.statusCode, body, upstream: typeof up === 'string' ? up : '' };
  };
  const status = async (): Promise<AdminStatus> => {
    const r = await request(`${adminOrigin}/api/status`, { dispatcher: client });
    return (await r.body.json()) as AdminStatus;
  };
  const registry = server.registries[0] as ConsulRegistry;
  return {
    server,
    origin,
    adminOrigin,
    registry,
    get,
    tally: async (path, n) => {
      const out: Record<string, number> = {};
      for (let i = 0; i < n; i++) {
        const r = await get(path);
        const k = r.status < 300 ? r.upstream : `HTTP ${r.status}`;
        out[k] = (out[k] ?? 0) + 1;
      }
      return out;
    },
    status,
    registryStatus: async () => {
      const s = await status();
      const r = s.registries.find((x) => x.name === registry.name);
      if (r === undefined) throw new Error(`registry ${registry.name} not in /api/status`);
      return r;
    },
    stop: async () => {
      await client.destroy().catch(() => {});
      await server.stop(0);
    },
  };
}

/** Polls an async condition every 25 ms; throws (with the last value seen) after `timeoutMs`. */
/**
 * Waits for a `cairn` child process's admin /health to answer 200: with `--workers` (default one
 * per CPU) the proxy port accepts only once a worker listens, and /health says so.
 */
export async function cairnReady(adminOrigin: string): Promise<void> {
  await eventually(
    async () => (await fetch(`${adminOrigin}/health`)).status,
    (status) => status === 200,
    'cairn ready (/health)',
    30_000,
  );
}

export async function eventually<T>(
  probe: () => Promise<T>,
  ok: (v: T) => boolean,
  what: string,
  timeoutMs = 5_000,
): Promise<{ value: T; ms: number }> {
  const start = Date.now();
  let last: T | undefined;
  let lastError: unknown;
  for (;;) {
    try {
      last = await probe();
      if (ok(last)) return { value: last, ms: Date.now() - start };
    } catch (e) {
      lastError = e;
    }
    if (Date.now() - start > timeoutMs) {
      const seen = lastError !== undefined ? String(lastError) : JSON.stringify(last);
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last: ${seen}`);
    }
    await sleep(25);
  }
}

export interface ServiceDefinition {
  readonly ID: string;
  readonly Name: string;
  readonly Tags?: readonly string[];
  readonly Address?: string;
  readonly Port: number;
  readonly Weights?: { Passing: number; Warning: number };
  readonly Meta?: Record<string, string>;
  readonly Check?: Record<string, unknown>;
  readonly Checks?: readonly Record<string, unknown>[];
}

/** The agent's HTTP API, as a service (or an operator) would use it. */
export class ConsulApi {
  readonly address: string;
  readonly token: string | undefined;

  constructor(address: string, token?: string) {
    this.address = address;
    this.token = token;
  }

  async call(method: 'GET' | 'PUT' | 'DELETE', path: string, body?: unknown): Promise<unknown> {
    const r = await request(`${this.address}${path}`, {
      method,
      headers: this.token !== undefined ? { 'x-consul-token': this.token } : {},
      ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
    });
    const text = await r.body.text();
    if (r.statusCode >= 300) throw new Error(`${method} ${path}: HTTP ${r.statusCode}: ${text}`);
    return text === '' ? undefined : (JSON.parse(text) as unknown);
  }

  register(def: ServiceDefinition): Promise<unknown> {
    return this.call('PUT', '/v1/agent/service/register', def);
  }

  deregister(id: string): Promise<unknown> {
    return this.call('PUT', `/v1/agent/service/deregister/${encodeURIComponent(id)}`);
  }

  /** TTL check update: pass, warn or fail. */
  ttl(checkId: string, to: 'pass' | 'warn' | 'fail'): Promise<unknown> {
    return this.call('PUT', `/v1/agent/check/${to}/${encodeURIComponent(checkId)}`);
  }

  maintenance(serviceId: string, enable: boolean): Promise<unknown> {
    return this.call(
      'PUT',
      `/v1/agent/service/maintenance/${encodeURIComponent(serviceId)}?enable=${enable}&reason=test`,
    );
  }

  kvPut(key: string, value: string): Promise<unknown> {
    return this.call('PUT', `/v1/kv/${key}`, value);
  }

  kvDelete(key: string, recurse = false): Promise<unknown> {
    return this.call('DELETE', `/v1/kv/${key}${recurse ? '?recurse' : ''}`);
  }

  async catalogService(name: string): Promise<{ ServiceID: string }[]> {
    return (await this.call('GET', `/v1/catalog/service/${encodeURIComponent(name)}`)) as {
      ServiceID: string;
    }[];
  }

  async checks(service: string): Promise<{ CheckID: string; Status: string }[]> {
    return (await this.call('GET', `/v1/health/checks/${encodeURIComponent(service)}`)) as {
      CheckID: string;
      Status: string;
    }[];
  }

  /** Creates an ACL policy (if rules) and a token holding it; returns the token's SecretID. */
  async createToken(name: string, rules?: string): Promise<string> {
    let policies: { Name: string }[] = [];
    if (rules !== undefined) {
      await this.call('PUT', '/v1/acl/policy', { Name: name, Rules: rules });
      policies = [{ Name: name }];
    }
    const t = (await this.call('PUT', '/v1/acl/token', { Description: name, Policies: policies })) as {
      SecretID: string;
    };
    return t.SecretID;
  }
}

/** `host:port` service definition fields of an upstream on 127.0.0.1. */
export function at(port: number): { Address: string; Port: number } {
  return { Address: '127.0.0.1', Port: port };
}

export interface ConsulClientAgent {
  /** HTTP API of the client agent. */
  readonly address: string;
  readonly process: ManagedProcess;
  /** Joins the agent to a server's LAN pool (`serfLan` from the server's /v1/agent/self). */
  join(serverAddress: string): Promise<void>;
  stop(): Promise<void>;
}

/**
 * A real Consul *client* agent (not a server) that has joined nobody yet: its HTTP API is up but
 * every catalog query fails with `500 No known Consul servers`, until join(). This is how Cairn
 * usually talks to Consul (through the local agent), and a real source of 500s.
 */
export async function startConsulClientAgent(): Promise<ConsulClientAgent> {
  const binary = findConsulBinary();
  const dataDir = await mkdtemp(join(tmpdir(), 'cairn-consul-client-'));
  const httpPort = await freePort();
  const serfLan = await freePort();
  const address = `http://127.0.0.1:${httpPort}`;
  const proc = spawnManaged(`consul client :${httpPort}`, binary, [
    'agent',
    '-data-dir',
    dataDir,
    ...consulLoopbackArgs(`cairn-client-${httpPort}`, { http: httpPort, serfLan }),
    '-hcl',
    'disable_update_check = true',
  ]);
  await eventually(
    async () => {
      if (!proc.running()) throw new Error(`consul client exited: ${proc.output()}`);
      const r = await request(`${address}/v1/agent/self`);
      await r.body.dump();
      return r.statusCode;
    },
    (s) => s === 200,
    'consul client agent HTTP API',
    15_000,
  );
  const api = new ConsulApi(address);
  return {
    address,
    process: proc,
    join: async (serverAddress) => {
      const self = (await new ConsulApi(serverAddress).call('GET', '/v1/agent/self')) as {
        Member: { Addr: string; Port: number };
      };
      await api.call('PUT', `/v1/agent/join/${self.Member.Addr}:${self.Member.Port}`);
    },
    stop: async () => {
      await proc.stop();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

export interface ConsulTlsServer {
  /** Plain HTTP API (for the test's own calls). */
  readonly address: string;
  /** HTTPS API, which requires a client certificate. */
  readonly httpsAddress: string;
  readonly caFile: string;
  /** A client certificate and key signed by the CA. */
  readonly certFile: string;
  readonly keyFile: string;
  stop(): Promise<void>;
}

/**
 * A -dev Consul agent with an HTTPS port (`verify_incoming_https`: clients must present a
 * certificate), its CA and certificates made by `consul tls` in a temporary directory.
 */
export async function startConsulTls(): Promise<ConsulTlsServer> {
  const binary = findConsulBinary();
  const dir = await mkdtemp(join(tmpdir(), 'cairn-consul-tls-'));
  const run = promisify(execFile);
  await run(binary, ['tls', 'ca', 'create'], { cwd: dir });
  await run(binary, ['tls', 'cert', 'create', '-server', '-dc', 'dc1'], { cwd: dir });
  await run(binary, ['tls', 'cert', 'create', '-client', '-dc', 'dc1'], { cwd: dir });
  const f = (name: string) => join(dir, name);
  const [httpPort, httpsPort, serfLan, serfWan, server] = [
    await freePort(),
    await freePort(),
    await freePort(),
    await freePort(),
    await freePort(),
  ];
  const hcl = [
    'disable_update_check = true',
    `ports { https = ${httpsPort} }`,
    `ca_file = ${JSON.stringify(f('consul-agent-ca.pem'))}`,
    `cert_file = ${JSON.stringify(f('dc1-server-consul-0.pem'))}`,
    `key_file = ${JSON.stringify(f('dc1-server-consul-0-key.pem'))}`,
    'verify_incoming_https = true',
  ];
  const proc = spawnManaged(`consul tls :${httpsPort}`, binary, [
    'agent',
    '-dev',
    ...consulLoopbackArgs(`cairn-tls-${httpPort}`, { http: httpPort, serfLan, serfWan, server }),
    ...hcl.flatMap((h) => ['-hcl', h]),
  ]);
  const address = `http://127.0.0.1:${httpPort}`;
  await eventually(
    async () => {
      if (!proc.running()) throw new Error(`consul exited: ${proc.output()}`);
      const r = await request(`${address}/v1/catalog/nodes`);
      return (await r.body.text()).includes(`cairn-tls-${httpPort}`);
    },
    (ok) => ok,
    'consul (TLS) leader and node',
    15_000,
  );
  return {
    address,
    httpsAddress: `https://127.0.0.1:${httpsPort}`,
    caFile: f('consul-agent-ca.pem'),
    certFile: f('dc1-client-consul-0.pem'),
    keyFile: f('dc1-client-consul-0-key.pem'),
    stop: async () => {
      await proc.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
