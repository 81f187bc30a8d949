// etcd registry benchmark: `node test/bench/etcd.bench.ts [--quick]`.
//
// A fresh real etcd (test/support/servers.ts startEtcd) holds 10,000 instance records of 2,000
// services (5 each), tagged like the table-build bench: every service `urlprefix-/svc-N`, a
// quarter also a host route, a fifth an `/api/svc-N strip=/api` route, plus ordinary tags.
// A CairnServer (in-process, silent) reads them with `--registry etcd:...`.
//
// Figures:
// - **initial table** (target < 3 s): from `CairnServer.start()` until its table holds every
//   route of the 10,000 records: list (paged), parse, snapshot, table build. Also the list alone
//   (a standalone EtcdRegistry, start() to first snapshot).
// - **change -> table** (target p99 < 200 ms over 100 changes): one record is rewritten with a
//   new route tag; the time from just before the etcd put until the live table routes that new
//   path (watch event, debounce, snapshot, table build, swap). Changes run one after another.
//   Two more figures split it: the adapter alone (put -> snapshot with the change, no Cairn), and
//   the controller's rebuild (table build, balancers and the server's swap hooks) per change.

import { setImmediate as yieldLoop } from 'node:timers/promises';
import { Etcd3 } from 'etcd3';
import { loadConfig } from '../../lib/config/index.ts';
import { silentLogger } from '../../lib/logging.ts';
import { CairnServer } from '../../lib/server.ts';
import { EtcdRegistry } from '../../registry-adapters/etcd/index.ts';
import type { Snapshot } from '../../routing/types.ts';
import { startEtcd } from '../support/servers.ts';
import { belowTarget, fixed, markdownTable, median } from './lib/report.ts';

const quick = process.argv.includes('--quick');
const services = 2000;
const perService = 5;
const changes = quick ? 30 : 100;
const targetInitialMs = 3000;
const targetChangeP99Ms = 200;
const prefix = '/cairn';

function tagsFor(s: number): string[] {
  const tags = [`urlprefix-/svc-${s}`];
  if (s % 4 === 1) tags.push(`urlprefix-svc-${s}.example.com/`);
  if (s % 5 === 2) tags.push(`urlprefix-/api/svc-${s} strip=/api`);
  return [...tags, `version=1.${s % 7}`, s % 3 === 0 ? 'env=prod' : 'env=staging', 'team=platform'];
}

function recordFor(n: number, tags: string[]): string {
  return JSON.stringify({
    address: `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`,
    port: 8080 + (n % perService),
    tags,
  });
}

function percentile(xs: readonly number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)] ?? Number.NaN;
}

