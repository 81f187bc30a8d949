// The etcd v3 registry adapter: list, then watch from the list's revision + 1.
//
// One "generation" is a consistent list of every source (instance records, the config key, gRPC
// naming prefixes), all read at the revision of the first page, followed by watches that start
// at revision + 1: nothing between the list and the watch is missed, nothing is seen twice.
// The events of one watch response (etcd never splits a revision across responses) are applied
// together; snapshots are debounced so a burst of changes (a deploy, a relist) costs one rebuild.
//
// Any watcher failure ends the generation and starts a new one with a full relist: a stream that
// dropped (etcd restarted, network), a watch cancelled by etcd because its start revision was
// compacted (etcd3 1.1.2 reports that against etcd 3.4 as a bare "Watcher canceled" error
// without the compact revision, so no error text or type is trusted), an auth failure. A relist
// is cheap next to being wrong, and it converges whatever happened meanwhile.
//
// While etcd cannot be read, the last snapshot stays in force (the state says `stale`, never an
// empty snapshot) and the relist is retried with a short doubling backoff.

import type { Etcd3, IKeyValue, IWatchResponse, Watcher } from 'etcd3';
import type { Snapshot } from '../../routing/types.ts';
import type {
  ManualValue,
  RegistryAdapter,
  RegistryState,
  SnapshotListener,
  StateListener,
  WriteManualResult,
} from '../types.ts';
import { createEtcdClient, type EtcdConnectionOptions } from './client.ts';
import { defaultEtcdPrefix, type EtcdLayout, etcdLayout } from './layout.ts';
import { RecordStore } from './store.ts';

export interface EtcdRegistryOptions extends EtcdConnectionOptions {
  /** Adapter name; default `etcd:<endpoints joined by ",">`. */
  readonly name?: string;
  /** Key prefix, default `/cairn`. */
  readonly prefix?: string;
  /** Prefixes holding etcd gRPC naming records, read as instances too. */
  readonly namingPrefixes?: readonly string[];
  /** Quiet time after a change before the snapshot is emitted, ms (default 10). */
  readonly debounceMs?: number;
  /** Longest a change waits for a burst to end, ms (default 200). */
  readonly maxDelayMs?: number;
  /** First and largest delay between relist attempts while etcd fails, ms (default 100, 2000). */
  readonly retryMinMs?: number;
  readonly retryMaxMs?: number;
  /** Keys per page of a list (default 2000; a page is one gRPC response). */
  readonly pageSize?: number;
  readonly now?: () => number;
  /** The client to use instead of one built from the connection options (tests). */
  readonly client?: Etcd3;
  /**
   * Test seam: runs after a list and before its watches are created, with the list revision.
   * Lets a test compact etcd right there, which makes the watch start at a compacted revision.
   */
  readonly beforeWatch?: (listRevision: string) => Promise<void>;
}

/** What the adapter has done so far (admin page, tests). */
export interface EtcdRegistryStats {
  /** Completed lists (the first one included). */
  readonly lists: number;
  /** Revision of the last list. */
  readonly listRevision: string | undefined;
  /** Highest revision seen in a watch response. */
  readonly watchRevision: string | undefined;
  /** Keys held (instances, bad records, deleted naming records). */
  readonly keys: number;
  /** Snapshots emitted. */
  readonly snapshots: number;
}

export class EtcdRegistry implements RegistryAdapter {
  readonly name: string;
  readonly layout: EtcdLayout;
  private readonly client: Etcd3;
  private readonly store: RecordStore;
  private readonly debounceMs: number;
  private readonly maxDelayMs: number;
  private readonly retryMinMs: number;
  private readonly retryMaxMs: number;
  private readonly pageSize: number;
  private readonly now: () => number;
  private readonly beforeWatch: ((rev: string) => Promise<void>) | undefined;

  private onSnapshot: SnapshotListener | undefined;
  private onState: StateListener | undefined;
  /** Bumped whenever the current list/watch generation ends; stale callbacks compare it. */
  private generation = 0;
  private watchers: Watcher[] = [];
  private listing: Promise<void> | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private retryMs: number;
  private debounceTimer: NodeJS.Timeout | undefined;
  /** When the oldest change not yet emitted arrived (for maxDelayMs). */
  private pendingSince: number | undefined;
  private stopped = false;
  private delivered = false;
  private state: RegistryState | undefined;
  private lists = 0;
  private snapshots = 0;
  private listRevision: string | undefined;
  private watchRevision: string | undefined;

