// Registers one service instance in etcd the way Cairn's etcd adapter reads it: a JSON record at
// `<prefix>/services/<service>/<id>`, attached to a lease that this process keeps alive.
// If the process dies, the lease expires after its TTL and the instance disappears; `stop()`
// revokes the lease, which removes it at once.
//
// Used by `cairn register` (a sidecar for services that cannot talk to etcd) and by Node services
// directly:
//
//   const reg = await register({ endpoints: ['http://127.0.0.1:2379'], service: 'api',
//     address: '10.0.0.5', port: 8080, tags: ['urlprefix-/api strip=/api'] });
//   process.on('SIGTERM', () => void reg.stop().then(() => process.exit(0)));
//
// One sync loop owns all writes: it makes sure a live lease exists and that the record stored
// under it is the wanted one. A lost lease (etcd was away longer than the TTL, or someone revoked
// it), a status change and a failed write all just run the loop again; failures retry with a
// short doubling backoff, so the record comes back soon after etcd does.

import { isIPv6 } from 'node:net';
import type { Etcd3, Lease } from 'etcd3';
import { createEtcdClient, type EtcdConnectionOptions } from '../../registry-adapters/etcd/client.ts';
import { defaultEtcdPrefix, etcdLayout, instanceKey } from '../../registry-adapters/etcd/layout.ts';
import { encodeRecord, type InstanceRecord } from '../../registry-adapters/etcd/record.ts';
import type { InstanceStatus } from '../../routing/types.ts';
import { checkHttp, type CheckResult } from './health-check.ts';

export interface HealthCheckOptions {
  /** GET this URL: 2xx passing, 429 warning, anything else critical. */
  readonly url: string;
  /** Time between checks, ms (default 5000). */
  readonly intervalMs?: number;
  /** Time one check may take, ms (default 2000). */
  readonly timeoutMs?: number;
}

export interface RegistrationOptions extends EtcdConnectionOptions {
  /** Cairn's etcd key prefix (default `/cairn`). */
  readonly prefix?: string;
  readonly service: string;
  /** Instance id, the last key segment (default `<address>:<port>`). */
  readonly id?: string;
  readonly address: string;
  readonly port: number;
  readonly tags?: readonly string[];
  /** Per-instance weight (Cairn's lbweight). */
  readonly weight?: number;
  readonly meta?: Readonly<Record<string, string>>;
  /** Initial status; without a check and without this, the record has no status (= passing). */
  readonly status?: InstanceStatus;
  /** Lease TTL in seconds (default 10; etcd's minimum is about 2). */
  readonly ttlSeconds?: number;
  /** An HTTP health check that sets the status. The first result is known before registering. */
  readonly check?: HealthCheckOptions;
  /** First and largest delay between retries while etcd fails, ms (default 100, 2000). */
  readonly retryMinMs?: number;
  readonly retryMaxMs?: number;
  /** Progress reports (the CLI logs them). */
  readonly onEvent?: (event: RegistrarEvent) => void;
  /** Use this client (not closed by stop()) instead of one built from the connection options. */
  readonly client?: Etcd3;
}

export type RegistrarEvent =
  | { readonly type: 'registered'; readonly key: string; readonly lease: string; readonly record: string }
  | { readonly type: 'status'; readonly status: InstanceStatus; readonly detail: string }
  | { readonly type: 'retry'; readonly error: string; readonly inMs: number }
  | { readonly type: 'lease-lost'; readonly error: string }
  | { readonly type: 'deregistered'; readonly key: string };

/** Registers an instance and resolves once its record is in etcd (retrying until it is). */
export async function register(options: RegistrationOptions): Promise<Registrar> {
  const r = new Registrar(options);
  await r.start();
  return r;
}

export class Registrar {
  readonly key: string;
  private readonly options: RegistrationOptions;
  private readonly client: Etcd3;
  private readonly ownsClient: boolean;
  private readonly ttl: number;
  private readonly retryMinMs: number;
  private readonly retryMaxMs: number;
  private record: InstanceRecord;
  private desired: string;
  /** The record stored under the current lease, if any. */
  private written: string | undefined;
  private lease: Lease | undefined;
  private syncing: Promise<void> | undefined;
  private again = false;
  private retryMs: number;
  private retryTimer: NodeJS.Timeout | undefined;
  private checkTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  private started: Promise<void> | undefined;
  private firstWrite: (() => void) | undefined;

  /** Throws for unusable options (bad port, unreadable TLS file). */
  constructor(options: RegistrationOptions) {
    const problem = validate(options);
    if (problem !== undefined) throw new Error(problem);
    this.options = options;
    const id = options.id ?? defaultInstanceId(options.address, options.port);
    this.key = instanceKey(etcdLayout(options.prefix ?? defaultEtcdPrefix), options.service, id);
    this.ttl = Math.max(1, Math.ceil(options.ttlSeconds ?? 10));
    this.retryMinMs = options.retryMinMs ?? 100;
    this.retryMaxMs = options.retryMaxMs ?? 2000;
    this.retryMs = this.retryMinMs;
    this.record = {
      address: options.address,
      port: options.port,
      tags: options.tags ?? [],
      ...(options.weight !== undefined ? { weight: options.weight } : {}),
      ...(options.status !== undefined ? { status: options.status } : {}),
      ...(options.meta !== undefined ? { meta: options.meta } : {}),
    };
    this.desired = encodeRecord(this.record);
    this.ownsClient = options.client === undefined;
    this.client = options.client ?? createEtcdClient(options);
  }

  /** The status in the record (undefined: none written, which Cairn reads as passing). */
  get status(): InstanceStatus | undefined {
    return this.record.status;
  }

