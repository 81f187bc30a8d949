// The control process of `--workers N` (N > 1): it runs the registries, the Controller and the
// admin listener (a CairnServer in `control` mode, no proxy listeners) and a pool of N worker
// processes that accept the traffic on the same ports (SO_REUSEPORT).
//
// - Tables: on every swap the build inputs are serialised once and sent to every worker with the
//   version they must hash to; a new or restarted worker gets the current one before it listens
//   (serialised again for it: the Controller's last build inputs are the registries' records,
//   while their JSON would be a copy of its own, megabytes for a 10,000-route table).
// - Stats: workers report traffic deltas every second (absorbed into the control's cells, which
//   /api/routes and the UI read); /metrics asks every worker and sums (lib/metrics/aggregate.ts).
// - A worker that dies is restarted with backoff; the others keep serving.
// - SIGTERM/SIGINT: the server's stop() deregisters, then drains the workers (drain()), then stops
//   the registries and the admin.

import { type ChildProcess, fork, spawn } from 'node:child_process';
import net from 'node:net';
import type { Snapshot } from '../../routing/types.ts';
import type { CairnConfig } from '../config/index.ts';
import { aggregatedExposition, controlShare, PoolMetrics } from '../metrics/aggregate.ts';
import { processExposition } from '../metrics/prometheus.ts';
import { CairnServer, StartupError } from '../server.ts';
import { flagsNotChosen, leanHeapFlagsFor } from './lean-heap.ts';
import { reusePortSupported } from './listen.ts';
import type { FromWorker, ToWorker } from './protocol.ts';
import { workerEnv } from './role.ts';
import { serialiseInputs } from './table-wire.ts';
import type { ClusterView, WorkerJson } from './view.ts';

/**
 * Node flags every worker runs with, after the control's own (`process.execArgv`). The one place
 * to add tuning flags (e.g. `--max-semi-space-size=N`).
 */
export const workerNodeFlags: readonly string[] = [
  // Bounded heap for a process that proxies (issue 9: RSS under 150 MB per worker with a
  // 10,000-route table under load). Measured side by side (npm run bench, --compare-node-args,
  // --cairn-node-args): V8's defaults on a big-memory host let the young generation reach
  // 64-128 MB and the old one grow to ~4x what is live between major GCs, ~180 MB per worker;
  // a 30 % growing step and an 8 MB semi-space hold it near 145 MB (16 MB: ~160 MB) with the
  // same req/CPU-s and p99 (within the noise; `--compare-workers` rows with each size).
  // --memory-saver-mode went lower (~130 MB) but doubled p99.
  '--max-semi-space-size=8',
  '--heap-growing-percent=30',
];

/**
 * The worker flags the user did not set on Cairn's own command line or in NODE_OPTIONS: `node
 * --max-semi-space-size=16 cairn ...` reaches the workers as that, not overridden by ours.
 */
export function workerFlagsFor(execArgv: readonly string[], nodeOptions?: string): string[] {
  return flagsNotChosen(workerNodeFlags, execArgv, nodeOptions);
}

/** Restart backoff: doubles from min to max; a worker that ran this long starts over at min. */
const backoff = { minMs: 100, maxMs: 10_000, stableMs: 10_000 };
const startTimeoutMs = 30_000;
const metricsTimeoutMs = 2_000;

interface Slot {
  readonly id: number;
  child: ChildProcess | undefined;
  pid: number | null;
  state: WorkerJson['state'];
  upSince: number;
  restarts: number;
  tableVersion: string;
  /** The worker said hello: it may be sent messages. */
  ready: boolean;
  delayMs: number;
  timer: NodeJS.Timeout | undefined;
  /** Requests (TCP: connections) the current process reported. */
  requests: number;
  /** Latest report of what is open per target. */
  open: ReadonlyMap<string, number>;
  /** Latest report of the targets it does not send traffic to. */
  ejected: readonly string[];
}

interface CurrentTable {
  readonly version: string;
  /** The merged build inputs (the registries' own records, not copies). */
  readonly inputs: Snapshot;
  readonly sentAt: number;
  /** Of the broadcast: serialising time and JSON size. */
  readonly serialiseMs: number;
  readonly bytes: number;
}

