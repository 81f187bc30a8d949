// Table churn under load: the registry changes every 100 ms (CI ~10 s, soak 60 s) while requests
// flow. None may fail, and the Cairn process (a child, so its figures are its own) must not grow:
// open file descriptors and upstream connections stay flat, RSS stays bounded.

import { expect } from 'chai';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
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

async function swaps(c: ChildCairn): Promise<number> {
  const r = await fetch(`${c.adminOrigin}/api/status`);
  return ((await r.json()) as { swaps: number }).swaps;
}

describe('chaos: table churn under load', function () {
  this.timeout(churnMs + 60_000);
  let ups: Upstream[] = [];
  let cairn: ChildCairn | undefined;
  let dir = '';

  afterEach(async () => {
    await cairn?.stop();
    cairn = undefined;
    await closeAll(ups);
    if (dir !== '') await rm(dir, { recursive: true, force: true });
  });

  it(`a registry change every 100 ms for ${churnMs / 1000} s: zero failed, no fd or connection growth`, async () => {
    ups = await Promise.all(['base0', 'base1', 'base2', 'extra', 'other'].map((n) => startUpstream(n)));
    const ports: ChurnPorts = {
      base: ups.slice(0, 3).map((u) => u.port),
      extra: (ups[3] as Upstream).port,
      other: (ups[4] as Upstream).port,
    };
    dir = await mkdtemp(join(tmpdir(), 'cairn-chaos-churn-'));
    const file = join(dir, 'routes.yaml');
    await writeChurn(file, ports, 0);
    const c = await startChildCairn(['--registry', `file:${file}`, '--log-level', 'warn']);
    cairn = c;
    const pid = c.proc.pid;

    const concurrency = 8;
    const load = startLoad({
      origins: [c.origin],
      path: '/churn',
      concurrency,
      maxRequests: 1_000_000,
      maxMs: churnMs + 30_000,
      pauseMs: 2,
    });
    const churn = startChurn(file, ports, 100);
    // Warm up: pools, JIT and the first swaps settle before the baseline.
    await sleep(Math.min(3_000, churnMs / 4));
    const swapsBefore = await swaps(c);
    const fdsBefore = openFds(pid);
    const rssBefore = rssBytes(pid);
    const baseConnsBefore = ups.slice(0, 3).reduce((n, u) => n + u.connections, 0);
    const samples: [number, number, number][] = [];
    const t0 = Date.now();
    while (Date.now() - t0 < churnMs - Math.min(3_000, churnMs / 4)) {
      await sleep(500);
      samples.push([(Date.now() - t0) / 60_000, openFds(pid), rssBytes(pid) / MiB]);
    }
    const changes = await churn.stop();
    const swapsAfter = await swaps(c);
    const fdsAfter = openFds(pid);
    const rssAfter = rssBytes(pid);
    const baseConnsAfter = ups.slice(0, 3).reduce((n, u) => n + u.connections, 0);
    const openUpstream = ups.reduce((n, u) => n + u.openConnections, 0);
    await sleep(300);
    const r = await load.stop();

    const fdSlope = slope(samples.map(([t, fd]) => [t, fd]));
    const rssSlope = slope(samples.map(([t, , rss]) => [t, rss]));
    report(
      `table churn (${changes} changes, ${swapsAfter - swapsBefore} swaps measured)`,
      r,
      `failed 0; fds ${fdsBefore} -> ${fdsAfter} (${fdSlope.toFixed(1)}/min), RSS ${(rssBefore / MiB).toFixed(0)} -> ${(rssAfter / MiB).toFixed(0)} MiB (${rssSlope.toFixed(1)} MiB/min), new base upstream conns ${baseConnsAfter - baseConnsBefore}, open upstream conns ${openUpstream}`,
    );
    expect(r.failed, describeFailures(r)).to.equal(0);
    expect(changes).to.be.above(churnMs / 200);
    expect(swapsAfter - swapsBefore, 'the changes reached the table').to.be.above(churnMs / 500);
    // Keep-alive connections of the client and to upstreams come and go; a leak grows without bound.
    expect(fdsAfter - fdsBefore, 'Cairn fd growth').to.be.at.most(concurrency);
    expect(openUpstream, 'open upstream connections').to.be.at.most(4 * concurrency + 4);
    // Connections to instances that never left are reused across swaps, not reopened per table.
    expect(baseConnsAfter - baseConnsBefore, 'new connections to the stable instances').to.be.at.most(
      3 * concurrency,
    );
    expect(rssAfter - rssBefore, 'RSS growth').to.be.below(64 * MiB);
  });
});
