// Helpers for the etcd integration tests: a Cairn (the colleagues' startCairn) that also reads an
// etcd registry, an etcd3 client to write records the way registrars do, and waits on the table.

import { Etcd3 } from 'etcd3';
import { loadConfig } from '../../../lib/config/index.ts';
import { silentLogger } from '../../../lib/logging.ts';
import { CairnServer } from '../../../lib/server.ts';
import type { RegistryAdapter } from '../../../registry-adapters/types.ts';
import type { Route } from '../../../routing/types.ts';
import { type Cairn, type CairnOptions, startCairn, waitFor } from './cairn.ts';

export { waitFor };

/** A Cairn whose routes come from etcd (its file registry stays empty). */
export async function startEtcdCairn(
  endpoint: string,
  prefix: string,
  opts: CairnOptions = {},
): Promise<Cairn> {
  return startCairn(
    { services: [] },
    { args: ['--registry', `etcd:${endpoint}`, '--etcd-prefix', prefix, ...(opts.args ?? [])] },
  );
}

export interface BareCairn {
  readonly server: CairnServer;
  readonly origin: string;
  stop(): Promise<void>;
}

/**
 * A Cairn with no registry from its configuration but the given adapter, for adapters built with
 * test-only options (CairnServer starts every adapter in `registries` it holds at start()).
 */
export async function startCairnWithAdapter(adapter: RegistryAdapter): Promise<BareCairn> {
  const loaded = loadConfig(
    ['--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0', '--log-level', 'silent'],
    {},
  );
  if (loaded.kind !== 'config') throw new Error(`bad test config: ${loaded.kind}`);
  const server = new CairnServer(loaded.config, { logger: silentLogger() });
  server.registries.push(adapter);
  await server.start();
  const port = server.addresses()[0]?.port ?? 0;
  return { server, origin: `http://127.0.0.1:${port}`, stop: () => server.stop(0) };
}

export function etcdClient(endpoint: string): Etcd3 {
  return new Etcd3({ hosts: endpoint });
}

export interface TestInstance {
  readonly address?: string;
  readonly port: number;
  readonly tags?: readonly string[];
  readonly weight?: number;
  readonly status?: string;
}

export function record(i: TestInstance): string {
  return JSON.stringify({
    address: i.address ?? '127.0.0.1',
    port: i.port,
    tags: i.tags ?? [],
    ...(i.weight !== undefined ? { weight: i.weight } : {}),
    ...(i.status !== undefined ? { status: i.status } : {}),
  });
}

export async function putInstance(
  client: Etcd3,
  prefix: string,
  service: string,
  id: string,
  i: TestInstance,
): Promise<void> {
  await client.put(`${prefix}/services/${service}/${id}`).value(record(i));
}

/** The route for `src` in Cairn's live table, if any. */
export function route(c: { server: CairnServer }, src: string): Route | undefined {
  return c.server.controller.current.table.routes.find((r) => r.src === src);
}

/** `service|dst` of every target of `src`, sorted. */
export function targets(c: { server: CairnServer }, src: string): string[] {
  return (route(c, src)?.targets ?? []).map((t) => `${t.service}|${t.dst}`).sort();
}

/** Waits until `targets(c, src)` equals `expected` (sorted). */
export async function waitForTargets(
  c: { server: CairnServer },
  src: string,
  expected: readonly string[],
  timeoutMs = 3000,
): Promise<void> {
  const want = [...expected].sort();
  try {
    await waitFor(
      () => JSON.stringify(targets(c, src)) === JSON.stringify(want),
      timeoutMs,
      `targets of ${src}`,
    );
  } catch (e) {
    throw new Error(
      `${(e as Error).message}: want ${JSON.stringify(want)}, have ${JSON.stringify(targets(c, src))}`,
      { cause: e },
    );
  }
}

/** The registry's status in the controller (`up`, `down`, `starting`) and its error. */
export function registryStatus(c: { server: CairnServer }, name: string): { status: string; error: string } {
  const r = c.server.controller.registry(name);
  return { status: r.status, error: r.error ?? '' };
}

/** `http://127.0.0.1:<port>/` as Cairn prints a target's dst. */
export function dst(port: number): string {
  return `http://127.0.0.1:${port}/`;
}
