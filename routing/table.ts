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

import { createHash } from 'node:crypto';
import { compileHttpRouter } from './http-router.ts';
import {
  type AddTarget,
  type CollectedInputs,
  commandProblem,
  exactAdds,
  isTcpProto,
  type ManualProduct,
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
  /** The previous build's routes (full builds reuse their frozen routes). */
  private previous: RouteMap | undefined;
  /** Set while the manual commands only add: then a change re-assembles only its routes. */
  private assembly: Assembly | undefined;

  constructor(options: BuildOptions = {}) {
    this.opts = resolveBuildOptions(options);
    this.inputs = new TableInputs(this.opts);
  }

  build(snapshot: Snapshot): RouteTable {
    const collected = this.inputs.collect(snapshot);
    const a = this.assembly;
    if (a !== undefined && a.manual === collected.manual) {
      try {
        return this.buildChanged(snapshot, collected, a);
      } catch (err) {
        // Never leave a half-updated assembly behind: the next build starts from scratch.
        this.assembly = undefined;
        this.previous = undefined;
        throw err;
      }
    }
    return this.buildAll(snapshot, collected);
  }

  /** Every command applied in order (fabio's model), reusing frozen routes that came out equal. */
  private buildAll(snapshot: Snapshot, { services, manual }: CollectedInputs): RouteTable {
    const b = new TableBuilder(this.previous);
    const excluded = reportInputProblems(b, snapshot, services, manual);
    for (const products of services) {
      for (const p of products) {
        for (const x of p.addProblems) b.report(x);
        for (const add of p.adds) b.place(add);
      }
    }
    for (const c of manual.commands) b.apply(c);
    const routes = b.finish();
    this.previous = b.hosts;
    this.assembly = manual.additive ? { hosts: b.hosts, order: b.order, manual } : undefined;
    return finishTable(routes, b.problems, this.opts, excluded);
  }

  /**
   * Only `route add` commands (from tags, then the unchanged manual ones): a route's targets are
   * its adds in command order, de-duplicated, so only the routes a changed service adds to (or
   * added to) are re-assembled; every other route, and the config order, are kept.
   */
  private buildChanged(
    snapshot: Snapshot,
    { services, manual, changes }: CollectedInputs,
    a: Assembly,
  ): RouteTable {
    const problems = new ProblemList();
    const excluded = reportInputProblems(problems, snapshot, services, manual);
    for (const products of services)
      for (const p of products) for (const x of p.addProblems) problems.report(x);
    for (const c of manual.commands) for (const x of c.problems) problems.report(x);
    if (changes.length === 0) return finishTable(routesOf(a.order), problems.list, this.opts, excluded);

    const changed = new Set<string>();
    /** Dirty routes -> the adds of changed services to them, in command order. */
    const dirty = new Map<WorkRoute, AddTarget[]>();
    const created: WorkRoute[] = [];
    for (const c of changes) {
      changed.add(c.name);
      for (const p of c.before ?? [])
        for (const add of p.adds) {
          const r = a.hosts.get(add.hostKey, add.path);
          if (r !== undefined && !dirty.has(r)) dirty.set(r, []);
        }
    }
    for (const c of changes) {
      for (const p of c.after ?? []) {
        for (const add of p.adds) {
          let r = a.hosts.get(add.hostKey, add.path);
          if (r === undefined) {
            r = newRoute(a.hosts, add);
            created.push(r);
          }
          let adds = dirty.get(r);
          if (adds === undefined) dirty.set(r, (adds = []));
          adds.push(add);
        }
      }
    }
    let removed = false;
    for (const [r, adds] of dirty) {
      // The route's adds without the changed services', then theirs at their place in the
      // service order (adds from tags are sorted by service; the manual ones come last).
      const merged: AddTarget[] = [];
      let next = 0;
      for (const x of r.raw) {
        if (x.instanceId !== undefined && changed.has(x.service)) continue;
        while (
          next < adds.length &&
          (x.instanceId === undefined || (adds[next] as AddTarget).service < x.service)
        )
          merged.push(adds[next++] as AddTarget);
        merged.push(x);
      }
      while (next < adds.length) merged.push(adds[next++] as AddTarget);
      if (merged.length === 0) {
        a.hosts.delete(r);
        removed = true;
        continue;
      }
      // Kept until the next change of the route: exact-size (finding 1 of issue #9's memory bar).
      const raw = exactAdds(merged);
      const work: WorkRoute = {
        hostKey: r.hostKey,
        path: r.path,
        tcp: (raw[0] as AddTarget).tcp,
        raw,
        targets: dedupe(raw),
        weights: undefined,
        frozen: undefined,
      };
      r.frozen = r.frozen !== undefined && sameWork(r, work) ? r.frozen : freezeRoute(work);
      r.tcp = work.tcp;
      r.raw = raw;
      r.targets = work.targets;
    }
    if (removed || created.length > 0) {
      const order = removed
        ? a.order.filter((r) => r.raw.length > 0 && a.hosts.get(r.hostKey, r.path) === r)
        : a.order.slice();
      for (const r of created) if (r.raw.length > 0) order.splice(insertionPoint(order, r), 0, r);
      a.order = order;
    }
    return finishTable(routesOf(a.order), problems.list, this.opts, excluded);
  }
}

