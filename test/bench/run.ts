// `npm run bench`: every benchmark in sequence, each in its own Node process (so one bench's
// garbage, JIT state or heap does not colour the next), their reports printed as they run.
//
//   npm run bench -- [--quick] [--only table|lookup|balancer|http|tcp|memory|etcd|consul[,...]] [--sizes 100,2048,65536]
//                    [--minutes M]   (memory: a soak of M minutes instead of 60 s)
//                    [--workers N]   (memory: Cairn's --workers; default: Cairn's default, one per CPU)
//
// Exits non-zero when a bench crashes or cannot run; a figure that misses its target is printed
// with a "BELOW TARGET" marker by the bench and does not change the exit code.

import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { flagValue, markdownTable } from './lib/report.ts';

interface Bench {
  readonly name: string;
  readonly file: string;
  readonly nodeArgs: readonly string[];
  readonly args: (o: Options) => string[];
}

interface Options {
  readonly quick: boolean;
  readonly sizes: string | undefined;
  readonly minutes: string | undefined;
  readonly workers: string | undefined;
}

const benches: readonly Bench[] = [
  {
    name: 'table',
    file: 'table-build.bench.ts',
    nodeArgs: ['--expose-gc'],
    args: (o) => (o.quick ? ['--quick'] : []),
  },
  { name: 'lookup', file: 'lookup.bench.ts', nodeArgs: [], args: (o) => (o.quick ? ['--quick'] : []) },
  // balancer.bench.ts takes the number of picks per measurement as its argument.
  { name: 'balancer', file: 'balancer.bench.ts', nodeArgs: [], args: (o) => (o.quick ? ['200000'] : []) },
  {
    name: 'http',
    file: 'http.bench.ts',
    nodeArgs: [],
    args: (o) => [...(o.quick ? ['--quick'] : []), ...(o.sizes !== undefined ? ['--sizes', o.sizes] : [])],
  },
  { name: 'tcp', file: 'tcp.bench.ts', nodeArgs: [], args: (o) => (o.quick ? ['--quick'] : []) },
  {
    name: 'memory',
    file: 'memory.bench.ts',
    nodeArgs: [],
    args: (o) => [
      ...(o.quick ? ['--quick'] : []),
      ...(o.minutes !== undefined ? ['--minutes', o.minutes] : []),
      ...(o.workers !== undefined ? ['--workers', o.workers] : []),
    ],
  },
  { name: 'etcd', file: 'etcd.bench.ts', nodeArgs: [], args: (o) => (o.quick ? ['--quick'] : []) },
  { name: 'consul', file: 'consul.bench.ts', nodeArgs: [], args: (o) => (o.quick ? ['--quick'] : []) },
];

const argv = process.argv.slice(2);
const options: Options = {
  quick: argv.includes('--quick'),
  sizes: flagValue(argv, 'sizes'),
  minutes: flagValue(argv, 'minutes'),
  workers: flagValue(argv, 'workers'),
};
const only = flagValue(argv, 'only');
const names = benches.map((b) => b.name);
const selected = only === undefined ? names : only.split(',').map((s) => s.trim());
const unknown = selected.filter((s) => !names.includes(s));
if (unknown.length > 0 || selected.length === 0) {
  process.stderr.write(
    `bench: --only expects one or more of ${names.join('|')} (comma-separated), got ${only}\n`,
  );
  process.exit(2);
}

const here = fileURLToPath(new URL('./', import.meta.url));
let current: ReturnType<typeof spawn> | undefined;
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  // Let the running bench clean up its servers (it handles the signal), then stop.
  process.on(sig, () => {
    current?.kill(sig);
    process.exitCode = 130;
  });
}

function runOne(b: Bench): Promise<{ code: number | null; signal: NodeJS.Signals | null; seconds: number }> {
  const started = process.hrtime.bigint();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [...b.nodeArgs, `${here}${b.file}`, ...b.args(options)], {
      stdio: 'inherit',
    });
    current = child;
    const done = (code: number | null, signal: NodeJS.Signals | null) => {
      current = undefined;
      resolve({ code, signal, seconds: Number(process.hrtime.bigint() - started) / 1e9 });
    };
    child.once('error', (e) => {
      process.stderr.write(`bench: cannot start ${b.file}: ${e.message}\n`);
      done(1, null);
    });
    child.once('exit', done);
  });
}

const results: string[][] = [];
let failed = false;
for (const b of benches) {
  if (!selected.includes(b.name)) continue;
  console.log(`\n# bench: ${b.name} (${b.file})\n`);
  const r = await runOne(b);
  const ok = r.code === 0 && r.signal === null;
  if (!ok) failed = true;
  results.push([b.name, ok ? 'ok' : `CRASHED (${r.signal ?? `exit ${r.code}`})`, r.seconds.toFixed(1)]);
  if (process.exitCode === 130) break;
}

console.log(`\n# bench summary${options.quick ? ' (--quick)' : ''}\n`);
console.log(markdownTable(['bench', 'result', 'seconds'], results));
if (failed && process.exitCode !== 130) process.exitCode = 1;
