// A single-node Consul *server* with a data dir (not -dev): its catalog survives a stop and a
// start, as a real cluster's does, so an outage test can check that Cairn keeps its table while
// Consul is away and follows what changed once it is back. test/support/servers.ts starts -dev
// agents, whose state is lost on restart.

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  consulLoopbackArgs,
  findConsulBinary,
  freePort,
  type ManagedProcess,
  spawnManaged,
} from '../../support/servers.ts';

export interface PersistentConsul {
  readonly address: string;
  process(): ManagedProcess;
  /** Starts it again (same ports, same data) after process().stop(). */
  start(): Promise<void>;
  /** Stops it and removes its data. */
  stop(): Promise<void>;
}

export async function startPersistentConsul(): Promise<PersistentConsul> {
  const binary = findConsulBinary();
  const dataDir = await mkdtemp(join(tmpdir(), 'cairn-consul-data-'));
  const [httpPort, serfLan, serfWan, serverPort] = [
    await freePort(),
    await freePort(),
    await freePort(),
    await freePort(),
  ];
  const address = `http://127.0.0.1:${httpPort}`;
  const node = `cairn-chaos-${httpPort}`;
  const args = [
    'agent',
    '-server',
    '-bootstrap-expect',
    '1',
    '-data-dir',
    dataDir,
    ...consulLoopbackArgs(node, { http: httpPort, serfLan, serfWan, server: serverPort }),
    '-hcl',
    'disable_update_check = true',
    // Fastest Raft timings: a single node elects itself quickly after a restart.
    '-hcl',
    'performance { raft_multiplier = 1 }',
  ];
  let current: ManagedProcess | undefined;
  const launch = async (): Promise<void> => {
    const proc = spawnManaged(`consul-server :${httpPort}`, binary, args);
    current = proc;
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (!proc.running()) throw new Error(`consul exited at start:\n${proc.output()}`);
      const ready = await fetch(`${address}/v1/catalog/nodes`, { signal: AbortSignal.timeout(1_000) }).then(
        async (r) => r.status === 200 && (await r.text()).includes(node),
        () => false,
      );
      if (ready) return;
      if (Date.now() > deadline) {
        await proc.stop();
        throw new Error(`consul did not elect itself:\n${proc.output()}`);
      }
      await sleep(100);
    }
  };
  await launch();
  return {
    address,
    process: () => current as ManagedProcess,
    start: launch,
    stop: async () => {
      await current?.stop();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}