/** What an additive build keeps for the next one. */
interface Assembly {
  /** Every route, including those whose targets are all starved. */
  readonly hosts: RouteMap;
  /** The routes in fabio's config order. */
  order: WorkRoute[];
  readonly manual: ManualProduct;
}

/** Reports the snapshot's, the tags' and the manual text's problems; returns the excluded instances. */
function reportInputProblems(
  b: { report(p: Problem): void },
  snapshot: Snapshot,
  services: CollectedInputs['services'],
  manual: ManualProduct,
): ExcludedInstance[] {
  for (const p of snapshot.problems ?? []) b.report(p);
  const excluded: ExcludedInstance[] = [];
  for (const products of services) {
    for (const p of products) {
      if (p.excluded !== undefined) excluded.push(p.excluded);
      for (const problem of p.tagProblems) b.report(problem);
    }
  }
  for (const p of manual.problems) b.report(p);
  return excluded;
}

function newRoute(hosts: RouteMap, a: AddTarget): WorkRoute {
  const raw: AddTarget[] = [];
  const r: WorkRoute = {
    hostKey: a.hostKey,
    path: a.path,
    tcp: a.tcp,
    raw,
    targets: raw,
    weights: undefined,
    frozen: undefined,
  };
  hosts.add(r);
  return r;
}

/**
 * Up to this many targets a route finds an add's twin by scanning them; past it, through a
 * `TwinIndex` (a Map per route costs more than scanning a handful of targets).
 */
const twinScanLimit = 8;

/**
 * Targets by service and URL, for fabio's de-duplication: a scan of every target of the route
 * made adding 100,000 instances of one service quadratic (minutes instead of about a second).
 * Valid while `of` is the route's `targets` array.
 */
interface TwinIndex {
  readonly of: readonly AddTarget[];
  readonly byDst: Map<string, AddTarget[]>;
}

function twinKey(service: string, dst: string): string {
  return `${service}\u0000${dst}`;
}

function newTwinIndex(targets: readonly AddTarget[]): TwinIndex {
  const index: TwinIndex = { of: targets, byDst: new Map() };
  for (const t of targets) indexTwin(index, t);
  return index;
}

function indexTwin(index: TwinIndex, t: AddTarget): void {
  const k = twinKey(t.service, t.dst);
  const list = index.byDst.get(k);
  if (list === undefined) index.byDst.set(k, [t]);
  else list.push(t);
}

/** fabio's identical targets: same service, URL, fixed weight (as it is now) and tags. */
function isTwin(t: AddTarget, tFixedWeight: number, a: AddTarget): boolean {
  return (
    t.service === a.service && t.dst === a.dst && tFixedWeight === a.fixedWeight && sameTags(t.tags, a.tags)
  );
}

