// Snapshot -> immutable RouteTable. Pure and deterministic: the same snapshot always gives the
// same table and the same version hash. The table is built whole (fabio's model) and never
// patched; the caller swaps it in atomically.
//
// Order of application follows fabio: route commands generated from instance tags first, then
// the manual commands; `route del` and `route weight` act on what exists at that point.

import { createHash } from 'node:crypto';
import { compileHttpRouter } from './http-router.ts';
import { parseRouteOptions } from './options.ts';
import { parseRouteCommands } from './route-command.ts';
import { instanceRouteCommands } from './tags.ts';
import { parseTargetUrl } from './target-url.ts';
import { compileTcpRouter } from './tcp-router.ts';
import type {
  BuildOptions,
  ExcludedInstance,
  InstanceStatus,
  PathMatcher,
  Problem,
  Route,
  RouteCommand,
  RouteOptions,
  RouteTable,
  RouteTarget,
  Snapshot,
  TargetUrl,
} from './types.ts';
import { distributeWeights } from './weights.ts';

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

/** Builds the table for a registry snapshot: instances' route tags, then the manual commands. */
export function buildTable(snapshot: Snapshot, options: BuildOptions = {}): RouteTable {
  const opts = resolveBuildOptions(options);
  const problems: Problem[] = [...(snapshot.problems ?? [])];
  const excluded: ExcludedInstance[] = [];
  const commands: RouteCommand[] = [];
  const accepted = new Set<InstanceStatus>(opts.acceptedStatus);
  // Deterministic regardless of the order a registry listed its instances in.
  const instances = [...snapshot.instances].sort(compareInstances);
  for (const inst of instances) {
    const status = inst.status ?? 'passing';
    if (!accepted.has(status)) {
      excluded.push({ service: inst.service, id: inst.id, status });
      continue;
    }
    const r = instanceRouteCommands(inst, { tagPrefix: opts.tagPrefix, env: opts.env });
    for (const c of r.commands) commands.push(c);
    for (const p of r.problems) problems.push(p);
  }
  const manual = parseRouteCommands(snapshot.manual);
  for (const c of manual.commands) commands.push(c);
  for (const p of manual.problems) problems.push(p);
  return buildTableFromCommands(commands, options, { problems, excluded });
}

/** Builds a table from already parsed route commands (fabio's `NewTable`). */
export function buildTableFromCommands(
  commands: readonly RouteCommand[],
  options: BuildOptions = {},
  extra: { problems?: readonly Problem[]; excluded?: readonly ExcludedInstance[] } = {},
): RouteTable {
  const opts = resolveBuildOptions(options);
  const b = new TableBuilder();
  for (const p of extra.problems ?? []) b.report(p);
  for (const c of commands) {
    if (c.cmd === 'route add') b.add(c);
    else if (c.cmd === 'route del') b.del(c);
    else b.weigh(c);
  }
  const routes = b.finish();
  const version = tableVersion(routes);
  const http = compileHttpRouter(
    routes.filter((r) => !isTcpProto(r.proto)),
    { matcher: opts.matcher, globMatching: opts.globMatching },
  );
  const tcp = compileTcpRouter(routes.filter((r) => isTcpProto(r.proto)));
  return Object.freeze({
    version,
    routes: Object.freeze(routes),
    http,
    tcp,
    excluded: Object.freeze([...(extra.excluded ?? [])]),
    problems: Object.freeze(b.problems),
  });
}

export function isTcpProto(proto: string): boolean {
  return proto === 'tcp' || proto === 'tcp+sni';
}

interface WorkTarget {
  service: string;
  dst: string;
  url: TargetUrl;
  tags: readonly string[];
  fixedWeight: number;
  instanceWeight: number;
  opts: RouteOptions;
  rawOpts: Readonly<Record<string, string>>;
  instanceId: string | undefined;
}

interface WorkRoute {
  /** fabio's host key: `foo.com`, `foo.com:80`, `*.a.com`, `:3306`, ''. */
  hostKey: string;
  path: string;
  tcp: boolean;
  targets: WorkTarget[];
  /**
   * Targets by service and URL, for the de-duplication in add(): a linear scan made adding the
   * 100,000 instances of one service quadratic (minutes). Dropped whenever `targets` is replaced.
   */
  byDst?: Map<string, WorkTarget[]> | undefined;
}

