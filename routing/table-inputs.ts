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

/** A `route add` that passed its checks: everything the table needs to place the target. */
export interface AddTarget {
  readonly service: string;
  readonly dst: string;
  readonly url: TargetUrl;
  readonly tags: readonly string[];
  /** The command's fixed weight (a `route weight` may override it in one build). */
  readonly fixedWeight: number;
  readonly instanceWeight: number;
  readonly opts: RouteOptions;
  readonly rawOpts: Readonly<Record<string, string>>;
  readonly instanceId: string | undefined;
  /** `service|dst|tags`, RouteTarget.key. */
  readonly key: string;
  readonly tcp: boolean;
  /** fabio's host key (lowercased) and path the command's src names. */
  readonly hostKey: string;
  readonly path: string;
  /**
   * The RouteTarget the last build made from this command, reused while its weights stay the
   * same (the one mutable slot: a cache, invisible in any table's data).
   */
  made: RouteTarget | undefined;
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
  readonly commands: readonly PreparedCommand[];
}

/** The manual route commands (`route add|del|weight` text) of a build. */
export interface ManualProduct {
  readonly text: string;
  readonly problems: readonly Problem[];
  readonly commands: readonly PreparedCommand[];
}

export interface InputOptions {
  readonly tagPrefix: string;
  readonly acceptedStatus: readonly InstanceStatus[];
  readonly env: Readonly<Record<string, string>>;
}

/** A snapshot's products in build order: services sorted, instances sorted within a service. */
export interface CollectedInputs {
  readonly services: readonly (readonly InstanceProduct[])[];
  readonly manual: ManualProduct;
}

const noProblems: readonly Problem[] = Object.freeze([]);

/**
 * The products of the previous build, by service. `collect()` returns the products of a new
 * snapshot, reusing those of services (and, inside a changed service, instances) whose records
 * are equal in every field the build reads.
 */
export class TableInputs {
  private readonly opts: InputOptions;
  private readonly accepted: ReadonlySet<InstanceStatus>;
  private services = new Map<string, readonly InstanceProduct[]>();
  private manual: ManualProduct | undefined;

  constructor(opts: InputOptions) {
    this.opts = opts;
    this.accepted = new Set(opts.acceptedStatus);
  }

  collect(snapshot: Snapshot): CollectedInputs {
    // Grouping by service and sorting each group gives the same order as sorting every instance
    // by (service, id, registry), at a fraction of the comparisons.
    const groups = new Map<string, ServiceInstance[]>();
    for (const inst of snapshot.instances) {
      const g = groups.get(inst.service);
      if (g === undefined) groups.set(inst.service, [inst]);
      else g.push(inst);
    }
    const names = [...groups.keys()].sort();
    const previous = this.services;
    const next = new Map<string, readonly InstanceProduct[]>();
    const services: (readonly InstanceProduct[])[] = [];
    for (const name of names) {
      const group = groups.get(name) as ServiceInstance[];
      if (group.length > 1) group.sort(compareInstances);
      const products = this.serviceProducts(group, previous.get(name));
      next.set(name, products);
      services.push(products);
    }
    this.services = next;
    let manual = this.manual;
    if (manual === undefined || manual.text !== snapshot.manual) {
      manual = prepareManual(snapshot.manual);
      this.manual = manual;
    }
    return { services, manual };
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
    // A changed service: reuse the products of its unchanged instances (a big service with one
    // changed instance re-parses that one).
    const byId = new Map<string, InstanceProduct>();
    for (const p of before ?? []) byId.set(instanceIdent(p.instance), p);
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
        commands: [],
      };
    }
    const r = instanceRouteCommands(inst, { tagPrefix: this.opts.tagPrefix, env: this.opts.env });
    return {
      instance: inst,
      excluded: undefined,
      tagProblems: r.problems.length === 0 ? noProblems : r.problems,
      commands: r.commands.map(prepareCommand),
    };
  }
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
  return { text, problems: parsed.problems, commands: parsed.commands.map(prepareCommand) };
}

/** Checks and parses a `route add` once; `route del` / `route weight` act at build time. */
export function prepareCommand(c: RouteCommand): PreparedCommand {
  if (c.cmd !== 'route add') return { cmd: c, problems: noProblems, add: undefined };
  const rejected = (reason: string): PreparedCommand => ({
    cmd: c,
    problems: [commandProblem(c, reason)],
    add: undefined,
  });
  if (c.src === '') return rejected('route: prefix must not be empty');
  if (c.dst === '') return rejected('route: target must not be empty');
  const url = parseTargetUrl(c.dst);
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
  const tags = Object.freeze(c.tags as string[]);
  const add: AddTarget = {
    service: c.service,
    dst: c.dst,
    url: Object.freeze(url),
    tags,
    fixedWeight: c.weight > 0 ? c.weight : 0,
    instanceWeight: instanceWeightOf(c.instanceWeight ?? parsed.instanceWeight),
    opts: Object.freeze(parsed.opts),
    rawOpts: Object.freeze(c.opts as Record<string, string>),
    instanceId: c.instanceId,
    key: `${c.service}|${c.dst}|${tags.join(',')}`,
    tcp,
    hostKey,
    path,
    made: undefined,
  };
  return { cmd: c, problems: problems.length === 0 ? noProblems : problems, add };
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
