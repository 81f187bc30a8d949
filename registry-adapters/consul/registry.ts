// The Consul registry adapter: one DatacenterWatch per datacenter, a blocking watch on the KV
// prefix holding manual route commands, optional self-registration, and the adapter contract
// (full snapshots; failures reported as state, never as an empty snapshot).

import { hostname } from 'node:os';
import type { Problem, ServiceInstance, Snapshot } from '../../routing/types.ts';
import type {
  ManualValue,
  RegistryAdapter,
  RegistryState,
  SnapshotListener,
  StateListener,
  WriteManualResult,
} from '../types.ts';
import { ConsulClient, type ConsulTls } from './api.ts';
import type { ChecksRequired } from './health.ts';
import { kvEntries, kvValue, manualText, normaliseKvPath } from './kv.ts';
import { errorText, pause, runBlockingLoop } from './loop.ts';
import { backoffDelay } from './blocking.ts';
import { type ConsulLog, DatacenterWatch, silentLog, type WatchCounters } from './watch.ts';

/** Cairn registering itself in Consul, with an HTTP check on the admin `/health`. */
export interface SelfRegistration {
  readonly name: string;
  /** Default `<name>-<hostname>-<port>`. */
  readonly id?: string;
  readonly tags?: readonly string[];
  /** Address to advertise; '' lets Consul use the node's address. */
  readonly address: string;
  readonly port: number;
  /** URL Consul's agent polls, e.g. `http://127.0.0.1:9998/health`. */
  readonly checkUrl: string;
  readonly checkInterval?: string;
  readonly checkTimeout?: string;
  readonly deregisterCriticalServiceAfter?: string;
}

export interface ConsulRegistryOptions {
  /** `http(s)://host:port`; `?dc=a,b` watches those datacenters instead of the agent's. */
  readonly address: string;
  /** Adapter name (default `consul:<address>`). */
  readonly name?: string;
  readonly token?: string | undefined;
  readonly tls?: ConsulTls | undefined;
  readonly tagPrefix?: string;
  /** Default `all`: an instance's status is the worst of its checks. */
  readonly checksRequired?: ChecksRequired;
  /** `?consistent` reads instead of `?stale` (default false). */
  readonly consistent?: boolean;
  /** Blocking-query wait, ms (default 5 min; Consul caps it at 10 min). */
  readonly waitMs?: number;
  /** KV prefix of the manual route commands (default `cairn/config`); '' turns it off. */
  readonly kvPath?: string;
  /** Datacenters to watch (default: from the address's `dc=`, else the agent's). */
  readonly datacenters?: readonly string[];
  /** Minimum time between two requests of one blocking loop, ms (default 250). */
  readonly minIntervalMs?: number;
  readonly retryMinMs?: number;
  readonly retryMaxMs?: number;
  /** `/v1/health/service` fetches at once per datacenter (default 8). */
  readonly fetchConcurrency?: number;
  /** Minimum time between two sweeps, ms (default 1000). */
  readonly sweepMinIntervalMs?: number;
  /**
   * Watch every check instead of the non-passing ones only (default: only under
   * checks-required=one, which needs them). For comparison in the benchmark.
   */
  readonly watchAllChecks?: boolean;
  readonly requestTimeoutMs?: number;
  readonly register?: SelfRegistration | undefined;
  readonly log?: ConsulLog;
  readonly now?: () => number;
}

export interface ConsulRegistryStats {
  readonly requests: number;
  readonly endpoints: Record<string, { requests: number; bytes: number; errors: number }>;
  readonly watches: Record<string, WatchCounters>;
}

/** `http://h:8500?dc=a,b` -> base address and datacenters. */
export function parseConsulAddress(address: string): { base: string; datacenters: string[] } {
  let u: URL;
  try {
    u = new URL(address);
  } catch {
    return { base: address.replace(/\/+$/, ''), datacenters: [] };
  }
  const datacenters: string[] = [];
  for (const v of u.searchParams.getAll('dc')) {
    for (const dc of v.split(','))
      if (dc.trim() !== '' && !datacenters.includes(dc.trim())) datacenters.push(dc.trim());
  }
  u.search = '';
  u.hash = '';
  return { base: u.toString().replace(/\/+$/, ''), datacenters };
}

