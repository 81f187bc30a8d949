// The per-instance half of a table build: an instance's route tags become route commands, and
// each `route add` is checked and parsed once (destination URL, options, host key and path), so
// assembling the table only places ready-made targets. Both steps are pure functions of the
// instance record (and the build options), which is what lets `TableInputs` keep the products
// of the previous build and redo only the services whose instances changed: a registry change
// touching one service of 2,000 re-parses five records, not 10,000.
//
// Everything here is immutable once made (arrays and option maps are frozen), because the
// products, and the RouteTarget objects made from them, are shared by every later table.

import { parseRouteOptions } from './options.ts';
import { parseRouteCommands } from './route-command.ts';
import { instanceRouteCommands } from './tags.ts';
import { parseTargetUrl } from './target-url.ts';
import type {
  ExcludedInstance,
  InstanceStatus,
  Problem,
  RouteCommand,
  RouteOptions,
  RouteTarget,
  ServiceInstance,
  Snapshot,
  TargetUrl,
} from './types.ts';

/**
 * A `route add` that passed its checks: everything the table needs to place the target. Its
 * target fields (service, dst, url, ...) are read from `made`, so a table of 10,000 one-target
 * routes keeps them once, not twice (issue #9's memory bar).
 */
export class AddTarget {
  /**
   * The RouteTarget the last build made from this command, reused while its weights stay the
   * same (the one mutable slot: a cache, invisible in any table's data). Made with the command,
   * as a route with no other target has it (share 1, weight 1).
   */
  made: RouteTarget;
  /** The command's fixed weight (a `route weight` may override it in one build). */
  readonly fixedWeight: number;
  readonly tcp: boolean;
  /** fabio's host key (lowercased) and path the command's src names. */
  readonly hostKey: string;
  readonly path: string;
  /** `alone()`, once asked for. */
  private list: readonly AddTarget[] | undefined;

  constructor(made: RouteTarget, fixedWeight: number, tcp: boolean, hostKey: string, path: string) {
    this.made = made;
    this.fixedWeight = fixedWeight;
    this.tcp = tcp;
    this.hostKey = hostKey;
    this.path = path;
    this.list = undefined;
  }

  /**
   * A frozen list of this add alone. Nearly every instance has one add and nearly every route
   * one target: the instance's product and the route then keep this one list, not one each.
   */
  alone(): readonly AddTarget[] {
    return (this.list ??= Object.freeze([this]));
  }

  get service(): string {
    return this.made.service;
  }

  get dst(): string {
    return this.made.dst;
  }

  get url(): TargetUrl {
    return this.made.url;
  }

  get tags(): readonly string[] {
    return this.made.tags;
  }

  get instanceWeight(): number {
    return this.made.instanceWeight;
  }

  get opts(): RouteOptions {
    return this.made.opts;
  }

  get rawOpts(): Readonly<Record<string, string>> {
    return this.made.rawOpts;
  }

  get instanceId(): string | undefined {
    return this.made.instanceId;
  }

  /** `service|dst|tags`, RouteTarget.key. */
  get key(): string {
    return this.made.key;
  }
}

/** A parsed route command with what applying it reports. */
export interface PreparedCommand {
  readonly cmd: RouteCommand;
  /** `route add`: the problems of placing it (reported when applied, in this order). */
  readonly problems: readonly Problem[];
  /** `route add` that passed its checks; undefined for a skipped add, `route del` and `route weight`. */
  readonly add: AddTarget | undefined;
}

/** What one instance contributes to a table. */
export interface InstanceProduct {
  /** The record it was made from (replaced by an equal newer record, for a faster next compare). */
  instance: ServiceInstance;
  /** Set when the instance's status is not accepted (then it has no commands). */
  readonly excluded: ExcludedInstance | undefined;
  /** Problems of its route tags. */
  readonly tagProblems: readonly Problem[];
  /** Problems of placing its route commands (reported when they are applied, in this order). */
  readonly addProblems: readonly Problem[];
  /** Its `route add` commands that passed their checks, in tag order. */
  readonly adds: readonly AddTarget[];
}

