// A table's routes by source. Tables are immutable, so each table's index is built once (by the
// first swap hook that asks) and shared by the others (diff, live keys, the runtime's balancers).

import type { Route, RouteTable } from '../../routing/types.ts';

const cache = new WeakMap<object, ReadonlyMap<string, Route>>();

export function routesBySrc(table: Pick<RouteTable, 'routes'>): ReadonlyMap<string, Route> {
  const hit = cache.get(table.routes);
  if (hit !== undefined) return hit;
  const out = new Map<string, Route>();
  for (const r of table.routes) out.set(r.src, r);
  cache.set(table.routes, out);
  return out;
}
