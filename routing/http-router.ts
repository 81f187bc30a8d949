// The compiled HTTP lookup: built once per table, then each request costs a Map lookup for the
// host and one pass over the path through a radix tree.
//
// fabio's semantics (route/table.go Lookup), reproduced exactly unless noted:
// 1. The request host is normalised: `:80` dropped on plain connections, `:443` on TLS ones,
//    lowercased.
// 2. Every host pattern of the table is normalised the same way (so a route for `foo.com:80/`
//    serves plain requests for `foo.com`, and `ccc.com:443/` serves TLS ones for `ccc.com`), and
//    the patterns that match the host are tried most specific first (reverse-string order, see
//    host.ts); with glob matching on, `*.example.com` style patterns take part. The host-less
//    routes are tried last.
// 3. Inside one host pattern, routes are ordered by path, descending; the first whose path
//    matches wins (for prefix matching: the longest matching prefix). If it has no target, or it
//    is a redirect that would send the client to the very URL it asked for (same scheme as
//    X-Forwarded-Proto, same Host, same path), fabio moves on to the NEXT HOST PATTERN, not to the
//    next path.
//
// Deliberate differences from fabio:
// - With glob matching disabled fabio does not lowercase the request host (so `ABC.COM` misses
//   the `abc.com` routes). Cairn always lowercases: host names are case-insensitive.
// - When the last host pattern tried yields only a skipped (looping) redirect, fabio returns that
//   redirect anyway; Cairn returns no route.
// - A host pattern that is an IPv6 literal (`[::1]:8080`) is compared literally; gobwas would read
//   its brackets as a character class. An invalid host glob (`[oops`) matches nothing; fabio
//   panics in glob.MustCompile.
// - Per-route matcher (`matcher=` option on the route's first target) overrides the global one.

import { isHostGlob, normalizeHost, sortHostPatterns, splitHostPort, stripDefaultPort } from './host.ts';
import {
  compareRoutePathsDescending,
  compileGlob,
  type GlobPattern,
  hasGlobMeta,
  pathMatches,
  segmentKey,
} from './matchers.ts';
import { needsLowerCase, PathTrie } from './path-trie.ts';
import type {
  ExplainResult,
  HttpRequestInfo,
  HttpRouter,
  PathMatcher,
  RejectedRoute,
  Route,
} from './types.ts';

export interface HttpRouterOptions {
  /** Global path matcher; a route's `matcher=` option overrides it. */
  readonly matcher: PathMatcher;
  /** fabio's host glob matching (`glob.matching.disabled=false`). */
  readonly globMatching: boolean;
}

/** Compiles the HTTP routes of a table; tcp and tcp+sni routes are ignored. */
export function compileHttpRouter(routes: readonly Route[], opts: HttpRouterOptions): HttpRouter {
  return new CompiledHttpRouter(routes, opts);
}

/** fabio's host key of an HTTP route: lowercased host including any port written in the src. */
export function routeHostKey(route: Route): string {
  const host = route.host.toLowerCase();
  if (route.port > 0 && splitHostPort(host) === undefined) return `${host}:${route.port}`;
  return host;
}

/** What the redirect loop check needs from a redirect target, parsed once. */
interface RedirectInfo {
  /** Lowercased, as Go's url.Parse leaves it. */
  readonly scheme: string;
  /** Host as written; may contain `$host`. */
  readonly host: string;
  /** Path with fabio's `/$path` -> `$path` rewrite applied; may contain `$path`. */
  readonly path: string;
  readonly strip: string;
  readonly prepend: string;
}

interface GlobEntry {
  readonly rank: number;
  readonly glob: GlobPattern;
}

/** The glob-matched paths of one host pattern, indexed by their literal start. */
interface GlobIndex {
  readonly trie: PathTrie;
  readonly buckets: GlobEntry[][];
  /** Reused by every lookup (lookups are synchronous), so candidate collection allocates nothing. */
  readonly scratch: number[];
}

