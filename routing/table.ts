// Snapshot -> immutable RouteTable. Pure and deterministic: the same snapshot always gives the
// same table and the same version hash. The table is built whole (fabio's model) and never
// patched; the caller swaps it in atomically.
//
// Order of application follows fabio: route commands generated from instance tags first, then
// the manual commands; `route del` and `route weight` act on what exists at that point.
//
// Building is incremental (IncrementalTableBuilder): parsed instance products and frozen routes
// are reused from the previous build where their inputs are unchanged, yet every table is
// assembled whole and equals a from-scratch build, so "rebuilt whole, swapped whole" still holds.

import { Buffer } from 'node:buffer';
import { createHash } from 'node:crypto';
import { compileHttpRouter } from './http-router.ts';
import {
  type AddTarget,
  commandProblem,
  isTcpProto,
  type PreparedCommand,
  prepareCommand,
  splitSrc,
  TableInputs,
} from './table-inputs.ts';
import { compileTcpRouter } from './tcp-router.ts';
import type {
  BuildOptions,
  ExcludedInstance,
  InstanceStatus,
  PathMatcher,
  Problem,
  Route,
  RouteCommand,
  RouteTable,
  RouteTarget,
  Snapshot,
} from './types.ts';
import { distributeWeights } from './weights.ts';

export { formatCommand, isTcpProto } from './table-inputs.ts';

export const defaultBuildOptions = {
  tagPrefix: 'urlprefix-',
  acceptedStatus: ['passing'] as readonly InstanceStatus[],
  env: {} as Readonly<Record<string, string>>,
  matcher: 'prefix' as PathMatcher,
  globMatching: true,
} as const;

export type ResolvedBuildOptions = {
  readonly tagPrefix: string;
  readonly acceptedStatus: readonly InstanceStatus[];
  readonly env: Readonly<Record<string, string>>;
  readonly matcher: PathMatcher;
  readonly globMatching: boolean;
};

export function resolveBuildOptions(o: BuildOptions = {}): ResolvedBuildOptions {
  return {
    tagPrefix: o.tagPrefix ?? defaultBuildOptions.tagPrefix,
    acceptedStatus: o.acceptedStatus ?? defaultBuildOptions.acceptedStatus,
    env: o.env ?? defaultBuildOptions.env,
    matcher: o.matcher ?? defaultBuildOptions.matcher,
    globMatching: o.globMatching ?? defaultBuildOptions.globMatching,
  };
}

/**
 * Builds the table for a registry snapshot: instances' route tags, then the manual commands.
 * A fresh `IncrementalTableBuilder` with nothing to reuse: the reference every incremental
 * build must equal.
 */
export function buildTable(snapshot: Snapshot, options: BuildOptions = {}): RouteTable {
  return new IncrementalTableBuilder(options).build(snapshot);
}

/**
 * Builds tables for a sequence of snapshots (the controller's), reusing what the previous build
 * made for inputs that did not change: the parsed commands of unchanged services (TableInputs),
 * and the frozen Route and RouteTarget objects whose inputs and weights are the same. Every
 * table is still assembled whole and is equal, version included, to `buildTable()` of the same
 * snapshot (test/unit/table-incremental.test.ts); reused objects only make the swap hooks
 * cheaper, since they can skip what kept its identity.
 */
export class IncrementalTableBuilder {
  private readonly opts: ResolvedBuildOptions;
  private readonly inputs: TableInputs;
  private previous: HostMap | undefined;

  constructor(options: BuildOptions = {}) {
    this.opts = resolveBuildOptions(options);
    this.inputs = new TableInputs(this.opts);
  }

  build(snapshot: Snapshot): RouteTable {
    const { services, manual } = this.inputs.collect(snapshot);
    const b = new TableBuilder(this.previous);
    for (const p of snapshot.problems ?? []) b.report(p);
    const excluded: ExcludedInstance[] = [];
    for (const products of services) {
      for (const p of products) {
        if (p.excluded !== undefined) excluded.push(p.excluded);
        for (const problem of p.tagProblems) b.report(problem);
      }
    }
    for (const p of manual.problems) b.report(p);
    for (const products of services) for (const p of products) for (const c of p.commands) b.apply(c);
    for (const c of manual.commands) b.apply(c);
    const table = finishTable(b, this.opts, excluded);
    this.previous = b.hosts;
    return table;
  }
}

