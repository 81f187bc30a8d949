// What a table swap changed, target by target, in the `route add ...` lines operators know from
// `cairn routes`: which lines appeared, which went, and which kept their source and target but
// changed weight or options.

import { targetConfigLine } from '../../routing/table.ts';
import type { Route, RouteTable, RouteTarget } from '../../routing/types.ts';

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

type Indexed = Map<string, Route>;

/** Tables are immutable: each one's route index is built once and reused by the next diff. */
const cache = new WeakMap<object, Indexed>();

function bySrc(table: Pick<RouteTable, 'routes'> | undefined): Indexed {
  if (table === undefined) return new Map();
  const hit = cache.get(table.routes);
  if (hit !== undefined) return hit;
  const out: Indexed = new Map();
  for (const r of table.routes) out.set(r.src, r);
  cache.set(table.routes, out);
  return out;
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
    if (old === r) continue;
    for (const t of r.targets) {
      const o = old.targets.find((x) => x.key === t.key);
      if (o === undefined) keep(added, () => targetConfigLine(r, t, true));
      else if (!sameTarget(o, t)) {
        keep(changed, () => ({ from: targetConfigLine(old, o, true), to: targetConfigLine(r, t, true) }));
      }
    }
    for (const o of old.targets) {
      if (!r.targets.some((t) => t.key === o.key)) keep(removed, () => targetConfigLine(old, o, true));
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
