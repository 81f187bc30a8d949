// One blocking-query loop: ask, wait for Consul to answer a change, hand the answer over, ask
// again from the new index. Rate limited under churn, exponential backoff on errors, stopped by
// an AbortSignal (which also aborts the long-poll in flight).

import { setTimeout as sleep } from 'node:timers/promises';
import { type ConsulClient, ConsulError, type ConsulResponse, type Query } from './api.ts';
import {
  backoffDelay,
  type BackoffOptions,
  type IndexStep,
  nextBlockingIndex,
  rateLimitDelay,
} from './blocking.ts';

export interface BlockingLoopOptions {
  readonly client: ConsulClient;
  readonly path: string;
  /** Query parameters besides `index` and `wait` (`stale`, `dc`, `recurse`...). */
  readonly query: Query;
  /** Statuses that are answers, not errors (404 for a KV prefix that does not exist). */
  readonly accept?: readonly number[];
  readonly waitMs: number;
  readonly minIntervalMs: number;
  readonly retry: BackoffOptions;
  readonly signal: AbortSignal;
  /**
   * Called for every answer that is a change (the first, a new index, a reset). Throwing (a
   * malformed answer) counts as a failure: the index is not advanced and the loop backs off.
   * A returned number delays the next request by that many ms (an answer that will not change
   * soon, such as a 403).
   */
  readonly onAnswer: (res: ConsulResponse, step: IndexStep) => number | undefined | void;
  /** The loop failed (message) or answered again after failing (undefined). */
  readonly onState: (error: string | undefined) => void;
  readonly now?: () => number;
}

export function errorText(e: unknown): string {
  const m = e instanceof Error ? e.message : String(e);
  return (m.split('\n')[0] ?? m).trim();
}

function isAbort(e: unknown): boolean {
  return (e as { name?: unknown }).name === 'AbortError';
}

/** Sleeps `ms` unless aborted; false when aborted. */
export async function pause(ms: number, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted) return false;
  if (ms <= 0) return true;
  try {
    await sleep(ms, undefined, { signal });
    return true;
  } catch (e) {
    if (isAbort(e)) return false;
    throw e;
  }
}

export async function runBlockingLoop(o: BlockingLoopOptions): Promise<void> {
  const now = o.now ?? Date.now;
  let last: number | undefined;
  let failures = 0;
  let lastStart = Number.NEGATIVE_INFINITY;
  let retryAfter = 0;
  let answered = false;
  while (!o.signal.aborted) {
    const delay =
      failures > 0
        ? Math.max(backoffDelay(failures, o.retry), retryAfter)
        : rateLimitDelay(lastStart, now(), o.minIntervalMs);
    if (!(await pause(delay, o.signal))) return;
    lastStart = now();
    // Index 0 (first call, or after a reset) does not block; never send wait without an index.
    // Nor after a failure: the server may have restarted with a lower index, and a query
    // blocking on the old one would then hang for the whole wait before the reset rule could
    // see the lower index.
    const blocking = last !== undefined && last > 0 && failures === 0;
    let res: ConsulResponse;
    try {
      res = await o.client.get(
        o.path,
        { ...o.query, ...(blocking ? { index: last, wait: waitParam(o.waitMs) } : {}) },
        {
          signal: o.signal,
          ...(blocking ? { blockingWaitMs: o.waitMs } : {}),
          ...(o.accept !== undefined ? { accept: o.accept } : {}),
        },
      );
    } catch (e) {
      if (o.signal.aborted) return;
      failures++;
      retryAfter = e instanceof ConsulError ? (e.retryAfterMs ?? 0) : 0;
      o.onState(errorText(e));
      continue;
    }
    const step = nextBlockingIndex(last, res.index);
    let hold = 0;
    if (step.changed) {
      try {
        hold = o.onAnswer(res, step) ?? 0;
      } catch (e) {
        if (o.signal.aborted) return;
        failures++;
        retryAfter = 0;
        o.onState(errorText(e));
        continue;
      }
    }
    last = step.next;
    if (failures > 0 || !answered) {
      failures = 0;
      answered = true;
      o.onState(undefined);
    }
    if (hold > 0 && !(await pause(hold, o.signal))) return;
  }
}

/** Consul's `wait` (a Go duration). */
export function waitParam(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${Math.max(1, Math.round(ms))}ms`;
}

/** Runs `fn` over `items` with at most `limit` at once; rejects with the first failure. */
export async function mapLimit<T>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  let failed: unknown;
  const worker = async (): Promise<void> => {
    while (failed === undefined && next < items.length) {
      const item = items[next++] as T;
      try {
        await fn(item);
      } catch (e) {
        failed ??= e;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  if (failed !== undefined) throw failed;
}
