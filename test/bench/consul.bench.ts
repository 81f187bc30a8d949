// Consul registry benchmark: `node test/bench/consul.bench.ts [--quick]`.
//
// A real Consul 1.8 -dev agent (test/support/servers.ts) holds 2,000 services x 5 instances
// (10,000 instances with one check each, spread over 10 catalog nodes, registered through
// /v1/txn). A CairnServer runs in-process with `--registry consul:<agent>`. Figures:
// - **table complete**: time from CairnServer.start() until the live table has every route and
//   all 10,000 targets (target < 10 s);
// - **health change -> table**: a check set critical (and back) through /v1/txn, until the live
//   table excludes (re-includes) that instance; median and max of N (target < 1 s);
// - **Weights change -> table**, **new passing instance -> table**, **deregistration -> out of
//   table**: changes that move no non-passing check, found by the sweep after the catalog moves;
// - **requests to Consul per minute**, and bytes per minute, counted by the adapter's HTTP
//   client: quiet, under health churn (5 check flips/s), and under registration churn (1
//   re-registration with new Weights per second). For comparison, the requests fabio's design
//   would send for the same changes (one /v1/health/state/any, then one /v1/catalog/service per
//   service with a passing instance, on every change) are computed, not measured.

import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';
import { loadConfig } from '../../lib/config/index.ts';
import { silentLogger } from '../../lib/logging.ts';
import { CairnServer } from '../../lib/server.ts';
import type { ConsulRegistry, ConsulRegistryStats } from '../../registry-adapters/consul/index.ts';
import { type ConsulServer, startConsul } from '../support/servers.ts';
import { belowTarget, int, markdownTable, median, ms } from './lib/report.ts';

const quick = process.argv.includes('--quick');
const services = 2000;
const perService = 5;
const nodes = 10;
const windowMs = quick ? 15_000 : 60_000;
const samples = quick ? 5 : 15;
const targetCompleteMs = 10_000;
// Every instance is a target of /svc-N; a quarter of the services also have a host route.
let hostRouted = 0;
for (let s = 0; s < services; s++) if (s % 4 === 1) hostRouted++;
const expectedTargets = (services + hostRouted) * perService;
const targetHealthMs = 1_000;

let consul: ConsulServer | undefined;
let server: CairnServer | undefined;

async function txn(ops: unknown[]): Promise<void> {
  const r = await request(`${consul?.address}/v1/txn`, { method: 'PUT', body: JSON.stringify(ops) });
  const text = await r.body.text();
  if (r.statusCode !== 200) throw new Error(`txn: HTTP ${r.statusCode}: ${text.slice(0, 300)}`);
}

const nodeOf = (s: number, i: number): string => `bench-node-${(s * perService + i) % nodes}`;
const idOf = (s: number, i: number): string => `svc-${s}-${i}`;

function serviceOp(s: number, i: number, weight = 1): unknown {
  const tags = [`urlprefix-/svc-${s}`, `version=${i % 3}`, 'env=bench'];
  if (s % 4 === 1) tags.push(`urlprefix-svc-${s}.example.com/`);
  return {
    Service: {
      Verb: 'set',
      Node: nodeOf(s, i),
      Service: {
        ID: idOf(s, i),
        Service: `svc-${s}`,
        Tags: tags,
        Address: `10.${s % 250}.${i}.${(s >> 8) + 1}`,
        Port: 8000 + i,
        Weights: { Passing: weight, Warning: 1 },
      },
    },
  };
}

function checkOp(s: number, i: number, status: string): unknown {
  return {
    Check: {
      Verb: 'set',
      Check: {
        Node: nodeOf(s, i),
        CheckID: `${idOf(s, i)}-check`,
        Name: 'http',
        Status: status,
        ServiceID: idOf(s, i),
      },
    },
  };
}

async function seed(): Promise<void> {
  const ops: unknown[] = [];
  for (let n = 0; n < nodes; n++)
    ops.push({ Node: { Verb: 'set', Node: { Node: `bench-node-${n}`, Address: `10.99.0.${n + 1}` } } });
  await txn(ops);
  let batch: unknown[] = [];
  for (let s = 0; s < services; s++) {
    for (let i = 0; i < perService; i++) {
      batch.push(serviceOp(s, i), checkOp(s, i, 'passing'));
      // Consul 1.8 takes at most 64 operations per transaction.
      if (batch.length >= 64) {
        await txn(batch);
        batch = [];
      }
    }
  }
  if (batch.length > 0) await txn(batch);
}