  /** Throws (with a one-line reason) for unusable settings, e.g. an unreadable TLS file. */
  constructor(options: EtcdRegistryOptions) {
    this.name = options.name ?? `etcd:${options.endpoints.join(',')}`;
    this.layout = etcdLayout(options.prefix ?? defaultEtcdPrefix, options.namingPrefixes ?? []);
    this.store = new RecordStore(this.layout, this.name);
    this.debounceMs = options.debounceMs ?? 10;
    this.maxDelayMs = options.maxDelayMs ?? 200;
    this.retryMinMs = options.retryMinMs ?? 100;
    this.retryMaxMs = options.retryMaxMs ?? 2000;
    this.retryMs = this.retryMinMs;
    this.pageSize = options.pageSize ?? 2000;
    this.now = options.now ?? Date.now;
    this.beforeWatch = options.beforeWatch;
    this.client = options.client ?? createEtcdClient(options);
  }

  async start(onSnapshot: SnapshotListener, onState: StateListener): Promise<void> {
    if (this.onSnapshot !== undefined) throw new Error(`${this.name}: already started`);
    this.onSnapshot = onSnapshot;
    this.onState = onState;
    await this.relist();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.generation++;
    clearTimeout(this.retryTimer);
    clearTimeout(this.debounceTimer);
    this.dropWatchers();
    // Closing first fails a list that hangs on an unresponsive etcd instead of waiting it out;
    // `stopped` already keeps its callbacks from running.
    this.client.close();
    await this.listing;
  }

  /** The current state, or undefined before the first list attempt ended. */
  currentState(): RegistryState | undefined {
    return this.state;
  }

  stats(): EtcdRegistryStats {
    return {
      lists: this.lists,
      listRevision: this.listRevision,
      watchRevision: this.watchRevision,
      keys: this.store.size,
      snapshots: this.snapshots,
    };
  }

  /** The manual route commands stored at `<prefix>/config`; the version is its mod revision. */
  async readManual(): Promise<ManualValue> {
    const res = await this.client.get(this.layout.config).exec();
    return manualValue(res.kvs[0]);
  }

  /**
   * Replaces the manual route commands if the key's mod revision is still `version` (`0`: the key
   * does not exist yet), in one etcd transaction.
   */
  async writeManual(value: string, version: string): Promise<WriteManualResult> {
    const key = this.layout.config;
    try {
      if (!/^\d+$/.test(version)) return { ok: false, conflict: await this.readManual() };
      const txn = await this.client
        .if(key, 'Mod', '==', version)
        .then(this.client.put(key).value(value))
        .else(this.client.get(key))
        .commit();
      if (txn.succeeded) return { ok: true, version: txn.header.revision };
      return { ok: false, conflict: manualValue(txn.responses[0]?.response_range?.kvs[0]) };
    } catch (e) {
      return { ok: false, error: `etcd ${this.name}: ${errorText(e)}` };
    }
  }

  // ---- list and watch ----

  /** Starts a new generation; overlapping calls share the running list. */
  private relist(): Promise<void> {
    if (this.listing !== undefined) return this.listing;
    const run = async (): Promise<void> => {
      try {
        await this.listAndWatch();
      } finally {
        this.listing = undefined;
      }
    };
    this.listing = run();
    return this.listing;
  }

  private async listAndWatch(): Promise<void> {
    if (this.stopped) return;
    clearTimeout(this.retryTimer);
    this.dropWatchers();
    const gen = ++this.generation;
    try {
      const first = await this.listPrefix(this.layout.services, undefined);
      const revision = first.revision;
      const config = await this.client.get(this.layout.config).revision(revision).exec();
      const naming = [];
      for (const p of this.layout.naming) naming.push(await this.listPrefix(p, revision));
      if (gen !== this.generation) return;

      this.store.clear();
      for (const kv of first.kvs) this.store.put(kv.key.toString(), kv.value.toString());
      for (const kv of config.kvs) this.store.put(kv.key.toString(), kv.value.toString());
      for (const n of naming) for (const kv of n.kvs) this.store.put(kv.key.toString(), kv.value.toString());
      this.lists++;
      this.listRevision = revision;
      this.retryMs = this.retryMinMs;

      if (this.beforeWatch !== undefined) await this.beforeWatch(revision);
      if (gen !== this.generation) return;
      this.watch(gen, (BigInt(revision) + 1n).toString());
      this.emitNow();
    } catch (e) {
      if (gen !== this.generation || this.stopped) return;
      this.generation++;
      this.dropWatchers();
      this.fail(`etcd ${this.name}: ${errorText(e)}`);
      this.retryLater();
    }
  }