function dstKey(service: string, dst: string): string {
  return `${service}\u0000${dst}`;
}

function indexTargets(route: WorkRoute): Map<string, WorkTarget[]> {
  let index = route.byDst;
  if (index !== undefined) return index;
  index = new Map();
  for (const t of route.targets) {
    const k = dstKey(t.service, t.dst);
    const list = index.get(k);
    if (list === undefined) index.set(k, [t]);
    else list.push(t);
  }
  route.byDst = index;
  return index;
}

class TableBuilder {
  readonly problems: Problem[] = [];
  private readonly seen = new Set<string>();
  /** hostKey -> path -> route, insertion ordered. */
  private readonly hosts = new Map<string, Map<string, WorkRoute>>();

  report(p: Problem): void {
    const id = `${p.source}\u0000${p.line ?? ''}\u0000${p.instance ?? ''}\u0000${p.input}\u0000${p.reason}`;
    if (this.seen.has(id)) return;
    this.seen.add(id);
    this.problems.push(p);
  }

  private problem(c: RouteCommand, reason: string, severity: Problem['severity'] = 'error'): void {
    const p: Problem = {
      source: c.instanceId === undefined ? 'manual' : 'tag',
      severity,
      reason,
      input: formatCommand(c),
      service: c.service,
      ...(c.instanceId !== undefined ? { instance: c.instanceId } : {}),
      ...(c.line !== undefined ? { line: c.line } : {}),
    };
    this.report(p);
  }

  add(c: RouteCommand): void {
    if (c.src === '') return this.problem(c, 'route: prefix must not be empty');
    if (c.dst === '') return this.problem(c, 'route: target must not be empty');
    const url = parseTargetUrl(c.dst);
    if (typeof url === 'string') return this.problem(c, url);
    const parsed = parseRouteOptions(c.opts, c.dst);
    for (const e of parsed.errors) this.problem(c, e);
    if (parsed.errors.length > 0) return;
    // Commands from tags were validated (and their warnings reported) by instanceRouteCommands.
    if (c.instanceId === undefined) for (const w of parsed.warnings) this.problem(c, w, 'warning');
    const tcp = isTcpSrc(c.src, parsed.opts.proto);
    const { hostKey, path } = splitSrc(c.src, tcp);
    let paths = this.hosts.get(hostKey);
    if (paths === undefined) {
      paths = new Map();
      this.hosts.set(hostKey, paths);
    }
    let route = paths.get(path);
    if (route === undefined) {
      route = { hostKey, path, tcp, targets: [] };
      paths.set(path, route);
    }
    const fixedWeight = c.weight > 0 ? c.weight : 0;
    const index = indexTargets(route);
    const key = dstKey(c.service, c.dst);
    const same = index.get(key);
    if (same !== undefined) {
      for (const t of same) {
        // fabio de-duplicates identical targets (same service, URL, fixed weight and tags).
        if (t.fixedWeight === fixedWeight && sameTags(t.tags, c.tags)) return;
      }
    }
    const target: WorkTarget = {
      service: c.service,
      dst: c.dst,
      url,
      tags: c.tags,
      fixedWeight,
      instanceWeight: instanceWeightOf(c.instanceWeight ?? parsed.instanceWeight),
      opts: parsed.opts,
      rawOpts: c.opts,
      instanceId: c.instanceId,
    };
    route.targets.push(target);
    if (same === undefined) index.set(key, [target]);
    else same.push(target);
  }

  del(c: RouteCommand): void {
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
        c.dst === '' ? (t) => t.service !== c.service : (t) => !(t.service === c.service && t.dst === c.dst);
    }
    for (const r of scope) {
      r.targets = r.targets.filter(keep);
      r.byDst = undefined;
    }
    this.prune();
  }

  weigh(c: RouteCommand): void {
    const r = this.find(c.src);
    const matched = r === undefined ? [] : r.targets.filter((t) => matchesWeightRule(t, c));
    if (matched.length === 0) {
      return this.problem(c, 'route weight: no target matches (ignored)', 'warning');
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
      const sorted = [...paths.values()].sort((a, b) => descending(a.path, b.path));
      for (const r of sorted) {
        const route = freezeRoute(r);
        if (route.targets.length > 0) routes.push(route);
      }
    }
    return routes;
  }
}

