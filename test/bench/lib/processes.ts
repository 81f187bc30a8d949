// Starting the bench's servers and making sure they all die with the bench.
//
// Every child is spawned `detached`, which makes it the leader of a new process group; killing
// the group (`kill -<pgid>`) also takes its descendants (nginx's worker, anything a proxy forks).
// The registry below is emptied on normal cleanup, and the `exit` handler SIGKILLs whatever is
// left if the bench dies some other way.

import { type ChildProcess, spawn } from 'node:child_process';
import { createServer } from 'node:net';

interface Tracked {
  readonly child: ChildProcess;
  readonly name: string;
}

const running = new Set<Tracked>();

export function track(child: ChildProcess, name: string): void {
  if (child.pid !== undefined) running.add({ child, name });
}

export function untrack(child: ChildProcess): void {
  for (const t of running) if (t.child === child) running.delete(t);
}

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    /* group already gone */
  }
}

const exited = (child: ChildProcess): boolean => child.exitCode !== null || child.signalCode !== null;

/** SIGTERM every tracked process group, then SIGKILL those still alive after `graceMs`. */
export async function killAll(graceMs = 2000): Promise<void> {
  const all = [...running];
  for (const t of all) killGroup(t.child.pid as number, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline && all.some((t) => !exited(t.child))) await sleep(50);
  // SIGKILL the groups even when the leader exited: a worker may have outlived its master.
  for (const t of all) killGroup(t.child.pid as number, 'SIGKILL');
  running.clear();
}

let hooked = false;
/** Last resort: on any exit, SIGKILL every process group still registered. */
export function killAllOnExit(): void {
  if (hooked) return;
  hooked = true;
  process.on('exit', () => {
    for (const t of running) killGroup(t.child.pid as number, 'SIGKILL');
  });
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(sig, () => {
      process.stderr.write(`\nbench: ${sig}, stopping servers\n`);
      void killAll(500).finally(() => process.exit(130));
    });
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A port free on 127.0.0.1 right now (the OS picks it; nothing else binds loopback ports here by chance). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      s.close(() => resolve(port));
    });
  });
}

export interface Pinned {
  readonly name: string;
  readonly child: ChildProcess;
  /** The pid of the server itself (taskset execs it, so the same as the spawned pid). */
  readonly pid: number;
}

/**
 * Spawns `command args` pinned to `cpu` with taskset (inherited by every thread and child),
 * in its own process group. `stdout`/`stderr` are file descriptors (or 'ignore').
 */
export function spawnPinned(
  name: string,
  cpu: string,
  command: string,
  args: readonly string[],
  stdio: { stdout: number | 'ignore'; stderr: number | 'ignore'; cwd?: string; env?: NodeJS.ProcessEnv },
): Pinned {
  const child = spawn('taskset', ['-c', cpu, command, ...args], {
    stdio: ['ignore', stdio.stdout, stdio.stderr],
    detached: true,
    ...(stdio.cwd !== undefined ? { cwd: stdio.cwd } : {}),
    ...(stdio.env !== undefined ? { env: stdio.env } : {}),
  });
  if (child.pid === undefined) throw new Error(`${name}: could not spawn ${command}`);
  track(child, name);
  child.once('error', () => untrack(child));
  return { name, child, pid: child.pid };
}

export interface HttpCheck {
  readonly status: number;
  readonly bodyLength: number;
}

/** One GET; resolves to the status and body length, or an error message. */
export async function httpGet(url: string, timeoutMs = 2000): Promise<HttpCheck | string> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    const body = await res.arrayBuffer();
    return { status: res.status, bodyLength: body.byteLength };
  } catch (e) {
    const cause = (e as { cause?: { code?: string } }).cause;
    return cause?.code ?? (e as Error).message;
  }
}

/**
 * Polls `url` until it answers `expectStatus`, the process exits, or `timeoutMs` passes.
 * Resolves to undefined when ready, or to a reason.
 */
export async function waitForHttp(
  p: Pinned,
  url: string,
  expectStatus: number,
  timeoutMs = 15_000,
): Promise<string | undefined> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer';
  while (Date.now() < deadline) {
    if (exited(p.child))
      return `${p.name} exited (${p.child.exitCode ?? p.child.signalCode}) before answering`;
    const r = await httpGet(url, 1000);
    if (typeof r !== 'string' && r.status === expectStatus) return undefined;
    last = typeof r === 'string' ? r : `status ${r.status}`;
    await sleep(100);
  }
  return `${p.name}: ${url} not ready after ${timeoutMs} ms (last: ${last})`;
}

export { exited as hasExited };