function targetCount(): number {
  let n = 0;
  for (const r of server?.controller.current.table.routes ?? []) n += r.targets.length;
  return n;
}

function excluded(id: string): boolean {
  return (server?.controller.current.table.excluded ?? []).some((e) => e.id === id);
}

function targetWeight(s: number, i: number): number | undefined {
  const route = server?.controller.current.table.routes.find((r) => r.src === `/svc-${s}`);
  return route?.targets.find((t) => t.instanceId === idOf(s, i))?.instanceWeight;
}

async function until(cond: () => boolean, timeoutMs: number): Promise<number> {
  const t0 = performance.now();
  while (!cond()) {
    if (performance.now() - t0 > timeoutMs) return Number.POSITIVE_INFINITY;
    await sleep(2);
  }
  return performance.now() - t0;
}

interface Window {
  readonly label: string;
  readonly changes: number;
  readonly requests: number;
  readonly bytes: number;
  readonly fetches: number;
  readonly sweeps: number;
  readonly seconds: number;
}

async function measure(label: string, churn: (stop: () => boolean) => Promise<number>): Promise<Window> {
  const registry = server?.registries[0] as ConsulRegistry;
  const before = registry.stats();
  const t0 = performance.now();
  let done = false;
  const churning = churn(() => done);
  await sleep(windowMs);
  done = true;
  const changes = await churning;
  // Let the last change land before reading the counters.
  await sleep(600);
  const after = registry.stats();
  const sum = (s: ConsulRegistryStats, f: 'requests' | 'bytes') =>
    Object.values(s.endpoints).reduce((a, e) => a + e[f], 0);
  const w = (s: ConsulRegistryStats) => Object.values(s.watches)[0];
  return {
    label,
    changes,
    requests: after.requests - before.requests,
    bytes: sum(after, 'bytes') - sum(before, 'bytes'),
    fetches: (w(after)?.fetches ?? 0) - (w(before)?.fetches ?? 0),
    sweeps: (w(after)?.sweeps ?? 0) - (w(before)?.sweeps ?? 0),
    seconds: (performance.now() - t0) / 1000,
  };
}