/**
 * The routes of one host pattern, in fabio's order, and the indexes that find the first match.
 * A table has one per host, and most hosts have one prefix-matched route without a redirect:
 * everything that case does not need is left undefined (issue #9's memory bar: 10,000 hosts).
 */
class HostRoutes {
  readonly pattern: string;
  /** Position of the pattern in the most-specific-first order; the host-less entry is last. */
  readonly rank: number;
  /** The routes in fabio's order; the route itself when it is the host's only one (most hosts). */
  private readonly routes: Route | Route[];
  /** Each route's matcher, or the one they all use (nearly always). */
  private readonly matchers: PathMatcher | PathMatcher[];
  /** Each route's redirect; undefined when no route redirects. */
  readonly redirects: (RedirectInfo | undefined)[] | undefined;
  /** The path of the host's only route, when that is all there is and it is prefix-matched. */
  private readonly onlyPrefix: string | undefined;
  /** The indexes of every other host. */
  private readonly paths: PathIndexes | undefined;

  constructor(pattern: string, rank: number, hostRoutes: Route[], defaultMatcher: PathMatcher) {
    this.pattern = pattern;
    this.rank = rank;
    // Stable sort: should two routes share a path, the one earlier in the table stays first.
    // A copy is exact-size (kept for the table's lifetime); a one-route list is exact already.
    const routes =
      hostRoutes.length > 1
        ? hostRoutes.slice().sort((a, b) => compareRoutePathsDescending(httpPath(a), httpPath(b)))
        : hostRoutes;
    this.routes = routes.length === 1 ? (routes[0] as Route) : routes;
    let matchers: PathMatcher[] | undefined;
    let redirects: (RedirectInfo | undefined)[] | undefined;
    for (let k = 0; k < routes.length; k++) {
      const r = routes[k] as Route;
      const m = r.targets[0]?.opts.matcher ?? defaultMatcher;
      if (m !== defaultMatcher && matchers === undefined)
        matchers = new Array<PathMatcher>(routes.length).fill(defaultMatcher);
      if (matchers !== undefined) matchers[k] = m;
      const redirect = redirectInfo(r);
      if (redirect !== undefined && redirects === undefined)
        redirects = new Array<RedirectInfo | undefined>(routes.length).fill(undefined);
      if (redirects !== undefined) redirects[k] = redirect;
    }
    this.matchers = matchers ?? defaultMatcher;
    this.redirects = redirects;

    const only = routes.length === 1 ? (routes[0] as Route) : undefined;
    if (only !== undefined && this.matcherAt(0) === 'prefix') {
      // One prefix-matched path: a startsWith answers what a one-key trie would.
      this.onlyPrefix = httpPath(only);
      this.paths = undefined;
      return;
    }
    this.onlyPrefix = undefined;

    let prefix: PathTrie | undefined;
    let iprefix: PathTrie | undefined;
    let segment: PathTrie | undefined;
    let glob: GlobIndex | undefined;
    const bucketOf = new Map<string, number>();
    for (let rank = 0; rank < routes.length; rank++) {
      const path = httpPath(routes[rank] as Route);
      switch (this.matcherAt(rank)) {
        case 'iprefix':
          iprefix ??= new PathTrie();
          iprefix.insert(path.toLowerCase(), rank);
          break;
        case 'segment':
          segment ??= new PathTrie();
          segment.insert(segmentKey(path), rank);
          break;
        case 'glob': {
          // Only patterns whose literal start is a prefix of the request path can match it, so
          // they are indexed by that literal start; a literal path is its own literal start.
          glob ??= { trie: new PathTrie(), buckets: [], scratch: [] };
          const compiled = compileGlob(path);
          let bucket = bucketOf.get(compiled.literalPrefix);
          if (bucket === undefined) {
            bucket = glob.buckets.length;
            bucketOf.set(compiled.literalPrefix, bucket);
            glob.buckets.push([]);
            glob.trie.insert(compiled.literalPrefix, bucket);
          }
          // Ranks arrive in increasing order, so each bucket is sorted.
          (glob.buckets[bucket] as GlobEntry[]).push({ rank, glob: compiled });
          break;
        }
        default:
          prefix ??= new PathTrie();
          prefix.insert(path, rank);
      }
    }
    glob?.trie.finish();
    this.paths = {
      prefix: prefix?.finish(),
      iprefix: iprefix?.finish(),
      segment: segment?.finish(),
      glob,
    };
  }