/** The manual route commands (`route add|del|weight` text) of a build. */
export interface ManualProduct {
  readonly text: string;
  readonly problems: readonly Problem[];
  readonly commands: readonly PreparedCommand[];
  /** Only `route add` commands: targets only accumulate, nothing is deleted or re-weighted. */
  readonly additive: boolean;
}

export interface InputOptions {
  readonly tagPrefix: string;
  readonly acceptedStatus: readonly InstanceStatus[];
  readonly env: Readonly<Record<string, string>>;
}

/** A service whose products differ from the previous collect's (new, changed or gone). */
export interface ServiceChange {
  readonly name: string;
  readonly before: readonly InstanceProduct[] | undefined;
  readonly after: readonly InstanceProduct[] | undefined;
}

/** A snapshot's products in build order: services sorted, instances sorted within a service. */
export interface CollectedInputs {
  readonly services: readonly (readonly InstanceProduct[])[];
  readonly manual: ManualProduct;
  /** What changed since the previous collect, sorted by service name. */
  readonly changes: readonly ServiceChange[];
}

const noProblems: readonly Problem[] = Object.freeze([]);
const noAdds: readonly AddTarget[] = Object.freeze([]);
/** Shared by every command without tags / options (nearly all): one object, not 10,000. */
const noTags: readonly string[] = Object.freeze([]);
const noRawOpts: Readonly<Record<string, string>> = Object.freeze({});
/** The options of commands that set nothing but the protocol, one frozen object per protocol. */
const protoOnlyOptions = new Map<string, RouteOptions>();

/**
 * The products of the previous build, by service. `collect()` returns the products of a new
 * snapshot, reusing those of services (and, inside a changed service, instances) whose records
 * are equal in every field the build reads.
 */
export class TableInputs {
  private readonly opts: InputOptions;
  private readonly accepted: ReadonlySet<InstanceStatus>;
  private services = new Map<string, readonly InstanceProduct[]>();
  /** Service names in build order, and their products beside them. */
  private names: string[] = [];
  private sorted: (readonly InstanceProduct[])[] = [];
  /** The instance list of the previous collect. */
  private instances: readonly ServiceInstance[] | undefined;
  private manual: ManualProduct | undefined;

  constructor(opts: InputOptions) {
    this.opts = opts;
    this.accepted = new Set(opts.acceptedStatus);
  }

  collect(snapshot: Snapshot): CollectedInputs {
    const changes = this.collectChanged(snapshot.instances) ?? this.collectAll(snapshot.instances);
    this.instances = snapshot.instances;
    let manual = this.manual;
    if (manual === undefined || manual.text !== snapshot.manual) {
      manual = prepareManual(snapshot.manual);
      this.manual = manual;
    }
    return { services: this.sorted, manual, changes };
  }

  /** Groups every instance by service (the first collect, and changes that touch many services). */
  private collectAll(instances: readonly ServiceInstance[]): ServiceChange[] {
    // Grouping by service and sorting each group gives the same order as sorting every instance
    // by (service, id, registry), at a fraction of the comparisons.
    const groups = new Map<string, ServiceInstance[]>();
    for (const inst of instances) {
      const g = groups.get(inst.service);
      if (g === undefined) groups.set(inst.service, [inst]);
      else g.push(inst);
    }
    const names = [...groups.keys()].sort();
    const previous = this.services;
    const next = new Map<string, readonly InstanceProduct[]>();
    const sorted: (readonly InstanceProduct[])[] = [];
    const changes: ServiceChange[] = [];
    for (const name of names) {
      const group = groups.get(name) as ServiceInstance[];
      if (group.length > 1) group.sort(compareInstances);
      const before = previous.get(name);
      const products = this.serviceProducts(group, before);
      if (products !== before) changes.push({ name, before, after: products });
      next.set(name, products);
      sorted.push(products);
    }
    if (next.size !== previous.size || changes.some((c) => c.before === undefined)) {
      for (const [name, before] of previous) {
        if (!next.has(name)) changes.push({ name, before, after: undefined });
      }
      changes.sort(byName);
    }
    this.services = next;
    this.names = names;
    this.sorted = sorted;
    return changes;
  }