function freezeRoute(r: WorkRoute): Route {
  const dist = distributeWeights(r.targets);
  const targets: RouteTarget[] = [];
  const starved: RouteTarget[] = [];
  let totalWeight = 0;
  for (let i = 0; i < r.targets.length; i++) {
    const t = r.targets[i] as WorkTarget;
    const share = dist.shares[i] ?? 0;
    const weight = dist.weights[i] ?? 0;
    const target: RouteTarget = Object.freeze({
      key: `${t.service}|${t.dst}|${t.tags.join(',')}`,
      service: t.service,
      dst: t.dst,
      url: Object.freeze(t.url),
      // Command arrays and option maps are created by the parsers for this build alone: freeze
      // them in place rather than copying (14,000 targets per big table).
      tags: Object.freeze(t.tags as string[]),
      fixedWeight: t.fixedWeight,
      instanceWeight: t.instanceWeight,
      share,
      weight,
      opts: Object.freeze(t.opts),
      rawOpts: Object.freeze(t.rawOpts),
      ...(t.instanceId !== undefined ? { instanceId: t.instanceId } : {}),
    });
    if (weight > 0) {
      targets.push(target);
      totalWeight += weight;
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
    targets: Object.freeze(targets),
    starved: Object.freeze(starved),
    totalWeight,
  });
}

/** A TCP src is `:port` or `host:port` without a path, on a tcp/tcp+sni route. */
function isTcpSrc(src: string, proto: string): boolean {
  if (src.includes('/')) return false;
  return src.startsWith(':') || isTcpProto(proto);
}

/** fabio's hostpath(): `host/path` -> host (lowercased) and `/path`; a TCP src has no path. */
function splitSrc(src: string, tcp: boolean): { hostKey: string; path: string } {
  if (tcp || src.startsWith(':')) return { hostKey: src.toLowerCase(), path: '' };
  const slash = src.indexOf('/');
  if (slash < 0) return { hostKey: src.toLowerCase(), path: '/' };
  return { hostKey: src.slice(0, slash).toLowerCase(), path: src.slice(slash) };
}

function instanceWeightOf(w: number | undefined): number {
  return w !== undefined && w >= 1 ? Math.floor(w) : 1;
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

function compareInstances(
  a: { service: string; id: string; registry?: string },
  b: { service: string; id: string; registry?: string },
): number {
  if (a.service !== b.service) return a.service < b.service ? -1 : 1;
  if (a.id !== b.id) return a.id < b.id ? -1 : 1;
  const ra = a.registry ?? '';
  const rb = b.registry ?? '';
  return ra < rb ? -1 : ra > rb ? 1 : 0;
}

/** fabio's `route add` line for a command (used for problems). */
export function formatCommand(c: RouteCommand): string {
  let s = c.cmd;
  if (c.service !== '') s += ` ${c.service}`;
  if (c.src !== '') s += ` ${c.src}`;
  if (c.dst !== '') s += ` ${c.dst}`;
  if (c.cmd === 'route weight' || c.weight > 0) s += ` weight ${c.weight}`;
  if (c.tags.length > 0) s += ` tags "${c.tags.join(',')}"`;
  const keys = Object.keys(c.opts);
  if (keys.length > 0)
    s += ` opts "${keys.map((k) => (c.opts[k] === '' ? k : `${k}=${c.opts[k]}`)).join(' ')}"`;
  return s;
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

function tableVersion(routes: readonly Route[]): string {
  // One hash over a plain canonical form (cheaper than hashing the formatted route lines).
  const parts: string[] = [];
  for (const r of routes) {
    parts.push(r.src, r.proto);
    for (const list of [r.targets, r.starved]) {
      for (const t of list) {
        parts.push(t.key, String(t.share), String(t.weight), t.instanceId ?? '');
        for (const k in t.rawOpts) parts.push(k, t.rawOpts[k] ?? '');
      }
    }
  }
  return createHash('sha256').update(parts.join('\u0000')).digest('hex').slice(0, 16);
}
