// The IPC messages between the control process and its workers (`--workers N`). The channel uses
// Node's `advanced` serialization (structured clone), so the table travels as one string that
// the control process serialised once per swap.

/** Control -> worker. */
export type ToWorker =
  /** Worker configuration beyond its argv: the proxy ports the control process resolved. */
  | { readonly t: 'init'; readonly id: number; readonly ports: readonly number[] }
  /** A table: its build inputs as JSON (see table-wire.ts) and the version it must hash to. */
  | { readonly t: 'table'; readonly version: string; readonly inputs: string; readonly sentAt: number }
  | { readonly t: 'metrics'; readonly req: number }
  /** Stop accepting, finish in-flight requests (up to waitMs), then exit. */
  | { readonly t: 'drain'; readonly waitMs: number };

/** Per-cell traffic since the worker's previous report (cells keyed as Traffic keys them). */
export interface CellDelta {
  readonly key: string;
  readonly requests: number;
  readonly errors5xx: number;
  readonly connectErrors: number;
  /** Latency samples (ms) recorded since the previous report, at most one ring's worth. */
  readonly latencies: readonly number[];
}

/** Worker -> control. */
export type FromWorker =
  | { readonly t: 'hello'; readonly pid: number }
  | { readonly t: 'listening' }
  | { readonly t: 'start-failed'; readonly error: string }
  | { readonly t: 'applied'; readonly version: string; readonly applyMs: number; readonly sentAt: number }
  | { readonly t: 'table-error'; readonly expected: string; readonly got: string }
  | { readonly t: 'metrics'; readonly req: number; readonly metrics: unknown[] }
  /** Once a second (always: open counts and ejections may have dropped to none): traffic deltas and per-target state. */
  | {
      readonly t: 'stats';
      readonly cells: readonly CellDelta[];
      readonly open: readonly (readonly [string, number])[];
      /** Target keys this worker does not send traffic to now (passively ejected, check failing). */
      readonly ejected: readonly string[];
    };