const etcd = await startEtcd();
const client = new Etcd3({ hosts: etcd.endpoint });
let server: CairnServer | undefined;
try {
  // ---- load 10,000 records (100 puts per transaction; etcd allows 128) ----
  const loadStart = performance.now();
  const total = services * perService;
  const batches: Promise<unknown>[] = [];
  for (let first = 0; first < total; first += 100) {
    const txn = client.if('/bench-never', 'Create', '==', 0);
    const ops = [];
    for (let n = first; n < Math.min(first + 100, total); n++) {
      const s = Math.floor(n / perService);
      ops.push(client.put(`${prefix}/services/svc-${s}/i${n % perService}`).value(recordFor(n, tagsFor(s))));
    }
    batches.push(txn.then(...ops).commit());
    if (batches.length >= 8) await Promise.all(batches.splice(0));
  }
  await Promise.all(batches);
  const loadMs = performance.now() - loadStart;

  // ---- the adapter alone: the list, then single changes until its snapshot has them ----
  const bare = new EtcdRegistry({ endpoints: [etcd.endpoint], prefix });
  const listStart = performance.now();
  let listed = 0;
  let latest: Snapshot | undefined;
  await bare.start(
    (snap) => {
      listed = snap.instances.length;
      latest = snap;
    },
    () => undefined,
  );
  const listMs = performance.now() - listStart;
  const adapterLatencies: number[] = [];
  const hasTag = (tag: string) =>
    latest?.instances.some((i) => i.id === 'i0' && i.tags.includes(tag)) === true;
  for (let i = 0; i < changes; i++) {
    const s = (i * 37) % services;
    const tag = `urlprefix-/adapter-probe-${i}`;
    const t0 = performance.now();
    await client.put(`${prefix}/services/svc-${s}/i0`).value(recordFor(s * perService, [...tagsFor(s), tag]));
    while (!hasTag(tag)) {
      if (performance.now() - t0 > 10_000) throw new Error(`adapter change ${i} not seen within 10 s`);
      await yieldLoop();
    }
    adapterLatencies.push(performance.now() - t0);
  }
  await bare.stop();
  // Put the probed records back as they were, so Cairn starts on the table described above.
  for (let i = 0; i < changes; i++) {
    const s = (i * 37) % services;
    await client.put(`${prefix}/services/svc-${s}/i0`).value(recordFor(s * perService, tagsFor(s)));
  }

  // ---- initial table through CairnServer ----
  const loaded = loadConfig(
    [
      '--listen',
      '127.0.0.1:0',
      '--admin',
      '127.0.0.1:0',
      '--registry',
      `etcd:${etcd.endpoint}`,
      '--etcd-prefix',
      prefix,
      '--log-level',
      'silent',
    ],
    {},
  );
  if (loaded.kind !== 'config') throw new Error('bad bench config');
  const cairn = new CairnServer(loaded.config, { logger: silentLogger() });
  server = cairn;
  const initialStart = performance.now();
  await cairn.start();
  let expectedRoutes = 0;
  for (let s = 0; s < services; s++)
    expectedRoutes += tagsFor(s).filter((t) => t.startsWith('urlprefix-')).length;
  while (cairn.controller.current.table.routes.length < expectedRoutes) await yieldLoop();
  const initialMs = performance.now() - initialStart;
  const table = cairn.controller.current.table;
  let targets = 0;
  for (const r of table.routes) targets += r.targets.length;

  // ---- single changes ----
  // The controller's rebuild (table build, balancers, swap hooks) is timed on its own, so a slow
  // figure says which side of the registry -> table path it comes from.
  const rebuilds: number[] = [];
  const controller = cairn.controller;
  const rebuild = controller.rebuild.bind(controller);
  controller.rebuild = () => {
    const t = performance.now();
    rebuild();
    rebuilds.push(performance.now() - t);
  };
  const latencies: number[] = [];
  for (let i = 0; i < changes; i++) {
    const s = (i * 37) % services;
    const n = s * perService;
    const path = `/probe-${i}`;
    const t0 = performance.now();
    await client
      .put(`${prefix}/services/svc-${s}/i0`)
      .value(recordFor(n, [...tagsFor(s), `urlprefix-${path}`]));
    for (;;) {
      const r = cairn.controller.current.table.http.lookup({ host: 'bench', path });
      if (r?.src === path) break;
      if (performance.now() - t0 > 10_000) throw new Error(`change ${i} not applied within 10 s`);
      await yieldLoop();
    }
    latencies.push(performance.now() - t0);
  }

  const p50 = median(latencies);
  const p99 = percentile(latencies, 99);
  const mark = (ok: boolean, target: string) => (ok ? `ok (< ${target})` : `${belowTarget} (< ${target})`);
  console.log('## etcd registry\n');
  console.log(
    `${total.toLocaleString('en-US')} records of ${services.toLocaleString('en-US')} services in etcd -> ` +
      `${table.routes.length.toLocaleString('en-US')} routes, ${targets.toLocaleString('en-US')} targets, ` +
      `${table.problems.length} problems; ${changes} single changes\n`,
  );
  console.log(
    markdownTable(
      ['figure', 'value', 'target'],
      [
        ['load 10,000 records into etcd ms', fixed(loadMs, 0), ''],
        [`adapter list -> first snapshot ms (${listed} instances)`, fixed(listMs, 0), ''],
        [
          'CairnServer start -> full table ms',
          fixed(initialMs, 0),
          mark(initialMs < targetInitialMs, `${targetInitialMs} ms`),
        ],
        ['adapter alone: change -> snapshot, p50 ms', fixed(median(adapterLatencies), 1), ''],
        [
          `adapter alone: change -> snapshot, p99 ms (${changes})`,
          fixed(percentile(adapterLatencies, 99), 1),
          '',
        ],
        ['controller rebuild + swap hooks, median ms', fixed(median(rebuilds), 1), ''],
        [
          `controller rebuild + swap hooks, p99 ms (${rebuilds.length})`,
          fixed(percentile(rebuilds, 99), 1),
          '',
        ],
        ['controller rebuild + swap hooks, max ms', fixed(Math.max(...rebuilds), 1), ''],
        ['change -> table, p50 ms', fixed(p50, 1), ''],
        [
          `change -> table, p99 ms (${changes})`,
          fixed(p99, 1),
          mark(p99 < targetChangeP99Ms, `${targetChangeP99Ms} ms`),
        ],
        ['change -> table, max ms', fixed(Math.max(...latencies), 1), ''],
        ['change -> table, min ms', fixed(Math.min(...latencies), 1), ''],
      ],
    ),
  );
  console.log(
    `\nnode ${process.version}; etcd at ${etcd.endpoint}; table version ${cairn.controller.current.table.version}`,
  );
} finally {
  await server?.stop(0);
  client.close();
  await etcd.stop();
}
