// Memory under load (issue 9): Cairn with a large file-registry table under the HTTP load of
// /work/shared/BENCH.md, its resident set size sampled every second.
//
//   node test/bench/memory.bench.ts [--quick] [--duration S] [--minutes M] [--routes N] [--workers N]
//     [--cairn-node-args '--max-semi-space-size=16']   (Node/V8 flags on Cairn's command line;
//     its workers inherit them, in place of their own tuning flag of the same name)
//
// One nginx backend (100-byte responses) and wrk (-t1 -c64, a Lua script that spreads the
// requests over all routes by Host header) on CPU 0; Cairn (the shipped dist/ build) on CPU 1
// with `--routes` services (default 10,000), each one instance of the backend tagged `urlprefix-svc-<i>.bench/`, so the
// table holds that many routes and targets. After the table is live and a discarded 2 s warm-up,
// the load runs for `--duration` seconds (default 60; `--quick` 20) or `--minutes` minutes (a
// soak; the report then also has one row per minute). Every process of Cairn's tree is sampled
// (VmRSS from /proc/<pid>/status); the report gives per process the RSS before the load, the
// maximum and the value at the end (bar: under 150 MB per worker; the control of `--workers N`
// is reported, not held to it), the maximum of its own memory
// (RssAnon: VmRSS less the file pages, mostly Node's binary, shared by the tree), and the RSS
// slope over the run (least squares, MB per minute) over the whole run and over its second half
// (where a leak shows once caches and the heap have settled).
//
// Progress goes to stderr, the report (markdown) to stdout.

import { request } from 'node:http';
import { chmodSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bodyPath, spawnBackendNginx } from './lib/nginx-config.ts';
import { processTree } from './lib/proc-cpu.ts';
import {
  freePort,
  hasExited,
  killAll,
  killAllOnExit,
  type Pinned,
  sleep,
  spawnPinned,
  waitForHttp,
} from './lib/processes.ts';
import { belowTarget, fixed, flagValue, int, markdownTable, ms } from './lib/report.ts';
import { shippedCairn } from './lib/shipped.ts';
import { runWrk, type WrkResult } from './lib/wrk.ts';

const argv = process.argv.slice(2);
const quick = argv.includes('--quick');
const minutesFlag = flagValue(argv, 'minutes');
const minutes = minutesFlag === undefined ? undefined : Number(minutesFlag);
const seconds =
  minutes !== undefined ? Math.round(minutes * 60) : Number(flagValue(argv, 'duration') ?? (quick ? 20 : 60));
const routeCount = Number(flagValue(argv, 'routes') ?? 10_000);
/**
 * Cairn's `--workers`. Default 2: what `--workers auto` gives on the 2-core machines the bar is
 * set for, which the bench's pinning to one CPU would otherwise turn into a single process.
 */
const workersFlag = flagValue(argv, 'workers') ?? '2';
const cairnNodeArgs = (flagValue(argv, 'cairn-node-args') ?? '').split(' ').filter((a) => a !== '');
const warmupSeconds = 2;
const connections = 64;
const size = 100;
const sampleMs = 1000;
/** Bar (issue 9): resident set per worker process under this load. */
const maxRssMb = 150;
/** Second-half slope above this is reported as growth (GC sawtooth stays well below it). */
const growthMbPerMin = 1;

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const binaries = { nginx: '/usr/sbin/nginx', wrk: '/usr/bin/wrk' };
const log = (line: string) => process.stderr.write(`memory.bench: ${line}\n`);

function usageError(message: string): never {
  process.stderr.write(`memory.bench: ${message}\n`);
  process.exit(2);
}
if (minutes !== undefined && (!Number.isFinite(minutes) || minutes <= 0))
  usageError('--minutes expects a positive number');
if (!Number.isFinite(seconds) || seconds < 5) usageError('--duration expects seconds >= 5');
if (!Number.isInteger(routeCount) || routeCount < 1) usageError('--routes expects an integer >= 1');
if (!/^(\d+|auto)$/.test(workersFlag)) usageError('--workers expects a number or auto');

interface Sample {
  /** Seconds since the measured run started (negative: before the load). */
  readonly t: number;
  readonly pid: number;
  readonly rssMb: number;
  /**
   * RssAnon: the process's own memory (heap, stacks, buffers). The rest of VmRSS is mostly file
   * pages (about 55 MB of Node's own binary) that every process of the tree shares.
   */
  readonly anonMb: number;
}