async function main(): Promise<void> {
  process.stdout.write(
    `## consul: ${services} services x ${perService} instances${quick ? ' (quick)' : ''}\n\n`,
  );
  consul = await startConsul();
  const seedStart = performance.now();
  await seed();
  const seedMs = performance.now() - seedStart;

  const loaded = loadConfig(
    [
      '--listen',
      '127.0.0.1:0',
      '--admin',
      '127.0.0.1:0',
      '--registry',
      `consul:${consul.address}`,
      '--log-level',
      'silent',
    ],
    {},
  );
  if (loaded.kind !== 'config') throw new Error('bad bench config');
  server = new CairnServer(loaded.config, { logger: silentLogger() });
  const startT0 = performance.now();
  await server.start();
  const startedMs = performance.now() - startT0;
  const completeMs = startedMs + (await until(() => targetCount() === expectedTargets, targetCompleteMs * 3));
  const completeTargets = targetCount();
  const routes = server.controller.current.table.routes.length;
  const registry = server.registries[0] as ConsulRegistry;
  const initial = registry.stats();

  // Health changes, one at a time.
  const down: number[] = [];
  const up: number[] = [];
  for (let k = 0; k < samples; k++) {
    const s = (k * 131) % services;
    const i = k % perService;
    await txn([checkOp(s, i, 'critical')]);
    down.push(await until(() => excluded(idOf(s, i)), 10_000));
    await txn([checkOp(s, i, 'passing')]);
    up.push(await until(() => !excluded(idOf(s, i)), 10_000));
    await sleep(300);
  }
  // Weights changes: no check moves; the sweep finds them.
  const weights: number[] = [];
  for (let k = 0; k < samples; k++) {
    const s = (k * 197 + 11) % services;
    const w = 2 + (k % 5);
    await txn([serviceOp(s, 0, w)]);
    weights.push(await until(() => targetWeight(s, 0) === w, 10_000));
    await sleep(1100);
  }

  // A new instance registered already passing, then deregistered: no check shows it (the
  // detector watches non-passing checks), the catalog moves and the sweep finds it.
  const added: number[] = [];
  const removed: number[] = [];
  for (let k = 0; k < samples; k++) {
    const s = (k * 89 + 3) % services;
    const i = perService + k;
    await txn([serviceOp(s, i), checkOp(s, i, 'passing')]);
    added.push(await until(() => targetWeight(s, i) !== undefined, 10_000));
    await sleep(1100);
    await txn([
      { Service: { Verb: 'delete', Node: nodeOf(s, i), Service: { ID: idOf(s, i), Service: `svc-${s}` } } },
    ]);
    removed.push(await until(() => targetWeight(s, i) === undefined, 10_000));
    await sleep(1100);
  }

  const quiet = await measure('quiet', async () => 0);
  const health = await measure('health churn, 5 check flips/s', async (stop) => {
    let n = 0;
    while (!stop()) {
      const s = (n * 37) % services;
      await txn([checkOp(s, n % perService, n % 2 === 0 ? 'critical' : 'passing')]);
      n++;
      await sleep(200);
    }
    return n;
  });
  const defs = await measure('registration churn, 1 Weights re-registration/s', async (stop) => {
    let n = 0;
    while (!stop()) {
      await txn([serviceOp((n * 53) % services, n % perService, 1 + (n % 4))]);
      n++;
      await sleep(1000);
    }
    return n;
  });
  const finalStats = registry.stats();
  await server.stop(0);
  server = undefined;
  const detectors = [await detector(false), await detector(true)];

  const completeOk = completeMs < targetCompleteMs;
  const healthOk = Math.max(...down, ...up) < targetHealthMs;
  process.stdout.write(
    `${markdownTable(
      ['figure', 'value', 'target', 'notes'],
      [
        ['seed 10,000 instances (/v1/txn)', `${ms(seedMs)} ms`, '', ''],
        ['CairnServer.start() resolved', `${ms(startedMs)} ms`, '', ''],
        [
          'table complete',
          `${ms(completeMs)} ms`,
          `< ${targetCompleteMs} ms`,
          `${routes} routes, ${int(completeTargets)} targets${completeOk ? '' : ` ${belowTarget}`}`,
        ],
        [
          'requests for the first table',
          int(initial.requests),
          '',
          'catalog + checks + KV + one fetch per service',
        ],
        [
          'health change -> out of table (median / max)',
          `${ms(median(down))} / ${ms(Math.max(...down))} ms`,
          `< ${targetHealthMs} ms`,
          healthOk ? '' : belowTarget,
        ],
        [
          'health change -> back in table (median / max)',
          `${ms(median(up))} / ${ms(Math.max(...up))} ms`,
          `< ${targetHealthMs} ms`,
          '',
        ],
        [
          'Weights change -> table (median / max)',
          `${ms(median(weights))} / ${ms(Math.max(...weights))} ms`,
          '',
          'via the sweep',
        ],
        [
          'new passing instance -> table (median / max)',
          `${ms(median(added))} / ${ms(Math.max(...added))} ms`,
          '',
          'via the sweep',
        ],
        [
          'deregistration -> out of table (median / max)',
          `${ms(median(removed))} / ${ms(Math.max(...removed))} ms`,
          '',
          'via the sweep',
        ],
      ],
    )}\n\n`,
  );
  const perMin = (w: Window, x: number) => (x * 60) / w.seconds;
  // fabio: per change, one state/any, then one catalog/service per service with a passing instance.
  const fabio = (w: Window) => (w.label === 'quiet' ? 0 : perMin(w, w.changes) * (1 + services));
  process.stdout.write(
    `${markdownTable(
      [
        'window',
        'changes/min',
        'requests/min',
        'MB/min',
        'fetches/min',
        'sweeps/min',
        "fabio's design, requests/min (computed)",
      ],
      [quiet, health, defs].map((w) => [
        w.label,
        int(perMin(w, w.changes)),
        int(perMin(w, w.requests)),
        (perMin(w, w.bytes) / 1e6).toFixed(1),
        int(perMin(w, w.fetches)),
        int(perMin(w, w.sweeps)),
        int(fabio(w)),
      ]),
    )}\n\n`,
  );
  process.stdout.write(
    `${markdownTable(
      ['endpoint', 'requests', 'MB', 'errors'],
      Object.entries(finalStats.endpoints).map(([k, v]) => [
        k,
        int(v.requests),
        (v.bytes / 1e6).toFixed(1),
        int(v.errors),
      ]),
    )}\n\n(whole run, all phases; windows of ${windowMs / 1000} s)\n\n`,
  );
  process.stdout.write(
    `${markdownTable(
      [
        'checks detector (adapter only)',
        'health change -> snapshot (median / max)',
        'requests/min',
        'MB/min',
      ],
      detectors.map((d) => [
        d.label,
        `${ms(median(d.latency))} / ${ms(Math.max(...d.latency))} ms`,
        int(perMin(d.window, d.window.requests)),
        (perMin(d.window, d.window.bytes) / 1e6).toFixed(1),
      ]),
    )}\n\n(5 check flips/s for ${windowMs / 1000} s each)\n`,
  );
}