/** A broadcast table until every worker has it: for one log line with the slowest worker's time. */
interface Rollout {
  readonly table: CurrentTable;
  readonly waiting: Set<number>;
  slowestMs: number;
  slowestRebuildMs: number;
}

export class WorkerPool implements ClusterView {
  private readonly server: CairnServer;
  private readonly count: number;
  private readonly slots: Slot[] = [];
  private ports: number[] = [];
  private table: CurrentTable | undefined;
  private rollout: Rollout | undefined;
  private stopping = false;
  private nextReq = 1;
  private readonly pendingMetrics = new Map<number, (m: unknown[]) => void>();
  private readonly poolMetrics: PoolMetrics;
  /** Open counts summed over the workers, for the control's telemetry. */
  readonly open = new Map<string, number>();
  /** Per target key: how many workers have it ejected. */
  readonly ejected = new Map<string, number>();
  private startWaiters: { resolve: () => void; reject: (e: Error) => void } | undefined;
  /** Last IPC+apply time of a table, per worker id (ms), for logs and tests. */
  readonly applyMs = new Map<number, number>();

  constructor(server: CairnServer, count: number) {
    this.server = server;
    this.count = count;
    this.poolMetrics = new PoolMetrics(() => this.slots.filter((s) => s.state === 'listening').length);
    server.telemetry.subscribe((e) => {
      if (e.type === 'swap') this.broadcastTable();
    });
  }

