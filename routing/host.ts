// Host names as fabio compares them: default-port stripping, the most-specific-first order of
// host patterns, and `*.example.com` style globs.

import { compareCodePoints, compileGlob, hasGlobMeta } from './matchers.ts';

/**
 * fabio's normalizeHost: drop `:80` on a plain connection and `:443` on a TLS one (only that
 * one), then lowercase. `foo.com:443` on a plain connection stays as it is.
 */
export function normalizeHost(host: string, tls: boolean): string {
  const h = stripDefaultPort(host, tls);
  // toLowerCase always allocates a new string; hosts are nearly always lowercase already.
  return needsLowerCase(h) ? h.toLowerCase() : h;
}

function needsLowerCase(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if ((c >= 0x41 && c <= 0x5a) || c >= 0x80) return true;
  }
  return false;
}

/** The default-port half of `normalizeHost`, without lowercasing. */
export function stripDefaultPort(host: string, tls: boolean): string {
  const n = host.length;
  if (tls) {
    // ":443"
    if (
      n >= 4 &&
      host.charCodeAt(n - 1) === 0x33 &&
      host.charCodeAt(n - 2) === 0x34 &&
      host.charCodeAt(n - 3) === 0x34 &&
      host.charCodeAt(n - 4) === 0x3a
    ) {
      return host.slice(0, n - 4);
    }
  } else if (
    n >= 3 &&
    host.charCodeAt(n - 1) === 0x30 &&
    host.charCodeAt(n - 2) === 0x38 &&
    host.charCodeAt(n - 3) === 0x3a
  ) {
    // ":80"
    return host.slice(0, n - 3);
  }
  return host;
}

/** Go's net.SplitHostPort: `host:port` or `[v6]:port`; undefined when there is no port. */
export function splitHostPort(s: string): { host: string; port: string } | undefined {
  if (s.startsWith('[')) {
    const close = s.indexOf(']');
    if (close < 0 || s.charCodeAt(close + 1) !== 0x3a) return undefined;
    const port = s.slice(close + 2);
    if (port.includes(':')) return undefined;
    return { host: s.slice(1, close), port };
  }
  const colon = s.lastIndexOf(':');
  if (colon < 0) return undefined;
  const host = s.slice(0, colon);
  if (host.includes(':') || host.includes('[') || host.includes(']')) return undefined;
  return { host, port: s.slice(colon + 1) };
}

/**
 * fabio's ReverseHostPort: the host reversed character-wise, the port (if any) kept in place,
 * so that `*.a.foo.com` sorts next to (and before) `*.foo.com`.
 */
export function reverseHostPort(s: string): string {
  const hp = splitHostPort(s);
  const host = hp === undefined || hp.host === '' ? s : hp.host;
  const reversed = Array.from(host).reverse().join('');
  if (hp === undefined || hp.port === '' || hp.host === '') return reversed;
  return reversed.includes(':') ? `[${reversed}]:${hp.port}` : `${reversed}:${hp.port}`;
}

/**
 * Host patterns most specific first (fabio issue 506): reverse each string, sort descending,
 * reverse back. `*.a.foo.com` comes before `a.foo.com` before `*.foo.com`; '' comes last; a
 * pattern with a port comes before the same host without one (`foo.com:80` before `foo.com`).
 */
export function sortHostPatterns(hosts: readonly string[]): string[] {
  const keyed = hosts.map((h) => ({ h, k: reverseHostPort(h) }));
  keyed.sort((a, b) => compareCodePoints(b.k, a.k));
  return keyed.map((x) => x.h);
}

/**
 * True when `pattern` is to be matched as a glob. IPv6 literals (`[::1]:8080`) are not: gobwas
 * would read their brackets as a character class, so fabio can never route them by host; Cairn
 * compares them literally instead.
 */
export function isHostGlob(pattern: string): boolean {
  return hasGlobMeta(pattern) && !reIPv6Literal.test(pattern);
}

const reIPv6Literal = /^\[[0-9a-f.]*:[0-9a-f:.]*(%[^\]]*)?\](:\d*)?$/i;

/**
 * Does the host glob `pattern` (already lowercased) match `host` (normalised)? fabio compiles
 * host patterns with gobwas/glob and no separators, so `*` also crosses dots: `*.abc.com`
 * matches `x.abc.com`, `x.y.abc.com` and `.abc.com`, but not `abc.com`.
 */
export function hostGlobMatches(pattern: string, host: string): boolean {
  if (!isHostGlob(pattern)) return pattern === host;
  return compileGlob(pattern).match(host);
}
