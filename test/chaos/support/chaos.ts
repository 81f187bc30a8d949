// Shared pieces of the chaos suite: a bounded in-process load client (undici keep-alive, fixed
// concurrency, bounded count and time) that records every outcome, the one-line scenario report,
// upstreams and Cairn instances as child processes (for SIGKILL and SIGTERM), and process gauges
// (open file descriptors, RSS) read from /proc.

import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Agent, request } from 'undici';
import { freePort, type ManagedProcess, spawnManaged } from '../../support/servers.ts';

const here = dirname(fileURLToPath(import.meta.url));
export const repoRoot = resolve(here, '..', '..', '..');

/**
 * Durations scale with the profile: `ci` (default, what `npm test` runs: the whole chaos suite
 * stays within a few minutes on 2 cores) or `soak` (CAIRN_CHAOS_PROFILE=soak, the long versions
 * the issue asks for, run by `npm run soak`).
 */
export const longProfile = process.env.CAIRN_CHAOS_PROFILE === 'soak';
export function scaled(ciMs: number, soakMs: number): number {
  return longProfile ? soakMs : ciMs;
}

// ---------------------------------------------------------------------------------------------
// Load

export interface Outcome {
  /** Epoch ms the request was started and ended. */
  readonly start: number;
  readonly end: number;
  /** HTTP status, or 0 when the request failed without one. */
  readonly status: number;
  /** `x-upstream` of the answer ('' if none). */
  readonly upstream: string;
  /** Error code or message when status is 0. */
  readonly error: string;
  /** Request number, also sent as the `x-load-id` header. */
  readonly id: number;
  /** Which origin (index into the origins) answered, and which one was tried first. */
  readonly origin: number;
  readonly firstOrigin: number;
  /** Origins tried before this one answered (client-side failover). */
  readonly failovers: number;
}

export interface LoadOptions {
  /** Cairn origins; with several, a request that cannot connect fails over to the next. */
  readonly origins: readonly string[];
  readonly path: string;
  /** Parallel workers, each with one request in flight at a time. */
  readonly concurrency: number;
  /** Upper bound on requests sent. */
  readonly maxRequests: number;
  /** Upper bound on wall time. */
  readonly maxMs: number;
  /** Pause of each worker between requests (keeps the shared CPU usable). */
  readonly pauseMs?: number;
  readonly headers?: Record<string, string>;
  /** Per-request limit: a request that takes longer counts as hung (failed). */
  readonly requestTimeoutMs?: number;
  /** Status codes counted as success (default: 200 only). */
  readonly okStatuses?: readonly number[];
  /**
   * Keep every outcome (default true). A long soak sets false and reads each outcome through
   * `onOutcome` instead; the result then carries counts and the first 100 failures only.
   */
  readonly keepOutcomes?: boolean;
  readonly onOutcome?: (o: Outcome) => void;
}

export interface Load {
  readonly outcomes: Outcome[];
  /** Requests started and not finished. */
  inFlight(): number;
  /** Failed requests so far. */
  failedSoFar(): number;
  /** Origin index of the current attempt of each unfinished request, by request id. */
  readonly attempts: ReadonlyMap<number, number>;
  /** Stops sending, waits for the requests in flight; resolves with every outcome. */
  stop(): Promise<LoadResult>;
  /** Resolves when the load ended on its own (count or time bound) or was stopped. */
  readonly done: Promise<LoadResult>;
}

export interface LoadResult {
  readonly sent: number;
  readonly succeeded: number;
  readonly failed: number;
  readonly outcomes: readonly Outcome[];
  /** Failed outcomes, for assertion messages. */
  readonly failures: readonly Outcome[];
}