  /**
   * Registries hand over the same record objects for unchanged instances, mostly in the same
   * order, so a change is a window between an unchanged head and tail of the list. Only the
   * services in that window are regrouped. undefined: too much changed (collect everything).
   */
  private collectChanged(instances: readonly ServiceInstance[]): ServiceChange[] | undefined {
    const old = this.instances;
    if (old === undefined) return undefined;
    if (old === instances) return [];
    let head = 0;
    const min = Math.min(old.length, instances.length);
    while (head < min && old[head] === instances[head]) head++;
    let tail = 0;
    while (tail < min - head && old[old.length - 1 - tail] === instances[instances.length - 1 - tail]) {
      tail++;
    }
    // Past an eighth of the list, regrouping everything costs about the same.
    const limit = Math.max(8, instances.length >> 3);
    if (old.length - head - tail > limit || instances.length - head - tail > limit) return undefined;
    const touched = new Set<string>();
    for (let i = head; i < old.length - tail; i++) touched.add((old[i] as ServiceInstance).service);
    for (let i = head; i < instances.length - tail; i++)
      touched.add((instances[i] as ServiceInstance).service);
    if (touched.size === 0) return [];
    const groups = new Map<string, ServiceInstance[]>();
    for (const name of touched) groups.set(name, []);
    for (const inst of instances) groups.get(inst.service)?.push(inst);
    const changes: ServiceChange[] = [];
    for (const [name, group] of groups) {
      if (group.length > 1) group.sort(compareInstances);
      const before = this.services.get(name);
      const after = group.length === 0 ? undefined : this.serviceProducts(group, before);
      if (after === before) continue;
      changes.push({ name, before, after });
      // Keep the sorted name list and the product lists beside it in step.
      const at = lowerBound(this.names, name);
      const present = this.names[at] === name;
      if (after === undefined) {
        this.services.delete(name);
        if (present) {
          this.names.splice(at, 1);
          this.sorted.splice(at, 1);
        }
      } else {
        this.services.set(name, after);
        if (present) this.sorted[at] = after;
        else {
          this.names.splice(at, 0, name);
          this.sorted.splice(at, 0, after);
        }
      }
    }
    return changes.sort(byName);
  }

  private serviceProducts(
    group: readonly ServiceInstance[],
    before: readonly InstanceProduct[] | undefined,
  ): readonly InstanceProduct[] {
    if (before !== undefined && before.length === group.length) {
      let same = true;
      for (let i = 0; i < group.length; i++) {
        const p = before[i] as InstanceProduct;
        const inst = group[i] as ServiceInstance;
        if (p.instance === inst) continue;
        if (!sameInstance(p.instance, inst)) {
          same = false;
          break;
        }
        p.instance = inst;
      }
      if (same) return before;
    }
    if (before === undefined) return group.map((inst) => this.instanceProduct(inst));
    // A changed service: reuse the products of its unchanged instances (a big service with one
    // changed instance re-parses that one).
    const byId = new Map<string, InstanceProduct>();
    for (const p of before) byId.set(instanceIdent(p.instance), p);
    const out: InstanceProduct[] = [];
    for (const inst of group) {
      const old = byId.get(instanceIdent(inst));
      if (old !== undefined && (old.instance === inst || sameInstance(old.instance, inst))) {
        // Two records with one identity (a registry's mistake) must not share one product.
        byId.delete(instanceIdent(inst));
        old.instance = inst;
        out.push(old);
      } else {
        out.push(this.instanceProduct(inst));
      }
    }
    return out;
  }

