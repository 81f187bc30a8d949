// Watches one Consul datacenter and keeps the instances of every routed service, spending work
// in proportion to what changed rather than to the size of the catalog.
//
// Two long-polls, whatever the number of services (Consul allows 200 connections per client
// address, so one long-poll per service does not scale):
//   1. `/v1/catalog/services` (blocking): which services carry a route tag. A service that
//      appears or whose tag union changes is fetched; one that disappears is dropped. Any other
//      move of the catalog index means some service definition changed: a sweep finds which.
//   2. `/v1/health/state/any` (blocking), filtered by Consul to the checks that are not passing
//      (under checks-required=all; every check under `one`): the checks that changed, appeared
//      or vanished (diffed against the previous answer) name their services; a node check names
//      every routed service on its node. Filtering keeps each answer proportional to what is
//      unhealthy, not to the catalog (10,000 checks are ~4.7 MB a time unfiltered).
// Then `/v1/health/service/<name>` only for the services named, at most `fetchConcurrency` at
// once. It returns instances, node and checks in one consistent answer, so an instance is never
// seen without the checks that keep it out.
//
// The sweep covers what moves no non-passing check but moves the catalog: an instance
// registered already passing (checks usually start critical, and then the checks loop sees it
// first), a passing instance deregistered, tags, Weights, port, address or meta re-registered,
// instances without checks. It reads `/v1/catalog/nodes` and `/v1/catalog/node/<node>` (one
// request per node, not per service) and compares each instance's ModifyIndex with the last
// fetched one. It runs at once after an isolated catalog change; under churn at most every
// `sweepMinIntervalMs`, and never more than a fifth of the time (big catalogs sweep less often),
// so a burst of registrations costs one sweep per interval.
//
// Fetches wait for the first checks answer: a change between the baseline and a fetch is then
// always caught by the next checks diff.

import type { Problem, ServiceInstance } from '../../routing/types.ts';
import type { ConsulClient, Query } from './api.ts';
import { backoffDelay, type BackoffOptions, type IndexStep } from './blocking.ts';
import {
  addNodeServices,
  type CheckMap,
  diffChecks,
  diffRouted,
  indexChecks,
  nodeNames,
  type RoutedServices,
  routedServices,
  type SeenInstances,
  sweepChanges,
} from './changes.ts';
import type { ChecksRequired } from './health.ts';
import { type ServiceData, serviceData } from './instances.ts';
import { errorText, mapLimit, runBlockingLoop } from './loop.ts';

export interface ConsulLog {
  debug(fields: Record<string, unknown>, message: string): void;
  info(fields: Record<string, unknown>, message: string): void;
  warn(fields: Record<string, unknown>, message: string): void;
}

export const silentLog: ConsulLog = { debug: () => {}, info: () => {}, warn: () => {} };

export interface WatchSettings {
  /** `?dc=`; undefined: the agent's datacenter. */
  readonly dc: string | undefined;
  readonly tagPrefix: string;
  readonly checksRequired: ChecksRequired;
  readonly consistency: 'stale' | 'consistent';
  readonly waitMs: number;
  readonly minIntervalMs: number;
  readonly retry: BackoffOptions;
  readonly fetchConcurrency: number;
  readonly sweepMinIntervalMs: number;
  /**
   * Ask `/v1/health/state/any` for the checks that are not passing only. Exact under
   * checks-required=all (adding or removing a passing check never changes the worst status;
   * everything else moves a non-passing check or the catalog); checks-required=one needs every
   * check, because one passing check added or removed can flip an instance.
   */
  readonly nonPassingChecksOnly: boolean;
  /** The adapter's name, stamped on instances and problems. */
  readonly registry: string;
}

export interface WatchEvents {
  /** The instances or problems changed (called when fetching is idle, or has been busy a while). */
  readonly changed: () => void;
  /** A loop (`catalog`, `checks`, `fetch`, `sweep`) failed (message) or recovered (undefined). */
  readonly loopState: (loop: string, error: string | undefined) => void;
  /** The catalog index went backwards: Consul was restarted or rebuilt. */
  readonly reset: () => void;
}

export interface WatchCounters {
  fetches: number;
  sweeps: number;
  catalogChanges: number;
  checkChanges: number;
}

/** Longest time changed data waits for a busy fetch queue before it is handed over anyway. */
const maxHoldMs = 500;