  /** Resolves port 0, forks the workers, resolves once every one of them listens. */
  async start(): Promise<void> {
    const probes = await this.resolvePorts();
    try {
      this.table ??= this.currentTable();
      const listening = new Promise<void>((resolve, reject) => {
        this.startWaiters = { resolve, reject };
      });
      for (let id = 1; id <= this.count; id++) {
        const slot: Slot = {
          id,
          child: undefined,
          pid: null,
          state: 'starting',
          upSince: Date.now(),
          restarts: 0,
          tableVersion: '',
          ready: false,
          delayMs: backoff.minMs,
          timer: undefined,
          open: new Map(),
          ejected: [],
          requests: 0,
        };
        this.slots.push(slot);
        this.spawn(slot);
      }
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () =>
            reject(new StartupError(`--workers: workers did not start within ${startTimeoutMs / 1000} s`)),
          startTimeoutMs,
        );
      });
      try {
        await Promise.race([listening, timeout]);
      } finally {
        clearTimeout(timer);
        this.startWaiters = undefined;
      }
    } finally {
      // Every worker holds the ports now; the probes only reserved them.
      for (const p of probes) p.close();
    }
  }

  /** The proxy addresses, as `cairn started` logs them. */
  addresses(): string[] {
    const out: string[] = [];
    this.server.config.listen.forEach((spec, i) => {
      // tcp-dynamic listeners follow the table (their own log lines), as in a single process.
      if (spec.proto === 'tcp-dynamic') return;
      out.push(`${spec.address === '' ? '::' : spec.address}:${this.ports[i] ?? spec.port}`);
    });
    return out;
  }

  workers(): WorkerJson[] {
    return this.slots.map((s) => ({
      id: s.id,
      pid: s.pid,
      state: s.state,
      up_since: new Date(s.upSince).toISOString(),
      restarts: s.restarts,
      table_version: s.tableVersion,
      requests: s.requests,
    }));
  }

  async metrics(): Promise<{ text: string; contentType: string }> {
    const own = this.server.telemetry.metrics;
    const asks = this.slots.filter((s) => s.ready && s.state === 'listening').map((s) => this.askMetrics(s));
    const [processText, ownJson, poolJson, ...workers] = await Promise.all([
      processExposition(),
      own.registry.getMetricsAsJSON(),
      this.poolMetrics.registry.getMetricsAsJSON(),
      ...asks,
    ]);
    const control = [...controlShare(ownJson), ...poolJson];
    const text = await aggregatedExposition(
      processText,
      control,
      workers.filter((w) => w.length > 0),
    );
    return { text, contentType: own.contentType };
  }

  /** Tells every worker to drain, waits for them (up to waitMs and a margin), kills stragglers. */
  async drain(waitMs: number): Promise<void> {
    this.stopping = true;
    const exits: Promise<void>[] = [];
    for (const s of this.slots) {
      clearTimeout(s.timer);
      const child = s.child;
      if (child === undefined || child.exitCode !== null || child.signalCode !== null) continue;
      s.state = 'draining';
      exits.push(new Promise((resolve) => child.once('exit', () => resolve())));
      if (s.ready && child.connected) this.sendTo(s, { t: 'drain', waitMs });
      else child.kill('SIGTERM');
    }
    const deadline = new Promise<void>((resolve) => setTimeout(resolve, waitMs + 3_000).unref());
    await Promise.race([Promise.all(exits), deadline]);
    for (const s of this.slots) {
      if (s.child !== undefined && s.child.exitCode === null && s.child.signalCode === null)
        s.child.kill('SIGKILL');
    }
  }

  /** Port 0 becomes one concrete port for all workers: a reusePort probe binds it until they do. */
  private async resolvePorts(): Promise<net.Server[]> {
    const probes: net.Server[] = [];
    this.ports = [];
    for (const spec of this.server.config.listen) {
      if (spec.port !== 0 || spec.proto === 'tcp-dynamic') {
        this.ports.push(spec.port);
        continue;
      }
      const probe = net.createServer();
      // Nobody knows the port before the workers listen, so no connection lands here; if one
      // did, closing the probe resets it and the client retries.
      await new Promise<void>((resolve, reject) => {
        probe.once('error', (err: NodeJS.ErrnoException) =>
          reject(new StartupError(`--listen ${spec.text}: ${err.message}`)),
        );
        probe.listen(
          { port: 0, ...(spec.address !== '' ? { host: spec.address } : {}), reusePort: true },
          () => resolve(),
        );
      });
      probes.push(probe);
      this.ports.push((probe.address() as net.AddressInfo).port);
    }
    return probes;
  }

  private spawn(slot: Slot): void {
    slot.ready = false;
    slot.state = 'starting';
    slot.tableVersion = '';
    slot.requests = 0;
    slot.upSince = Date.now();
    const child = startWorkerProcess(this.server.config.leanHeap === 'all');
    slot.child = child;
    slot.pid = child.pid ?? null;
    child.on('message', (m: FromWorker) => this.onMessage(slot, m));
    child.on('error', (err) =>
      this.server.logger.error({ worker: slot.id, error: err.message }, 'worker: process error'),
    );
    child.once('exit', (code, signal) => this.onExit(slot, child, code, signal));
  }

  private onMessage(slot: Slot, m: FromWorker): void {
    switch (m.t) {
      case 'hello':
        slot.ready = true;
        slot.pid = m.pid;
        this.sendTo(slot, { t: 'init', id: slot.id, ports: this.ports });
        this.table ??= this.currentTable();
        this.sendTo(slot, {
          t: 'table',
          version: this.table.version,
          inputs: serialiseInputs(this.table.inputs),
          sentAt: Date.now(),
        });
        return;
      case 'listening':
        slot.state = 'listening';
        this.server.logger.info({ worker: slot.id, pid: slot.pid }, 'worker: listening');
        if (
          this.startWaiters !== undefined &&
          this.slots.length === this.count &&
          this.slots.every((s) => s.state === 'listening')
        )
          this.startWaiters.resolve();
        return;
      case 'start-failed':
        this.startWaiters?.reject(new StartupError(m.error));
        return;
      case 'applied': {
        slot.tableVersion = m.version;
        const ms = Date.now() - m.sentAt;
        this.applyMs.set(slot.id, ms);
        this.rolledOut(slot, m.version, ms, m.applyMs);
        this.server.logger.debug(
          { worker: slot.id, version: m.version, applyMs: m.applyMs, totalMs: ms },
          'worker: table applied',
        );
        return;
      }
      case 'table-error':
        this.server.logger.error(
          { worker: slot.id, expected: m.expected, got: m.got },
          'worker: rebuilt table does not match the control version; it keeps its previous table',
        );
        return;
      case 'metrics':
        this.pendingMetrics.get(m.req)?.(m.metrics);
        return;
      case 'stats': {
        const traffic = this.server.telemetry.traffic;
        for (const c of m.cells) {
          traffic.absorb(c.key, c.requests, c.errors5xx, c.connectErrors, c.latencies);
          // Each request is recorded on exactly one cell (its target's, else its route's).
          slot.requests += c.requests;
        }
        slot.open = new Map(m.open);
        slot.ejected = m.ejected;
        this.sumOpen();
        return;
      }
    }
  }

  private onExit(slot: Slot, child: ChildProcess, code: number | null, signal: NodeJS.Signals | null): void {
    if (slot.child !== child) return;
    slot.child = undefined;
    slot.ready = false;
    slot.open = new Map();
    slot.ejected = [];
    this.sumOpen();
    if (this.rollout?.waiting.delete(slot.id) === true && this.rollout.slowestMs > 0) this.finishRollout();
    if (this.stopping) {
      slot.state = 'stopped';
      return;
    }
    if (this.startWaiters !== undefined) {
      // Dying during startup is a configuration problem (port in use, bad certificate): say so.
      this.startWaiters.reject(
        new StartupError(`--workers: worker ${slot.id} exited during startup (${signal ?? `code ${code}`})`),
      );
      return;
    }
    const ranMs = Date.now() - slot.upSince;
    slot.delayMs = ranMs >= backoff.stableMs ? backoff.minMs : Math.min(slot.delayMs * 2, backoff.maxMs);
    slot.restarts++;
    slot.state = 'restarting';
    this.poolMetrics.restarts.inc();
    this.server.logger.warn(
      { worker: slot.id, pid: slot.pid, code, signal, restartInMs: slot.delayMs, restarts: slot.restarts },
      'worker died; restarting it',
    );
    slot.timer = setTimeout(() => {
      slot.timer = undefined;
      if (!this.stopping) this.spawn(slot);
    }, slot.delayMs);
  }

  private rolledOut(slot: Slot, version: string, ms: number, rebuildMs: number): void {
    const r = this.rollout;
    if (r === undefined || r.table.version !== version) return;
    r.waiting.delete(slot.id);
    r.slowestMs = Math.max(r.slowestMs, ms);
    r.slowestRebuildMs = Math.max(r.slowestRebuildMs, rebuildMs);
    this.finishRollout();
  }

  /** One line once no worker is still waiting for the table (a worker that died no longer counts). */
  private finishRollout(): void {
    const r = this.rollout;
    if (r === undefined || r.waiting.size > 0) return;
    const version = r.table.version;
    this.rollout = undefined;
    this.server.logger.info(
      {
        version,
        serialiseMs: round(r.table.serialiseMs),
        slowestWorkerMs: r.slowestMs,
        slowestRebuildMs: round(r.slowestRebuildMs),
        bytes: r.table.bytes,
      },
      'workers: every worker runs the new table',
    );
  }

  /** Workers accepting traffic now. */
  get listening(): number {
    let n = 0;
    for (const s of this.slots) if (s.state === 'listening') n++;
    return n;
  }

  private sumOpen(): void {
    this.open.clear();
    this.ejected.clear();
    for (const s of this.slots) {
      for (const [k, n] of s.open) this.open.set(k, (this.open.get(k) ?? 0) + n);
      for (const k of s.ejected) this.ejected.set(k, (this.ejected.get(k) ?? 0) + 1);
    }
  }

  private currentTable(): CurrentTable {
    const c = this.server.controller;
    return {
      version: c.current.table.version,
      inputs: c.inputs,
      sentAt: Date.now(),
      serialiseMs: 0,
      bytes: 0,
    };
  }

  /** A swap: serialise once, send to every worker that can take messages. */
  private broadcastTable(): void {
    if (this.slots.length === 0) return;
    const t0 = performance.now();
    const current = this.currentTable();
    const json = serialiseInputs(current.inputs);
    const t: CurrentTable = { ...current, serialiseMs: performance.now() - t0, bytes: json.length };
    this.table = t;
    const waiting = new Set<number>();
    for (const s of this.slots) {
      if (!s.ready) continue;
      waiting.add(s.id);
      this.sendTo(s, { t: 'table', version: t.version, inputs: json, sentAt: t.sentAt });
    }
    this.rollout = { table: t, waiting, slowestMs: 0, slowestRebuildMs: 0 };
  }

  private askMetrics(slot: Slot): Promise<unknown[]> {
    const req = this.nextReq++;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.pendingMetrics.delete(req);
        resolve([]);
      }, metricsTimeoutMs);
      this.pendingMetrics.set(req, (m) => {
        clearTimeout(timer);
        this.pendingMetrics.delete(req);
        resolve(m);
      });
      this.sendTo(slot, { t: 'metrics', req });
    });
  }

  private sendTo(slot: Slot, m: ToWorker): void {
    const child = slot.child;
    if (child === undefined || !child.connected) return;
    child.send(m, (err) => {
      if (err !== null && err !== undefined && !this.stopping)
        this.server.logger.warn({ worker: slot.id, error: err.message }, 'worker: IPC send failed');
    });
  }
}