export class ConsulRegistry implements RegistryAdapter {
  readonly name: string;
  readonly client: ConsulClient;
  private readonly o: ConsulRegistryOptions;
  private readonly log: ConsulLog;
  private readonly now: () => number;
  private readonly kvPath: string;
  private readonly watches: DatacenterWatch[];
  private readonly abort = new AbortController();
  private readonly loopErrors = new Map<string, string>();
  private readonly tasks = new Set<Promise<void>>();
  private onSnapshot: SnapshotListener | undefined;
  private onState: StateListener | undefined;
  private state: RegistryState | undefined;
  private stopped = false;
  private delivered = false;
  private manual = '';
  private kvLoaded: boolean;
  private kvDenied = false;
  private generation = 0;
  private emittedGeneration = -1;
  private emitQueued = false;
  private firstOutcome: (() => void) | undefined;
  private registered = false;
  private registering = false;
  private registerFailures = 0;
  private deregistered: Promise<void> | undefined;

  constructor(options: ConsulRegistryOptions) {
    this.o = options;
    const { base, datacenters } = parseConsulAddress(options.address);
    this.name = options.name ?? `consul:${options.address}`;
    this.log = options.log ?? silentLog;
    this.now = options.now ?? Date.now;
    this.kvPath = normaliseKvPath(options.kvPath ?? 'cairn/config');
    this.kvLoaded = this.kvPath === '';
    const fetchConcurrency = options.fetchConcurrency ?? 8;
    const dcs: readonly (string | undefined)[] =
      options.datacenters ?? (datacenters.length > 0 ? datacenters : [undefined]);
    this.client = new ConsulClient({
      address: base,
      token: options.token,
      tls: options.tls,
      // Per datacenter: two long-polls, fetches and sweep reads; plus KV and registration. A
      // long-poll must never wait behind the others for a connection.
      connections: dcs.length * (2 + 2 * fetchConcurrency) + 4,
      ...(options.requestTimeoutMs !== undefined ? { requestTimeoutMs: options.requestTimeoutMs } : {}),
    });
    this.watches = dcs.map(
      (dc) =>
        new DatacenterWatch(
          this.client,
          {
            dc,
            tagPrefix: options.tagPrefix ?? 'urlprefix-',
            checksRequired: options.checksRequired ?? 'all',
            consistency: options.consistent === true ? 'consistent' : 'stale',
            waitMs: options.waitMs ?? 300_000,
            minIntervalMs: options.minIntervalMs ?? 250,
            retry: { minMs: options.retryMinMs ?? 250, maxMs: options.retryMaxMs ?? 5_000 },
            fetchConcurrency,
            sweepMinIntervalMs: options.sweepMinIntervalMs ?? 1_000,
            nonPassingChecksOnly: !(options.watchAllChecks ?? options.checksRequired === 'one'),
            registry: this.name,
          },
          {
            changed: () => this.changed(),
            loopState: (loop, error) => this.loopState(`${dc ?? 'local'}:${loop}`, error),
            reset: () => this.selfRegister(),
          },
          this.log,
        ),
    );
  }

  async start(onSnapshot: SnapshotListener, onState: StateListener): Promise<void> {
    if (this.onSnapshot !== undefined) throw new Error(`${this.name}: already started`);
    this.onSnapshot = onSnapshot;
    this.onState = onState;
    const outcome = new Promise<void>((resolve) => {
      this.firstOutcome = resolve;
    });
    for (const w of this.watches) w.start();
    if (this.kvPath !== '') this.track(this.watchKv());
    this.selfRegister();
    await outcome;
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.firstOutcome?.();
    this.abort.abort();
    await Promise.all(this.watches.map((w) => w.stop()));
    while (this.tasks.size > 0) await Promise.allSettled([...this.tasks]);
    await this.deregisterSelf();
    await this.client.close();
  }

  /** The current state, or undefined before the first answer or failure. */
  currentState(): RegistryState | undefined {
    return this.state;
  }

  /** Requests sent to Consul per endpoint, and what the watches did. */
  stats(): ConsulRegistryStats {
    const endpoints: Record<string, { requests: number; bytes: number; errors: number }> = {};
    for (const [k, v] of this.client.stats()) endpoints[k] = { ...v };
    const watches: Record<string, WatchCounters> = {};
    for (const w of this.watches) watches[w.label] = { ...w.counters };
    return { requests: this.client.totalRequests(), endpoints, watches };
  }

  // ---- manual route commands (KV) ---------------------------------------------------------------

  async readManual(): Promise<ManualValue> {
    if (this.kvPath === '') throw new Error(`${this.name}: the KV path is turned off`);
    // Consistent, so the version is the latest and a write based on it can succeed.
    const res = await this.client.get(
      `/v1/kv/${this.kvPath}`,
      { consistent: '', ...this.kvDc() },
      { accept: [404] },
    );
    const e = res.status === 404 ? undefined : kvValue(res.body);
    return { value: e?.value ?? '', version: String(e?.modifyIndex ?? 0) };
  }

