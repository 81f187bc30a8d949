// Path matchers (prefix, iprefix, glob, segment) and the glob dialect fabio uses for paths and
// host patterns.
//
// These are the reference definitions: one route path against one request path. The compiled
// router (http-router.ts) answers the same question for thousands of routes at once with tries;
// `explain` and the tests use these functions to say why a route did or did not match.
//
// Semantics:
// - prefix  (fabio default): plain case-sensitive string prefix, so `/api` matches `/apix`.
// - iprefix (fabio): the same after lowercasing both sides.
// - glob    (fabio): the WHOLE request path against a gobwas/glob pattern compiled without
//   separators, so `*` and `**` both cross `/` (`/foo/*/bar` matches `/foo/x/y/bar`), `?` is one
//   character, `[a-z]`/`[!a-z]` classes, `{a,b}` alternatives, `\` escapes. There is no implicit
//   prefix: `/` matches only `/`.
// - segment (Cairn): Kubernetes Ingress `pathType: Prefix`. Matching is element-wise on `/`:
//   the route path with trailing slashes removed must equal the request path, or be followed in
//   it by `/`. So `/api` and `/api/` both match `/api`, `/api/` and `/api/x`, never `/apix`;
//   `/` matches everything. Case-sensitive, like Kubernetes. (kubernetes.io Ingress docs,
//   "Examples": `/aaa/bbb/` matches `/aaa/bbb` "ignores trailing slash", `/aaa/bbb` does not
//   match `/aaa/bbbxyz`.)

import type { PathMatcher } from './types.ts';

export const pathMatchers: readonly PathMatcher[] = ['prefix', 'iprefix', 'glob', 'segment'];

/** Does `routePath` (as written in the route) match `requestPath` under `matcher`? */
export function pathMatches(matcher: PathMatcher, routePath: string, requestPath: string): boolean {
  switch (matcher) {
    case 'prefix':
      return requestPath.startsWith(routePath);
    case 'iprefix':
      return requestPath.toLowerCase().startsWith(routePath.toLowerCase());
    case 'segment':
      return segmentMatches(segmentKey(routePath), requestPath);
    case 'glob':
      return compileGlob(routePath).match(requestPath);
  }
}

/**
 * The key a segment route is indexed under: the path without trailing slashes (`/api/` ->
 * `/api`), except the root, which stays `/` and matches every path.
 */
export function segmentKey(routePath: string): string {
  let end = routePath.length;
  while (end > 1 && routePath.charCodeAt(end - 1) === 0x2f) end--;
  return end === routePath.length ? routePath : routePath.slice(0, end);
}

/** `key` is a `segmentKey`; true when it is an element-wise prefix of `requestPath`. */
export function segmentMatches(key: string, requestPath: string): boolean {
  if (!requestPath.startsWith(key)) return false;
  if (key.length === requestPath.length || key.endsWith('/')) return true;
  return requestPath.charCodeAt(key.length) === 0x2f;
}

/**
 * Orders strings like Go's `<` on UTF-8 bytes (which is code point order). fabio sorts paths
 * and reversed host names this way; JavaScript's `<` compares UTF-16 units, which differs for
 * characters beyond U+FFFF. Build-time only.
 */
export function compareCodePoints(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    // A surrogate (0xD800-0xDFFF) encodes a code point above every BMP unit it is compared to.
    const xs = x >= 0xd800 && x <= 0xdfff;
    const ys = y >= 0xd800 && y <= 0xdfff;
    if (xs !== ys) return xs ? 1 : -1;
    return x - y;
  }
  return a.length - b.length;
}

/** fabio's route order inside one host: paths sorted descending; the first match wins. */
export function compareRoutePathsDescending(a: string, b: string): number {
  return compareCodePoints(b, a);
}

// ---------------------------------------------------------------------------------------------
// Globs

const kindLiteral = 0;
const kindStars = 1;
const kindRegExp = 2;
const kindInvalid = 3;

/**
 * A compiled glob. Patterns without meta characters compare for equality, patterns whose only
 * meta character is `*` are matched with startsWith/indexOf/endsWith (no RegExp, no allocation),
 * everything else through an anchored RegExp built once here.
 */
export class GlobPattern {
  readonly source: string;
  /** Why the pattern cannot be compiled (unclosed `[` or `{`, dangling `\`); '' when valid. */
  readonly error: string;
  /** The literal text before the first meta character; every match starts with it. */
  readonly literalPrefix: string;
  private readonly kind: number;
  private readonly parts: readonly string[];
  private readonly minLength: number;
  private readonly re: RegExp | undefined;

  constructor(source: string) {
    this.source = source;
    this.literalPrefix = literalPrefixOf(source);
    let kind: number;
    let parts: string[] = [];
    let minLength = source.length;
    let re: RegExp | undefined;
    let error = '';
    if (this.literalPrefix.length === source.length) {
      kind = kindLiteral;
    } else if (!hasMetaOtherThanStar(source)) {
      kind = kindStars;
      parts = source.split('*');
      minLength = source.length - (parts.length - 1);
    } else {
      const translated = globToRegExpSource(source);
      if (translated.error !== '') {
        kind = kindInvalid;
        error = translated.error;
      } else {
        try {
          re = new RegExp(`^${translated.source}$`, 'su');
          kind = kindRegExp;
        } catch (e) {
          kind = kindInvalid;
          error = e instanceof Error ? e.message : String(e);
        }
      }
    }
    this.kind = kind;
    this.parts = parts;
    this.minLength = minLength;
    this.re = re;
    this.error = error;
  }