export class DatacenterWatch {
  readonly counters: WatchCounters = { fetches: 0, sweeps: 0, catalogChanges: 0, checkChanges: 0 };
  private readonly client: ConsulClient;
  private readonly s: WatchSettings;
  private readonly events: WatchEvents;
  private readonly log: ConsulLog;
  private readonly abort = new AbortController();
  private readonly tasks = new Set<Promise<void>>();
  private stopped = false;

  private routed: RoutedServices = new Map();
  private catalogSeen = false;
  private checks: CheckMap | undefined;
  private readonly data = new Map<string, ServiceData>();
  private readonly nodeServices = new Map<string, Set<string>>();
  private readonly dirty = new Set<string>();
  private readonly inflight = new Set<string>();
  private fetchFailures = 0;
  private fetchRetryAt = 0;
  private fetchTimer: NodeJS.Timeout | undefined;
  private loaded = false;
  private pending = false;
  private holdTimer: NodeJS.Timeout | undefined;

  private sweepTimer: NodeJS.Timeout | undefined;
  private sweepRunning = false;
  private sweepAgain = false;
  private lastSweepStart = Number.NEGATIVE_INFINITY;
  private sweepFailures = 0;
  private knownNodes = 0;
  private lastSweepMs = 0;

  private aclEmpty = false;

  constructor(
    client: ConsulClient,
    settings: WatchSettings,
    events: WatchEvents,
    log: ConsulLog = silentLog,
  ) {
    this.client = client;
    this.s = settings;
    this.events = events;
    this.log = log;
  }

  /** The datacenter label for messages. */
  get label(): string {
    return this.s.dc ?? 'local datacenter';
  }

  /** Every routed service has been fetched once since start: the instances are complete. */
  get isLoaded(): boolean {
    return this.loaded;
  }

  start(): void {
    const common = { client: this.client, waitMs: this.s.waitMs, minIntervalMs: this.s.minIntervalMs };
    const loops = [
      runBlockingLoop({
        ...common,
        path: '/v1/catalog/services',
        query: this.query(),
        retry: this.s.retry,
        signal: this.abort.signal,
        onAnswer: (res, step) => this.onCatalog(res.body, step),
        onState: (e) => this.events.loopState('catalog', e),
      }),
      runBlockingLoop({
        ...common,
        path: '/v1/health/state/any',
        query: this.s.nonPassingChecksOnly
          ? { ...this.query(), filter: 'Status != "passing"' }
          : this.query(),
        retry: this.s.retry,
        signal: this.abort.signal,
        onAnswer: (res, step) => this.onChecks(res.body, step),
        onState: (e) => this.events.loopState('checks', e),
      }),
    ];
    for (const l of loops) this.track(l);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.abort.abort();
    clearTimeout(this.fetchTimer);
    clearTimeout(this.holdTimer);
    clearTimeout(this.sweepTimer);
    while (this.tasks.size > 0) await Promise.allSettled([...this.tasks]);
  }

  /** The instances of all routed services, by service name. */
  instances(): ServiceInstance[] {
    const out: ServiceInstance[] = [];
    const names = [...this.data.keys()].sort();
    for (const n of names) for (const i of this.data.get(n)?.instances ?? []) out.push(i);
    return out;
  }

  problems(): Problem[] {
    const out: Problem[] = [];
    if (this.aclEmpty) {
      out.push({
        source: 'registry',
        severity: 'warning',
        reason:
          `Consul (${this.label}) lists no services at all for this ACL token: Consul hides what a token ` +
          'may not read and answers {} instead of 403. Give the token service:read and node:read.',
        input: `${this.s.registry} /v1/catalog/services`,
      });
    }
    for (const d of this.data.values()) for (const p of d.problems) out.push(p);
    return out;
  }

  private query(): Query {
    return { [this.s.consistency]: '', ...(this.s.dc !== undefined ? { dc: this.s.dc } : {}) };
  }

  private track(p: Promise<void>): void {
    const t = p.catch((e: unknown) => {
      // Loops and tasks handle their own errors; anything here is a bug worth a log line.
      this.log.warn({ err: errorText(e) }, 'consul watch task failed');
    });
    this.tasks.add(t);
    void t.finally(() => this.tasks.delete(t));
  }

  // ---- catalog ----------------------------------------------------------------------------------