/** Idempotent GET load through Cairn, bounded in count and time. */
export function startLoad(o: LoadOptions): Load {
  const agent = new Agent({
    keepAliveTimeout: 4_000,
    connections: o.concurrency,
    headersTimeout: o.requestTimeoutMs ?? 15_000,
    bodyTimeout: o.requestTimeoutMs ?? 15_000,
  });
  const ok = new Set(o.okStatuses ?? [200]);
  const outcomes: Outcome[] = [];
  const deadline = Date.now() + o.maxMs;
  let sent = 0;
  let active = 0;
  let running = true;
  const attempts = new Map<number, number>();
  const keep = o.keepOutcomes ?? true;
  const failures: Outcome[] = [];
  let finished = 0;
  let failedCount = 0;

  const once = async (id: number, origin: number): Promise<{ status: number; upstream: string }> => {
    attempts.set(id, origin);
    const r = await request(`${o.origins[origin]}${o.path}`, {
      dispatcher: agent,
      method: 'GET',
      headers: { ...o.headers, 'x-load-id': String(id) },
    });
    await r.body.dump({ limit: 1 << 20 });
    const up = r.headers['x-upstream'];
    return { status: r.statusCode, upstream: typeof up === 'string' ? up : '' };
  };

  const worker = async (w: number): Promise<void> => {
    while (running && sent < o.maxRequests && Date.now() < deadline) {
      const id = sent++;
      active++;
      const start = Date.now();
      let status = 0;
      let upstream = '';
      let error: string;
      const firstOrigin = w % o.origins.length;
      let origin = firstOrigin;
      let failovers = 0;
      for (;;) {
        try {
          ({ status, upstream } = await once(id, origin));
          error = '';
          break;
        } catch (err) {
          const e = err as { code?: string; message?: string };
          error = e.code ?? e.message ?? String(err);
          // The HA client: a refused connection means that Cairn is gone; try the next one.
          if (o.origins.length > 1 && failovers < o.origins.length - 1 && isConnectError(error)) {
            failovers++;
            origin = (origin + 1) % o.origins.length;
            continue;
          }
          break;
        }
      }
      active--;
      attempts.delete(id);
      const outcome: Outcome = {
        start,
        end: Date.now(),
        status,
        upstream,
        error,
        id,
        origin,
        firstOrigin,
        failovers,
      };
      finished++;
      if (!ok.has(status)) {
        failedCount++;
        if (failures.length < 100) failures.push(outcome);
      }
      if (keep) outcomes.push(outcome);
      o.onOutcome?.(outcome);
      if (o.pauseMs !== undefined && o.pauseMs > 0) await sleep(o.pauseMs);
    }
  };

  const workers = Array.from({ length: o.concurrency }, (_, i) => worker(i));
  const done = Promise.all(workers).then(async () => {
    await agent.close().catch(() => {});
    if (keep) return summarize(outcomes, ok);
    return { sent: finished, succeeded: finished - failedCount, failed: failedCount, outcomes, failures };
  });
  return {
    outcomes,
    inFlight: () => active,
    failedSoFar: () => failedCount,
    attempts,
    stop: async () => {
      running = false;
      return done;
    },
    done,
  };
}

function isConnectError(code: string): boolean {
  return code === 'ECONNREFUSED' || code === 'ECONNRESET' || code === 'UND_ERR_SOCKET';
}

export function summarize(
  outcomes: readonly Outcome[],
  ok: ReadonlySet<number> = new Set([200]),
): LoadResult {
  const failures = outcomes.filter((x) => !ok.has(x.status));
  return {
    sent: outcomes.length,
    succeeded: outcomes.length - failures.length,
    failed: failures.length,
    outcomes,
    failures,
  };
}

/** The one line every scenario prints. */
export function report(
  scenario: string,
  r: Pick<LoadResult, 'sent' | 'succeeded' | 'failed'>,
  expected: string,
): void {
  process.stdout.write(
    `      ${scenario}: sent ${r.sent}, succeeded ${r.succeeded}, failed ${r.failed} (expected: ${expected})\n`,
  );
}

/** A few failures, readable in an assertion message. */
export function describeFailures(r: LoadResult, max = 5): string {
  return JSON.stringify(
    r.failures.slice(0, max).map((f) => ({ status: f.status, error: f.error, up: f.upstream })),
  );
}

/** The p-th percentile (0..100) of `values` (nearest rank); 0 for none. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank] ?? 0;
}

// ---------------------------------------------------------------------------------------------
// Child processes

export interface ChildUpstream {
  readonly name: string;
  readonly port: number;
  readonly proc: ManagedProcess;
  /** SIGKILL, no goodbye: open connections die with it. */
  kill(): Promise<void>;
  stop(): Promise<void>;
}

async function waitForLine(
  proc: ManagedProcess,
  pattern: RegExp,
  what: string,
  timeoutMs = 15_000,
): Promise<RegExpMatchArray> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const m = proc.output().match(pattern);
    if (m) return m;
    if (!proc.running()) throw new Error(`${proc.name} exited before ${what}:\n${proc.output()}`);
    if (Date.now() > deadline) {
      await proc.stop();
      throw new Error(`${proc.name}: no ${what} after ${timeoutMs} ms:\n${proc.output()}`);
    }
    await sleep(20);
  }
}

/** An upstream in its own process (test/chaos/support/upstream-child.ts). */
export async function startChildUpstream(name: string, port = 0, delayMs = 0): Promise<ChildUpstream> {
  const proc = spawnManaged(`upstream ${name}`, process.execPath, [
    join(here, 'upstream-child.ts'),
    name,
    String(port),
    String(delayMs),
  ]);
  const m = await waitForLine(proc, /listening (\d+)/, 'listening');
  return {
    name,
    port: Number(m[1]),
    proc,
    kill: async () => {
      try {
        process.kill(-proc.pid, 'SIGKILL');
      } catch {
        // already gone
      }
      await proc.exited;
    },
    stop: () => proc.stop(2_000),
  };
}