  /** How many routes the host has. */
  get size(): number {
    const r = this.routes;
    return Array.isArray(r) ? r.length : 1;
  }

  /** The k-th route in fabio's order (k < size). */
  routeAt(k: number): Route {
    const r = this.routes;
    return Array.isArray(r) ? (r[k] as Route) : r;
  }

  /** The path matcher of `routeAt(k)`. */
  matcherAt(k: number): PathMatcher {
    const m = this.matchers;
    return typeof m === 'string' ? m : (m[k] as PathMatcher);
  }

  /** Index (for `routeAt`) of the first route in fabio's order whose path matches, or -1. */
  firstMatch(path: string): number {
    const only = this.onlyPrefix;
    if (only !== undefined) return path.startsWith(only) ? 0 : -1;
    const p = this.paths as PathIndexes;
    let best = -1;
    if (p.prefix !== undefined) best = p.prefix.longestPrefix(path, false);
    if (p.iprefix !== undefined) {
      let r = p.iprefix.longestPrefix(path, true);
      if (r === needsLowerCase) r = p.iprefix.longestPrefix(path.toLowerCase(), false);
      best = lowestRank(best, r);
    }
    if (p.segment !== undefined) best = lowestRank(best, p.segment.longestSegment(path));
    if (p.glob !== undefined) best = firstGlobMatch(p.glob, path, best);
    return best;
  }
}

/** A host's path indexes, one per matcher its routes use. */
interface PathIndexes {
  readonly prefix: PathTrie | undefined;
  readonly iprefix: PathTrie | undefined;
  readonly segment: PathTrie | undefined;
  readonly glob: GlobIndex | undefined;
}

function firstGlobMatch(g: GlobIndex, path: string, best: number): number {
  const buckets = g.scratch;
  buckets.length = 0;
  g.trie.collectPrefixes(path, buckets);
  for (let b = 0; b < buckets.length; b++) {
    const entries = g.buckets[buckets[b] as number] as GlobEntry[];
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i] as GlobEntry;
      if (best >= 0 && e.rank >= best) break;
      if (e.glob.match(path)) {
        best = e.rank;
        break;
      }
    }
  }
  return best;
}

/** The entries of one literal host: the entry itself when it is the only one (nearly always). */
type HostEntries = HostRoutes | HostRoutes[];

/** Host patterns of one connection kind (plain or TLS), normalised for it. */
class HostIndex {
  /** Normalised literal pattern -> its entries, most specific first. */
  readonly exact = new Map<string, HostEntries>();
  /** `*.example.com`: the literal suffix `.example.com` -> entries. Found via the host's dots. */
  readonly dotSuffix = new Map<string, HostRoutes[]>();
  /** Any other glob, most specific first. */
  readonly otherGlobs: { glob: GlobPattern; entry: HostRoutes }[] = [];

  constructor(entries: readonly HostRoutes[], tls: boolean, globMatching: boolean) {
    for (const entry of entries) {
      const normalized = stripDefaultPort(entry.pattern, tls);
      if (!globMatching || !isHostGlob(normalized)) {
        const had = this.exact.get(normalized);
        if (had === undefined) this.exact.set(normalized, entry);
        else if (had instanceof HostRoutes) this.exact.set(normalized, [had, entry]);
        else had.push(entry);
        continue;
      }
      const rest = normalized.slice(1);
      if (normalized.charCodeAt(0) === 0x2a && rest.charCodeAt(0) === 0x2e && !hasGlobMeta(rest)) {
        pushTo(this.dotSuffix, rest, entry);
      } else {
        this.otherGlobs.push({ glob: compileGlob(normalized), entry });
      }
    }
    // `entries` arrive in rank order, so every list is already most specific first.
  }

