// fabio's route tags (`urlprefix-host/path opts...`) turned into route commands, for instances of
// any registry. Follows fabio's registry/consul routecmd.go: one `route add` per prefixed tag;
// `proto=tcp|https|grpc|grpcs` picks the destination scheme, `weight=` becomes the command's fixed
// weight, `redirect=<code>,<url>` makes the URL the destination, the instance's other tags become
// the command's tags, all other options are kept in written order.
//
// Cairn additions: `lbweight=` (else the registry's instance weight) becomes the command's
// instanceWeight; options are validated, and a tag with a bad option is skipped with a problem
// instead of producing a half-configured route. fabio's macOS-only `.local` host suffix is not
// reproduced (routing/ is platform independent).

import { goTrimSpace, isGoSpace } from './access.ts';
import {
  formatRouteOptions,
  lbWeightError,
  parseFixedWeight,
  parseLbWeight,
  parseRouteOptions,
} from './options.ts';
import type { Problem, RouteCommand, ServiceInstance } from './types.ts';

export interface ParsedTag {
  /** The tag starts with the prefix (after trimming). */
  readonly ok: boolean;
  /** `host/path` (host lowercased and expanded), `:port`, or a bare host; '' when not ok. */
  readonly route: string;
  /** Everything after the first space, as written. */
  readonly opts: string;
}

export interface TagRouteOptions {
  readonly tagPrefix: string;
  /** Variables for `$VAR` / `${VAR}` in the host and path (fabio provides `DC`). */
  readonly env?: Readonly<Record<string, string>> | undefined;
}

export interface InstanceRoutes {
  readonly commands: RouteCommand[];
  readonly problems: Problem[];
}

/** Go's strings.Fields: the words between runs of white space. */
export function goFields(s: string): string[] {
  const out: string[] = [];
  let i = 0;
  while (i < s.length) {
    while (i < s.length && isGoSpace(s.charCodeAt(i))) i++;
    const start = i;
    while (i < s.length && !isGoSpace(s.charCodeAt(i))) i++;
    if (i > start) out.push(s.slice(start, i));
  }
  return out;
}

function isShellSpecial(c: number): boolean {
  // * # $ @ ! ? - and digits
  return (
    c === 0x2a ||
    c === 0x23 ||
    c === 0x24 ||
    c === 0x40 ||
    c === 0x21 ||
    c === 0x3f ||
    c === 0x2d ||
    (c >= 0x30 && c <= 0x39)
  );
}

function isNameChar(c: number): boolean {
  return c === 0x5f || (c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a);
}

/**
 * Go's os.Expand: `$NAME`, `${NAME}` and the shell specials `$1`, `${*}`...; a lone `$` (at the
 * end or before a non-name character) stays, broken `${` / `${}` are dropped. Unknown names
 * expand to ''.
 */
export function expandVars(s: string, env: Readonly<Record<string, string>> | undefined): string {
  if (!s.includes('$')) return s;
  let out = '';
  let i = 0;
  for (let j = 0; j < s.length; j++) {
    if (s.charCodeAt(j) !== 0x24 || j + 1 >= s.length) continue;
    out += s.slice(i, j);
    let name = '';
    let width: number;
    const first = s.charCodeAt(j + 1);
    if (first === 0x7b /* { */) {
      if (j + 3 < s.length && isShellSpecial(s.charCodeAt(j + 2)) && s.charCodeAt(j + 3) === 0x7d) {
        name = s[j + 2] ?? '';
        width = 3;
      } else {
        const close = s.indexOf('}', j + 2);
        if (close < 0) width = 1;
        else if (close === j + 2) width = 2;
        else {
          name = s.slice(j + 2, close);
          width = close - j;
        }
      }
    } else if (isShellSpecial(first)) {
      name = s[j + 1] ?? '';
      width = 1;
    } else {
      let k = j + 1;
      while (k < s.length && isNameChar(s.charCodeAt(k))) k++;
      name = s.slice(j + 1, k);
      width = k - j - 1;
    }
    if (name !== '') out += env !== undefined && Object.hasOwn(env, name) ? (env[name] ?? '') : '';
    else if (width === 0) out += '$';
    j += width;
    i = j + 1;
  }
  return out + s.slice(i);
}

