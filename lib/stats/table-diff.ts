// What a table swap changed, target by target, in the `route add ...` lines operators know from
// `cairn routes`: which lines appeared, which went, and which kept their source and target but
// changed weight or options.

import { targetConfigLine } from '../../routing/table.ts';
import type { RouteTable } from '../../routing/types.ts';

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

type Lines = Map<string, string>;

/** Tables are immutable: each one's lines are formatted once, then reused by the next diff. */
const cache = new WeakMap<object, Lines>();

function lines(table: Pick<RouteTable, 'routes'> | undefined): Lines {
  if (table === undefined) return new Map();
  const hit = cache.get(table.routes);
  if (hit !== undefined) return hit;
  const out: Lines = new Map();
  for (const r of table.routes) {
    for (const t of r.targets) out.set(`${r.src}\u0000${t.key}`, targetConfigLine(r, t, true));
  }
  cache.set(table.routes, out);
  return out;
}

/** The difference between two tables (`previous` undefined: everything is added). */
export function diffTables(
  previous: Pick<RouteTable, 'routes'> | undefined,
  current: Pick<RouteTable, 'routes'>,
  limit = 200,
): TableDiff {
  const before = lines(previous);
  const after = lines(current);
  const added: string[] = [];
  const removed: string[] = [];
  const changed: ChangedLine[] = [];
  let truncated = 0;
  const keep = <T>(list: T[], item: T): void => {
    if (list.length < limit) list.push(item);
    else truncated++;
  };
  for (const [k, line] of after) {
    const old = before.get(k);
    if (old === undefined) keep(added, line);
    else if (old !== line) keep(changed, { from: old, to: line });
  }
  for (const [k, line] of before) if (!after.has(k)) keep(removed, line);
  return { added, removed, changed, truncated };
}