  get hasGlobs(): boolean {
    return this.dotSuffix.size > 0 || this.otherGlobs.length > 0;
  }

  /** Entries whose pattern matches the normalised `host`, most specific first. */
  matching(host: string): HostEntries | undefined {
    const exact = this.exact.get(host);
    let found: HostRoutes[] | undefined;
    if (this.dotSuffix.size > 0) {
      for (let i = host.indexOf('.'); i >= 0; i = host.indexOf('.', i + 1)) {
        const list = this.dotSuffix.get(host.slice(i));
        if (list !== undefined) found = found === undefined ? list.slice() : found.concat(list);
      }
    }
    const others = this.otherGlobs;
    for (let i = 0; i < others.length; i++) {
      const o = others[i] as { glob: GlobPattern; entry: HostRoutes };
      if (o.glob.match(host)) {
        if (found === undefined) found = [o.entry];
        else found.push(o.entry);
      }
    }
    if (found === undefined) return exact;
    if (exact instanceof HostRoutes) found.push(exact);
    else if (exact !== undefined) for (const e of exact) found.push(e);
    if (found.length > 1) found.sort(byRank);
    return found;
  }
}

/** Whether stripping a default port changes some pattern (then plain and TLS lookups differ). */
function hasDefaultPort(entries: readonly HostRoutes[]): boolean {
  for (const e of entries) {
    if (stripDefaultPort(e.pattern, false) !== e.pattern || stripDefaultPort(e.pattern, true) !== e.pattern)
      return true;
  }
  return false;
}

class CompiledHttpRouter implements HttpRouter {
  private readonly opts: HttpRouterOptions;
  /** Every host pattern except '', most specific first. */
  private readonly entries: HostRoutes[];
  private readonly hostless: HostRoutes | undefined;
  private readonly plain: HostIndex;
  private readonly tls: HostIndex;
  private readonly plainHasGlobs: boolean;
  private readonly tlsHasGlobs: boolean;

  constructor(routes: readonly Route[], opts: HttpRouterOptions) {
    this.opts = opts;
    const byHost = new Map<string, Route[]>();
    for (const r of routes) {
      if (r.proto === 'tcp' || r.proto === 'tcp+sni') continue;
      const key = routeHostKey(r);
      const list = byHost.get(key);
      if (list === undefined) byHost.set(key, [r]);
      else list.push(r);
    }
    const patterns = sortHostPatterns([...byHost.keys()].filter((h) => h !== ''));
    this.entries = patterns.map((p, i) => new HostRoutes(p, i, byHost.get(p) as Route[], opts.matcher));
    const hostless = byHost.get('');
    this.hostless =
      hostless === undefined ? undefined : new HostRoutes('', patterns.length, hostless, opts.matcher);
    this.plain = new HostIndex(this.entries, false, opts.globMatching);
    // Without a `:80` or `:443` pattern both kinds normalise every pattern alike: one index.
    this.tls = hasDefaultPort(this.entries)
      ? new HostIndex(this.entries, true, opts.globMatching)
      : this.plain;
    this.plainHasGlobs = this.plain.hasGlobs;
    this.tlsHasGlobs = this.tls.hasGlobs;
  }

  lookup(req: HttpRequestInfo): Route | undefined {
    const tls = req.tls === true;
    const host = normalizeHost(req.host, tls);
    const index = tls ? this.tls : this.plain;
    const candidates = (tls ? this.tlsHasGlobs : this.plainHasGlobs)
      ? index.matching(host)
      : index.exact.get(host);
    if (candidates instanceof HostRoutes) {
      const route = choose(candidates, req);
      if (route !== undefined) return route;
    } else if (candidates !== undefined) {
      for (let i = 0; i < candidates.length; i++) {
        const route = choose(candidates[i] as HostRoutes, req);
        if (route !== undefined) return route;
      }
    }
    return this.hostless === undefined ? undefined : choose(this.hostless, req);
  }