  private onCatalog(body: unknown, step: IndexStep): void {
    const next = routedServices(body, this.s.tagPrefix);
    if ('error' in next) throw new Error(next.error);
    const first = !this.catalogSeen;
    this.counters.catalogChanges++;
    const diff = diffRouted(this.routed, next);
    this.routed = next;
    for (const name of diff.removed) this.drop(name);
    for (const name of diff.changed) this.dirty.add(name);
    if (step.reset) {
      this.log.info(
        { dc: this.label },
        'consul: catalog index went backwards (restart or restore): refetching',
      );
      for (const name of next.keys()) this.dirty.add(name);
      this.events.reset();
    } else if (!first) {
      this.requestSweep();
    }
    const empty = typeof body === 'object' && body !== null && Object.keys(body).length === 0;
    if (empty !== this.aclEmpty) {
      this.aclEmpty = empty;
      if (empty) {
        this.log.warn(
          { dc: this.label },
          'consul: the catalog is empty for this ACL token (Consul answers {} to a token that may read nothing): check its policy',
        );
      }
      this.markChanged();
    }
    if (first && next.size === 0) this.markChanged();
    this.catalogSeen = true;
    this.pump();
  }

  private drop(name: string): void {
    this.dirty.delete(name);
    const d = this.data.get(name);
    if (d === undefined) return;
    this.data.delete(name);
    for (const n of d.nodes) this.nodeServices.get(n)?.delete(name);
    this.markChanged();
  }

  // ---- checks -----------------------------------------------------------------------------------

  private onChecks(body: unknown, step: IndexStep): void {
    const next = indexChecks(body, this.s.tagPrefix);
    if ('error' in next) throw new Error(next.error);
    const prev = this.checks;
    this.checks = next;
    if (prev === undefined || step.reset) {
      if (step.reset) for (const name of this.routed.keys()) this.dirty.add(name);
    } else {
      const changes = diffChecks(prev, next);
      for (const name of changes.services) {
        if (this.routed.has(name)) {
          this.dirty.add(name);
          this.counters.checkChanges++;
        }
      }
      for (const node of changes.nodes) {
        for (const name of this.nodeServices.get(node) ?? []) {
          this.dirty.add(name);
          this.counters.checkChanges++;
        }
      }
    }
    this.pump();
  }

  // ---- fetching ---------------------------------------------------------------------------------

  private pump(): void {
    if (this.stopped || this.checks === undefined || !this.catalogSeen) return;
    const wait = this.fetchRetryAt - Date.now();
    if (wait > 0) {
      if (this.fetchTimer === undefined) {
        this.fetchTimer = setTimeout(() => {
          this.fetchTimer = undefined;
          this.pump();
        }, wait);
      }
      return;
    }
    for (const name of this.dirty) {
      if (this.inflight.size >= this.s.fetchConcurrency) break;
      // One fetch per service at a time, so an older answer never lands after a newer one.
      if (this.inflight.has(name)) continue;
      this.dirty.delete(name);
      this.inflight.add(name);
      this.track(
        this.fetch(name).finally(() => {
          this.inflight.delete(name);
          this.pump();
        }),
      );
    }
    this.settle();
  }

  private async fetch(name: string): Promise<void> {
    this.counters.fetches++;
    let body: unknown;
    try {
      const res = await this.client.get(`/v1/health/service/${encodeURIComponent(name)}`, this.query(), {
        signal: this.abort.signal,
      });
      body = res.body;
    } catch (e) {
      if (this.stopped) return;
      this.dirty.add(name);
      this.fetchFailures++;
      this.fetchRetryAt = Date.now() + backoffDelay(this.fetchFailures, this.s.retry);
      this.events.loopState('fetch', errorText(e));
      return;
    }
    if (this.fetchFailures > 0 || this.fetchRetryAt > 0) {
      this.fetchFailures = 0;
      this.fetchRetryAt = 0;
    }
    this.events.loopState('fetch', undefined);
    if (!this.routed.has(name) || this.stopped) return;
    const opts = {
      tagPrefix: this.s.tagPrefix,
      checksRequired: this.s.checksRequired,
      registry: this.s.registry,
      datacenter: this.s.dc,
    };
    const converted = serviceData(name, body, opts);
    const prev = this.data.get(name);
    const next: ServiceData =
      'error' in converted
        ? {
            name,
            instances: prev?.instances ?? [],
            modifyIndex: prev?.modifyIndex ?? new Map(),
            nodes: prev?.nodes ?? new Set(),
            problems: [
              { source: 'registry', severity: 'error', service: name, reason: converted.error, input: name },
            ],
          }
        : converted;
    this.store(next, prev);
  }