/** VmRSS and RssAnon of `pid` in MB, or undefined when it is gone. */
function rssMb(pid: number): { rssMb: number; anonMb: number } | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const rss = /^VmRSS:\s+(\d+) kB/m.exec(status);
    const anon = /^RssAnon:\s+(\d+) kB/m.exec(status);
    if (rss === null) return undefined;
    return { rssMb: Number(rss[1]) / 1024, anonMb: anon === null ? Number.NaN : Number(anon[1]) / 1024 };
  } catch {
    return undefined;
  }
}

/** Samples the RSS of every process of `rootPid`'s tree every `sampleMs` until stopped. */
class RssSampler {
  private readonly raw: { at: number; pid: number; rssMb: number; anonMb: number }[] = [];
  private timer: NodeJS.Timeout | undefined;
  private readonly rootPid: number;
  private zero = performance.now();

  constructor(rootPid: number) {
    this.rootPid = rootPid;
  }

  /** Sample times are seconds relative to this moment. */
  markZero(): void {
    this.zero = performance.now();
  }

  sampleNow(): void {
    const at = performance.now();
    for (const pid of processTree(this.rootPid)) {
      const r = rssMb(pid);
      if (r !== undefined) this.raw.push({ at, pid, ...r });
    }
  }

  /** Every sample, its time in seconds relative to the last markZero(). */
  get samples(): Sample[] {
    return this.raw.map((s) => ({
      t: (s.at - this.zero) / 1000,
      pid: s.pid,
      rssMb: s.rssMb,
      anonMb: s.anonMb,
    }));
  }

  start(): void {
    this.sampleNow();
    this.timer = setInterval(() => this.sampleNow(), sampleMs);
  }

  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.sampleNow();
  }
}

/** Least-squares slope of rss over t, in MB per minute (NaN with fewer than 2 samples). */
export function slopeMbPerMin(samples: readonly Sample[]): number {
  const n = samples.length;
  if (n < 2) return Number.NaN;
  let st = 0;
  let sr = 0;
  for (const s of samples) {
    st += s.t;
    sr += s.rssMb;
  }
  const mt = st / n;
  const mr = sr / n;
  let num = 0;
  let den = 0;
  for (const s of samples) {
    num += (s.t - mt) * (s.rssMb - mr);
    den += (s.t - mt) * (s.t - mt);
  }
  return den === 0 ? Number.NaN : (num / den) * 60;
}

function routesYaml(backendPort: number, n: number): string {
  const lines = ['services:'];
  for (let i = 0; i < n; i++) {
    lines.push(
      `  - name: svc-${i}`,
      '    instances:',
      `      - { id: svc-${i}-1, address: 127.0.0.1, port: ${backendPort}, tags: ["urlprefix-svc-${i}.bench/"] }`,
    );
  }
  return `${lines.join('\n')}\n`;
}

/** wrk script: every request to a random one of the `n` routes (by Host header). */
function wrkScript(n: number): string {
  return [
    'math.randomseed(os.time())',
    'request = function()',
    `  return wrk.format("GET", "${bodyPath(size)}", { ["Host"] = "svc-" .. math.random(0, ${n - 1}) .. ".bench" })`,
    'end',
    '',
  ].join('\n');
}

/** One GET with a Host header; resolves to the status and body length, or an error message. */
function getWithHost(
  port: number,
  path: string,
  host: string,
): Promise<{ status: number; bytes: number } | string> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path, headers: { host }, timeout: 2000 }, (res) => {
      let bytes = 0;
      res.on('data', (d: Buffer) => (bytes += d.length));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, bytes }));
      res.on('error', (e) => resolve(e.message));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (e) => resolve(e.message));
    req.end();
  });
}

/** Waits until the last route of the table answers (the table is built and live). */
async function tableLive(cairn: Pinned, port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    if (hasExited(cairn.child)) throw new Error('cairn exited before its table was live');
    const r = await getWithHost(port, bodyPath(size), `svc-${routeCount - 1}.bench`);
    if (typeof r !== 'string' && r.status === 200 && r.bytes === size) return;
    last = typeof r === 'string' ? r : `status ${r.status}, ${r.bytes} bytes`;
    await sleep(250);
  }
  throw new Error(`the ${routeCount}-route table was not live after ${timeoutMs} ms (last: ${last})`);
}