  explain(req: HttpRequestInfo): ExplainResult {
    const tls = req.tls === true;
    const host = normalizeHost(req.host, tls);
    const rejected: RejectedRoute[] = [];
    const tried: HostRoutes[] = [];
    for (const entry of this.entries) {
      if (this.patternMatches(entry.pattern, host, tls)) {
        tried.push(entry);
        continue;
      }
      const why = this.hostMismatch(entry.pattern, host, tls);
      if (why !== undefined)
        for (let k = 0; k < entry.size; k++) rejected.push({ src: entry.routeAt(k).src, reason: why });
    }
    if (this.hostless !== undefined) tried.push(this.hostless);

    let chosen: Route | undefined;
    let chosenHost = '';
    for (const entry of tried) {
      if (chosen !== undefined) {
        for (let k = 0; k < entry.size; k++) {
          const r = entry.routeAt(k);
          const m = entry.matcherAt(k);
          const reason = pathMatches(m, httpPath(r), req.path)
            ? lessSpecificHost(entry.pattern, chosenHost)
            : pathMismatch(req.path, m, httpPath(r));
          rejected.push({ src: r.src, reason });
        }
        continue;
      }
      let first: Route | undefined;
      for (let k = 0; k < entry.size; k++) {
        const r = entry.routeAt(k);
        const m = entry.matcherAt(k);
        if (!pathMatches(m, httpPath(r), req.path)) {
          rejected.push({ src: r.src, reason: pathMismatch(req.path, m, httpPath(r)) });
          continue;
        }
        if (first !== undefined) {
          rejected.push({ src: r.src, reason: shadowed(httpPath(first), httpPath(r), chosen === first) });
          continue;
        }
        first = r;
        const redirect = entry.redirects?.[k];
        if (r.targets.length === 0) {
          rejected.push({
            src: r.src,
            reason: 'matched, but has no target with a share; next host pattern tried',
          });
        } else if (redirect !== undefined && redirectLoops(redirect, req)) {
          rejected.push({
            src: r.src,
            reason: `redirect skipped: it would send ${req.forwardedProto ?? ''}://${req.host}${req.path} to itself; next host pattern tried`,
          });
        } else {
          chosen = r;
          chosenHost = entry.pattern;
        }
      }
    }
    return { route: chosen, rejected };
  }

  private patternMatches(pattern: string, host: string, tls: boolean): boolean {
    const normalized = stripDefaultPort(pattern, tls);
    if (this.opts.globMatching && isHostGlob(normalized)) return compileGlob(normalized).match(host);
    return normalized === host;
  }

  /** Why a host pattern does not match, for the patterns worth mentioning (globs, same name). */
  private hostMismatch(pattern: string, host: string, tls: boolean): string | undefined {
    if (this.opts.globMatching && isHostGlob(pattern)) {
      const glob = compileGlob(stripDefaultPort(pattern, tls));
      if (glob.error !== '') return `host glob ${pattern} is invalid (${glob.error})`;
      return `host does not match: ${host} is not matched by glob ${pattern}`;
    }
    if (bareHost(pattern) !== bareHost(host)) return undefined;
    let hint = '';
    if (pattern.endsWith(':80') && tls) hint = ' (:80 is dropped only on plain HTTP; this request is TLS)';
    else if (pattern.endsWith(':443') && !tls)
      hint = ' (:443 is dropped only on TLS; this request is plain HTTP)';
    return `host does not match: ${host} is not ${pattern}${hint}`;
  }
}