/**
 * fabio's parseURLPrefixTag: `<prefix><host>/<path>[ opts]` -> route and options. Only a
 * `host/path` route is lowercased (host part) and expanded; `:port` and slash-less routes are
 * returned as written, as fabio does.
 */
export function parseRouteTag(
  tag: string,
  prefix: string,
  env: Readonly<Record<string, string>> | undefined,
): ParsedTag {
  const t = goTrimSpace(tag);
  if (!t.startsWith(prefix)) return { ok: false, route: '', opts: '' };
  const s = goTrimSpace(t.slice(prefix.length));
  const space = s.indexOf(' ');
  const route = space < 0 ? s : s.slice(0, space);
  const opts = space < 0 ? '' : s.slice(space + 1);
  if (route.startsWith(':')) return { ok: true, route, opts };
  const slash = route.indexOf('/');
  if (slash < 0) return { ok: true, route, opts };
  const host = expandVars(route.slice(0, slash), env).toLowerCase();
  return { ok: true, route: `${host}/${expandVars(route.slice(slash + 1), env)}`, opts };
}

/** Go's net.JoinHostPort (an already bracketed IPv6 address is kept as is). */
function joinHostPort(host: string, port: number): string {
  return host.includes(':') && !host.startsWith('[') ? `[${host}]:${port}` : `${host}:${port}`;
}

/** Options from `k=v` words, in written order, a later duplicate winning (fabio's map). */
function optionsFromWords(words: readonly string[]): Record<string, string> {
  const opts: Record<string, string> = {};
  for (const w of words) {
    const eq = w.indexOf('=');
    const key = eq < 0 ? w : w.slice(0, eq);
    const value = eq < 0 ? '' : w.slice(eq + 1);
    // A plain assignment to "__proto__" would change the prototype instead of adding a key.
    Object.defineProperty(opts, key, { value, enumerable: true, writable: true, configurable: true });
  }
  return opts;
}

/**
 * The route commands of one instance's route tags (those starting with `tagPrefix`), and the
 * problems of the tags that were skipped or partly ignored.
 */
export function instanceRouteCommands(instance: ServiceInstance, opts: TagRouteOptions): InstanceRoutes {
  const commands: RouteCommand[] = [];
  const problems: Problem[] = [];
  const prefix = opts.tagPrefix;
  const routeTags: string[] = [];
  const otherTags: string[] = [];
  for (const raw of instance.tags) {
    const t = goTrimSpace(raw);
    if (t.startsWith(prefix)) routeTags.push(raw);
    else otherTags.push(t);
  }
  if (routeTags.length === 0) return { commands, problems };

  const report = (tag: string, reason: string, severity: Problem['severity']): void => {
    problems.push({
      source: 'tag',
      service: instance.service,
      instance: instance.id,
      input: tag,
      reason,
      severity,
    });
  };

  let instanceProblem = '';
  if (instance.address === '') instanceProblem = 'instance has no address';
  else if (!Number.isInteger(instance.port) || instance.port < 1 || instance.port > 65535) {
    instanceProblem = `instance port must be an integer from 1 to 65535 (got ${instance.port})`;
  }
  const addr = joinHostPort(instance.address, instance.port);

  for (const tag of routeTags) {
    if (instanceProblem !== '') {
      report(tag, instanceProblem, 'error');
      continue;
    }
    const parsed = parseRouteTag(tag, prefix, opts.env);
    if (parsed.route === '') {
      report(tag, `tag has no route after the prefix "${prefix}"`, 'error');
      continue;
    }

    let dst = destination('http://', addr, '/');
    let weightText = '';
    let lbWeightText: string | undefined;
    const words: string[] = [];
    let skip = false;
    for (const o of goFields(parsed.opts)) {
      if (o === 'proto=tcp') dst = destination('tcp://', addr, '');
      else if (o === 'proto=https') dst = destination('https://', addr, '');
      else if (o === 'proto=grpcs') dst = destination('grpcs://', addr, '');
      else if (o === 'proto=grpc') dst = destination('grpc://', addr, '');
      else if (o.startsWith('weight=')) weightText = o.slice('weight='.length);
      // lbweight is an attribute of the command (instanceWeight), not a route option.
      else if (o === 'lbweight' || o.startsWith('lbweight=')) lbWeightText = o.slice('lbweight='.length);
      else if (o.startsWith('redirect=')) {
        const parts = o.slice('redirect='.length).split(',');
        if (parts.length === 2 && parts[1] === '') {
          report(tag, `${o} has no redirect URL`, 'error');
          skip = true;
        } else if (parts.length === 2) {
          dst = parts[1] ?? '';
          words.push(`redirect=${parts[0]}`);
        } else {
          report(tag, `invalid syntax for ${o}: should be redirect=<code>,<url>; option ignored`, 'warning');
        }
      } else words.push(o);
    }
    const routeOpts = optionsFromWords(words);

    let weight = 0;
    if (weightText !== '') {
      const w = parseFixedWeight(weightText);
      if (w === undefined) {
        report(tag, `weight must be a number (got "${weightText}")`, 'error');
        skip = true;
      } else if (w < 0) {
        // fabio treats a negative fixed weight as none.
        report(tag, `weight must not be negative (got "${weightText}"); ignored`, 'warning');
      } else {
        weight = w;
      }
    }

    let instanceWeight: number | undefined;
    const weightSource =
      lbWeightText ?? (instance.weight === undefined ? undefined : String(instance.weight));
    if (weightSource !== undefined) {
      instanceWeight = parseLbWeight(weightSource);
      if (instanceWeight === undefined) {
        report(tag, lbWeightError(weightSource), 'error');
        skip = true;
      }
    }

    const checked = parseRouteOptions(routeOpts, dst);
    for (const e of checked.errors) report(tag, e, 'error');
    for (const w of checked.warnings) report(tag, w, 'warning');
    if (skip || checked.errors.length > 0) continue;

    const cmd: RouteCommand = {
      cmd: 'route add',
      service: instance.service,
      src: parsed.route,
      dst,
      weight,
      tags: otherTags,
      opts: routeOpts,
      instanceId: instance.id,
      ...(instanceWeight !== undefined ? { instanceWeight } : {}),
    };
    commands.push(cmd);
  }
  return { commands, problems };
}

