// TCP proxy benchmark (issue 4), the method of /work/shared/BENCH.md:
//   node test/bench/tcp.bench.ts [--quick] [--duration S] [--reps N] [--loads exchanges,connections]
//
// One nginx backend (100-byte responses) on CPU 0; HAProxy in `mode tcp`, a bare Node `net` pipe
// and Cairn (`--listen ...;proto=tcp`, one `urlprefix-:P proto=tcp` route) as proxies on CPU 1,
// each its whole process tree; wrk on CPU 0. Two loads, each proxy in turn (A B C A B C ...), a
// discarded 2 s warm-up before every measured run:
//   exchanges    wrk -c64 keep-alive: short request/response exchanges relayed over long-lived
//                proxied connections. Figure: exchanges per proxy CPU-second. Bar: Cairn >= 0.65x
//                HAProxy.
//   connections  wrk -c64 with `Connection: close`: every exchange is a new client connection
//                and a new upstream connection (connect, one exchange, close). Figure: new
//                connections per proxy CPU-second (and per second). Bar: Cairn >= 0.5x HAProxy.
//
// Progress goes to stderr, the report (markdown) to stdout.

import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bodyPath, spawnBackendNginx } from './lib/nginx-config.ts';
import { processTreeCpuSeconds } from './lib/proc-cpu.ts';
import {
  freePort,
  hasExited,
  httpGet,
  killAll,
  killAllOnExit,
  type Pinned,
  spawnPinned,
  track,
  untrack,
  waitForHttp,
} from './lib/processes.ts';
import { belowTarget, fixed, flagValue, int, markdownTable, median, ms } from './lib/report.ts';
import { shippedCairn } from './lib/shipped.ts';
import { parseWrkOutput, type WrkResult } from './lib/wrk.ts';

const argv = process.argv.slice(2);
const quick = argv.includes('--quick');
const seconds = Number(flagValue(argv, 'duration') ?? (quick ? 3 : 10));
const reps = Number(flagValue(argv, 'reps') ?? (quick ? 1 : 2));
const warmupSeconds = 2;
const connections = 64;
const size = 100;
const bars = { exchanges: 0.65, connections: 0.5 };

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const binaries = { nginx: '/usr/sbin/nginx', haproxy: '/usr/sbin/haproxy', wrk: '/usr/bin/wrk' };
const log = (line: string) => process.stderr.write(`tcp.bench: ${line}\n`);

if (!Number.isFinite(seconds) || seconds < 1) {
  process.stderr.write('tcp.bench: --duration expects seconds >= 1\n');
  process.exit(2);
}
if (!Number.isInteger(reps) || reps < 1) {
  process.stderr.write('tcp.bench: --reps expects an integer >= 1\n');
  process.exit(2);
}

type Load = 'exchanges' | 'connections';
const allLoads: readonly Load[] = ['exchanges', 'connections'];
const loads = (flagValue(argv, 'loads') ?? allLoads.join(','))
  .split(',')
  .map((l) => l.trim())
  .filter((l): l is Load => (allLoads as readonly string[]).includes(l));
if (loads.length === 0) {
  process.stderr.write('tcp.bench: --loads expects exchanges and/or connections\n');
  process.exit(2);
}

interface Proxy {
  readonly name: string;
  readonly port: number;
  readonly server: Pinned;
  readonly stderrFile: string;
}

interface Run {
  readonly load: Load;
  readonly rep: number;
  readonly proxy: string;
  readonly wrk: WrkResult;
  readonly cpuSeconds: number;
  readonly alive: boolean;
}

function ensureServers(): void {
  const missing = Object.values(binaries).filter((b) => spawnSync('test', ['-x', b]).status !== 0);
  if (missing.length === 0) return;
  log(`missing ${missing.join(', ')}; running test/support/ensure-servers.sh`);
  spawnSync('bash', [join(repoRoot, 'test/support/ensure-servers.sh')], {
    stdio: 'inherit',
    env: { ...process.env, CAIRN_SKIP_BROWSER: '1' },
  });
}

function haproxyTcpConfig(port: number, backendPort: number): string {
  return `global
  nbthread 1
  maxconn 8000

defaults
  mode tcp
  timeout connect 5s
  timeout client 60s
  timeout server 60s

frontend fe
  bind 127.0.0.1:${port}
  default_backend be

backend be
  server backend 127.0.0.1:${backendPort}
`;
}

