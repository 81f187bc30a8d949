// Table build benchmark: `node --expose-gc test/bench/table-build.bench.ts [--quick]` (re-runs
// itself with --expose-gc when started without it).
//
// A registry snapshot of 10,000 instances of 2,000 services (5 instances each) goes through
// `buildTable()`, the whole pure pipeline the controller runs on every registry change: tag
// parsing, route commands, weights, the HTTP router and the TCP router. Tags look like a real
// Consul catalogue: every service has `urlprefix-/svc-N`, a quarter also a host route
// `svc-N.example.com/`, a fifth an `/api/svc-N strip=/api` route, one in fifty is a TCP service
// (`:port proto=tcp`), and every instance carries ordinary non-route tags (version, env, ...).
//
// Figures: build time (first, cold build; then the median, min and max of warm builds)
// and the heap the resulting table holds (heapUsed after a full GC with the table alive, minus
// heapUsed after a full GC before building it; the instances themselves are allocated before
// and not counted: the registry adapter holds them anyway). Then what the controller does on a
// registry change: an IncrementalTableBuilder (holding the previous build) builds the table of
// a snapshot in which one instance got a new route tag, one change after another; median and
// p99 of those builds.

import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { buildTable, IncrementalTableBuilder } from '../../routing/table.ts';
import type { RouteTable, ServiceInstance } from '../../routing/types.ts';
import { belowTarget, fixed, markdownTable, median } from './lib/report.ts';

const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) {
  // The heap figure needs a forced GC; re-run under --expose-gc with the same arguments.
  const self = fileURLToPath(import.meta.url);
  const r = spawnSync(
    process.execPath,
    ['--expose-gc', ...process.execArgv, self, ...process.argv.slice(2)],
    {
      stdio: 'inherit',
    },
  );
  process.exit(r.status ?? 1);
}
const forceGc = gc;

const quick = process.argv.includes('--quick');
const services = 2000;
const perService = 5;
const runs = quick ? 5 : 15;
const warmups = 2;
const targetBuildMs = 150;
const targetHeapMb = 50;

function instances(): ServiceInstance[] {
  const out: ServiceInstance[] = [];
  for (let s = 0; s < services; s++) {
    const service = `svc-${s}`;
    const routeTags: string[] = [];
    if (s % 50 === 7) {
      routeTags.push(`urlprefix-:${20000 + s} proto=tcp`);
    } else {
      routeTags.push(`urlprefix-/${service}`);
      if (s % 4 === 1) routeTags.push(`urlprefix-${service}.example.com/`);
      if (s % 5 === 2) routeTags.push(`urlprefix-/api/${service} strip=/api`);
    }
    for (let i = 0; i < perService; i++) {
      const n = s * perService + i;
      out.push({
        service,
        id: `${service}-${i}`,
        address: `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`,
        port: 8080 + i,
        tags: [
          ...routeTags,
          `version=1.${s % 7}.${i}`,
          s % 3 === 0 ? 'env=prod' : 'env=staging',
          'team=platform',
        ],
        registry: 'bench',
      });
    }
  }
  return out;
}

const snapshot = { instances: instances(), manual: '' };

function timeBuild(): { ms: number; table: RouteTable } {
  const t0 = process.hrtime.bigint();
  const table = buildTable(snapshot);
  return { ms: Number(process.hrtime.bigint() - t0) / 1e6, table };
}

// Heap first, on a fresh process, so the figure is not blurred by earlier tables' garbage.
forceGc();
forceGc();
const heapBefore = process.memoryUsage().heapUsed;
const cold = timeBuild();
forceGc();
forceGc();
const heapAfter = process.memoryUsage().heapUsed;
const held = cold.table;
const heapMb = (heapAfter - heapBefore) / (1024 * 1024);

const times: number[] = [];
let sink = 0;
// The cold build is reported on its own; the median is of warm builds (the steady state of a
// long-running controller), so a couple of discarded builds let the JIT settle first.
for (let r = 0; r < warmups; r++) sink += timeBuild().table.routes.length;
for (let r = 0; r < runs; r++) {
  const { ms, table } = timeBuild();
  times.push(ms);
  sink += table.routes.length;
}

// ---- single changes through the incremental builder (the controller's path) ----
const changes = quick ? 50 : 200;
const incremental = new IncrementalTableBuilder();
incremental.build(snapshot);
const changeTimes: number[] = [];
for (let i = 0; i < changes; i++) {
  const k = ((i * 37) % services) * perService;
  const changed = snapshot.instances.slice();
  const inst = changed[k] as ServiceInstance;
  changed[k] = { ...inst, tags: [...inst.tags, `urlprefix-/probe-${i}`] };
  const t0 = process.hrtime.bigint();
  sink += incremental.build({ instances: changed, manual: '' }).routes.length;
  changeTimes.push(Number(process.hrtime.bigint() - t0) / 1e6);
}
const sortedChanges = [...changeTimes].sort((a, b) => a - b);
const changeP99 = sortedChanges[Math.min(changes - 1, Math.ceil(0.99 * changes) - 1)] ?? Number.NaN;

const routes = held.routes.length;
let targets = 0;
for (const r of held.routes) targets += r.targets.length;
const tcpRoutes = held.routes.filter((r) => r.proto === 'tcp').length;
const med = median(times);

const mark = (ok: boolean, target: string) => (ok ? `ok (< ${target})` : `${belowTarget} (< ${target})`);
console.log('## Table build\n');
console.log(
  `${snapshot.instances.length.toLocaleString('en-US')} instances of ${services.toLocaleString('en-US')} services -> ` +
    `${routes.toLocaleString('en-US')} routes (${tcpRoutes} tcp), ${targets.toLocaleString('en-US')} targets, ` +
    `${held.problems.length} problems\n`,
);
console.log(
  markdownTable(
    ['figure', 'value', 'target'],
    [
      ['build, first (cold) ms', fixed(cold.ms, 1), ''],
      [`build, median of ${runs} ms`, fixed(med, 1), mark(med < targetBuildMs, `${targetBuildMs} ms`)],
      ['build, min ms', fixed(Math.min(...times), 1), ''],
      ['build, max ms', fixed(Math.max(...times), 1), ''],
      ['table heap MB', fixed(heapMb, 1), mark(heapMb < targetHeapMb, `${targetHeapMb} MB`)],
      ['table heap bytes per target', fixed((heapAfter - heapBefore) / targets, 0), ''],
      [`incremental build after one change, median of ${changes} ms`, fixed(median(changeTimes), 1), ''],
      ['incremental build after one change, p99 ms', fixed(changeP99, 1), ''],
    ],
  ),
);
for (const p of held.problems.slice(0, 5)) console.log(`problem: ${p.reason} (${p.input})`);
console.log(`\nnode ${process.version}; version ${held.version}; (sink ${sink > 0 ? 'ok' : '0'})`);