  async writeManual(value: string, version: string): Promise<WriteManualResult> {
    if (this.kvPath === '') return { ok: false, error: `${this.name}: the KV path is turned off` };
    if (!/^\d+$/.test(version))
      return { ok: false, error: `version must be a Consul ModifyIndex, got "${version}"` };
    try {
      // cas=0 creates only if absent; cas=N replaces only if ModifyIndex is still N.
      const res = await this.client.put(`/v1/kv/${this.kvPath}`, { cas: version, ...this.kvDc() }, value);
      if (res.body === true) {
        const now = await this.readManual();
        return { ok: true, version: now.version };
      }
      return { ok: false, conflict: await this.readManual() };
    } catch (e) {
      return { ok: false, error: errorText(e) };
    }
  }

  private kvDc(): Record<string, string> {
    const dc = this.o.datacenters?.[0] ?? parseConsulAddress(this.o.address).datacenters[0];
    return dc !== undefined ? { dc } : {};
  }

  private async watchKv(): Promise<void> {
    const consistency = this.o.consistent === true ? 'consistent' : 'stale';
    await runBlockingLoop({
      client: this.client,
      path: `/v1/kv/${this.kvPath}`,
      query: { recurse: '', [consistency]: '', ...this.kvDc() },
      accept: [403, 404],
      waitMs: this.o.waitMs ?? 300_000,
      minIntervalMs: this.o.minIntervalMs ?? 250,
      retry: { minMs: this.o.retryMinMs ?? 250, maxMs: this.o.retryMaxMs ?? 5_000 },
      signal: this.abort.signal,
      onAnswer: (res) => {
        // A token without key:read gets 403 (or, listing, an empty 404) while it may read
        // services: the overrides are reported as unreadable, the services still route.
        const denied = res.status === 403;
        const entries = denied ? [] : kvEntries(res.status === 404 ? undefined : res.body, this.kvPath);
        if ('error' in entries) throw new Error(entries.error);
        const text = manualText(entries);
        const first = !this.kvLoaded;
        this.kvLoaded = true;
        if (text !== this.manual || first) {
          this.manual = text;
          this.changed();
        }
        if (denied) this.setKvDenied(true);
        else if (entries.length > 0) this.setKvDenied(false);
        // Consul filters a listing the token may not read down to nothing: ask for the key
        // itself, which answers 403 in that case, to tell "no overrides" from "not allowed".
        else if (res.status === 404) this.track(this.probeKvAccess());
        // Permissions change rarely; do not ask again at the churn rate.
        return denied ? 30_000 : undefined;
      },
      onState: (e) => this.loopState('kv', e),
    });
  }

  private async probeKvAccess(): Promise<void> {
    try {
      const res = await this.client.get(
        `/v1/kv/${this.kvPath}`,
        { stale: '', ...this.kvDc() },
        { accept: [403, 404], signal: this.abort.signal },
      );
      this.setKvDenied(res.status === 403);
    } catch {
      // Unreachable: the KV loop reports it.
    }
  }

  private setKvDenied(denied: boolean): void {
    if (denied === this.kvDenied || this.stopped) return;
    this.kvDenied = denied;
    if (denied) this.log.warn({ key: this.kvPath }, 'consul: the ACL token may not read the KV path (403)');
    this.changed();
  }

  // ---- snapshots and state ----------------------------------------------------------------------

  private changed(): void {
    this.generation++;
    if (this.emitQueued || this.stopped) return;
    this.emitQueued = true;
    // Several watches and the KV loop changing in one tick make one snapshot.
    setImmediate(() => {
      this.emitQueued = false;
      this.emit();
    });
  }

  private emit(): void {
    if (this.stopped || !this.kvLoaded || this.generation === this.emittedGeneration) return;
    if (!this.watches.every((w) => w.isLoaded)) return;
    this.emittedGeneration = this.generation;
    const instances: ServiceInstance[] = [];
    const problems: Problem[] = [];
    if (this.kvDenied) {
      problems.push({
        source: 'registry',
        severity: 'warning',
        reason: `the Consul ACL token may not read the KV path "${this.kvPath}" (403): its manual route commands are ignored`,
        input: `${this.name} /v1/kv/${this.kvPath}`,
      });
    }
    for (const w of this.watches) {
      for (const i of w.instances()) instances.push(i);
      for (const p of w.problems()) problems.push(p);
    }
    const snapshot: Snapshot = { instances, manual: this.manual, problems };
    this.delivered = true;
    this.onSnapshot?.(snapshot);
    this.updateState();
    this.firstOutcome?.();
    this.firstOutcome = undefined;
  }