/** The reference floor: Node's own `net` + `pipe()`, nothing else. */
const nodePipeScript = `import net from 'node:net';
const [port, backend] = process.argv.slice(2).map(Number);
net.createServer({ noDelay: true }, (c) => {
  const u = net.connect({ port: backend, host: '127.0.0.1', noDelay: true });
  const close = () => { c.destroy(); u.destroy(); };
  c.on('error', close); u.on('error', close); c.on('close', close); u.on('close', close);
  c.pipe(u); u.pipe(c);
}).listen(port, '127.0.0.1');
`;

/** wrk pinned to `cpu`; `close` adds `Connection: close` (a new connection per exchange). */
function wrk(url: string, secs: number, close: boolean, cpu: string): Promise<WrkResult> {
  const args = ['-c', cpu, binaries.wrk, '-t1', `-c${connections}`, `-d${secs}s`, '--latency'];
  if (close) args.push('-H', 'Connection: close');
  args.push(url);
  return new Promise((resolve, reject) => {
    const child = spawn('taskset', args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    track(child, 'wrk');
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    child.once('error', (e) => {
      untrack(child);
      reject(e);
    });
    child.once('close', (code) => {
      untrack(child);
      if (code !== 0) return reject(new Error(`wrk exited with ${code}: ${err.trim() || out.trim()}`));
      try {
        resolve(parseWrkOutput(out));
      } catch (e) {
        reject(e as Error);
      }
    });
  });
}

async function ready(p: Pinned, url: string, logFile: string): Promise<void> {
  const reason = await waitForHttp(p, url, 200);
  if (reason === undefined) return;
  let tail = '';
  try {
    tail = readFileSync(logFile, 'utf8').split('\n').slice(-30).join('\n');
  } catch {
    /* no log */
  }
  throw new Error(`${reason}\n${tail}`);
}

async function main(): Promise<number> {
  ensureServers();
  killAllOnExit();
  const twoCores = availableParallelism() >= 2;
  const loadCpu = '0';
  const proxyCpu = twoCores ? '1' : '0';
  const dir = mkdtempSync(join(tmpdir(), 'cairn-tcp-bench-'));
  chmodSync(dir, 0o755);
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  const runs: Run[] = [];
  const loadStart = loadavg();
  const started = new Date();
  try {
    const [backendPort, haproxyPort, pipePort, cairnPort, cairnAdmin] = (await Promise.all(
      Array.from({ length: 5 }, () => freePort()),
    )) as [number, number, number, number, number];
    const path = bodyPath(size);

    const { backend, errorLog } = spawnBackendNginx(dir, loadCpu, binaries.nginx, backendPort, [size]);
    await ready(backend, `http://127.0.0.1:${backendPort}${path}`, errorLog);

    const hDir = join(dir, 'haproxy');
    mkdirSync(hDir);
    writeFileSync(join(hDir, 'haproxy.cfg'), haproxyTcpConfig(haproxyPort, backendPort));
    const hErr = join(hDir, 'stderr.log');
    const haproxy = spawnPinned(
      'haproxy',
      proxyCpu,
      binaries.haproxy,
      ['-db', '-f', join(hDir, 'haproxy.cfg')],
      {
        stdout: 'ignore',
        stderr: openSync(hErr, 'w'),
        cwd: hDir,
      },
    );

    const pipeFile = join(dir, 'node-pipe.mjs');
    writeFileSync(pipeFile, nodePipeScript);
    const pErr = join(dir, 'node-pipe.log');
    const pipe = spawnPinned(
      'node pipe',
      proxyCpu,
      process.execPath,
      [pipeFile, String(pipePort), String(backendPort)],
      {
        stdout: 'ignore',
        stderr: openSync(pErr, 'w'),
      },
    );

    const cDir = join(dir, 'cairn');
    mkdirSync(cDir);
    const routes = join(cDir, 'routes.yaml');
    writeFileSync(
      routes,
      [
        'services:',
        '  - name: backend',
        '    instances:',
        `      - { id: backend-1, address: 127.0.0.1, port: ${backendPort}, tags: ["urlprefix-:${cairnPort} proto=tcp"] }`,
        '',
      ].join('\n'),
    );
    const cErr = join(cDir, 'stderr.log');
    const cairn = spawnPinned(
      'cairn',
      proxyCpu,
      process.execPath,
      [
        // CAIRN_NODE_ARGS: extra Node flags for the Cairn process only (e.g. `--cpu-prof
        // --cpu-prof-dir=/tmp/prof` to profile it under the bench's load).
        ...(process.env['CAIRN_NODE_ARGS'] ?? '').split(' ').filter((a) => a !== ''),
        shippedCairn(repoRoot),
        '--listen',
        `127.0.0.1:${cairnPort};proto=tcp`,
        '--admin',
        `127.0.0.1:${cairnAdmin}`,
        '--registry',
        `file:${routes}`,
        // One process: the figures are per proxy process (the default is one worker per CPU).
        '--workers',
        '1',
      ],
      { stdout: openSync('/dev/null', 'w'), stderr: openSync(cErr, 'w'), cwd: repoRoot },
    );

    const proxies: Proxy[] = [
      { name: 'haproxy (mode tcp)', port: haproxyPort, server: haproxy, stderrFile: hErr },
      { name: 'node net pipe', port: pipePort, server: pipe, stderrFile: pErr },
      { name: 'cairn proto=tcp', port: cairnPort, server: cairn, stderrFile: cErr },
    ];
    for (const p of proxies) await ready(p.server, `http://127.0.0.1:${p.port}${path}`, p.stderrFile);
    const problems: string[] = [];
    for (const p of proxies) {
      const r = await httpGet(`http://127.0.0.1:${p.port}${path}`);
      if (typeof r === 'string' || r.status !== 200 || r.bodyLength !== size) {
        problems.push(
          `${p.name}: ${typeof r === 'string' ? r : `status ${r.status}, ${r.bodyLength} bytes`}`,
        );
      }
    }
    for (const line of problems) log(`check failed: ${line}`);

    const total = loads.length * reps * proxies.length;
    let n = 0;
    for (const load of loads) {
      for (let rep = 1; rep <= reps; rep++) {
        for (const p of proxies) {
          n++;
          const url = `http://127.0.0.1:${p.port}${path}`;
          const close = load === 'connections';
          log(
            `[${n}/${total}] ${load}, ${p.name}, run ${rep}: warm-up ${warmupSeconds} s, then ${seconds} s`,
          );
          await wrk(url, warmupSeconds, close, loadCpu);
          const cpu0 = processTreeCpuSeconds(p.server.pid);
          const w = await wrk(url, seconds, close, loadCpu);
          const cpu1 = processTreeCpuSeconds(p.server.pid);
          const alive = !hasExited(p.server.child);
          runs.push({ load, rep, proxy: p.name, wrk: w, cpuSeconds: cpu1 - cpu0, alive });
          log(
            `    ${int(w.requestsPerSec)}/s, ${int(w.requests / (cpu1 - cpu0))} per CPU-s, p99 ${ms(w.p99Ms)} ms` +
              (w.non2xx > 0 ? `, ${w.non2xx} non-2xx` : '') +
              (w.socketErrors > 0 ? `, ${w.socketErrorsText}` : '') +
              (alive ? '' : ', PROXY EXITED'),
          );
        }
      }
    }

    console.log(
      [
        `## TCP proxy (wrk -t1 -c${connections} -d${seconds}s --latency, ${size}-byte responses, ${warmupSeconds} s warm-up discarded, ${reps} run${reps > 1 ? 's' : ''} per configuration, interleaved)`,
        '',
        `${started.toISOString()}; node ${process.version}; ${versionOf(binaries.haproxy, ['-v'])}; ${versionOf(binaries.nginx, ['-v'])}`,
        `${cpus()[0]?.model ?? '?'} x ${cpus().length}; backend + wrk on CPU ${loadCpu}, proxies on CPU ${proxyCpu}; load average before ${loadStart.map((l) => l.toFixed(2)).join(' ')}, after ${loadavg()
          .map((l) => l.toFixed(2))
          .join(' ')}`,
      ].join('\n'),
    );
    if (problems.length > 0)
      console.log(`\nPre-run checks failed: ${belowTarget}\n${problems.map((l) => `- ${l}`).join('\n')}`);
    for (const load of loads) console.log(`\n${summary(load, runs, proxies)}`);
    console.log(`\n### All runs (in the order they ran)\n\n${runsTable(runs)}`);
    console.log(`\n${cairnLog(cErr)}`);
    return 0;
  } finally {
    await killAll();
    rmSync(dir, { recursive: true, force: true });
  }
}

function versionOf(command: string, args: readonly string[]): string {
  const r = spawnSync(command, args, { encoding: 'utf8' });
  return `${r.stdout ?? ''}${r.stderr ?? ''}`.split('\n')[0]?.trim() ?? '?';
}

function summary(load: Load, all: readonly Run[], proxies: readonly Proxy[]): string {
  const runs = all.filter((r) => r.load === load);
  const perCpu = (r: Run) => r.wrk.requests / r.cpuSeconds;
  const ref = median(runs.filter((r) => r.proxy === proxies[0]?.name).map(perCpu));
  const refRate = median(runs.filter((r) => r.proxy === proxies[0]?.name).map((r) => r.wrk.requestsPerSec));
  const bar = bars[load];
  const rows = proxies.map((p) => {
    const rs = runs.filter((r) => r.proxy === p.name);
    const m = median(rs.map(perCpu));
    const rate = median(rs.map((r) => r.wrk.requestsPerSec));
    const non2xx = rs.reduce((a, r) => a + r.wrk.non2xx, 0);
    const errors = rs.reduce((a, r) => a + r.wrk.socketErrors, 0);
    const notes: string[] = [];
    if (p.name.startsWith('cairn') && m / ref < bar) notes.push(`${belowTarget} (${bar}x)`);
    if (non2xx > 0) notes.push(`${belowTarget}: non-2xx`);
    if (errors > 0) notes.push(`socket errors`);
    if (rs.some((r) => !r.alive)) notes.push(`${belowTarget}: proxy exited`);
    return [
      p.name,
      int(rate),
      fixed(rate / refRate, 2),
      int(m),
      fixed(m / ref, 2),
      fixed(Math.max(...rs.map(perCpu)) / ref, 2),
      fixed((100 * median(rs.map((r) => r.cpuSeconds))) / seconds, 0),
      ms(median(rs.map((r) => r.wrk.p50Ms))),
      ms(median(rs.map((r) => r.wrk.p99Ms))),
      int(non2xx),
      int(errors),
      notes.join('; '),
    ];
  });
  const what =
    load === 'exchanges'
      ? 'exchanges over kept-alive connections'
      : 'new connections (connect, one exchange, close)';
  return [
    `### ${what} (medians over runs; bar: Cairn >= ${bar}x HAProxy per CPU-s)`,
    '',
    markdownTable(
      [
        'proxy',
        '/s',
        'ratio /s',
        'per CPU-s',
        'ratio to haproxy',
        'best ratio',
        'proxy CPU %',
        'p50 ms',
        'p99 ms',
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
      'load',
      'run',
      'proxy',
      'exchanges',
      '/s',
      'proxy CPU-s',
      'per CPU-s',
      'p50 ms',
      'p99 ms',
      'non-2xx',
      'socket errors',
    ],
    runs.map((r) => [
      r.load,
      String(r.rep),
      r.proxy,
      int(r.wrk.requests),
      int(r.wrk.requestsPerSec),
      fixed(r.cpuSeconds, 2),
      int(r.wrk.requests / r.cpuSeconds),
      ms(r.wrk.p50Ms),
      ms(r.wrk.p99Ms),
      int(r.wrk.non2xx),
      r.wrk.socketErrors > 0 ? r.wrk.socketErrorsText : '0',
    ]),
  );
}

function cairnLog(file: string): string {
  let lines: string[] = [];
  try {
    lines = readFileSync(file, 'utf8')
      .split('\n')
      .filter((l) => l.trim() !== '');
  } catch {
    /* no log */
  }
  const serious = lines.filter((l) => {
    const m = /"level":(\d+)/.exec(l);
    return m === null || Number(m[1]) >= 40;
  });
  const out = [
    '### Cairn stderr',
    '',
    `${lines.length} lines, ${serious.length} at warn or above (or not JSON)`,
  ];
  if (serious.length > 0) out.push('```', ...serious.slice(-20), '```');
  return out.join('\n');
}

main().then(
  (code) => process.exit(code),
  async (err: unknown) => {
    process.stderr.write(
      `tcp.bench: FAILED: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
    );
    await killAll(500);
    process.exit(1);
  },
);
