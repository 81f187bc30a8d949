// Table churn under load: the registry changes every 100 ms (CI ~10 s, soak 60 s) while requests
// flow: an instance of the loaded route comes and goes (its requests in flight must finish),
// another's weight moves, an unrelated route changes. None may fail, and the Cairn process (a
// child, so its figures are its own) must not grow: open file descriptors and upstream
// connections stay flat, RSS stays bounded. File registry, then etcd.

import { expect } from 'chai';
import type { Etcd3 } from 'etcd3';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { type EtcdServer, startEtcd } from '../support/servers.ts';
import { etcdClient, putInstance } from '../integration/helpers/etcd.ts';
import { closeAll, startUpstream, type Upstream } from '../integration/helpers/upstream.ts';
import {
  type ChildCairn,
  describeFailures,
  openFds,
  report,
  rssBytes,
  scaled,
  slope,
  startChildCairn,
  startLoad,
} from './support/chaos.ts';
import { type ChurnPorts, startChurn, writeChurn } from './support/churn.ts';

const churnMs = scaled(10_000, 60_000);
const MiB = 1024 * 1024;
const concurrency = 8;

async function swaps(c: ChildCairn): Promise<number> {
  const r = await fetch(`${c.adminOrigin}/api/status`);
  return ((await r.json()) as { swaps: number }).swaps;
}

/** Runs load + churn against `c`, measures the Cairn process, asserts the figures. */
async function churnScenario(
  label: string,
  c: ChildCairn,
  ups: readonly Upstream[],
  churn: { stop(): Promise<number> },
): Promise<void> {
  const pid = c.proc.pid;
  const load = startLoad({
    origins: [c.origin],
    path: '/churn',
    concurrency,
    maxRequests: 1_000_000,
    maxMs: churnMs + 30_000,
    pauseMs: 2,
  });
  // Warm up: pools, JIT and the first swaps settle before the baseline.
  const warmupMs = Math.min(3_000, churnMs / 4);
  await sleep(warmupMs);
  const swapsBefore = await swaps(c);
  const fdsBefore = openFds(pid);
  const rssBefore = rssBytes(pid);
  const stable = ups.slice(0, 3);
  const stableConnsBefore = stable.reduce((n, u) => n + u.connections, 0);
  const samples: [number, number][] = [];
  const t0 = Date.now();
  while (Date.now() - t0 < churnMs - warmupMs) {
    await sleep(500);
    samples.push([(Date.now() - t0) / 60_000, openFds(pid)]);
  }
  const changes = await churn.stop();
  const swapsAfter = await swaps(c);
  const fdsAfter = openFds(pid);
  const rssAfter = rssBytes(pid);
  const stableConnsAfter = stable.reduce((n, u) => n + u.connections, 0);
  const openUpstream = ups.reduce((n, u) => n + u.openConnections, 0);
  await sleep(300);
  const r = await load.stop();

  report(
    `${label} (${changes} changes, ${swapsAfter - swapsBefore} swaps measured)`,
    r,
    `failed 0; fds ${fdsBefore} -> ${fdsAfter} (slope ${slope(samples).toFixed(1)}/min), RSS ${(rssBefore / MiB).toFixed(0)} -> ${(rssAfter / MiB).toFixed(0)} MiB, new conns to stable instances ${stableConnsAfter - stableConnsBefore}, open upstream conns ${openUpstream}`,
  );
  expect(r.failed, describeFailures(r)).to.equal(0);
  expect(changes).to.be.above(churnMs / 200);
  expect(swapsAfter - swapsBefore, 'the changes reached the table').to.be.above(churnMs / 500);
  // Keep-alive connections of the client and to upstreams come and go; a leak grows without bound.
  expect(fdsAfter - fdsBefore, 'Cairn fd growth').to.be.at.most(concurrency);
  expect(openUpstream, 'open upstream connections').to.be.at.most(4 * concurrency + 4);
  // Connections to instances that never left are reused across swaps, not reopened per table.
  expect(stableConnsAfter - stableConnsBefore, 'new connections to the stable instances').to.be.at.most(
    3 * concurrency,
  );
  expect(rssAfter - rssBefore, 'RSS growth').to.be.below(64 * MiB);
}

describe('chaos: table churn under load', function () {
  this.timeout(churnMs + 60_000);
  let ups: Upstream[] = [];
  let ports: ChurnPorts;
  let cairn: ChildCairn | undefined;

  beforeEach(async () => {
    ups = await Promise.all(['base0', 'base1', 'base2', 'extra', 'other'].map((n) => startUpstream(n)));
    ports = {
      base: ups.slice(0, 3).map((u) => u.port),
      extra: (ups[3] as Upstream).port,
      other: (ups[4] as Upstream).port,
    };
  });
  afterEach(async () => {
    await cairn?.stop();
    cairn = undefined;
    await closeAll(ups);
  });

  it(`file registry: a change every 100 ms for ${churnMs / 1000} s, zero failed, no fd or connection growth`, async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cairn-chaos-churn-'));
    try {
      const file = join(dir, 'routes.yaml');
      await writeChurn(file, ports, 0);
      cairn = await startChildCairn(['--registry', `file:${file}`, '--log-level', 'warn']);
      await churnScenario('table churn, file registry', cairn, ups, startChurn(file, ports, 100));
    } finally {
      await cairn?.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });

  describe('etcd', () => {
    let etcd: EtcdServer | undefined;
    let client: Etcd3 | undefined;
    after(async () => {
      client?.close();
      await etcd?.stop();
    });

    it(`etcd: a change every 100 ms for ${churnMs / 1000} s, zero failed, no fd or connection growth`, async () => {
      etcd = await startEtcd();
      const cl = etcdClient(etcd.endpoint);
      client = cl;
      const prefix = '/churn';
      const tags = ['urlprefix-/churn'];
      const put = (id: string, port: number, extra: { tags?: string[]; weight?: number } = {}) =>
        putInstance(cl, prefix, extra.tags === undefined ? 'churn' : 'other', id, { port, tags, ...extra });
      for (let i = 0; i < 3; i++) await put(`base${i}`, ports.base[i] as number);
      await put('o', ports.other, { tags: ['urlprefix-/other0'] });
      cairn = await startChildCairn([
        '--registry',
        `etcd:${etcd.endpoint}`,
        '--etcd-prefix',
        prefix,
        '--log-level',
        'warn',
      ]);
      // One write per step, cycling through the three kinds of change.
      let running = true;
      let step = 0;
      const loop = (async () => {
        while (running) {
          const t = Date.now();
          const kind = step % 3;
          const round = Math.floor(step / 3);
          if (kind === 0) {
            if (round % 2 === 0) await put('extra', ports.extra);
            else await cl.delete().key(`${prefix}/services/churn/extra`);
          } else if (kind === 1) await put('base0', ports.base[0] as number, { weight: 1 + (round % 3) });
          else await put('o', ports.other, { tags: [`urlprefix-/other${round % 25}`] });
          step++;
          await sleep(Math.max(0, 100 - (Date.now() - t)));
        }
        return step;
      })();
      await churnScenario('table churn, etcd', cairn, ups, {
        stop: async () => {
          running = false;
          return loop;
        },
      });
    });
  });
});
