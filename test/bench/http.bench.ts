// HTTP proxy benchmark, the method of /work/shared/BENCH.md (see test/bench/README.md):
//   node test/bench/http.bench.ts [--quick] [--sizes 100,2048,65536] [--duration S] [--reps N]
//     [--compare-undici] [--compare-workers] [--cairn-node-options '--max-semi-space-size=32']
//     [--compare-node-args '--single-threaded-gc;--max-semi-space-size=16'] [--core]
//
// --compare-undici adds `cairn --upstream-engine undici` (the previous upstream client) to the
// turns; --compare-workers adds `cairn --workers 2` with all its processes on the proxy CPU; --cairn-node-options sets NODE_OPTIONS for every Cairn process (V8 experiments only: the
// headline figures are the shipped CLI's defaults). --compare-node-args adds one `cairn` row per
// `;`-separated entry, that entry's space-separated Node/V8 flags on its command line (V8 flag
// experiments side by side, in one run; most V8 flags are refused in NODE_OPTIONS). --core runs only nginx and the `cairn` rows (no HAProxy, JSON log or metrics-off
// rows): quicker experiments, not the published table.
//
// One nginx backend on CPU 0; nginx, HAProxy, Cairn and Cairn with a JSON access log as proxies
// on CPU 1 (each the whole process tree, via taskset); wrk on CPU 0. For every body size the
// proxies take turns (A B C D A B C D ...), each turn a discarded 2 s warm-up then the measured
// run, with the proxy's process-tree CPU time read from /proc before and after. The figure that
// holds on a shared 2-core machine is requests per proxy CPU-second, as a ratio to nginx.
//
// Progress goes to stderr, the report (markdown) to stdout. Exits non-zero only when the bench
// itself fails (a server does not start, wrk fails); non-2xx responses or socket errors are
// reported with a marker, not as a crash.