async function main(): Promise<number> {
  killAllOnExit();
  const twoCores = availableParallelism() >= 2;
  const loadCpu = '0';
  const proxyCpu = twoCores ? '1' : '0';
  const dir = mkdtempSync(join(tmpdir(), 'cairn-memory-bench-'));
  chmodSync(dir, 0o755);
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  const loadStart = loadavg();
  const started = new Date();
  try {
    const [backendPort, cairnPort, cairnAdmin] = (await Promise.all(
      Array.from({ length: 3 }, () => freePort()),
    )) as [number, number, number];

    const { backend } = spawnBackendNginx(dir, loadCpu, binaries.nginx, backendPort, [size]);
    const backendReady = await waitForHttp(backend, `http://127.0.0.1:${backendPort}${bodyPath(size)}`, 200);
    if (backendReady !== undefined) throw new Error(backendReady);

    const cDir = join(dir, 'cairn');
    mkdirSync(cDir);
    const routes = join(cDir, 'routes.yaml');
    writeFileSync(routes, routesYaml(backendPort, routeCount));
    const script = join(dir, 'hosts.lua');
    writeFileSync(script, wrkScript(routeCount));
    const cErr = join(cDir, 'stderr.log');
    const cairn = spawnPinned(
      'cairn',
      proxyCpu,
      process.execPath,
      [
        ...cairnNodeArgs,
        shippedCairn(repoRoot),
        '--listen',
        `127.0.0.1:${cairnPort}`,
        '--admin',
        `127.0.0.1:${cairnAdmin}`,
        '--registry',
        `file:${routes}`,
        '--workers',
        workersFlag,
      ],
      { stdout: openSync('/dev/null', 'w'), stderr: openSync(cErr, 'w'), cwd: repoRoot },
    );
    log(`cairn with ${int(routeCount)} routes: waiting for the table`);
    const t0 = performance.now();
    await tableLive(cairn, cairnPort, 120_000);
    const tableSeconds = (performance.now() - t0) / 1000;
    log(`table live after ${fixed(tableSeconds, 1)} s`);

    const sampler = new RssSampler(cairn.pid);
    await sleep(1000);
    sampler.sampleNow(); // the idle baseline with the table live (t < 0 once zero is set below)
    const url = `http://127.0.0.1:${cairnPort}${bodyPath(size)}`;
    log(`warm-up ${warmupSeconds} s`);
    await runWrk({ url, seconds: warmupSeconds, connections, threads: 1, cpu: loadCpu, script });
    log(
      `load: wrk -t1 -c${connections} -d${seconds}s over ${int(routeCount)} hosts, RSS every ${sampleMs} ms`,
    );
    sampler.markZero();
    sampler.start();
    const wrk = await runWrk({ url, seconds, connections, threads: 1, cpu: loadCpu, script });
    sampler.stop();
    const alive = !hasExited(cairn.child);

    console.log(
      [
        `## Memory under load (${int(routeCount)} routes, wrk -t1 -c${connections} -d${seconds}s over all routes by Host, ${size}-byte responses)`,
        '',
        `${started.toISOString()}; node ${process.version}; ${cpus()[0]?.model ?? '?'} x ${cpus().length}; backend + wrk on CPU ${loadCpu}, Cairn on CPU ${proxyCpu}; load average before ${loadStart.map((l) => l.toFixed(2)).join(' ')}, after ${loadavg()
          .map((l) => l.toFixed(2))
          .join(' ')}`,
        `Cairn: \`--workers ${workersFlag}\`${cairnNodeArgs.length > 0 ? `, Node flags \`${cairnNodeArgs.join(' ')}\`` : ''}.`,
        `Table of ${int(routeCount)} routes live ${fixed(tableSeconds, 1)} s after start. Load: ${int(wrk.requestsPerSec)} req/s, p50 ${ms(wrk.p50Ms)} ms, p99 ${ms(wrk.p99Ms)} ms, ${int(wrk.non2xx)} non-2xx, ${wrk.socketErrors > 0 ? wrk.socketErrorsText : '0 socket errors'}${alive ? '' : `; ${belowTarget}: CAIRN EXITED`}`,
        '',
        processTable(sampler.samples, cairn.pid),
      ].join('\n'),
    );
    if (minutes !== undefined) console.log(`\n${minuteTable(sampler.samples, cairn.pid)}`);
    console.log(`\n${wrkNote(wrk)}`);
    return 0;
  } finally {
    await killAll();
    rmSync(dir, { recursive: true, force: true });
  }
}

function processTable(samples: readonly Sample[], rootPid: number): string {
  const pids = [...new Set(samples.map((s) => s.pid))];
  const end = Math.max(...samples.map((s) => s.t));
  const rows = pids.map((pid) => {
    const all = samples.filter((s) => s.pid === pid);
    const before = all.filter((s) => s.t < 0);
    const run = all.filter((s) => s.t >= 0);
    const second = run.filter((s) => s.t >= end / 2);
    const max = Math.max(...run.map((s) => s.rssMb));
    const last = run[run.length - 1]?.rssMb ?? Number.NaN;
    const slopeAll = slopeMbPerMin(run);
    const slopeHalf = slopeMbPerMin(second);
    const notes: string[] = [];
    // The bar is per worker (issue 9). The control of `--workers N` proxies nothing: it keeps the
    // table, the registry watch and the UI's per-route live windows; its figure is reported, not
    // held to the workers' bar. A single process (`--workers 1`) is its own worker.
    const control = pid === rootPid && workersFlag !== '1';
    if (max >= maxRssMb && !control) notes.push(`${belowTarget} (${maxRssMb} MB)`);
    if (slopeHalf > growthMbPerMin) notes.push(`growing (> ${growthMbPerMin} MB/min)`);
    return [
      String(pid),
      pid !== rootPid ? 'worker' : control ? 'control' : 'single',
      fixed(before[before.length - 1]?.rssMb ?? Number.NaN, 1),
      fixed(max, 1),
      fixed(last, 1),
      fixed(Math.max(...run.map((s) => s.anonMb)), 1),
      fixed(slopeAll, 2),
      fixed(slopeHalf, 2),
      String(run.length),
      notes.join('; '),
    ];
  });
  return [
    `### RSS per process (bar: max < ${maxRssMb} MB per worker; slope by least squares)`,
    '',
    markdownTable(
      [
        'pid',
        'process',
        'MB before load',
        'MB max',
        'MB at end',
        'MB max, own (RssAnon)',
        'MB/min, whole run',
        'MB/min, 2nd half',
        'samples',
        'notes',
      ],
      rows,
    ),
  ].join('\n');
}

/** Soak: one row per minute and process (RSS at the minute's end, its max, its slope). */
function minuteTable(samples: readonly Sample[], rootPid: number): string {
  const run = samples.filter((s) => s.t >= 0);
  const pids = [...new Set(run.map((s) => s.pid))];
  // The last sample lands a moment after the run's end: it belongs to the last minute.
  const lastMinute = Math.max(1, Math.ceil((Math.max(...run.map((s) => s.t)) - 0.5) / 60));
  const rows: string[][] = [];
  for (let m = 1; m <= lastMinute; m++) {
    for (const pid of pids) {
      const inMinute = run.filter((s) => s.pid === pid && s.t >= (m - 1) * 60 && s.t < m * 60 + 0.5);
      if (inMinute.length === 0) continue;
      rows.push([
        String(m),
        `${pid}${pid !== rootPid ? '' : workersFlag === '1' ? ' (single)' : ' (control)'}`,
        fixed(inMinute[inMinute.length - 1]?.rssMb ?? Number.NaN, 1),
        fixed(Math.max(...inMinute.map((s) => s.rssMb)), 1),
        fixed(slopeMbPerMin(inMinute), 2),
      ]);
    }
  }
  return [
    '### RSS per minute',
    '',
    markdownTable(['minute', 'pid', 'MB at end', 'MB max', 'MB/min within the minute'], rows),
  ].join('\n');
}

function wrkNote(w: WrkResult): string {
  return `wrk: ${int(w.requests)} requests in ${fixed(w.durationS, 1)} s; p50 ${ms(w.p50Ms)} ms, p90 ${ms(w.p90Ms)} ms, p99 ${ms(w.p99Ms)} ms${w.non2xx > 0 ? `; ${belowTarget}: ${w.non2xx} non-2xx` : ''}`;
}

main().then(
  (code) => process.exit(code),
  async (err: unknown) => {
    process.stderr.write(
      `memory.bench: FAILED: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
    );
    await killAll(500);
    process.exit(1);
  },
);