  private store(next: ServiceData, prev: ServiceData | undefined): void {
    if (prev !== undefined) for (const n of prev.nodes) this.nodeServices.get(n)?.delete(next.name);
    for (const n of next.nodes) {
      let set = this.nodeServices.get(n);
      if (set === undefined) {
        set = new Set();
        this.nodeServices.set(n, set);
      }
      set.add(next.name);
    }
    this.data.set(next.name, next);
    if (prev === undefined || !sameData(prev, next)) this.markChanged();
  }

  private markChanged(): void {
    this.pending = true;
  }

  /** Hands changes over when fetching is idle; while it is busy, at most every maxHoldMs. */
  private settle(): void {
    if (this.stopped) return;
    const idle =
      this.dirty.size === 0 && this.inflight.size === 0 && this.catalogSeen && this.checks !== undefined;
    if (idle && !this.loaded) {
      this.loaded = true;
      this.pending = true;
    }
    if (!this.pending || !this.loaded) return;
    if (idle) {
      clearTimeout(this.holdTimer);
      this.holdTimer = undefined;
      this.pending = false;
      this.events.changed();
      return;
    }
    this.holdTimer ??= setTimeout(() => {
      this.holdTimer = undefined;
      if (this.stopped || !this.pending) return;
      this.pending = false;
      this.events.changed();
    }, maxHoldMs);
  }

  // ---- sweep ------------------------------------------------------------------------------------

  private sweepInterval(): number {
    // A sweep reads every node's services: big catalogs sweep less often, so sweeping takes
    // at most about a fifth of the time (and of Consul's attention) under registration churn.
    return Math.max(this.s.sweepMinIntervalMs, this.knownNodes * 20, this.lastSweepMs * 5);
  }

  private requestSweep(): void {
    if (this.stopped) return;
    if (this.sweepRunning || this.sweepTimer !== undefined) {
      this.sweepAgain = true;
      return;
    }
    const delay = Math.max(0, this.lastSweepStart + this.sweepInterval() - Date.now());
    this.sweepTimer = setTimeout(() => {
      this.sweepTimer = undefined;
      this.track(this.sweep());
    }, delay);
  }

  private async sweep(): Promise<void> {
    if (this.stopped) return;
    this.sweepRunning = true;
    this.sweepAgain = false;
    this.lastSweepStart = Date.now();
    this.counters.sweeps++;
    try {
      const q = this.query();
      const signal = this.abort.signal;
      const listed = nodeNames((await this.client.get('/v1/catalog/nodes', q, { signal })).body);
      if ('error' in listed) throw new Error(listed.error);
      this.knownNodes = listed.length;
      const routed = this.routed;
      const seen: SeenInstances = new Map();
      await mapLimit(listed, this.s.fetchConcurrency, async (node) => {
        const res = await this.client.get(`/v1/catalog/node/${encodeURIComponent(node)}`, q, {
          signal,
          accept: [404],
        });
        const err = addNodeServices(seen, node, res.status === 404 ? undefined : res.body, routed);
        if (err !== undefined) throw new Error(err.error);
      });
      if (this.stopped) return;
      const known = [...this.data.values()].filter((d) => this.routed.has(d.name));
      for (const name of sweepChanges(known, seen)) this.dirty.add(name);
      this.lastSweepMs = Date.now() - this.lastSweepStart;
      this.sweepFailures = 0;
      this.events.loopState('sweep', undefined);
    } catch (e) {
      if (this.stopped) return;
      this.sweepFailures++;
      this.sweepAgain = true;
      // Next attempt after the backoff rather than the sweep interval.
      this.lastSweepStart =
        Date.now() + backoffDelay(this.sweepFailures, this.s.retry) - this.sweepInterval();
      this.events.loopState('sweep', errorText(e));
    } finally {
      this.sweepRunning = false;
      if (this.sweepAgain && !this.stopped) this.requestSweep();
      this.pump();
    }
  }
}

function sameData(a: ServiceData, b: ServiceData): boolean {
  if (a.instances.length !== b.instances.length || a.problems.length !== b.problems.length) return false;
  return (
    JSON.stringify(a.instances) === JSON.stringify(b.instances) &&
    JSON.stringify(a.problems) === JSON.stringify(b.problems)
  );
}
