// The shared vocabulary of Cairn's routing core. Everything here is plain data: registry adapters
// produce `Snapshot`s, `buildTable()` turns one into an immutable `RouteTable`, listeners look
// routes up in it. Nothing in routing/ performs I/O.

/** Health status as registries report it. Only statuses in the accepted set become targets. */
export type InstanceStatus = 'passing' | 'warning' | 'critical' | 'maintenance' | 'unknown';

/** One running instance of a service, as any registry adapter reports it. */
export interface ServiceInstance {
  /** Service name (`svc` in route commands). */
  readonly service: string;
  /** Unique id of the instance within its registry (Consul ServiceID, etcd key leaf, file id). */
  readonly id: string;
  /** Host name or IP the instance listens on. */
  readonly address: string;
  readonly port: number;
  /** All tags of the instance; those starting with the tag prefix are route tags. */
  readonly tags: readonly string[];
  /** Per-instance integer weight for weighted round-robin (Cairn's `lbweight`), default 1. */
  readonly weight?: number;
  /** Registry health status; default `passing`. */
  readonly status?: InstanceStatus;
  /** Which registry reported it (e.g. `file:./routes.yaml`), for the UI and problems. */
  readonly registry?: string;
  readonly meta?: Readonly<Record<string, string>>;
}

/** What a registry adapter emits: the full current state, never a delta. */
export interface Snapshot {
  readonly instances: readonly ServiceInstance[];
  /** Manual route commands (fabio's `route add|del|weight` text), applied after the tags. */
  readonly manual: string;
  /** Problems the adapter found in its own records (bad JSON, missing port, ...). */
  readonly problems?: readonly Problem[];
}

/** A reported, skipped piece of bad input. Never thrown; always collected. */
export interface Problem {
  /** Where it came from: `tag`, `manual`, `registry`, `config`. */
  readonly source: 'tag' | 'manual' | 'registry' | 'config';
  /** Human reason, e.g. `strip must start with '/'`. */
  readonly reason: string;
  /** The offending text (tag, command line, record). */
  readonly input: string;
  readonly service?: string;
  readonly instance?: string;
  /** 1-based line number for manual route commands. */
  readonly line?: number;
  /** `error`: the item was skipped. `warning`: it was applied, but something was ignored. */
  readonly severity: 'error' | 'warning';
}

/** One parsed route command (fabio's `route.RouteDef`). */
export interface RouteCommand {
  readonly cmd: 'route add' | 'route del' | 'route weight';
  readonly service: string;
  readonly src: string;
  readonly dst: string;
  /** fabio's fixed weight (share 0..1, or any positive number normalised later); 0 = auto. */
  readonly weight: number;
  readonly tags: readonly string[];
  /** Options in the order written (`k=v`, a bare `k` has value ''). */
  readonly opts: Readonly<Record<string, string>>;
  /** Cairn: per-instance integer weight inside the route's share (from `lbweight=` or the registry). */
  readonly instanceWeight?: number;
  /** Cairn: the instance this command was generated from, if any. */
  readonly instanceId?: string;
  /** 1-based line of a manual command, for problems. */
  readonly line?: number;
}

export type RouteProto = 'http' | 'https' | 'tcp' | 'tcp+sni' | 'grpc' | 'grpcs';
export type PathMatcher = 'prefix' | 'iprefix' | 'glob' | 'segment';
export type Strategy = 'wrr' | 'rr' | 'random' | 'p2c';

/** An IPv4/IPv6 network for allow/deny rules. */
export interface Cidr {
  readonly text: string;
  readonly family: 4 | 6;
  /** Network address as a bigint and the prefix length. */
  readonly network: bigint;
  readonly bits: number;
}

/** Validated route options (from `opts "..."` or a tag). Unknown keys stay in `RouteTarget.rawOpts`. */
export interface RouteOptions {
  readonly proto: RouteProto;
  readonly strip?: string;
  readonly prepend?: string;
  readonly tlsSkipVerify?: boolean;
  /** `host=dst` -> 'dst'; `host=name` -> that name. */
  readonly host?: string;
  /** `redirect=<3xx>`; the destination URL (with `$host`/`$path`) is the target's dst. */
  readonly redirectCode?: number;
  readonly allow?: readonly Cidr[];
  readonly deny?: readonly Cidr[];
  readonly auth?: string;
  readonly sticky?: 'cookie' | 'ip';
  /** Active health-check path. */
  readonly check?: string;
  readonly retries?: number;
  /** fabio's `register=` alias name. */
  readonly register?: string;
  /** Cairn's `matcher=` per-route override (fabio has only the global one). */
  readonly matcher?: PathMatcher;
}

/** The parts of a destination URL the data plane needs, parsed once at build time. */
export interface TargetUrl {
  /** `http:`, `https:`, `tcp:`, `grpc:`, `grpcs:` */
  readonly protocol: string;
  readonly hostname: string;
  /** Numeric port (scheme default when absent). */
  readonly port: number;
  /** `host:port` exactly as written (no default port added). */
  readonly host: string;
  readonly pathname: string;
  readonly search: string;
}