/** Builds a table from already parsed route commands (fabio's `NewTable`). */
export function buildTableFromCommands(
  commands: readonly RouteCommand[],
  options: BuildOptions = {},
  extra: { problems?: readonly Problem[]; excluded?: readonly ExcludedInstance[] } = {},
): RouteTable {
  const opts = resolveBuildOptions(options);
  const b = new TableBuilder(undefined);
  for (const p of extra.problems ?? []) b.report(p);
  for (const c of commands) b.apply(prepareCommand(c));
  return finishTable(b, opts, [...(extra.excluded ?? [])]);
}

function finishTable(b: TableBuilder, opts: ResolvedBuildOptions, excluded: ExcludedInstance[]): RouteTable {
  const routes = b.finish();
  const version = tableVersion(routes);
  const httpRoutes: Route[] = [];
  const tcpRoutes: Route[] = [];
  for (const r of routes) (isTcpProto(r.proto) ? tcpRoutes : httpRoutes).push(r);
  const http = compileHttpRouter(httpRoutes, { matcher: opts.matcher, globMatching: opts.globMatching });
  const tcp = compileTcpRouter(tcpRoutes);
  return Object.freeze({
    version,
    routes: Object.freeze(routes),
    http,
    tcp,
    excluded: Object.freeze(excluded),
    problems: Object.freeze(b.problems),
  });
}

/** One target of a route being assembled: a placed command and its (possibly overridden) weight. */
interface WorkTarget {
  readonly add: AddTarget;
  readonly service: string;
  readonly tags: readonly string[];
  readonly instanceWeight: number;
  fixedWeight: number;
}

interface WorkRoute {
  /** fabio's host key: `foo.com`, `foo.com:80`, `*.a.com`, `:3306`, ''. */
  readonly hostKey: string;
  readonly path: string;
  readonly tcp: boolean;
  targets: WorkTarget[];
  /** The frozen route, once finish() made (or reused) it. */
  frozen: Route | undefined;
}

/** hostKey -> path -> route, insertion ordered. */
type HostMap = Map<string, Map<string, WorkRoute>>;

class TableBuilder {
  readonly problems: Problem[] = [];
  private readonly seen = new Set<string>();
  readonly hosts: HostMap = new Map();
  /** The previous build's routes: a route whose targets and weights are the same is reused. */
  private readonly previous: HostMap | undefined;

  constructor(previous: HostMap | undefined) {
    this.previous = previous;
  }

  report(p: Problem): void {
    const id = `${p.source}\u0000${p.line ?? ''}\u0000${p.instance ?? ''}\u0000${p.input}\u0000${p.reason}`;
    if (this.seen.has(id)) return;
    this.seen.add(id);
    this.problems.push(p);
  }

  apply(c: PreparedCommand): void {
    if (c.cmd.cmd === 'route add') this.add(c);
    else if (c.cmd.cmd === 'route del') this.del(c.cmd);
    else this.weigh(c.cmd);
  }

  private add(c: PreparedCommand): void {
    for (const p of c.problems) this.report(p);
    const a = c.add;
    if (a === undefined) return;
    let paths = this.hosts.get(a.hostKey);
    if (paths === undefined) {
      paths = new Map();
      this.hosts.set(a.hostKey, paths);
    }
    let route = paths.get(a.path);
    if (route === undefined) {
      route = { hostKey: a.hostKey, path: a.path, tcp: a.tcp, targets: [], frozen: undefined };
      paths.set(a.path, route);
    }
    for (const t of route.targets) {
      // fabio de-duplicates identical targets (same service, URL, fixed weight and tags).
      if (
        t.service === a.service &&
        t.add.dst === a.dst &&
        t.fixedWeight === a.fixedWeight &&
        sameTags(t.tags, a.tags)
      ) {
        return;
      }
    }
    route.targets.push({
      add: a,
      service: a.service,
      tags: a.tags,
      instanceWeight: a.instanceWeight,
      fixedWeight: a.fixedWeight,
    });
  }

