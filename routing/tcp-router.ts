// The compiled TCP lookup.
//
// - proto tcp: src `:port`; a connection on listener port P takes the route for P.
// - proto tcp+sni: src `host:port` (e.g. `db.example.com:443`); a TLS ClientHello naming
//   `serverName` on listener port P takes the route for (serverName lowercased, P). Host globs
//   (`*.example.com`, same dialect as HTTP hosts: `*` crosses dots) are tried after the exact
//   name, most specific first. A tcp+sni route written without a port (fabio's older
//   `db.example.com/` form) serves that name on any SNI listener, after the port-specific ones.
// If two routes claim the same key, the first in table order wins (the table builder merges
// duplicates, so this does not happen for tables it builds).

import { isHostGlob, sortHostPatterns, splitHostPort } from './host.ts';
import { compileGlob, type GlobPattern } from './matchers.ts';
import type { Route, TcpRouter } from './types.ts';

export function compileTcpRouter(routes: readonly Route[]): TcpRouter {
  return new CompiledTcpRouter(routes);
}

/** SNI routes of one listener port. */
class SniIndex {
  readonly exact = new Map<string, Route>();
  globs: { glob: GlobPattern; route: Route }[] = [];
  private readonly pending = new Map<string, Route>();

  add(host: string, route: Route): void {
    if (isHostGlob(host)) {
      if (!this.pending.has(host)) this.pending.set(host, route);
    } else if (!this.exact.has(host)) {
      this.exact.set(host, route);
    }
  }

  finish(): void {
    this.globs = sortHostPatterns([...this.pending.keys()]).map((h) => ({
      glob: compileGlob(h),
      route: this.pending.get(h) as Route,
    }));
    this.pending.clear();
  }

  lookup(name: string): Route | undefined {
    const r = this.exact.get(name);
    if (r !== undefined) return r;
    const globs = this.globs;
    for (let i = 0; i < globs.length; i++) {
      const g = globs[i] as { glob: GlobPattern; route: Route };
      if (g.glob.match(name)) return g.route;
    }
    return undefined;
  }
}

class CompiledTcpRouter implements TcpRouter {
  private readonly ports = new Map<number, Route>();
  private readonly sni = new Map<number, SniIndex>();
  private readonly sniAnyPort = new SniIndex();

  constructor(routes: readonly Route[]) {
    for (const r of routes) {
      if (r.proto === 'tcp') {
        const port = r.port > 0 ? r.port : portOf(r.src);
        if (port > 0 && !this.ports.has(port)) this.ports.set(port, r);
      } else if (r.proto === 'tcp+sni') {
        const { host, port } = sniKey(r);
        if (host === '') {
          // `:port` with proto tcp+sni has no name to match: it is the port's plain TCP route.
          if (port > 0 && !this.ports.has(port)) this.ports.set(port, r);
          continue;
        }
        let index = port > 0 ? this.sni.get(port) : this.sniAnyPort;
        if (index === undefined) {
          index = new SniIndex();
          this.sni.set(port, index);
        }
        index.add(host, r);
      }
    }
    for (const index of this.sni.values()) index.finish();
    this.sniAnyPort.finish();
  }

  lookupPort(port: number): Route | undefined {
    return this.ports.get(port);
  }

  lookupSni(serverName: string, port: number): Route | undefined {
    // SNI names carry no trailing dot (RFC 6066 3), but clients have been seen sending one.
    let name = serverName.toLowerCase();
    if (name.endsWith('.')) name = name.slice(0, -1);
    const index = this.sni.get(port);
    if (index !== undefined) {
      const r = index.lookup(name);
      if (r !== undefined) return r;
    }
    return this.sniAnyPort.lookup(name);
  }
}

/** (host, port) of an SNI route, whether the builder left the port in `host` or not. */
function sniKey(r: Route): { host: string; port: number } {
  let host = r.host.toLowerCase();
  let port = r.port;
  const hp = host.startsWith('[') ? undefined : splitHostPort(host);
  if (hp !== undefined) {
    host = hp.host;
    if (port === 0) port = toPort(hp.port);
  }
  if (host === '' && port === 0) {
    const fromSrc = splitHostPort(r.src.split('/')[0] ?? '');
    if (fromSrc !== undefined) return { host: fromSrc.host.toLowerCase(), port: toPort(fromSrc.port) };
  }
  return { host, port };
}

function portOf(src: string): number {
  const hp = splitHostPort(src);
  return hp === undefined ? 0 : toPort(hp.port);
}

function toPort(text: string): number {
  if (!/^\d{1,5}$/.test(text)) return 0;
  const n = Number(text);
  return n <= 65535 ? n : 0;
}
