// A worker process (`--workers N`, N > 1): the control process starts the same `cairn` entry again
// (same arguments, environment and Node flags, plus an IPC channel and the workerEnv marker), and
// runCli comes here instead of serving. It reads the same configuration, runs the proxy
// listeners only (SO_REUSEPORT: every worker holds the same ports), and applies the tables the
// control process sends. It never reads a registry or serves the admin.
//
// Lifecycle: hello -> init (ports) -> first table -> listen -> listening; then tables, metrics
// requests and a stats report every second; drain on request, on SIGTERM, or when the control
// process goes away (IPC disconnect).

import { IncrementalTableBuilder } from '../../routing/table.ts';
import { loadConfig, tableOptions } from '../config/index.ts';
import { createLogger } from '../logging.ts';
import type { CairnServer } from '../server.ts';
import { workerShare } from '../metrics/aggregate.ts';
import { useOneCpuGc } from './lean-heap.ts';
import { useReusePort } from './listen.ts';
import type { FromWorker, ToWorker } from './protocol.ts';
import { StatsReporter } from './stats-report.ts';
import { rebuildTable } from './table-wire.ts';

/** The control process may be gone (EPIPE): the 'disconnect' handler drains; never throw here. */
function ignoreSendError(): void {}

function send(m: FromWorker): void {
  if (process.connected) process.send?.(m, undefined, undefined, ignoreSendError);
}

let server: CairnServer | undefined;
/** Kept across tables: a change rebuilds only what it touched. */
let builder: IncrementalTableBuilder | undefined;
let reporter: StatsReporter | undefined;
let startup: Promise<void> | undefined;
let stopping = false;
const queue: ToWorker[] = [];

function fail(error: string): never {
  send({ t: 'start-failed', error });
  process.stderr.write(`cairn worker: ${error}\n`);
  process.exit(2);
}

async function init(id: number, ports: readonly number[]): Promise<void> {
  const loaded = loadConfig(process.argv.slice(2), process.env);
  if (loaded.kind !== 'config') fail('cannot read the configuration the control process started with');
  const base = loaded.config;
  // Port 0 resolved once by the control process: every worker binds the same concrete port.
  const config = {
    ...base,
    listen: base.listen.map((spec, i) => ({ ...spec, port: ports[i] ?? spec.port })),
  };
  useReusePort(true);
  const { CairnServer } = await import('../server.ts');
  const logger = createLogger(config.logLevel).child({ worker: id });
  server = new CairnServer(config, { mode: 'worker', logger });
  reporter = new StatsReporter(server.telemetry);
  setInterval(() => {
    if (reporter === undefined || stopping) return;
    const r = reporter.report();
    send({ t: 'stats', cells: r.cells, open: r.open, ejected: r.ejected });
  }, 1000).unref();
}

function applyTable(m: Extract<ToWorker, { t: 'table' }>): void {
  if (server === undefined) return;
  const started = performance.now();
  builder ??= new IncrementalTableBuilder(tableOptions(server.config));
  const r = rebuildTable(m.inputs, m.version, builder);
  if (!r.ok) {
    server.logger.error(
      { expected: m.version, got: r.got, error: r.error },
      'table from control rejected; keeping the current one',
    );
    send({ t: 'table-error', expected: m.version, got: r.got ?? '' });
    return;
  }
  server.controller.install(r.table);
  send({ t: 'applied', version: m.version, applyMs: performance.now() - started, sentAt: m.sentAt });
  // The first table is in: now the listeners may open.
  if (startup === undefined) {
    const s = server;
    startup = s.start().then(
      () => send({ t: 'listening' }),
      (err: unknown) => fail((err as Error).message),
    );
  }
}

async function drain(waitMs: number): Promise<void> {
  if (stopping) return;
  stopping = true;
  try {
    await startup;
    await server?.stop(waitMs);
  } finally {
    process.exit(0);
  }
}

async function handle(m: ToWorker): Promise<void> {
  switch (m.t) {
    case 'init':
      await init(m.id, m.ports);
      return;
    case 'table':
      applyTable(m);
      return;
    case 'metrics': {
      const json = server === undefined ? [] : await server.telemetry.metrics.registry.getMetricsAsJSON();
      send({ t: 'metrics', req: m.req, metrics: workerShare(json) });
      return;
    }
    case 'drain':
      await drain(m.waitMs);
      return;
  }
}

// Messages are handled one at a time, in order: a table never overtakes the init before it.
let busy = false;
async function pump(): Promise<void> {
  if (busy) return;
  busy = true;
  try {
    for (let m = queue.shift(); m !== undefined; m = queue.shift()) {
      try {
        await handle(m);
      } catch (err) {
        server?.logger.error({ error: (err as Error).message, message: m.t }, 'worker: message failed');
      }
    }
  } finally {
    busy = false;
  }
}

/** Runs this process as a worker; it ends by process.exit (drained, or its control gone). */
export function runWorker(): Promise<never> {
  useOneCpuGc();
  process.on('message', (m: ToWorker) => {
    queue.push(m);
    void pump();
  });
  // The control process went away: nobody will send tables or restart us; finish and leave.
  process.on('disconnect', () => void drain(Math.min(server?.config.shutdownWaitMs ?? 0, 5_000)));
  // Ctrl-C reaches the whole process group; the control process orchestrates the drain.
  process.on('SIGINT', () => {});
  process.on('SIGTERM', () => void drain(server?.config.shutdownWaitMs ?? 0));
  send({ t: 'hello', pid: process.pid });
  return new Promise<never>(() => {});
}