import { spawnSync } from 'node:child_process';
import {
  accessSync,
  chmodSync,
  constants,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { availableParallelism, cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fabioBinary, fabioSkipped, startFabio } from './lib/fabio-config.ts';
import { haproxyConfig } from './lib/haproxy-config.ts';
import { bodyPath, proxyNginxConfig, spawnBackendNginx } from './lib/nginx-config.ts';
import { processTreeCpuSeconds } from './lib/proc-cpu.ts';
import {
  freePort,
  hasExited,
  httpGet,
  killAll,
  killAllOnExit,
  type Pinned,
  spawnPinned,
  waitForHttp,
} from './lib/processes.ts';
import { belowTarget, fixed, flagValue, int, markdownTable, median, ms } from './lib/report.ts';
import { shippedCairn } from './lib/shipped.ts';
import { runWrk, type WrkResult } from './lib/wrk.ts';

const argv = process.argv.slice(2);
const quick = argv.includes('--quick');
const sizes = (flagValue(argv, 'sizes') ?? '100,2048,65536').split(',').map((s) => Number(s.trim()));
const seconds = Number(flagValue(argv, 'duration') ?? (quick ? 3 : 10));
// Three turns by default, so that each median is a real one: Cairn's first measured run is also its
// first traffic since start, run while V8 still compiles its hot paths on the same CPU.
const reps = Number(flagValue(argv, 'reps') ?? (quick ? 1 : 3));
const compareUndici = argv.includes('--compare-undici');
const compareWorkers = argv.includes('--compare-workers');
const cairnNodeOptions = flagValue(argv, 'cairn-node-options');
const compareNodeArgs = (flagValue(argv, 'compare-node-args') ?? '')
  .split(';')
  .map((o) => o.trim())
  .filter((o) => o !== '');
const core = argv.includes('--core');
const warmupSeconds = 2;
const connections = 64;

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const binaries = {
  nginx: '/usr/sbin/nginx',
  haproxy: '/usr/sbin/haproxy',
  wrk: '/usr/bin/wrk',
  taskset: '/usr/bin/taskset',
};

function usageError(message: string): never {
  process.stderr.write(`http.bench: ${message}\n`);
  process.exit(2);
}

if (sizes.length === 0 || sizes.some((s) => !Number.isInteger(s) || s < 1 || s > 16 * 1024 * 1024)) {
  usageError('--sizes expects a comma-separated list of body sizes in bytes, e.g. 100,2048,65536');
}
if (!Number.isFinite(seconds) || seconds < 1) usageError('--duration expects seconds >= 1');
if (!Number.isInteger(reps) || reps < 1) usageError('--reps expects an integer >= 1');

const log = (line: string) => process.stderr.write(`http.bench: ${line}\n`);

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function ensureServers(): void {
  const missing = Object.values(binaries).filter((b) => !executable(b));
  if (missing.length === 0) return;
  log(`missing ${missing.join(', ')}; running test/support/ensure-servers.sh`);
  spawnSync('bash', [join(repoRoot, 'test/support/ensure-servers.sh')], {
    stdio: 'inherit',
    env: { ...process.env, CAIRN_SKIP_BROWSER: '1' },
  });
  const still = Object.values(binaries).filter((b) => !executable(b));
  if (still.length > 0)
    throw new Error(`still missing ${still.join(', ')} (see test/support/ensure-servers.sh)`);
}

function versionOf(command: string, args: readonly string[]): string {
  const r = spawnSync(command, args, { encoding: 'utf8' });
  return `${r.stdout ?? ''}${r.stderr ?? ''}`.split('\n')[0]?.trim() ?? '?';
}

interface Proxy {
  readonly name: string;
  readonly port: number;
  readonly server: Pinned;
  readonly stderrFile: string;
  readonly cairn: boolean;
}

interface Run {
  readonly size: number;
  readonly rep: number;
  readonly proxy: string;
  readonly wrk: WrkResult;
  readonly cpuSeconds: number;
  readonly alive: boolean;
}

async function main(): Promise<number> {
  ensureServers();
  killAllOnExit();
  const twoCores = availableParallelism() >= 2;
  const loadCpu = '0';
  const proxyCpu = twoCores ? '1' : '0';
  if (!twoCores)
    log(
      'only one CPU available: proxies share CPU 0 with wrk and the backend; ratios are not comparable to BENCH.md',
    );

  const dir = mkdtempSync(join(tmpdir(), 'cairn-http-bench-'));
  // nginx's workers run as `nobody` when started by root and must read the body files.
  chmodSync(dir, 0o755);
  // Also on Ctrl-C, whose handler exits without reaching the `finally` below.
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  const runs: Run[] = [];
  const loadStart = loadavg();
  const started = new Date();
  try {
    const [
      backendPort,
      nginxPort,
      haproxyPort,
      cairnPort,
      cairnAdmin,
      cairnLogPort,
      cairnLogAdmin,
      cairnNoMetricsPort,
      cairnNoMetricsAdmin,
      cairnUndiciPort,
      cairnUndiciAdmin,
    ] = (await Promise.all(Array.from({ length: 11 }, () => freePort()))) as [
      number,
      number,
      number,
      number,
      number,
      number,
      number,
      number,
      number,
      number,
      number,
    ];

    // Backend: nginx on CPU 0.
    const { backend, errorLog } = spawnBackendNginx(dir, loadCpu, binaries.nginx, backendPort, sizes);
    const firstPath = bodyPath(sizes[0] as number);
    await ready(backend, `http://127.0.0.1:${backendPort}${firstPath}`, errorLog);

    const proxies: Proxy[] = [
      startNginxProxy(dir, nginxPort, backendPort, proxyCpu),
      ...(core ? [] : [startHaproxy(dir, haproxyPort, backendPort, proxyCpu)]),
      startCairn(dir, 'cairn', cairnPort, cairnAdmin, backendPort, proxyCpu, []),
    ];
    if (!core) {
      proxies.push(
        startCairn(dir, 'cairn --access-log json', cairnLogPort, cairnLogAdmin, backendPort, proxyCpu, [
          '--access-log',
          'json',
        ]),
        // The cost of per-request metrics and live UI stats: `cairn` above records them (the default).
        startCairn(dir, noMetrics, cairnNoMetricsPort, cairnNoMetricsAdmin, backendPort, proxyCpu, [
          '--metrics=false',
        ]),
      );
    }
    for (const nodeArgs of compareNodeArgs) {
      const [port, admin] = [await freePort(), await freePort()];
      const args = nodeArgs.split(' ').filter((a) => a !== '');
      proxies.push(startCairn(dir, `cairn ${nodeArgs}`, port, admin, backendPort, proxyCpu, [], 1, args));
    }
    if (compareUndici) {
      proxies.push(
        startCairn(
          dir,
          'cairn --upstream-engine undici',
          cairnUndiciPort,
          cairnUndiciAdmin,
          backendPort,
          proxyCpu,
          ['--upstream-engine', 'undici'],
        ),
      );
    }
    if (compareWorkers) {
      // The shipped multi-process mode (control + 2 workers with the workers' Node flags), all
      // on the proxy CPU: what the process split and IPC cost per CPU-second against `cairn`.
      const [port, admin] = [await freePort(), await freePort()];
      proxies.push(startCairn(dir, 'cairn --workers 2 (one CPU)', port, admin, backendPort, proxyCpu, [], 2));
    }
    // fabio side by side when FABIO_BIN names a binary (issue 9); never downloaded.
    const fabio = fabioBinary();
    if (fabio !== undefined) proxies.push(await startFabio(fabio, dir, backendPort, proxyCpu));
    else console.log(fabioSkipped);
    for (const p of proxies) await ready(p.server, `http://127.0.0.1:${p.port}${firstPath}`, p.stderrFile);

    // Every proxy must return the right body for every size before anything is measured.
    const problems: string[] = [];
    for (const p of proxies) {
      for (const size of sizes) {
        const r = await httpGet(`http://127.0.0.1:${p.port}${bodyPath(size)}`);
        if (typeof r === 'string') problems.push(`${p.name} ${bodyPath(size)}: ${r}`);
        else if (r.status !== 200 || r.bodyLength !== size) {
          problems.push(
            `${p.name} ${bodyPath(size)}: status ${r.status}, ${r.bodyLength} bytes (expected 200, ${size})`,
          );
        }
      }
    }
    for (const line of problems) log(`check failed: ${line}`);

    const total = sizes.length * reps * proxies.length;
    let n = 0;
    for (const size of sizes) {
      for (let rep = 1; rep <= reps; rep++) {
        for (const p of proxies) {
          n++;
          const url = `http://127.0.0.1:${p.port}${bodyPath(size)}`;
          log(
            `[${n}/${total}] ${size} B, ${p.name}, run ${rep}: warm-up ${warmupSeconds} s, then ${seconds} s`,
          );
          await runWrk({ url, seconds: warmupSeconds, connections, threads: 1, cpu: loadCpu });
          const cpu0 = processTreeCpuSeconds(p.server.pid);
          const wrk = await runWrk({ url, seconds, connections, threads: 1, cpu: loadCpu });
          const cpu1 = processTreeCpuSeconds(p.server.pid);
          const alive = !hasExited(p.server.child);
          runs.push({ size, rep, proxy: p.name, wrk, cpuSeconds: cpu1 - cpu0, alive });
          log(
            `    ${int(wrk.requestsPerSec)} req/s, ${int(wrk.requests / (cpu1 - cpu0))} req/CPU-s, p99 ${ms(wrk.p99Ms)} ms` +
              (wrk.non2xx > 0 ? `, ${wrk.non2xx} non-2xx` : '') +
              (wrk.socketErrors > 0 ? `, ${wrk.socketErrorsText}` : '') +
              (alive ? '' : ', PROXY EXITED'),
          );
        }
      }
    }

    const header = [
      `## HTTP proxy (wrk -t1 -c${connections} -d${seconds}s --latency, ${warmupSeconds} s warm-up discarded, ${reps} run${reps > 1 ? 's' : ''} per configuration, interleaved)`,
      '',
      `${started.toISOString()}; node ${process.version}; ${versionOf(binaries.nginx, ['-v'])}; ${versionOf(binaries.haproxy, ['-v'])}; ${versionOf(binaries.wrk, ['-v'])}`,
      `${cpus()[0]?.model ?? '?'} x ${cpus().length}; backend + wrk on CPU ${loadCpu}, proxy on CPU ${proxyCpu}; load average before ${loadStart.map((l) => l.toFixed(2)).join(' ')}, after ${loadavg()
        .map((l) => l.toFixed(2))
        .join(' ')}`,
    ];
    console.log(header.join('\n'));
    if (problems.length > 0)
      console.log(`\nPre-run checks failed: ${belowTarget}\n${problems.map((l) => `- ${l}`).join('\n')}`);
    for (const size of sizes)
      console.log(
        `\n${summaryTable(
          size,
          runs.filter((r) => r.size === size),
          proxies,
        )}${core ? '' : `\n\n${metricsCost(runs.filter((r) => r.size === size))}`}`,
      );
    console.log(`\n### All runs (in the order they ran)\n\n${runsTable(runs)}`);
    console.log(`\n${cairnStderrReport(proxies, runs)}`);
    return 0;
  } finally {
    await killAll();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function ready(p: Pinned, url: string, logFile: string): Promise<void> {
  const reason = await waitForHttp(p, url, 200);
  if (reason === undefined) return;
  throw new Error(`${reason}\n--- ${logFile} (tail) ---\n${tail(logFile, 40)}`);
}

function tail(file: string, lines: number): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

function startNginxProxy(dir: string, port: number, backendPort: number, cpu: string): Proxy {
  const prefix = join(dir, 'nginx-proxy');
  mkdirSync(prefix, { recursive: true });
  chmodSync(prefix, 0o755);
  writeFileSync(join(prefix, 'nginx.conf'), proxyNginxConfig(prefix, port, backendPort));
  const stderrFile = join(prefix, 'error.log');
  const server = spawnPinned(
    'nginx',
    cpu,
    binaries.nginx,
    ['-p', prefix, '-c', join(prefix, 'nginx.conf'), '-e', stderrFile],
    {
      stdout: 'ignore',
      stderr: openSync(join(prefix, 'stderr.log'), 'w'),
    },
  );
  return { name: 'nginx', port, server, stderrFile, cairn: false };
}

function startHaproxy(dir: string, port: number, backendPort: number, cpu: string): Proxy {
  const prefix = join(dir, 'haproxy');
  mkdirSync(prefix, { recursive: true });
  writeFileSync(join(prefix, 'haproxy.cfg'), haproxyConfig(port, backendPort));
  const stderrFile = join(prefix, 'stderr.log');
  const server = spawnPinned('haproxy', cpu, binaries.haproxy, ['-db', '-f', join(prefix, 'haproxy.cfg')], {
    stdout: 'ignore',
    stderr: openSync(stderrFile, 'w'),
    cwd: prefix,
  });
  return { name: 'haproxy', port, server, stderrFile, cairn: false };
}

function startCairn(
  dir: string,
  name: string,
  port: number,
  adminPort: number,
  backendPort: number,
  cpu: string,
  extra: readonly string[],
  workers = 1,
  nodeArgs: readonly string[] = [],
): Proxy {
  const prefix = join(dir, `cairn-${port}`);
  mkdirSync(prefix, { recursive: true });
  const routes = join(prefix, 'routes.yaml');
  writeFileSync(
    routes,
    [
      'services:',
      '  - name: backend',
      '    instances:',
      `      - { id: backend-1, address: 127.0.0.1, port: ${backendPort}, tags: ["urlprefix-/"] }`,
      '',
    ].join('\n'),
  );
  const stderrFile = join(prefix, 'stderr.log');
  const args = [
    ...nodeArgs,
    shippedCairn(repoRoot),
    '--listen',
    `127.0.0.1:${port}`,
    '--admin',
    `127.0.0.1:${adminPort}`,
    '--registry',
    `file:${routes}`,
    // One process: the figures are per proxy process (the default is one worker per CPU).
    '--workers',
    String(workers),
    ...extra,
  ];
  // The access log (stdout) goes to /dev/null: the figure is the cost of producing it.
  const server = spawnPinned(name, cpu, process.execPath, args, {
    stdout: openSync('/dev/null', 'w'),
    stderr: openSync(stderrFile, 'w'),
    cwd: repoRoot,
    ...(cairnNodeOptions !== undefined ? { env: { ...process.env, NODE_OPTIONS: cairnNodeOptions } } : {}),
  });
  return { name, port, server, stderrFile, cairn: true };
}

const noMetrics = 'cairn --metrics=false';

/** Throughput per proxy CPU-second with metrics on (`cairn`) over off; the target is >= 0.95. */
function metricsCost(runs: readonly Run[]): string {
  const perCpu = (name: string) =>
    median(runs.filter((r) => r.proxy === name).map((r) => r.wrk.requests / r.cpuSeconds));
  const ratio = perCpu('cairn') / perCpu(noMetrics);
  const note = ratio >= 0.95 ? '' : ` ${belowTarget} (target >= 0.95)`;
  return `Metrics cost: req/CPU-s with metrics on / off = ${fixed(ratio, 3)}${note}`;
}

function summaryTable(size: number, runs: readonly Run[], proxies: readonly Proxy[]): string {
  const perCpu = (r: Run) => r.wrk.requests / r.cpuSeconds;
  const byProxy = proxies.map((p) => ({ p, rs: runs.filter((r) => r.proxy === p.name) }));
  const nginxRuns = byProxy.find((b) => b.p.name === 'nginx')?.rs ?? [];
  const nginxPerCpu = median(nginxRuns.map(perCpu));
  const rows = byProxy.map(({ p, rs }) => {
    const mPerCpu = median(rs.map(perCpu));
    const non2xx = rs.reduce((a, r) => a + r.wrk.non2xx, 0);
    const errors = rs.reduce((a, r) => a + r.wrk.socketErrors, 0);
    const notes: string[] = [];
    if (non2xx > 0) notes.push(`${belowTarget}: non-2xx`);
    if (errors > 0) notes.push(`${belowTarget}: socket errors`);
    if (rs.some((r) => !r.alive)) notes.push(`${belowTarget}: proxy exited`);
    return [
      p.name,
      int(median(rs.map((r) => r.wrk.requestsPerSec))),
      int(mPerCpu),
      fixed(mPerCpu / nginxPerCpu, 2),
      fixed(Math.max(...rs.map(perCpu)) / nginxPerCpu, 2),
      fixed((100 * median(rs.map((r) => r.cpuSeconds))) / seconds, 0),
      ms(median(rs.map((r) => r.wrk.p50Ms))),
      ms(median(rs.map((r) => r.wrk.p99Ms))),
      ms(median(rs.map((r) => r.wrk.p999Ms))),
      int(non2xx),
      int(errors),
      notes.join('; '),
    ];
  });
  return [
    `### ${size.toLocaleString('en-US')}-byte responses (medians over runs)`,
    '',
    markdownTable(
      [
        'proxy',
        'req/s',
        'req/CPU-s',
        'ratio to nginx',
        'best ratio',
        'proxy CPU %',
        'p50 ms',
        'p99 ms',
        'p99.9 ms',
        'non-2xx',
        'socket errors',
        'notes',
      ],
      rows,
    ),
  ].join('\n');
}

function runsTable(runs: readonly Run[]): string {
  return markdownTable(
    [
      'size',
      'run',
      'proxy',
      'requests',
      'req/s',
      'proxy CPU-s',
      'req/CPU-s',
      'p50 ms',
      'p99 ms',
      'p99.9 ms',
      'non-2xx',
      'socket errors',
    ],
    runs.map((r) => [
      String(r.size),
      String(r.rep),
      r.proxy,
      int(r.wrk.requests),
      int(r.wrk.requestsPerSec),
      fixed(r.cpuSeconds, 2),
      int(r.wrk.requests / r.cpuSeconds),
      ms(r.wrk.p50Ms),
      ms(r.wrk.p99Ms),
      ms(r.wrk.p999Ms),
      int(r.wrk.non2xx),
      r.wrk.socketErrors > 0 ? r.wrk.socketErrorsText : '0',
    ]),
  );
}

/** Cairn's own log lines at warn or above, and the whole tail when its runs went wrong. */
function cairnStderrReport(proxies: readonly Proxy[], runs: readonly Run[]): string {
  const out: string[] = ['### Cairn stderr'];
  for (const p of proxies.filter((x) => x.cairn)) {
    let text = '';
    try {
      text = readFileSync(p.stderrFile, 'utf8');
    } catch {
      /* no file */
    }
    const lines = text.split('\n').filter((l) => l.trim() !== '');
    const serious = lines.filter((l) => {
      const m = /"level":(\d+)/.exec(l);
      return m === null || Number(m[1]) >= 40;
    });
    const bad = runs.some(
      (r) => r.proxy === p.name && (r.wrk.non2xx > 0 || r.wrk.socketErrors > 0 || !r.alive),
    );
    out.push('', `${p.name}: ${lines.length} lines, ${serious.length} at warn or above (or not JSON)`);
    const show = bad ? lines.slice(-40) : serious.slice(-20);
    if (show.length > 0) out.push('```', ...show, '```');
  }
  return out.join('\n');
}

main().then(
  (code) => process.exit(code),
  async (err: unknown) => {
    process.stderr.write(
      `http.bench: FAILED: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
    );
    await killAll(500);
    process.exit(1);
  },
);