export interface ChildCairn {
  readonly port: number;
  readonly adminPort: number;
  readonly origin: string;
  readonly adminOrigin: string;
  readonly proc: ManagedProcess;
  /** Sends SIGTERM (the graceful stop a service manager does); resolves once it exited. */
  terminate(): Promise<number | string>;
  stop(): Promise<void>;
}

/** `cairn` (node lib/cli/main.ts) as a child process on free loopback ports. */
export async function startChildCairn(
  args: readonly string[],
  nodeArgs: readonly string[] = [],
): Promise<ChildCairn> {
  const port = await freePort();
  const adminPort = await freePort();
  const proc = spawnManaged(`cairn :${port}`, process.execPath, [
    ...nodeArgs,
    join(repoRoot, 'lib', 'cli', 'main.ts'),
    '--listen',
    `127.0.0.1:${port}`,
    '--admin',
    `127.0.0.1:${adminPort}`,
    '--log-level',
    'info',
    ...args,
  ]);
  const adminOrigin = `http://127.0.0.1:${adminPort}`;
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (!proc.running()) throw new Error(`cairn exited at start:\n${proc.output()}`);
    const up = await fetch(`${adminOrigin}/health`, { signal: AbortSignal.timeout(1_000) }).then(
      (r) => r.status === 200,
      () => false,
    );
    if (up) break;
    if (Date.now() > deadline) {
      await proc.stop();
      throw new Error(`cairn did not start:\n${proc.output()}`);
    }
    await sleep(50);
  }
  return {
    port,
    adminPort,
    origin: `http://127.0.0.1:${port}`,
    adminOrigin,
    proc,
    terminate: async () => {
      try {
        process.kill(proc.pid, 'SIGTERM');
      } catch {
        // already gone
      }
      return proc.exited;
    },
    stop: () => proc.stop(3_000),
  };
}

// ---------------------------------------------------------------------------------------------
// Gauges

/** Open file descriptors of a process (this one by default). */
/**
 * A process and its descendants (a `cairn --workers N` control process and its workers), so the
 * gauges below cover every process that serves traffic.
 */
export function processTree(pid: number | 'self'): Array<number | 'self'> {
  const out: Array<number | 'self'> = [pid];
  for (let i = 0; i < out.length; i++) {
    const p = out[i] as number | 'self';
    let tasks: string[];
    try {
      tasks = readdirSync(`/proc/${p}/task`);
    } catch {
      continue; // exited meanwhile
    }
    for (const tid of tasks) {
      try {
        for (const c of readFileSync(`/proc/${p}/task/${tid}/children`, 'utf8').split(' ')) {
          if (c.trim() !== '') out.push(Number(c));
        }
      } catch {
        // the thread or process exited meanwhile
      }
    }
  }
  return out;
}

function sumOverTree(pid: number | 'self', one: (p: number | 'self') => number): number {
  let n = 0;
  for (const p of processTree(pid)) {
    try {
      n += one(p);
    } catch {
      // exited between the listing and the read
    }
  }
  return n;
}

/** Open file descriptors of a process and its descendants (this process by default). */
export function openFds(pid: number | 'self' = 'self'): number {
  return sumOverTree(pid, (p) => readdirSync(`/proc/${p}/fd`).length);
}

/** Resident set size of a process and its descendants, in bytes. */
export function rssBytes(pid: number | 'self' = 'self'): number {
  return sumOverTree(pid, (p) => {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${p}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  });
}

let gcFn: (() => void) | undefined;
/** A full GC (via --expose-gc turned on at run time), so heap figures compare live objects. */
export function fullGc(): void {
  if (gcFn === undefined) {
    setFlagsFromString('--expose-gc');
    gcFn = runInNewContext('gc') as () => void;
  }
  gcFn();
}

/** Least-squares slope of (x, y) points, in y units per x unit. */
export function slope(points: readonly (readonly [number, number])[]): number {
  const n = points.length;
  if (n < 2) return 0;
  let sx = 0;
  let sy = 0;
  for (const [x, y] of points) {
    sx += x;
    sy += y;
  }
  const mx = sx / n;
  const my = sy / n;
  let num = 0;
  let den = 0;
  for (const [x, y] of points) {
    num += (x - mx) * (y - my);
    den += (x - mx) ** 2;
  }
  return den === 0 ? 0 : num / den;
}
