// What the admin listener of a control process (`--workers N`, N > 1) asks its worker pool.

export interface WorkerJson {
  /** 1..N; a restarted worker keeps its slot's id. */
  readonly id: number;
  /** undefined while the slot waits for a restart. */
  readonly pid: number | null;
  readonly state: 'starting' | 'listening' | 'restarting' | 'draining' | 'stopped';
  /** ISO time the current process of the slot started. */
  readonly up_since: string;
  /** Times the slot's process died and was restarted. */
  readonly restarts: number;
  /** Version of the table the worker runs ('' before its first). */
  readonly table_version: string;
  /** Requests (TCP: connections) the current process of the slot has served, as last reported. */
  readonly requests: number;
}

export interface ClusterView {
  workers(): WorkerJson[];
  /** Workers accepting proxy traffic now (0 while they start: /health is not ready yet). */
  readonly listening: number;
  /** The Prometheus exposition with the workers' metrics summed in. */
  metrics(): Promise<{ readonly text: string; readonly contentType: string }>;
}