/** One destination of a route, with its effective weight. Immutable. */
export interface RouteTarget {
  /** Stable identity across tables: `service|dst|tags`. Balancer and health state key on it. */
  readonly key: string;
  readonly service: string;
  readonly dst: string;
  readonly url: TargetUrl;
  readonly tags: readonly string[];
  /** fabio fixed weight as configured (0 = auto). */
  readonly fixedWeight: number;
  /** Cairn per-instance weight (>= 1), scales the target inside its share. */
  readonly instanceWeight: number;
  /** Effective share of the route's traffic, 0..1 (fabio's `weight %2.4f`). */
  readonly share: number;
  /** Integer weight for the balancers; over `sum(weight)` picks each target gets exactly this many. */
  readonly weight: number;
  readonly opts: RouteOptions;
  /** Options exactly as written, in order (for `route add ... opts "..."` output). */
  readonly rawOpts: Readonly<Record<string, string>>;
  readonly instanceId?: string;
}

/** One source (host/path or :port) and its targets. */
export interface Route {
  /** `host/path`, `/path`, `:port`, `host:port` exactly as the table prints it. */
  readonly src: string;
  /**
   * HTTP routes: the lowercased host key exactly as fabio keeps it, including a port if one was
   * written (`foo.com:80` for src `foo.com:80/`), may be a glob (`*.example.com`), '' for host-less.
   * TCP routes (proto tcp / tcp+sni): the host without the port ('' for `:3306`).
   */
  readonly host: string;
  /** Path, case kept; '' for TCP routes. */
  readonly path: string;
  /** TCP routes: the listener port; HTTP routes: the port written in the host key, else 0. */
  readonly port: number;
  readonly proto: RouteProto;
  /** Targets with share > 0, in table order. */
  readonly targets: readonly RouteTarget[];
  /** Targets whose share is 0 (starved by 100 % fixed weights); kept for the UI and explain. */
  readonly starved: readonly RouteTarget[];
  /** Sum of target integer weights. */
  readonly totalWeight: number;
}

/** Options for `buildTable()`. */
export interface BuildOptions {
  /** Tag prefix, default `urlprefix-`. */
  readonly tagPrefix?: string;
  /** Accepted instance statuses, default `['passing']`. */
  readonly acceptedStatus?: readonly InstanceStatus[];
  /** Variables for `$VAR` expansion in tags (fabio provides `DC`). */
  readonly env?: Readonly<Record<string, string>>;
  /** Global path matcher, default `prefix`. */
  readonly matcher?: PathMatcher;
  /** Host globs like `*.example.com`, default on (fabio `glob.matching.disabled=false`). */
  readonly globMatching?: boolean;
}

/** An instance that is known but not a target (status not accepted), shown in the UI. */
export interface ExcludedInstance {
  readonly service: string;
  readonly id: string;
  readonly status: InstanceStatus;
}

/** A request as the HTTP router sees it. `path` is the URL path without the query. */
export interface HttpRequestInfo {
  /** Host header as received (port and case not yet normalised). */
  readonly host: string;
  readonly path: string;
  readonly tls?: boolean;
  /** Value of X-Forwarded-Proto, if any (redirect routes keyed on `host:80`/`host:443`). */
  readonly forwardedProto?: string | undefined;
}

/** Why a candidate route was not chosen, for `explain`. */
export interface RejectedRoute {
  readonly src: string;
  readonly reason: string;
}

/** Result of `explain`: the chosen route (if any) and every candidate that lost, with why. */
export interface ExplainResult {
  readonly route: Route | undefined;
  readonly rejected: readonly RejectedRoute[];
}

/** Compiled HTTP lookup, built once per table (hono-style: build, then a fast lookup). */
export interface HttpRouter {
  lookup(req: HttpRequestInfo): Route | undefined;
  explain(req: HttpRequestInfo): ExplainResult;
}

/** Compiled TCP lookup: by listener port, and by SNI server name for `tcp+sni` listeners. */
export interface TcpRouter {
  /** Route for a plain TCP listener on `port`. */
  lookupPort(port: number): Route | undefined;
  /** Route for an SNI listener on `port` given the ClientHello server name. */
  lookupSni(serverName: string, port: number): Route | undefined;
}

/** The immutable, versioned routing table. Rebuilt whole, swapped whole. */
export interface RouteTable {
  /** Content hash of the effective configuration (same input -> same version). */
  readonly version: string;
  /** All routes in fabio's config order (hosts and paths sorted descending). */
  readonly routes: readonly Route[];
  readonly http: HttpRouter;
  readonly tcp: TcpRouter;
  readonly excluded: readonly ExcludedInstance[];
  readonly problems: readonly Problem[];
}

/**
 * Live per-target state a balancer may consult; owned by the data plane, not by the table.
 * Keys are `RouteTarget.key`.
 */
export interface TargetHealthView {
  /** false while the target is passively ejected or failing active checks. */
  isAvailable(key: string): boolean;
  /** Requests or connections currently in flight to the target (p2c). */
  inFlight(key: string): number;
}

/** Picks targets for one route of one table snapshot. State (counters) lives here, not in the table. */
export interface Balancer {
  /** Next target, skipping unavailable ones; undefined when none is available. */
  pick(): RouteTarget | undefined;
  /** The target `pick()` would return next, without advancing (explain). */
  peek(): RouteTarget | undefined;
}

export type BalancerFactory = (route: Route, health: TargetHealthView, random?: () => number) => Balancer;