/**
 * A target URL as one flat string: every target keeps its dst (and a key made from it), and a
 * template literal would keep a tree of cons strings instead (issue #9's memory bar).
 */
function destination(scheme: string, addr: string, path: string): string {
  return [scheme, addr, path].join('');
}

function quoted(tags: readonly string[]): string {
  return `"${tags.join(',')}"`;
}

/**
 * fabio's text form of a route command:
 * `route add svc src dst[ weight W][ tags "a,b"][ opts "k=v ..."]`, `route del ...`,
 * `route weight ...`. A Cairn instance weight other than 1 is printed as the `lbweight=` option.
 */
export function formatRouteCommand(cmd: RouteCommand): string {
  switch (cmd.cmd) {
    case 'route add': {
      let s = `route add ${cmd.service} ${cmd.src} ${cmd.dst}`;
      if (cmd.weight > 0) s += ` weight ${cmd.weight}`;
      if (cmd.tags.length > 0) s += ` tags ${quoted(cmd.tags)}`;
      let o = formatRouteOptions(cmd.opts);
      const w = cmd.instanceWeight;
      if (w !== undefined && w !== 1 && !Object.hasOwn(cmd.opts, 'lbweight')) {
        o += `${o === '' ? '' : ' '}lbweight=${w}`;
      }
      if (o !== '') s += ` opts "${o}"`;
      return s;
    }
    case 'route del': {
      if (cmd.tags.length > 0) {
        return cmd.service === ''
          ? `route del tags ${quoted(cmd.tags)}`
          : `route del ${cmd.service} tags ${quoted(cmd.tags)}`;
      }
      let s = `route del ${cmd.service}`;
      if (cmd.src !== '') {
        s += ` ${cmd.src}`;
        if (cmd.dst !== '') s += ` ${cmd.dst}`;
      }
      return s;
    }
    case 'route weight': {
      if (cmd.service === '') return `route weight ${cmd.src} weight ${cmd.weight} tags ${quoted(cmd.tags)}`;
      let s = `route weight ${cmd.service} ${cmd.src} weight ${cmd.weight}`;
      if (cmd.tags.length > 0) s += ` tags ${quoted(cmd.tags)}`;
      return s;
    }
    default:
      return '';
  }
}