  /** All keys under `prefix` at `revision` (the current one if undefined), page by page. */
  private async listPrefix(
    prefix: string,
    revision: string | undefined,
  ): Promise<{ revision: string; kvs: IKeyValue[] }> {
    const end = prefixEnd(Buffer.from(prefix));
    let start: Buffer = Buffer.from(prefix);
    let rev = revision;
    const kvs: IKeyValue[] = [];
    for (;;) {
      const b = this.client.getAll().inRange({ start, end }).limit(this.pageSize);
      if (rev !== undefined) b.revision(rev);
      const res = await b.exec();
      rev ??= res.header.revision;
      for (const kv of res.kvs) kvs.push(kv);
      const last = res.kvs[res.kvs.length - 1];
      if (!res.more || last === undefined) break;
      // The next page starts just after the last key of this one.
      start = Buffer.concat([last.key, Buffer.from([0])]);
    }
    return { revision: rev, kvs };
  }

  private watch(gen: number, fromRevision: string): void {
    const builders = [
      this.client.watch().prefix(this.layout.services),
      this.client.watch().key(this.layout.config),
      ...this.layout.naming.map((p) => this.client.watch().prefix(p)),
    ];
    for (const b of builders) {
      const w = b.startRevision(fromRevision).watcher();
      w.on('data', (res: IWatchResponse) => this.onWatchData(gen, res));
      // 'disconnected': the stream broke (etcd3 would resume on its own, but from a revision it
      // records carelessly); 'error': etcd cancelled the watch (compaction, permissions).
      w.on('disconnected', (e: Error) => this.onWatchFailure(gen, e));
      w.on('error', (e: Error) => this.onWatchFailure(gen, e));
      this.watchers.push(w);
    }
  }

  private onWatchData(gen: number, res: IWatchResponse): void {
    if (gen !== this.generation || this.stopped) return;
    this.watchRevision = res.header.revision;
    if (res.events.length === 0) return; // progress notification
    for (const ev of res.events) {
      const key = ev.kv.key.toString();
      if (ev.type === 'Put') this.store.put(key, ev.kv.value.toString());
      else this.store.delete(key);
    }
    this.schedule();
  }

  private onWatchFailure(gen: number, _error: Error): void {
    if (gen !== this.generation || this.stopped) return;
    this.generation++;
    this.dropWatchers();
    // Relist at once: a cancelled watch on a healthy etcd recovers without a visible blip; if etcd
    // is away the list fails fast and the state turns stale.
    void this.relist();
  }

  private dropWatchers(): void {
    const old = this.watchers;
    this.watchers = [];
    for (const w of old) {
      w.removeAllListeners();
      // An 'error' without a listener would throw; nothing about an abandoned watch matters.
      w.on('error', ignore);
      w.cancel().catch(ignore);
    }
  }

  private retryLater(): void {
    if (this.stopped) return;
    clearTimeout(this.retryTimer);
    const delay = this.retryMs;
    this.retryMs = Math.min(this.retryMs * 2, this.retryMaxMs);
    this.retryTimer = setTimeout(() => void this.relist(), delay);
  }

  // ---- snapshots and state ----

  private schedule(): void {
    const now = this.now();
    this.pendingSince ??= now;
    clearTimeout(this.debounceTimer);
    const wait = Math.max(0, Math.min(this.debounceMs, this.pendingSince + this.maxDelayMs - now));
    this.debounceTimer = setTimeout(() => this.emitNow(), wait);
  }

  private emitNow(): void {
    clearTimeout(this.debounceTimer);
    this.pendingSince = undefined;
    if (this.stopped) return;
    this.deliver(this.store.snapshot());
  }

  private deliver(snapshot: Snapshot): void {
    this.delivered = true;
    this.snapshots++;
    this.onSnapshot?.(snapshot);
    this.setState('up', undefined);
  }

  private fail(error: string): void {
    this.setState(this.delivered ? 'stale' : 'down', error);
  }

  private setState(name: RegistryState['state'], error: string | undefined): void {
    if (this.stopped) return;
    const prev = this.state;
    if (prev !== undefined && prev.state === name && prev.error === error) return;
    const since = prev !== undefined && prev.state === name ? prev.since : this.now();
    this.state = { registry: this.name, state: name, since, ...(error !== undefined ? { error } : {}) };
    this.onState?.(this.state);
  }
}

function manualValue(kv: IKeyValue | undefined): ManualValue {
  return kv === undefined
    ? { value: '', version: '0' }
    : { value: kv.value.toString(), version: kv.mod_revision };
}

/** The first key after every key that starts with `prefix` (etcd's range_end for a prefix). */
function prefixEnd(prefix: Buffer): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if ((end[i] as number) < 0xff) {
      end[i] = (end[i] as number) + 1;
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.from([0]);
}

function errorText(e: unknown): string {
  const m = e instanceof Error ? e.message : String(e);
  // grpc-js ends some messages with an empty "Resolution note:"; it says nothing.
  const line = (m.split('\n')[0] ?? m).replace(/\s*Resolution note:\s*$/, '').trim();
  return line || (e instanceof Error ? e.name : 'unknown error');
}

function ignore(): void {}