  private loopState(loop: string, error: string | undefined): void {
    if (this.stopped) return;
    const had = this.loopErrors.size > 0;
    if (error === undefined) this.loopErrors.delete(loop);
    else this.loopErrors.set(loop, error);
    if (had && this.loopErrors.size === 0) {
      // Back after an outage: the agent may have lost Cairn's registration.
      this.selfRegister();
    }
    this.updateState();
    if (error !== undefined) {
      this.firstOutcome?.();
      this.firstOutcome = undefined;
    }
  }

  private updateState(): void {
    if (this.stopped) return;
    const first = this.loopErrors.values().next();
    if (first.done === true) {
      if (this.delivered) this.setState('up', undefined);
      return;
    }
    const more = this.loopErrors.size > 1 ? ` (and ${this.loopErrors.size - 1} more)` : '';
    this.setState(this.delivered ? 'stale' : 'down', `${first.value}${more}`);
  }

  private setState(name: RegistryState['state'], error: string | undefined): void {
    const prev = this.state;
    if (prev !== undefined && prev.state === name && prev.error === error) return;
    const since = prev !== undefined && prev.state === name ? prev.since : this.now();
    this.state = { registry: this.name, state: name, since, ...(error !== undefined ? { error } : {}) };
    if (prev !== undefined && prev.state !== name) {
      // The server logs every non-up state; say when it is over.
      const fields = { registry: this.name, state: name, ...(error !== undefined ? { error } : {}) };
      if (name === 'up') this.log.info(fields, 'consul registry back up');
      else this.log.debug(fields, `consul registry ${name}`);
    }
    this.onState?.(this.state);
  }

  private track(p: Promise<void>): void {
    const t = p.catch((e: unknown) => this.log.warn({ err: errorText(e) }, 'consul task failed'));
    this.tasks.add(t);
    void t.finally(() => this.tasks.delete(t));
  }

  // ---- self-registration ------------------------------------------------------------------------

  /** The service id Cairn registers itself under, if it does. */
  get selfId(): string | undefined {
    const r = this.o.register;
    if (r === undefined) return undefined;
    return r.id ?? `${r.name}-${hostname()}-${r.port}`;
  }

  private selfRegister(): void {
    const r = this.o.register;
    if (r === undefined || this.stopped || this.registering || this.deregistered !== undefined) return;
    this.registering = true;
    this.track(this.registerLoop(r));
  }

  private async registerLoop(r: SelfRegistration): Promise<void> {
    const body = JSON.stringify({
      ID: this.selfId,
      Name: r.name,
      Tags: [...(r.tags ?? [])],
      ...(r.address !== '' ? { Address: r.address } : {}),
      Port: r.port,
      Check: {
        HTTP: r.checkUrl,
        Interval: r.checkInterval ?? '1s',
        Timeout: r.checkTimeout ?? '3s',
        DeregisterCriticalServiceAfter: r.deregisterCriticalServiceAfter ?? '90m',
      },
    });
    try {
      while (!this.stopped && this.deregistered === undefined) {
        try {
          await this.client.put('/v1/agent/service/register', {}, body, { signal: this.abort.signal });
          if (!this.registered) this.log.info({ id: this.selfId, check: r.checkUrl }, 'registered in consul');
          this.registered = true;
          this.registerFailures = 0;
          return;
        } catch (e) {
          if (this.stopped) return;
          this.registerFailures++;
          this.log.warn({ id: this.selfId, err: errorText(e) }, 'consul: registering cairn failed; retrying');
          if (
            !(await pause(
              backoffDelay(this.registerFailures, { minMs: 500, maxMs: 10_000 }),
              this.abort.signal,
            ))
          )
            return;
        }
      }
    } finally {
      this.registering = false;
    }
  }

  /**
   * Removes Cairn's own registration (once). The server calls this before it drains, so
   * clients stop being sent here during the grace period; stop() calls it too.
   */
  deregisterSelf(): Promise<void> {
    if (this.o.register === undefined) return Promise.resolve();
    this.deregistered ??= (async () => {
      const id = this.selfId ?? '';
      try {
        await this.client.put(`/v1/agent/service/deregister/${encodeURIComponent(id)}`, {}, undefined);
        if (this.registered) this.log.info({ id }, 'deregistered from consul');
      } catch (e) {
        this.log.warn({ id, err: errorText(e) }, 'consul: deregistering cairn failed');
      }
    })();
    return this.deregistered;
  }
}
