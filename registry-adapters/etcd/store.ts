// The adapter's picture of etcd: every relevant key, already parsed, so a change costs the parse
// of the changed keys only and a snapshot is one pass over the map. Snapshots list instances in
// key order, so two Cairns that saw the same keys by different histories emit equal snapshots
// (and build tables with the same version).

import type { Problem, ServiceInstance, Snapshot } from '../../routing/types.ts';
import { classifyKey, type EtcdLayout, parseInstanceKey, parseNamingKey } from './layout.ts';
import { parseInstanceRecord, parseNamingRecord, type RecordParse } from './record.ts';

type Entry =
  | { readonly instance: ServiceInstance; readonly warnings: readonly Problem[] }
  | { readonly problem: Problem }
  | { readonly skip: true };

export class RecordStore {
  private readonly layout: EtcdLayout;
  private readonly registry: string;
  private readonly entries = new Map<string, Entry>();
  /** Keys in sorted order; undefined after a key was added or removed. */
  private sortedKeys: string[] | undefined = [];
  private manual = '';

  constructor(layout: EtcdLayout, registry: string) {
    this.layout = layout;
    this.registry = registry;
  }

  /** Number of keys held (instances, bad records and skipped naming records). */
  get size(): number {
    return this.entries.size;
  }

  clear(): void {
    this.entries.clear();
    this.sortedKeys = [];
    this.manual = '';
  }

  /** A key was created or changed. Keys outside the layout are ignored. */
  put(key: string, value: string): void {
    const k = classifyKey(this.layout, key);
    switch (k.kind) {
      case 'config':
        this.manual = value;
        return;
      case 'instance': {
        const parsed = parseInstanceKey(this.layout, key);
        this.set(
          key,
          'error' in parsed
            ? keyProblem(key, value, parsed.error, parsed.service)
            : parseInstanceRecord(key, value, parsed.service, parsed.id, this.registry),
        );
        return;
      }
      case 'naming': {
        const parsed = parseNamingKey(k.prefix, key);
        this.set(
          key,
          'error' in parsed
            ? keyProblem(key, value, parsed.error, parsed.service)
            : parseNamingRecord(key, value, parsed.service, parsed.id, this.registry),
        );
        return;
      }
      case 'other':
        return;
    }
  }

  delete(key: string): void {
    if (key === this.layout.config) {
      this.manual = '';
      return;
    }
    if (this.entries.delete(key)) this.sortedKeys = undefined;
  }

  snapshot(): Snapshot {
    let keys = this.sortedKeys;
    if (keys === undefined) {
      keys = [...this.entries.keys()].sort();
      this.sortedKeys = keys;
    }
    const instances: ServiceInstance[] = [];
    const problems: Problem[] = [];
    // A service/id pair must be unique in the table; a naming record and a Cairn record for the
    // same pair are a user mistake: the first key wins.
    const seen = new Map<string, string>();
    for (const key of keys) {
      const e = this.entries.get(key);
      if (e === undefined || 'skip' in e) continue;
      if ('problem' in e) {
        problems.push(e.problem);
        continue;
      }
      const ident = `${e.instance.service}\u0000${e.instance.id}`;
      const first = seen.get(ident);
      if (first !== undefined) {
        problems.push({
          source: 'registry',
          severity: 'error',
          reason: `${key}: instance ${e.instance.service}/${e.instance.id} is already registered at ${first} (that one is used)`,
          input: key,
          service: e.instance.service,
          instance: e.instance.id,
        });
        continue;
      }
      seen.set(ident, key);
      instances.push(e.instance);
      for (const w of e.warnings) problems.push(w);
    }
    return { instances, manual: this.manual, problems };
  }

  private set(key: string, entry: RecordParse): void {
    if (this.sortedKeys !== undefined && !this.entries.has(key)) this.sortedKeys = undefined;
    this.entries.set(key, entry);
  }
}

function keyProblem(key: string, value: string, reason: string, service: string | undefined): Entry {
  const input = value.length > 300 ? `${value.slice(0, 300)}...` : value;
  return {
    problem: {
      source: 'registry',
      severity: 'error',
      reason: `${key}: ${reason}`,
      input,
      ...(service !== undefined ? { service } : {}),
    },
  };
}