  private instanceProduct(inst: ServiceInstance): InstanceProduct {
    const status = inst.status ?? 'passing';
    if (!this.accepted.has(status)) {
      return {
        instance: inst,
        excluded: { service: inst.service, id: inst.id, status },
        tagProblems: noProblems,
        addProblems: noProblems,
        adds: noAdds,
      };
    }
    const r = instanceRouteCommands(inst, { tagPrefix: this.opts.tagPrefix, env: this.opts.env });
    // Only `route add` commands come from tags: no need to keep the commands, only their
    // placements and problems in order.
    const adds: AddTarget[] = [];
    let addProblems: Problem[] | undefined;
    for (const c of r.commands) {
      const prepared = prepareCommand(c, adds[adds.length - 1]);
      if (prepared.problems.length > 0) (addProblems ??= []).push(...prepared.problems);
      if (prepared.add !== undefined) adds.push(prepared.add);
    }
    return {
      instance: inst,
      excluded: undefined,
      tagProblems: r.problems.length === 0 ? noProblems : r.problems,
      addProblems: addProblems ?? noProblems,
      // Kept while the instance is unchanged: exact-size (a pushed list has 17 slots).
      adds: exactAdds(adds),
    };
  }
}

function byName(a: { name: string }, b: { name: string }): number {
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

/** The first index whose name is not below `name` (names are sorted as `Array.sort()` does). */
function lowerBound(names: readonly string[], name: string): number {
  let lo = 0;
  let hi = names.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if ((names[mid] as string) < name) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function instanceIdent(i: ServiceInstance): string {
  return `${i.id}\u0000${i.registry ?? ''}`;
}

/** Equal in every field a table build reads (meta is not read). */
export function sameInstance(a: ServiceInstance, b: ServiceInstance): boolean {
  if (
    a.service !== b.service ||
    a.id !== b.id ||
    a.address !== b.address ||
    a.port !== b.port ||
    a.weight !== b.weight ||
    (a.status ?? 'passing') !== (b.status ?? 'passing') ||
    a.registry !== b.registry
  ) {
    return false;
  }
  const x = a.tags;
  const y = b.tags;
  if (x === y) return true;
  if (x.length !== y.length) return false;
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
  return true;
}

export function compareInstances(
  a: { service: string; id: string; registry?: string },
  b: { service: string; id: string; registry?: string },
): number {
  if (a.service !== b.service) return a.service < b.service ? -1 : 1;
  if (a.id !== b.id) return a.id < b.id ? -1 : 1;
  const ra = a.registry ?? '';
  const rb = b.registry ?? '';
  return ra < rb ? -1 : ra > rb ? 1 : 0;
}

export function prepareManual(text: string): ManualProduct {
  const parsed = parseRouteCommands(text);
  return {
    text,
    problems: parsed.problems,
    commands: parsed.commands.map((c) => prepareCommand(c)),
    additive: parsed.commands.every((c) => c.cmd === 'route add'),
  };
}

/**
 * Checks and parses a `route add` once; `route del` / `route weight` act at build time.
 * `sibling`: the add made before it from the same instance; an instance's route tags mostly
 * share one destination, and then its parsed URL, dst and key strings are shared too.
 */
export function prepareCommand(c: RouteCommand, sibling?: AddTarget): PreparedCommand {
  if (c.cmd !== 'route add') return { cmd: c, problems: noProblems, add: undefined };
  const rejected = (reason: string): PreparedCommand => ({
    cmd: c,
    problems: [commandProblem(c, reason)],
    add: undefined,
  });
  if (c.src === '') return rejected('route: prefix must not be empty');
  if (c.dst === '') return rejected('route: target must not be empty');
  const same = sibling !== undefined && sibling.dst === c.dst ? sibling : undefined;
  const url = same !== undefined ? same.url : parseTargetUrl(c.dst);
  if (typeof url === 'string') return rejected(url);
  const parsed = parseRouteOptions(c.opts, c.dst);
  const problems: Problem[] = [];
  for (const e of parsed.errors) problems.push(commandProblem(c, e));
  if (parsed.errors.length > 0) return { cmd: c, problems, add: undefined };
  // Commands from tags were validated (and their warnings reported) by instanceRouteCommands.
  if (c.instanceId === undefined)
    for (const w of parsed.warnings) problems.push(commandProblem(c, w, 'warning'));
  const tcp = isTcpSrc(c.src, parsed.opts.proto);
  const { hostKey, path } = splitSrc(c.src, tcp);
  // Command arrays and option maps are created by the parsers for this command alone: freeze
  // them in place rather than copying (14,000 targets per big table).
  const tags = c.tags.length === 0 ? noTags : Object.freeze(c.tags as string[]);
  const fixedWeight = c.weight > 0 ? c.weight : 0;
  const made: RouteTarget = Object.freeze({
    key:
      same !== undefined && same.service === c.service && same.tags === tags
        ? same.key
        : // join() makes one flat string; a template literal makes a tree of three cons strings.
          [c.service, c.dst, tags.join(',')].join('|'),
    service: c.service,
    dst: same !== undefined ? same.dst : c.dst,
    url: same !== undefined ? url : Object.freeze(url),
    tags,
    fixedWeight,
    instanceWeight: instanceWeightOf(c.instanceWeight ?? parsed.instanceWeight),
    share: 1,
    weight: 1,
    opts: shareOptions(parsed.opts),
    rawOpts: hasKeys(c.opts) ? Object.freeze(c.opts as Record<string, string>) : noRawOpts,
    ...(c.instanceId !== undefined ? { instanceId: c.instanceId } : {}),
  });
  const add = new AddTarget(made, fixedWeight, tcp, hostKey, path);
  return { cmd: c, problems: problems.length === 0 ? noProblems : problems, add };
}

/** `adds` exact-size (a pushed list has 17 slots), to be kept: shared lists where they can be. */
export function exactAdds(adds: readonly AddTarget[]): readonly AddTarget[] {
  if (adds.length === 0) return noAdds;
  if (adds.length === 1) return (adds[0] as AddTarget).alone();
  return adds.slice();
}

function hasKeys(o: Readonly<Record<string, string>>): boolean {
  for (const _ in o) return true;
  return false;
}

/** Frozen options; those that set only the protocol are one shared object per protocol. */
function shareOptions(o: RouteOptions): RouteOptions {
  for (const k in o) if (k !== 'proto') return Object.freeze(o);
  let shared = protoOnlyOptions.get(o.proto);
  if (shared === undefined) {
    shared = Object.freeze(o);
    protoOnlyOptions.set(o.proto, shared);
  }
  return shared;
}

/** A problem of a route command (`tag` when it came from an instance, else `manual`). */
export function commandProblem(
  c: RouteCommand,
  reason: string,
  severity: Problem['severity'] = 'error',
): Problem {
  return {
    source: c.instanceId === undefined ? 'manual' : 'tag',
    severity,
    reason,
    input: formatCommand(c),
    service: c.service,
    ...(c.instanceId !== undefined ? { instance: c.instanceId } : {}),
    ...(c.line !== undefined ? { line: c.line } : {}),
  };
}

export function isTcpProto(proto: string): boolean {
  return proto === 'tcp' || proto === 'tcp+sni';
}

/** A TCP src is `:port` or `host:port` without a path, on a tcp/tcp+sni route. */
function isTcpSrc(src: string, proto: string): boolean {
  if (src.includes('/')) return false;
  return src.startsWith(':') || isTcpProto(proto);
}

/** fabio's hostpath(): `host/path` -> host (lowercased) and `/path`; a TCP src has no path. */
export function splitSrc(src: string, tcp: boolean): { hostKey: string; path: string } {
  if (tcp || src.startsWith(':')) return { hostKey: src.toLowerCase(), path: '' };
  const slash = src.indexOf('/');
  if (slash < 0) return { hostKey: src.toLowerCase(), path: '/' };
  return { hostKey: src.slice(0, slash).toLowerCase(), path: src.slice(slash) };
}

function instanceWeightOf(w: number | undefined): number {
  return w !== undefined && w >= 1 ? Math.floor(w) : 1;
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