/** fabio de-duplicates identical targets: the first stays. `raw` itself when none is a duplicate. */
function dedupe(raw: readonly AddTarget[]): readonly AddTarget[] {
  let kept: AddTarget[] | undefined;
  const index: TwinIndex | undefined = raw.length > twinScanLimit ? { of: raw, byDst: new Map() } : undefined;
  for (let i = 0; i < raw.length; i++) {
    const a = raw[i] as AddTarget;
    const seen = kept ?? raw;
    const end = kept === undefined ? i : kept.length;
    const candidates = index === undefined ? seen : index.byDst.get(twinKey(a.service, a.dst));
    const n = index === undefined ? end : (candidates?.length ?? 0);
    let twin = false;
    for (let j = 0; j < n && !twin; j++) {
      const t = (candidates as readonly AddTarget[])[j] as AddTarget;
      twin = isTwin(t, t.fixedWeight, a);
    }
    if (twin) {
      kept ??= raw.slice(0, i);
      continue;
    }
    if (kept !== undefined) kept.push(a);
    if (index !== undefined) indexTwin(index, a);
  }
  return kept === undefined ? raw : exactAdds(kept);
}

/** fabio's config order: hosts descending with the host-less routes last, paths descending. */
function configOrder(a: WorkRoute, b: WorkRoute): number {
  if (a.hostKey !== b.hostKey) {
    if (a.hostKey === '') return 1;
    if (b.hostKey === '') return -1;
    return descending(a.hostKey, b.hostKey);
  }
  return descending(a.path, b.path);
}

