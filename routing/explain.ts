// "Which route does this URL take, and why not the others?" — the one JSON object printed by
// `cairn explain URL` and served by `GET /api/explain?url=...` (DESIGN.md section 8):
//
//   {"url", "route": null | {"service", "src", "proto", "opts",
//                            "targets": [{"service", "dst", "weight", "healthy"}]},
//    "target": <dst picked next, or null>, "rejected": [{"src", "reason"}]}
//
// HTTP(S) URLs go through the table's HTTP router exactly as a request would; `tcp://host:port`
// through its TCP router (SNI name first when the host is a name, then the plain port route).

import { isIP } from 'node:net';
import { alwaysAvailable, createBalancer } from './balancers/index.ts';
import { formatRouteOptions } from './options.ts';
import type {
  Balancer,
  HttpRequestInfo,
  RejectedRoute,
  Route,
  RouteProto,
  RouteTable,
  RouteTarget,
  Strategy,
  TargetHealthView,
} from './types.ts';

export interface ExplainTarget {
  readonly service: string;
  readonly dst: string;
  /** Effective share of the route's traffic, 0..1, 4 decimals. */
  readonly weight: number;
  readonly healthy: boolean;
}

export interface ExplainRoute {
  /** Service of the route's first target. */
  readonly service: string;
  readonly src: string;
  readonly proto: RouteProto;
  /** The first target's options as written, fabio's `k=v ...` text. */
  readonly opts: string;
  /** Targets with a share first, then starved ones (weight 0). */
  readonly targets: readonly ExplainTarget[];
}

export interface ExplainOutput {
  readonly url: string;
  readonly route: ExplainRoute | null;
  /** The dst the route's balancer would pick next; null without a route or available target. */
  readonly target: string | null;
  readonly rejected: readonly RejectedRoute[];
}

export interface ExplainOptions {
  readonly strategy: Strategy;
  /** Live target health; default: every target available. */
  readonly health?: TargetHealthView;
  /** The data plane's live balancer for a route, so `target` is its real next pick. */
  readonly balancer?: (route: Route) => Balancer | undefined;
  /** The proxy's path normalisation, applied before lookup; default: the path as written. */
  readonly normalizePath?: (path: string) => string;
}

/** A URL split the way the listeners see a request. */
export type ExplainRequest =
  | { readonly kind: 'http'; readonly req: HttpRequestInfo }
  | { readonly kind: 'tcp'; readonly host: string; readonly port: number; readonly sniOnly: boolean };

const tlsSchemes = new Set(['https', 'wss', 'grpcs']);
const httpSchemes = new Set(['http', 'https', 'ws', 'wss', 'grpc', 'grpcs']);

/**
 * Parses an explain URL: `http(s)://host[:port]/path?q`, `/path` (no host), `host/path` (http
 * assumed), `tcp://host:port`, `tcp+sni://name:port`. A string is the reason it is invalid.
 */