  /** Runs the first health check (if any), then registers; resolves once the record is stored. */
  start(): Promise<void> {
    this.started ??= this.startNow();
    return this.started;
  }

  /** Changes the record's status (a library user's own health logic, maintenance). */
  setStatus(status: InstanceStatus): void {
    if (this.record.status === status) return;
    this.record = { ...this.record, status };
    this.desired = encodeRecord(this.record);
    if (this.started !== undefined) this.kick();
  }

  /**
   * Stops keeping the lease alive. `revoke` (default true) deletes the record at once; with
   * false the record lives until the lease's TTL runs out.
   */
  async stop(options: { revoke?: boolean } = {}): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearTimeout(this.retryTimer);
    clearTimeout(this.checkTimer);
    await this.syncing;
    const lease = this.lease;
    this.lease = undefined;
    try {
      if (lease !== undefined) {
        if (options.revoke === false) lease.release();
        else {
          await lease.revoke();
          this.options.onEvent?.({ type: 'deregistered', key: this.key });
        }
      }
    } finally {
      this.firstWrite?.();
      if (this.ownsClient) this.client.close();
    }
  }

  private async startNow(): Promise<void> {
    const check = this.options.check;
    if (check !== undefined) {
      this.applyCheck(await checkHttp(check.url, check.timeoutMs ?? 2000));
      this.scheduleCheck();
    }
    if (this.stopped) return;
    await new Promise<void>((resolve) => {
      this.firstWrite = resolve;
      this.kick();
    });
  }

  // ---- health checks ----

  private scheduleCheck(): void {
    const check = this.options.check;
    if (check === undefined || this.stopped) return;
    this.checkTimer = setTimeout(() => {
      void checkHttp(check.url, check.timeoutMs ?? 2000).then((r) => {
        if (this.stopped) return;
        this.applyCheck(r);
        this.scheduleCheck();
      });
    }, check.intervalMs ?? 5000);
  }

  private applyCheck(r: CheckResult): void {
    if (this.record.status === r.status) return;
    this.options.onEvent?.({ type: 'status', status: r.status, detail: r.detail });
    this.setStatus(r.status);
  }

  // ---- the sync loop ----

  private kick(): void {
    if (this.stopped) return;
    if (this.syncing !== undefined) {
      this.again = true;
      return;
    }
    const run = async (): Promise<void> => {
      try {
        do {
          this.again = false;
          try {
            await this.syncOnce();
            this.retryMs = this.retryMinMs;
          } catch (e) {
            this.again = false;
            this.retryLater(errorText(e));
          }
        } while (this.again && !this.stopped);
      } finally {
        this.syncing = undefined;
      }
    };
    this.syncing = run();
  }

  private async syncOnce(): Promise<void> {
    if (this.stopped) return;
    let lease = this.lease;
    if (lease === undefined || lease.revoked()) {
      lease = this.newLease();
      this.lease = lease;
      this.written = undefined;
    }
    const record = this.desired;
    if (this.written === record) return;
    await lease.put(this.key).value(record);
    if (this.lease !== lease) return; // lost meanwhile: the next round writes under a new lease
    const first = this.written === undefined;
    this.written = record;
    if (first) {
      this.options.onEvent?.({ type: 'registered', key: this.key, lease: await lease.grant(), record });
    }
    this.firstWrite?.();
    this.firstWrite = undefined;
  }

  private newLease(): Lease {
    const lease = this.client.lease(this.ttl);
    lease.on('lost', (err: Error) => {
      if (this.lease !== lease || this.stopped) return;
      this.lease = undefined;
      this.written = undefined;
      this.options.onEvent?.({ type: 'lease-lost', error: errorText(err) });
      // During a sync this only asks for another round; a lease whose grant failed is "lost"
      // too, and then the failed put schedules the retry (with backoff) instead.
      if (this.retryTimer === undefined) this.kick();
    });
    return lease;
  }

  private retryLater(error: string): void {
    if (this.stopped) return;
    const delay = this.retryMs;
    this.retryMs = Math.min(this.retryMs * 2, this.retryMaxMs);
    this.options.onEvent?.({ type: 'retry', error, inMs: delay });
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.kick();
    }, delay);
  }
}

/** `10.0.0.5:8080`, `[fd00::5]:8080`. */
export function defaultInstanceId(address: string, port: number): string {
  return isIPv6(address) ? `[${address}]:${port}` : `${address}:${port}`;
}

function validate(o: RegistrationOptions): string | undefined {
  if (!/^[^\s/]+$/.test(o.service))
    return `service: expected a name without spaces or '/', got ${JSON.stringify(o.service)}`;
  if (o.id !== undefined && !/^\S+$/.test(o.id))
    return `id: expected an id without spaces, got ${JSON.stringify(o.id)}`;
  if (!Number.isInteger(o.port) || o.port < 1 || o.port > 65535)
    return `port: expected 1 to 65535, got ${o.port}`;
  if (o.address.trim() === '' || /\s|\//.test(o.address)) {
    return `address: expected a host name or IP (no scheme, no port), got ${JSON.stringify(o.address)}`;
  }
  if (o.weight !== undefined && (!Number.isInteger(o.weight) || o.weight < 1)) {
    return `weight: expected a positive integer, got ${o.weight}`;
  }
  if (o.ttlSeconds !== undefined && !(o.ttlSeconds > 0))
    return `ttl: expected a positive duration, got ${o.ttlSeconds}`;
  for (const t of o.tags ?? []) if (t.trim() === '') return 'tag: expected a non-empty tag';
  return undefined;
}

function errorText(e: unknown): string {
  const m = e instanceof Error ? e.message : String(e);
  return (m.split('\n')[0] ?? m).trim() || (e instanceof Error ? e.name : 'unknown error');
}