interface DetectorRun {
  readonly label: string;
  readonly latency: number[];
  readonly window: Window;
}

/**
 * The adapter alone (no table), with the checks detector filtered to non-passing checks (the
 * default) or reading every check (the issue's sketch; what checks-required=one needs): health
 * change -> snapshot latency, and the cost of 5 check flips/s.
 */
async function detector(allChecks: boolean): Promise<DetectorRun> {
  const { ConsulRegistry } = await import('../../registry-adapters/consul/index.ts');
  const r = new ConsulRegistry({ address: consul?.address ?? '', watchAllChecks: allChecks });
  let last: readonly { id: string; status?: string }[] = [];
  await r.start(
    (snap) => {
      last = snap.instances;
    },
    () => {},
  );
  const statusOf = (id: string) => last.find((i) => i.id === id)?.status;
  const latency: number[] = [];
  for (let k = 0; k < samples; k++) {
    const s = (k * 71 + 5) % services;
    await txn([checkOp(s, 1, 'critical')]);
    latency.push(await until(() => statusOf(idOf(s, 1)) === 'critical', 10_000));
    await txn([checkOp(s, 1, 'passing')]);
    await until(() => statusOf(idOf(s, 1)) === 'passing', 10_000);
    await sleep(300);
  }
  const before = r.stats();
  const t0 = performance.now();
  let n = 0;
  const end = t0 + windowMs;
  while (performance.now() < end) {
    await txn([checkOp((n * 37) % services, n % perService, n % 2 === 0 ? 'critical' : 'passing')]);
    n++;
    await sleep(200);
  }
  await sleep(600);
  const after = r.stats();
  await r.stop();
  const bytes = (st: ConsulRegistryStats) => Object.values(st.endpoints).reduce((a, e) => a + e.bytes, 0);
  const fetches = (st: ConsulRegistryStats) => Object.values(st.watches)[0]?.fetches ?? 0;
  return {
    label: allChecks ? 'every check (unfiltered /v1/health/state/any)' : 'non-passing checks only (default)',
    latency,
    window: {
      label: 'health churn',
      changes: n,
      requests: after.requests - before.requests,
      bytes: bytes(after) - bytes(before),
      fetches: fetches(after) - fetches(before),
      sweeps: 0,
      seconds: (performance.now() - t0) / 1000,
    },
  };
}

async function cleanup(): Promise<void> {
  await server?.stop(0).catch(() => {});
  await consul?.stop().catch(() => {});
}

for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    void cleanup().then(() => process.exit(130));
  });
}

main().then(
  async () => {
    await cleanup();
    process.exit(0);
  },
  async (e: unknown) => {
    process.stderr.write(`consul bench failed: ${(e as Error).stack ?? String(e)}\n`);
    await cleanup();
    process.exit(1);
  },
);