export function parseExplainUrl(url: string): ExplainRequest | string {
  let s = url.trim();
  if (s === '') return 'empty URL';
  if (s.startsWith('/')) s = `http://${s}`;
  else if (!/^[a-zA-Z][a-zA-Z0-9+.-]*:\/\//.test(s)) s = `http://${s}`;
  const sep = s.indexOf('://');
  const scheme = s.slice(0, sep).toLowerCase();
  const rest = s.slice(sep + 3);
  let end = rest.length;
  for (let i = 0; i < rest.length; i++) {
    const c = rest[i];
    if (c === '/' || c === '?' || c === '#') {
      end = i;
      break;
    }
  }
  let authority = rest.slice(0, end);
  const at = authority.lastIndexOf('@');
  if (at >= 0) authority = authority.slice(at + 1);
  if (/\s/.test(authority)) return `invalid host ${JSON.stringify(authority)}`;
  const tail = rest.slice(end);
  const q = tail.search(/[?#]/);
  const rawPath = q < 0 ? tail : tail.slice(0, q);

  if (scheme === 'tcp' || scheme === 'tcp+sni') {
    const hp = splitHostPort(authority);
    if (hp === undefined) return `${scheme}:// URLs need host:port, got ${JSON.stringify(authority)}`;
    return { kind: 'tcp', host: hp.host.toLowerCase(), port: hp.port, sniOnly: scheme === 'tcp+sni' };
  }
  if (!httpSchemes.has(scheme)) return `unsupported scheme ${scheme}:// (expected http, https, tcp)`;
  return {
    kind: 'http',
    req: { host: authority, path: rawPath === '' ? '/' : rawPath, tls: tlsSchemes.has(scheme) },
  };
}

/** Explains which route `url` takes in `table`. An invalid URL explains as "no route". */
export function explainUrl(table: RouteTable, url: string, opts: ExplainOptions): ExplainOutput {
  const parsed = parseExplainUrl(url);
  if (typeof parsed === 'string') return { url, route: null, target: null, rejected: [] };
  let route: Route | undefined;
  let rejected: RejectedRoute[];
  if (parsed.kind === 'http') {
    const req =
      opts.normalizePath === undefined
        ? parsed.req
        : { ...parsed.req, path: opts.normalizePath(parsed.req.path) };
    const r = table.http.explain(req);
    route = r.route;
    rejected = [...r.rejected];
  } else {
    const r = explainTcp(table, parsed.host, parsed.port, parsed.sniOnly);
    route = r.route;
    rejected = r.rejected;
  }
  if (route === undefined) return { url, route: null, target: null, rejected };
  const health = opts.health ?? alwaysAvailable;
  const balancer = opts.balancer?.(route) ?? createBalancer(opts.strategy, route, health);
  return {
    url,
    route: describeRoute(route, health),
    target: balancer.peek()?.dst ?? null,
    rejected,
  };
}

function describeRoute(route: Route, health: TargetHealthView): ExplainRoute {
  const first = route.targets[0] ?? route.starved[0];
  const targets: ExplainTarget[] = [];
  for (const list of [route.targets, route.starved]) {
    for (const t of list) targets.push(describeTarget(t, health));
  }
  return {
    service: first?.service ?? '',
    src: route.src,
    proto: route.proto,
    opts: first === undefined ? '' : formatRouteOptions(first.rawOpts),
    targets,
  };
}

function describeTarget(t: RouteTarget, health: TargetHealthView): ExplainTarget {
  return {
    service: t.service,
    dst: t.dst,
    weight: Math.round(t.share * 10_000) / 10_000,
    healthy: health.isAvailable(t.key),
  };
}

function explainTcp(
  table: RouteTable,
  host: string,
  port: number,
  sniOnly: boolean,
): { route: Route | undefined; rejected: RejectedRoute[] } {
  const byName = host !== '' && isIP(host) === 0;
  let route = byName ? table.tcp.lookupSni(host, port) : undefined;
  if (route === undefined && !sniOnly) route = table.tcp.lookupPort(port);
  const rejected: RejectedRoute[] = [];
  for (const r of table.routes) {
    if ((r.proto !== 'tcp' && r.proto !== 'tcp+sni') || r === route) continue;
    let reason: string;
    if (r.port !== 0 && r.port !== port) reason = `port does not match: ${port} is not ${r.port}`;
    else if (r.proto === 'tcp+sni' && r.host !== '' && !byName)
      reason = 'needs a TLS server name (SNI); the URL names none';
    else if (r.proto === 'tcp+sni' && r.host !== '' && r.host !== host) {
      reason = `server name does not match: ${host} is not ${r.host}`;
    } else if (route !== undefined) reason = `${route.src} was chosen first`;
    else reason = 'not selected';
    rejected.push({ src: r.src, reason });
  }
  return { route, rejected };
}

/** `host:port` / `[v6]:port` / `:port` -> parts; undefined without a valid port. */
function splitHostPort(s: string): { host: string; port: number } | undefined {
  let host: string;
  let portText: string;
  if (s.startsWith('[')) {
    const close = s.indexOf(']');
    if (close < 0 || s[close + 1] !== ':') return undefined;
    host = s.slice(1, close);
    portText = s.slice(close + 2);
  } else {
    const colon = s.lastIndexOf(':');
    if (colon < 0) return undefined;
    host = s.slice(0, colon);
    portText = s.slice(colon + 1);
  }
  if (!/^\d{1,5}$/.test(portText)) return undefined;
  const port = Number(portText);
  return port >= 1 && port <= 65535 ? { host, port } : undefined;
}