  /** True when the pattern has no meta character: it matches only itself. */
  get isLiteral(): boolean {
    return this.kind === kindLiteral;
  }

  match(s: string): boolean {
    switch (this.kind) {
      case kindLiteral:
        return s === this.source;
      case kindStars:
        return this.matchStars(s);
      case kindRegExp:
        return (this.re as RegExp).test(s);
      default:
        return false;
    }
  }

  /** `a*b*c`: starts with `a`, ends with `c`, and `b` occurs in between (leftmost is enough). */
  private matchStars(s: string): boolean {
    if (s.length < this.minLength) return false;
    const parts = this.parts;
    const n = parts.length;
    const first = parts[0] as string;
    const last = parts[n - 1] as string;
    if (!s.startsWith(first) || !s.endsWith(last)) return false;
    let pos = first.length;
    const end = s.length - last.length;
    for (let i = 1; i < n - 1; i++) {
      const part = parts[i] as string;
      if (part === '') continue;
      const at = s.indexOf(part, pos);
      if (at < 0 || at + part.length > end) return false;
      pos = at + part.length;
    }
    return true;
  }
}

const globCache = new Map<string, GlobPattern>();

/** Compiles (and caches) a gobwas-style glob. Never throws: an invalid pattern matches nothing. */
export function compileGlob(pattern: string): GlobPattern {
  let g = globCache.get(pattern);
  if (g === undefined) {
    g = new GlobPattern(pattern);
    // The cache serves explain and repeated table builds; bound it so hostile input cannot grow it.
    if (globCache.size >= 4096) globCache.clear();
    globCache.set(pattern, g);
  }
  return g;
}

/** True when `s` contains a glob meta character (`*`, `?`, `[`, `{`, `\`). */
export function hasGlobMeta(s: string): boolean {
  return literalPrefixOf(s).length !== s.length;
}

function isMeta(c: number): boolean {
  // * ? [ { \
  return c === 0x2a || c === 0x3f || c === 0x5b || c === 0x7b || c === 0x5c;
}

function literalPrefixOf(s: string): string {
  for (let i = 0; i < s.length; i++) if (isMeta(s.charCodeAt(i))) return s.slice(0, i);
  return s;
}

function hasMetaOtherThanStar(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c !== 0x2a && isMeta(c)) return true;
  }
  return false;
}

// Syntax characters only: with the `u` flag any other escape (`\-`) is a syntax error.
const reSpecial = /[\\^$.*+?()[\]{}|/]/g;

function escapeRegExp(s: string): string {
  return s.replace(reSpecial, '\\$&');
}

interface Translation {
  source: string;
  error: string;
}

/** Translates a gobwas glob (no separators) into RegExp source, or reports why it cannot. */
function globToRegExpSource(glob: string): Translation {
  const chars = Array.from(glob);
  const state = { i: 0 };
  const source = translateSequence(chars, state, 0);
  if (typeof source !== 'string') return { source: '', error: source.error };
  return { source, error: '' };
}

function translateSequence(chars: string[], st: { i: number }, depth: number): string | { error: string } {
  let out = '';
  while (st.i < chars.length) {
    const c = chars[st.i] as string;
    if (depth > 0 && (c === ',' || c === '}')) return out;
    st.i++;
    switch (c) {
      case '\\': {
        const next = chars[st.i];
        if (next === undefined) return { error: 'pattern ends with an unescaped \\' };
        st.i++;
        out += escapeRegExp(next);
        break;
      }
      case '*':
        while (chars[st.i] === '*') st.i++;
        out += '.*';
        break;
      case '?':
        out += '.';
        break;
      case '[': {
        const cls = translateClass(chars, st);
        if (typeof cls !== 'string') return cls;
        out += cls;
        break;
      }
      case '{': {
        const alts: string[] = [];
        for (;;) {
          const alt = translateSequence(chars, st, depth + 1);
          if (typeof alt !== 'string') return alt;
          alts.push(alt);
          const sep = chars[st.i];
          if (sep === undefined) return { error: 'unclosed {' };
          st.i++;
          if (sep === '}') break;
        }
        out += `(?:${alts.join('|')})`;
        break;
      }
      default:
        out += escapeRegExp(c);
    }
  }
  return out;
}

function translateClass(chars: string[], st: { i: number }): string | { error: string } {
  let negate = false;
  if (chars[st.i] === '!') {
    negate = true;
    st.i++;
  }
  let body = '';
  let items = 0;
  for (;;) {
    let c = chars[st.i];
    if (c === undefined) return { error: 'unclosed [' };
    st.i++;
    if (c === ']') break;
    if (c === '\\') {
      c = chars[st.i];
      if (c === undefined) return { error: 'unclosed [' };
      st.i++;
    }
    if (chars[st.i] === '-' && chars[st.i + 1] !== undefined && chars[st.i + 1] !== ']') {
      const hi = chars[st.i + 1] as string;
      st.i += 2;
      if ((c.codePointAt(0) ?? 0) > (hi.codePointAt(0) ?? 0)) return { error: `bad range ${c}-${hi}` };
      body += `${escapeClassChar(c)}-${escapeClassChar(hi)}`;
    } else {
      body += escapeClassChar(c);
    }
    items++;
  }
  if (items === 0) return { error: 'empty character class []' };
  return `[${negate ? '^' : ''}${body}]`;
}

function escapeClassChar(c: string): string {
  return c === '\\' || c === ']' || c === '[' || c === '^' || c === '-' ? `\\${c}` : c;
}
