// What a table swap changed, target by target, in the `route add ...` lines operators know from
// `cairn routes`: which lines appeared, which went, and which kept their source and target but
// changed weight or options.

import { targetConfigLine } from '../../routing/table.ts';
import type { Route, RouteTable, RouteTarget } from '../../routing/types.ts';
import { routesBySrc } from './route-index.ts';

export interface ChangedLine {
  readonly from: string;
  readonly to: string;
}

export interface TableDiff {
  readonly added: readonly string[];
  readonly removed: readonly string[];
  readonly changed: readonly ChangedLine[];
  /** Lines left out of the lists above when they were longer than the limit. */
  readonly truncated: number;
}

const none: ReadonlyMap<string, Route> = new Map();

function bySrc(table: Pick<RouteTable, 'routes'> | undefined): ReadonlyMap<string, Route> {
  return table === undefined ? none : routesBySrc(table);
}

function sameOpts(a: Readonly<Record<string, string>>, b: Readonly<Record<string, string>>): boolean {
  let n = 0;
  for (const k in a) {
    if (a[k] !== b[k]) return false;
    n++;
  }
  for (const _ in b) n--;
  return n === 0;
}

function sameTags(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Equal as far as the printed line goes (without formatting it). */
function sameTarget(a: RouteTarget, b: RouteTarget): boolean {
  return (
    a.dst === b.dst &&
    a.service === b.service &&
    a.share === b.share &&
    sameTags(a.tags, b.tags) &&
    sameOpts(a.rawOpts, b.rawOpts)
  );
}

/**
 * The difference between two tables (`previous` undefined: everything is added). Lines are
 * formatted only for what changed: a swap of a 14,000-target table after one registry change
 * formats a handful of lines, not 28,000.
 */
export function diffTables(
  previous: Pick<RouteTable, 'routes'> | undefined,
  current: Pick<RouteTable, 'routes'>,
  limit = 200,
): TableDiff {
  const before = bySrc(previous);
  const after = bySrc(current);
  const added: string[] = [];
  const removed: string[] = [];
  const changed: ChangedLine[] = [];
  let truncated = 0;
  const keep = <T>(list: T[], item: () => T): void => {
    if (list.length < limit) list.push(item());
    else truncated++;
  };
  for (const r of current.routes) {
    const old = before.get(r.src);
    if (old === undefined) {
      for (const t of r.targets) keep(added, () => targetConfigLine(r, t, true));
      continue;
    }
    // Unchanged routes are the same objects from one table to the next (the table builder
    // reuses them): only the routes of changed services are compared target by target.
    if (old === r) continue;
    // A route may hold two targets with one key (same instance, different fixed weights): the
    // n-th target of a key is compared with the n-th target of that key in the old route.
    const paired = new Array<boolean>(old.targets.length).fill(false);
    for (const t of r.targets) {
      let i = 0;
      while (i < old.targets.length && (paired[i] === true || old.targets[i]?.key !== t.key)) i++;
      const o = old.targets[i];
      if (o === undefined) {
        keep(added, () => targetConfigLine(r, t, true));
        continue;
      }
      paired[i] = true;
      if (o !== t && !sameTarget(o, t)) {
        keep(changed, () => ({ from: targetConfigLine(old, o, true), to: targetConfigLine(r, t, true) }));
      }
    }
    for (let i = 0; i < old.targets.length; i++) {
      const o = old.targets[i] as RouteTarget;
      if (paired[i] !== true) keep(removed, () => targetConfigLine(old, o, true));
    }
  }
  if (previous !== undefined) {
    for (const old of previous.routes) {
      if (!after.has(old.src))
        for (const o of old.targets) keep(removed, () => targetConfigLine(old, o, true));
    }
  }
  return { added, removed, changed, truncated };
}
