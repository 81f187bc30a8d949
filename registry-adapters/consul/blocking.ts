// Consul's blocking-query rules (https://developer.hashicorp.com/consul/api-docs/features/blocking),
// kept pure so each rule has its own test:
// - send the last `X-Consul-Index` back as `index`;
// - an index lower than the previous one (a server restored, a cluster rebuilt, a follower
//   behind) resets to 0: the next request does not block and the answer is taken whole;
// - never block on index 0 after the first call: an answer of 0 is clamped to 1, or the next
//   request would return at once, and again, in a busy loop;
// - an answer with the same index is not a change (the wait timed out, or a write elsewhere
//   woke the query);
// - each loop is rate limited under churn, and backs off exponentially on errors.

export interface IndexStep {
  /** The `index` to send next; 0 means do not block. */
  readonly next: number;
  /** The answer differs from what the previous index described (or is the first answer). */
  readonly changed: boolean;
  /** The index went backwards: everything known from this endpoint may be out of date. */
  readonly reset: boolean;
}

/**
 * The step after an answer. `last` is the index the previous step returned as `next` (undefined
 * before the first answer); `returned` is the answer's `X-Consul-Index` (undefined if absent).
 */
export function nextBlockingIndex(last: number | undefined, returned: number | undefined): IndexStep {
  const r = Math.max(returned ?? 0, 1);
  if (last === undefined) return { next: r, changed: true, reset: false };
  if (r < last) return { next: 0, changed: true, reset: true };
  if (r === last) return { next: r, changed: false, reset: false };
  // After a reset `last` is 0 and the next answer (r >= 1) is taken whole.
  return { next: r, changed: true, reset: false };
}

export interface BackoffOptions {
  readonly minMs: number;
  readonly maxMs: number;
}

/** Delay before retry number `failures` (1-based): doubling from minMs to maxMs, +-20 % jitter. */
export function backoffDelay(
  failures: number,
  o: BackoffOptions,
  random: () => number = Math.random,
): number {
  const exp = Math.min(o.maxMs, o.minMs * 2 ** Math.max(0, Math.min(failures - 1, 30)));
  return Math.round(exp * (0.8 + 0.4 * random()));
}

/** Time to wait before the next request of a loop so starts are at least `minIntervalMs` apart. */
export function rateLimitDelay(lastStart: number, now: number, minIntervalMs: number): number {
  return Math.max(0, lastStart + minIntervalMs - now);
}