  private del(c: RouteCommand): void {
    let keep: (t: WorkTarget) => boolean;
    let scope: WorkRoute[];
    if (c.tags.length > 0) {
      keep = (t) => !((c.service === '' || t.service === c.service) && containsAll(t.tags, c.tags));
      scope = this.allRoutes();
    } else if (c.src === '' && c.dst === '') {
      keep = (t) => t.service !== c.service;
      scope = this.allRoutes();
    } else {
      const r = this.find(c.src);
      scope = r === undefined ? [] : [r];
      keep =
        c.dst === ''
          ? (t) => t.service !== c.service
          : (t) => !(t.service === c.service && t.add.dst === c.dst);
    }
    for (const r of scope) r.targets = r.targets.filter(keep);
    this.prune();
  }

  private weigh(c: RouteCommand): void {
    const r = this.find(c.src);
    const matched = r === undefined ? [] : r.targets.filter((t) => matchesWeightRule(t, c));
    if (matched.length === 0) {
      return this.report(commandProblem(c, 'route weight: no target matches (ignored)', 'warning'));
    }
    // fabio spreads the share evenly over the matching targets; Cairn spreads it in proportion
    // to their instance weights, which is the same thing when those are all 1.
    let sum = 0;
    for (const t of matched) sum += t.instanceWeight;
    for (const t of matched) t.fixedWeight = (c.weight * t.instanceWeight) / sum;
  }

  private find(src: string): WorkRoute | undefined {
    // A weight/del rule names the route by its src; try the TCP form and the HTTP form.
    for (const tcp of [false, true]) {
      const { hostKey, path } = splitSrc(src, tcp);
      const r = this.hosts.get(hostKey.toLowerCase())?.get(path);
      if (r !== undefined) return r;
    }
    return undefined;
  }

  private allRoutes(): WorkRoute[] {
    const out: WorkRoute[] = [];
    for (const paths of this.hosts.values()) for (const r of paths.values()) out.push(r);
    return out;
  }

  private prune(): void {
    for (const [host, paths] of this.hosts) {
      for (const [path, r] of paths) if (r.targets.length === 0) paths.delete(path);
      if (paths.size === 0) this.hosts.delete(host);
    }
  }

  /** Computes shares and integer weights and freezes everything, in fabio's config order. */
  finish(): Route[] {
    const hostKeys = [...this.hosts.keys()].filter((h) => h !== '').sort(descending);
    if (this.hosts.has('')) hostKeys.push('');
    const routes: Route[] = [];
    for (const hostKey of hostKeys) {
      const paths = this.hosts.get(hostKey);
      if (paths === undefined) continue;
      const before = this.previous?.get(hostKey);
      const sorted = [...paths.values()].sort((a, b) => descending(a.path, b.path));
      for (const r of sorted) {
        const old = before?.get(r.path);
        const route = old !== undefined && sameWork(old, r) ? (old.frozen as Route) : freezeRoute(r);
        r.frozen = route;
        if (route.targets.length > 0) routes.push(route);
      }
    }
    return routes;
  }
}

/** Same targets (the same placed commands, in order) with the same weights: the same Route. */
function sameWork(a: WorkRoute, b: WorkRoute): boolean {
  if (a.frozen === undefined || a.tcp !== b.tcp || a.targets.length !== b.targets.length) return false;
  for (let i = 0; i < a.targets.length; i++) {
    const x = a.targets[i] as WorkTarget;
    const y = b.targets[i] as WorkTarget;
    if (x.add !== y.add || x.fixedWeight !== y.fixedWeight) return false;
  }
  return true;
}

function freezeRoute(r: WorkRoute): Route {
  const dist = distributeWeights(r.targets);
  const targets: RouteTarget[] = [];
  const starved: RouteTarget[] = [];
  let totalWeight = 0;
  for (let i = 0; i < r.targets.length; i++) {
    const t = r.targets[i] as WorkTarget;
    const target = makeTarget(t, dist.shares[i] ?? 0, dist.weights[i] ?? 0);
    if (target.weight > 0) {
      targets.push(target);
      totalWeight += target.weight;
    } else {
      starved.push(target);
    }
  }
  const first = r.targets[0];
  const proto = first?.add.opts.proto ?? 'http';
  let host = r.hostKey;
  let port = 0;
  const colon = r.hostKey.lastIndexOf(':');
  if (colon >= 0 && !r.hostKey.endsWith(']')) {
    const p = Number(r.hostKey.slice(colon + 1));
    if (Number.isInteger(p)) port = p;
    if (r.tcp) host = r.hostKey.slice(0, colon);
  }
  return Object.freeze({
    src: r.hostKey + r.path,
    host,
    path: r.path,
    port,
    proto,
    targets: Object.freeze(targets),
    starved: Object.freeze(starved),
    totalWeight,
  });
}