function insertionPoint(order: readonly WorkRoute[], r: WorkRoute): number {
  let lo = 0;
  let hi = order.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (configOrder(order[mid] as WorkRoute, r) < 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** The table's routes: those with a target that has a share. */
function routesOf(order: readonly WorkRoute[]): Route[] {
  const routes: Route[] = [];
  for (const r of order) {
    const f = r.frozen as Route;
    if (f.targets.length > 0) routes.push(f);
  }
  return routes;
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
  return finishTable(b.finish(), b.problems, opts, [...(extra.excluded ?? [])]);
}

function finishTable(
  routes: Route[],
  problems: Problem[],
  opts: ResolvedBuildOptions,
  excluded: ExcludedInstance[],
): RouteTable {
  const version = tableVersion(routes);
  const httpRoutes: Route[] = [];
  const tcpRoutes: Route[] = [];
  for (const r of routes) (isTcpProto(r.proto) ? tcpRoutes : httpRoutes).push(r);
  const http = compileHttpRouter(httpRoutes, { matcher: opts.matcher, globMatching: opts.globMatching });
  const tcp = compileTcpRouter(tcpRoutes);
  return Object.freeze({
    version,
    // The table keeps it for its lifetime: exact-size.
    routes: Object.freeze(routes.slice()),
    http,
    tcp,
    excluded: Object.freeze(excluded),
    problems: Object.freeze(problems),
  });
}

/**
 * A route being assembled. Its targets are the placed `AddTarget`s themselves (no per-target
 * work object): the one thing a build may change about a target, its fixed weight (`route
 * weight`), lives in `weights`.
 */
interface WorkRoute {
  /** fabio's host key: `foo.com`, `foo.com:80`, `*.a.com`, `:3306`, ''. */
  readonly hostKey: string;
  readonly path: string;
  tcp: boolean;
  /**
   * Every `route add` for this route in command order, before de-duplication. Grown by push
   * only while a full build places its adds (its routes are its own, made by `newRoute`);
   * `finish()` makes it exact-size, often the add's shared `alone()` list.
   */
  raw: readonly AddTarget[];
  /**
   * The de-duplicated adds in order: the `raw` array itself while none was a duplicate or
   * deleted (nearly always), so a route keeps one list rather than two.
   */
  targets: readonly AddTarget[];
  /** Fixed weights set by `route weight` in this build; undefined while there is none. */
  weights: Map<AddTarget, number> | undefined;
  /** The frozen route, once finish() made (or reused) it. */
  frozen: Route | undefined;
}

/** The fixed weight of one of the route's targets in this build. */
function fixedWeightOf(r: WorkRoute, t: AddTarget): number {
  if (r.weights === undefined) return t.fixedWeight;
  const w = r.weights.get(t);
  return w === undefined ? t.fixedWeight : w;
}

/**
 * hostKey -> path -> route, insertion ordered. Nearly every host has one route, so a host maps
 * to that route itself until a second path arrives (a Map per host costs ~250 bytes a route).
 */
class RouteMap {
  private readonly hosts = new Map<string, WorkRoute | Map<string, WorkRoute>>();

  get(hostKey: string, path: string): WorkRoute | undefined {
    const h = this.hosts.get(hostKey);
    if (h === undefined) return undefined;
    if (h instanceof Map) return h.get(path);
    return h.path === path ? h : undefined;
  }

  /** Adds a route whose (hostKey, path) is not in the map yet. */
  add(r: WorkRoute): void {
    const h = this.hosts.get(r.hostKey);
    if (h === undefined) this.hosts.set(r.hostKey, r);
    else if (h instanceof Map) h.set(r.path, r);
    else
      this.hosts.set(
        r.hostKey,
        new Map([
          [h.path, h],
          [r.path, r],
        ]),
      );
  }

  /** Removes the route (if it is the one stored under its hostKey and path). */
  delete(r: WorkRoute): void {
    const h = this.hosts.get(r.hostKey);
    if (h === r) this.hosts.delete(r.hostKey);
    else if (h instanceof Map && h.get(r.path) === r) {
      h.delete(r.path);
      if (h.size === 0) this.hosts.delete(r.hostKey);
    }
  }

  hasHost(hostKey: string): boolean {
    return this.hosts.has(hostKey);
  }

  hostKeys(): string[] {
    return [...this.hosts.keys()];
  }

  /** The host's routes in insertion order. */
  routesOf(hostKey: string): WorkRoute[] {
    const h = this.hosts.get(hostKey);
    if (h === undefined) return [];
    return h instanceof Map ? [...h.values()] : [h];
  }

  /** Every route, hosts and paths in insertion order. */
  all(): WorkRoute[] {
    const out: WorkRoute[] = [];
    for (const h of this.hosts.values()) {
      if (h instanceof Map) for (const r of h.values()) out.push(r);
      else out.push(h);
    }
    return out;
  }
}

/** Problems in report order, each reported once. */
class ProblemList {
  readonly list: Problem[] = [];
  private readonly seen = new Set<string>();

  report(p: Problem): void {
    const id = `${p.source}\u0000${p.line ?? ''}\u0000${p.instance ?? ''}\u0000${p.input}\u0000${p.reason}`;
    if (this.seen.has(id)) return;
    this.seen.add(id);
    this.list.push(p);
  }
}

class TableBuilder {
  private readonly reported = new ProblemList();
  readonly problems: Problem[] = this.reported.list;
  readonly hosts = new RouteMap();
  /** finish(): every route (starved ones too) in fabio's config order. */
  order: WorkRoute[] = [];
  /** The previous build's routes: a route whose targets and weights are the same is reused. */
  private readonly previous: RouteMap | undefined;
  /** Twin indexes of the routes with more than `twinScanLimit` targets (this build only). */
  private readonly twins = new Map<WorkRoute, TwinIndex>();

  constructor(previous: RouteMap | undefined) {
    this.previous = previous;
  }

  report(p: Problem): void {
    this.reported.report(p);
  }

  apply(c: PreparedCommand): void {
    if (c.cmd.cmd === 'route add') this.add(c);
    else if (c.cmd.cmd === 'route del') this.del(c.cmd);
    else this.weigh(c.cmd);
  }

  private add(c: PreparedCommand): void {
    for (const p of c.problems) this.report(p);
    if (c.add !== undefined) this.place(c.add);
  }

  /** A checked `route add`: its target joins the route unless an identical one is there. */
  place(a: AddTarget): void {
    const route = this.hosts.get(a.hostKey, a.path) ?? newRoute(this.hosts, a);
    const shared = route.targets === route.raw;
    // Before finish() the route's lists are this build's own, growable arrays (see WorkRoute).
    if (this.hasTwin(route, a)) {
      // fabio de-duplicates identical targets: from now on the route keeps two lists.
      if (shared) route.targets = route.raw.slice();
      (route.raw as AddTarget[]).push(a);
      return;
    }
    (route.raw as AddTarget[]).push(a);
    if (!shared) (route.targets as AddTarget[]).push(a);
    const index = this.twins.get(route);
    if (index !== undefined && index.of === route.targets) indexTwin(index, a);
  }

  private hasTwin(r: WorkRoute, a: AddTarget): boolean {
    const targets = r.targets;
    if (targets.length <= twinScanLimit) {
      for (const t of targets) if (isTwin(t, fixedWeightOf(r, t), a)) return true;
      return false;
    }
    let index = this.twins.get(r);
    if (index === undefined || index.of !== targets) {
      index = newTwinIndex(targets);
      this.twins.set(r, index);
    }
    const same = index.byDst.get(twinKey(a.service, a.dst));
    if (same === undefined) return false;
    for (const t of same) if (isTwin(t, fixedWeightOf(r, t), a)) return true;
    return false;
  }

  private del(c: RouteCommand): void {
    let keep: (t: AddTarget) => boolean;
    let scope: WorkRoute[];
    if (c.tags.length > 0) {
      keep = (t) => !((c.service === '' || t.service === c.service) && containsAll(t.tags, c.tags));
      scope = this.hosts.all();
    } else if (c.src === '' && c.dst === '') {
      keep = (t) => t.service !== c.service;
      scope = this.hosts.all();
    } else {
      const r = this.find(c.src);
      scope = r === undefined ? [] : [r];
      keep =
        c.dst === '' ? (t) => t.service !== c.service : (t) => !(t.service === c.service && t.dst === c.dst);
    }
    for (const r of scope) {
      const kept = r.targets.filter(keep);
      if (kept.length !== r.targets.length) r.targets = kept;
    }
    this.prune(scope);
  }

  private weigh(c: RouteCommand): void {
    const r = this.find(c.src);
    const matched = r === undefined ? [] : r.targets.filter((t) => matchesWeightRule(t, c));
    if (r === undefined || matched.length === 0) {
      return this.report(commandProblem(c, 'route weight: no target matches (ignored)', 'warning'));
    }
    // fabio spreads the share evenly over the matching targets; Cairn spreads it in proportion
    // to their instance weights, which is the same thing when those are all 1.
    let sum = 0;
    for (const t of matched) sum += t.instanceWeight;
    const weights = (r.weights ??= new Map());
    for (const t of matched) weights.set(t, (c.weight * t.instanceWeight) / sum);
  }

  private find(src: string): WorkRoute | undefined {
    // A weight/del rule names the route by its src; try the TCP form and the HTTP form.
    for (const tcp of [false, true]) {
      const { hostKey, path } = splitSrc(src, tcp);
      const r = this.hosts.get(hostKey.toLowerCase(), path);
      if (r !== undefined) return r;
    }
    return undefined;
  }

  /** Drops the routes of `scope` left without a target. */
  private prune(scope: readonly WorkRoute[]): void {
    for (const r of scope) if (r.targets.length === 0) this.hosts.delete(r);
  }

  /** Computes shares and integer weights and freezes everything, in fabio's config order. */
  finish(): Route[] {
    const hostKeys = this.hosts
      .hostKeys()
      .filter((h) => h !== '')
      .sort(descending);
    if (this.hosts.hasHost('')) hostKeys.push('');
    const order: WorkRoute[] = [];
    for (const hostKey of hostKeys) {
      const routes = this.hosts.routesOf(hostKey);
      if (routes.length > 1) routes.sort((a, b) => descending(a.path, b.path));
      for (const r of routes) {
        // Kept by the next build: exact-size lists (finding 1 of issue #9's memory bar).
        const raw = exactAdds(r.raw);
        r.targets = r.targets === r.raw ? raw : exactAdds(r.targets);
        r.raw = raw;
        const old = this.previous?.get(hostKey, r.path);
        r.frozen = old !== undefined && sameWork(old, r) ? (old.frozen as Route) : freezeRoute(r);
        order.push(r);
      }
    }
    this.twins.clear();
    this.order = order.slice();
    return routesOf(order);
  }
}

/** Same targets (the same placed commands, in order) with the same weights: the same Route. */
function sameWork(a: WorkRoute, b: WorkRoute): boolean {
  if (a.frozen === undefined || a.tcp !== b.tcp || a.targets.length !== b.targets.length) return false;
  for (let i = 0; i < a.targets.length; i++) {
    const x = a.targets[i] as AddTarget;
    const y = b.targets[i] as AddTarget;
    if (x !== y || fixedWeightOf(a, x) !== fixedWeightOf(b, y)) return false;
  }
  return true;
}

/** Shared by every route without starved targets (nearly all). */
const noTargets: readonly RouteTarget[] = Object.freeze([]);

function freezeRoute(r: WorkRoute): Route {
  const dist = distributeWeights(
    r.weights === undefined
      ? r.targets
      : r.targets.map((t) => ({ fixedWeight: fixedWeightOf(r, t), instanceWeight: t.instanceWeight })),
  );
  const targets: RouteTarget[] = [];
  const starved: RouteTarget[] = [];
  let totalWeight = 0;
  for (let i = 0; i < r.targets.length; i++) {
    const t = r.targets[i] as AddTarget;
    const target = makeTarget(t, fixedWeightOf(r, t), dist.shares[i] ?? 0, dist.weights[i] ?? 0);
    if (target.weight > 0) {
      targets.push(target);
      totalWeight += target.weight;
    } else {
      starved.push(target);
    }
  }
  const first = r.targets[0];
  const proto = first?.opts.proto ?? 'http';
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
    // Kept for the route's lifetime: exact-size, and one shared empty list.
    targets: Object.freeze(targets.slice()),
    starved: starved.length === 0 ? noTargets : Object.freeze(starved.slice()),
    totalWeight,
  });
}