/** The route that host `entry` yields for `req`, if any (fabio's `t.lookup` + redirect check). */
function choose(entry: HostRoutes, req: HttpRequestInfo): Route | undefined {
  const k = entry.firstMatch(req.path);
  if (k < 0) return undefined;
  const route = entry.routeAt(k);
  if (route.targets.length === 0) return undefined;
  const redirects = entry.redirects;
  if (redirects !== undefined) {
    const redirect = redirects[k];
    if (redirect !== undefined && redirectLoops(redirect, req)) return undefined;
  }
  return route;
}

/**
 * fabio skips a redirect whose URL has the request's scheme (as X-Forwarded-Proto says), the
 * request's Host header and the request's path: following it would loop.
 */
function redirectLoops(r: RedirectInfo, req: HttpRequestInfo): boolean {
  if (req.forwardedProto === undefined || r.scheme !== req.forwardedProto) return false;
  if (replaceFirst(r.host, '$host', req.host) !== req.host) return false;
  return redirectPath(r, req.path) === req.path;
}

/** The path of the redirect URL for `requestPath`: `$path` is the path after strip, with prepend. */
function redirectPath(r: RedirectInfo, requestPath: string): string {
  let path = r.path;
  if (path.includes('$path')) {
    let p = requestPath;
    if (r.strip !== '' && p.startsWith(r.strip)) p = p.slice(r.strip.length);
    path = replaceFirst(path, '$path', r.prepend + p);
  }
  return path === '' ? '/' : path;
}

function redirectInfo(route: Route): RedirectInfo | undefined {
  const t = route.targets[0];
  const code = t?.opts.redirectCode;
  if (t === undefined || code === undefined || code === 0) return undefined;
  const dst = t.dst;
  const sep = dst.indexOf('://');
  if (sep < 0) return undefined;
  const scheme = dst.slice(0, sep).toLowerCase();
  const rest = dst.slice(sep + 3);
  let end = rest.length;
  for (let i = 0; i < rest.length; i++) {
    const c = rest.charCodeAt(i);
    if (c === 0x2f || c === 0x3f || c === 0x23) {
      end = i;
      break;
    }
  }
  let host = rest.slice(0, end);
  const tail = rest.slice(end);
  const q = tail.search(/[?#]/);
  let path = q < 0 ? tail : tail.slice(0, q);
  // `https://example.com$path`: Go parses `$path` as part of the host; fabio moves it back.
  if (host.endsWith('$path')) {
    host = host.slice(0, -'$path'.length);
    path = '$path';
  }
  path = replaceFirst(path, '/$path', '$path');
  return { scheme, host, path, strip: t.opts.strip ?? '', prepend: t.opts.prepend ?? '' };
}

function replaceFirst(s: string, search: string, replacement: string): string {
  const i = s.indexOf(search);
  return i < 0 ? s : s.slice(0, i) + replacement + s.slice(i + search.length);
}

function httpPath(r: Route): string {
  return r.path === '' ? '/' : r.path;
}

function lowestRank(a: number, b: number): number {
  if (a < 0) return b;
  if (b < 0) return a;
  return Math.min(a, b);
}

function byRank(a: HostRoutes, b: HostRoutes): number {
  return a.rank - b.rank;
}

function pushTo<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key);
  if (list === undefined) map.set(key, [value]);
  else list.push(value);
}

function bareHost(hostPort: string): string {
  return splitHostPort(hostPort)?.host ?? hostPort;
}

function pathMismatch(path: string, matcher: PathMatcher, routePath: string): string {
  return `path ${path} does not match ${matcher} ${routePath}`;
}

function shadowed(winner: string, loser: string, winnerChosen: boolean): string {
  if (!winnerChosen) return `not tried: ${winner} matched first in this host and was skipped`;
  if (winner.length > loser.length) return `shadowed by longer match ${winner}`;
  return `shadowed by ${winner}, which comes first in fabio's descending path order`;
}

function lessSpecificHost(pattern: string, chosen: string): string {
  if (pattern === '') return `host-less route not used: host ${chosen} matched first`;
  if (hasGlobMeta(pattern)) return `glob host ${pattern} less specific than ${chosen}`;
  return `host ${pattern} less specific than ${chosen}`;
}