function round(ms: number): number {
  return Math.round(ms * 10) / 10;
}

/**
 * A worker is this same `cairn` entry run again (same arguments and environment) with the
 * worker marker and an IPC channel: that works from the .ts sources, the compiled dist/ and the
 * bundle alike. A single executable has no script to name, so it runs itself.
 */
function startWorkerProcess(leanHeap: boolean): ChildProcess {
  const env = { ...process.env, [workerEnv]: '1' };
  const args = process.argv.slice(2);
  if (isSea()) {
    return spawn(process.execPath, args, {
      env,
      stdio: ['inherit', 'inherit', 'inherit', 'ipc'],
      serialization: 'advanced',
    });
  }
  return fork(process.argv[1] as string, args, {
    env,
    execArgv: [
      ...process.execArgv,
      ...(leanHeap ? leanHeapFlagsFor(process.execArgv) : []),
      ...workerFlagsFor(process.execArgv),
    ],
    serialization: 'advanced',
  });
}

function isSea(): boolean {
  try {
    return process.getBuiltinModule('node:sea')?.isSea() === true;
  } catch {
    return false;
  }
}

/** The CLI's serve mode with `--workers N` (N > 1). */
export async function runControl(config: CairnConfig): Promise<void> {
  if (!reusePortSupported()) {
    process.stderr.write(
      `cairn: --workers: ${config.workers} workers need SO_REUSEPORT (Linux, FreeBSD); use --workers 1 on ${process.platform}\n`,
    );
    process.exit(2);
  }
  // The server's stop() drains the pool, which needs the server: tie the knot through this box.
  const box: { pool?: WorkerPool } = {};
  let server: CairnServer;
  try {
    server = new CairnServer(config, {
      mode: 'control',
      drainListeners: (waitMs) => box.pool?.drain(waitMs) ?? Promise.resolve(),
    });
  } catch (err) {
    process.stderr.write(`cairn: ${(err as Error).message}\n`);
    process.exit(2);
  }
  const pool = new WorkerPool(server, config.workers);
  box.pool = pool;
  server.cluster = pool;
  server.telemetry.fromWorkers = pool;
  // Signal handlers go in before the workers start: some may already serve traffic while the
  // others start, and a SIGTERM then must drain them, not kill the control process outright.
  let started = false;
  let pendingSignal: string | undefined;
  let stopping = false;
  const onSignal = (sig: string) => {
    if (!started) {
      pendingSignal ??= sig;
      return;
    }
    if (stopping) process.exit(1);
    stopping = true;
    server.logger.info({ signal: sig }, 'shutting down: draining the workers');
    server.stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGTERM', () => onSignal('SIGTERM'));
  process.on('SIGINT', () => onSignal('SIGINT'));
  try {
    await server.start();
    await pool.start();
  } catch (err) {
    process.stderr.write(`cairn: ${(err as Error).message}\n`);
    await server.stop(0).catch(() => {});
    process.exit(err instanceof StartupError ? 2 : 1);
  }
  server.logger.info(
    {
      listen: pool.addresses(),
      admin: server.adminAddress(),
      workers: pool.workers().map((w) => w.pid),
    },
    'cairn started',
  );
  started = true;
  if (pendingSignal !== undefined) onSignal(pendingSignal);
}