/** The command's target with these weights: the one the last build made when they are equal. */
function makeTarget(a: AddTarget, fixedWeight: number, share: number, weight: number): RouteTarget {
  const made = a.made;
  if (made.share === share && made.weight === weight && made.fixedWeight === fixedWeight) return made;
  const target: RouteTarget = Object.freeze({
    key: a.key,
    service: a.service,
    dst: a.dst,
    url: a.url,
    tags: a.tags,
    fixedWeight,
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

function matchesWeightRule(t: AddTarget, c: RouteCommand): boolean {
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
 * Each route's part of the canonical form the version hashes (source, proto, and every target's
 * key, share, weight, instance and raw options, NUL-separated), with the NUL that joins it to the
 * previous route in front. Routes are immutable, so a reused route is formatted once, whatever
 * the number of tables it lives in.
 */
const versionParts = new WeakMap<Route, string>();

function versionPart(r: Route): string {
  let s = versionParts.get(r);
  if (s !== undefined) return s;
  const parts: string[] = ['', r.src, r.proto];
  for (const list of [r.targets, r.starved]) {
    for (const t of list) {
      parts.push(t.key, String(t.share), String(t.weight), t.instanceId ?? '');
      for (const k in t.rawOpts) parts.push(k, t.rawOpts[k] ?? '');
    }
  }
  s = parts.join('\u0000');
  versionParts.set(r, s);
  return s;
}

/**
 * One hash over a plain canonical form of the table (cheaper than hashing the formatted route
 * lines): every route's fields joined by NUL, the routes joined by NUL too. The routes' parts are
 * streamed into the hash, never joined into one big string.
 */
function tableVersion(routes: readonly Route[]): string {
  const h = createHash('sha256');
  for (let i = 0; i < routes.length; i++) {
    const part = versionPart(routes[i] as Route);
    h.update(i === 0 ? part.slice(1) : part);
  }
  return h.digest('hex').slice(0, 16);
}
