// The target keys of the live table, kept up to date from one swap to the next by looking only
// at the routes that changed: the table builder hands unchanged routes over as the same objects,
// so after one registry change a swap touches a few routes instead of 14,000 targets.

import type { Route, RouteTable, RouteTarget } from '../../routing/types.ts';
import { routesBySrc } from './route-index.ts';

export class LiveKeys {
  /** Key -> number of live routes with a target (with a share) of that key. */
  private readonly counts = new Map<string, number>();
  private table: RouteTable | undefined;

  has(key: string): boolean {
    return this.counts.has(key);
  }

  get size(): number {
    return this.counts.size;
  }

  /**
   * `current` replaces `previous` (the table this was last given, else it starts over from
   * `previous`). Returns the targets of the routes that went, for the caller to check with has().
   */
  swap(previous: RouteTable, current: RouteTable): RouteTarget[] {
    if (this.table !== previous) {
      this.counts.clear();
      for (const r of previous.routes) this.add(r);
    }
    this.table = current;
    const gone: RouteTarget[] = [];
    const before = routesBySrc(previous);
    const after = routesBySrc(current);
    for (const r of previous.routes) {
      if (after.get(r.src) === r) continue;
      for (const t of r.targets) {
        this.count(t.key, -1);
        gone.push(t);
      }
    }
    for (const r of current.routes) if (before.get(r.src) !== r) this.add(r);
    return gone;
  }

  private add(r: Route): void {
    for (const t of r.targets) this.count(t.key, 1);
  }

  private count(key: string, delta: number): void {
    const n = (this.counts.get(key) ?? 0) + delta;
    if (n > 0) this.counts.set(key, n);
    else this.counts.delete(key);
  }
}