/** The command's target with these weights: the one the last build made when they are equal. */
function makeTarget(t: WorkTarget, share: number, weight: number): RouteTarget {
  const a = t.add;
  const made = a.made;
  if (
    made !== undefined &&
    made.share === share &&
    made.weight === weight &&
    made.fixedWeight === t.fixedWeight
  )
    return made;
  const target: RouteTarget = Object.freeze({
    key: a.key,
    service: a.service,
    dst: a.dst,
    url: a.url,
    tags: a.tags,
    fixedWeight: t.fixedWeight,
    instanceWeight: a.instanceWeight,
    share,
    weight,
    opts: a.opts,
    rawOpts: a.rawOpts,
    ...(a.instanceId !== undefined ? { instanceId: a.instanceId } : {}),
  });
  a.made = target;
  return target;
}

function matchesWeightRule(t: WorkTarget, c: RouteCommand): boolean {
  if (c.service !== '' && t.service !== c.service) return false;
  return c.tags.length === 0 || containsAll(t.tags, c.tags);
}

function containsAll(have: readonly string[], want: readonly string[]): boolean {
  for (const w of want) if (!have.includes(w)) return false;
  return true;
}

function sameTags(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function descending(a: string, b: string): number {
  return a < b ? 1 : a > b ? -1 : 0;
}

/** One `route add` line for a target, as fabio's `Table.config()` prints it. */
export function targetConfigLine(route: Route, t: RouteTarget, withWeights: boolean): string {
  let s = `route add ${t.service} ${route.src} ${t.dst}`;
  if (withWeights) s += ` weight ${t.share.toFixed(4)}`;
  else if (t.fixedWeight > 0) s += ` weight ${t.fixedWeight.toFixed(4)}`;
  if (t.tags.length > 0) s += ` tags "${t.tags.join(',')}"`;
  const keys = Object.keys(t.rawOpts).sort();
  if (keys.length > 0) s += ` opts "${keys.map((k) => `${k}=${t.rawOpts[k]}`).join(' ')}"`;
  return s;
}

/** The table as route commands: fabio's `config(withWeights)` (one line per target). */
export function tableConfig(table: Pick<RouteTable, 'routes'>, withWeights: boolean): string[] {
  const lines: string[] = [];
  for (const r of table.routes) for (const t of r.targets) lines.push(targetConfigLine(r, t, withWeights));
  return lines;
}

/**
 * Each route's digest: the hash of its canonical form (source, proto, and every target's key,
 * share, weight, instance and raw options, NUL-separated). Routes are immutable, so a reused
 * route is hashed once, whatever the number of tables it lives in.
 */
const routeDigests = new WeakMap<Route, Buffer>();

function routeDigest(r: Route): Buffer {
  let d = routeDigests.get(r);
  if (d !== undefined) return d;
  const parts: string[] = [r.src, r.proto];
  for (const list of [r.targets, r.starved]) {
    for (const t of list) {
      parts.push(t.key, String(t.share), String(t.weight), t.instanceId ?? '');
      for (const k in t.rawOpts) parts.push(k, t.rawOpts[k] ?? '');
    }
  }
  d = createHash('sha256').update(parts.join('\u0000')).digest();
  routeDigests.set(r, d);
  return d;
}

/**
 * The table's version: a hash over its routes' digests, in table order. A change re-hashes the
 * changed routes and 32 bytes per route, not the whole table's text.
 */
function tableVersion(routes: readonly Route[]): string {
  const all = Buffer.allocUnsafe(routes.length * 32);
  for (let i = 0; i < routes.length; i++) routeDigest(routes[i] as Route).copy(all, i * 32);
  return createHash('sha256').update(all).digest('hex').slice(0, 16);
}
