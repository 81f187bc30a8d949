// Request path handling on the proxy's hot path: split off the query, normalise the path the
// way fabio does before lookup and forwarding, apply the route's strip=/prepend=.
//
// fabio (HEAD) normalises with url-decode + path.Clean, keeping a trailing slash; the result is
// both what the route lookup sees and what goes upstream. The query string is not touched: it is
// passed through byte for byte.

/**
 * Splits a request target (Node's `req.url`) at the first '?'. The query keeps its '?' (or is ''
 * when there is none) so `path + query` reproduces the target exactly, including a bare `/x?`.
 * The strings are slices of the input; nothing is copied when there is no query.
 */
export function splitPathQuery(url: string): [path: string, query: string] {
  const q = url.indexOf('?');
  if (q < 0) return [url, ''];
  return [url.slice(0, q), url.slice(q)];
}

/**
 * Normalises an origin-form path: percent-decodes it, resolves `.` and `..` (never above the
 * root), collapses `//`, keeps a trailing slash, then re-encodes what may not appear raw in a
 * path (RFC 3986 pchar; a decoded `%2F` stays a separator, as in fabio). Returns undefined for
 * invalid percent-encoding (`%`, `%4`, `%zz`): the caller answers 400.
 *
 * Fast path: a path with no '%', no '//' and no dot segment is returned as is, without
 * allocating. Targets that are not origin-form (`*`, absolute-form) are returned unchanged.
 */
export function normalizeRequestPath(rawPath: string): string | undefined {
  if (rawPath.charCodeAt(0) !== 47 || isClean(rawPath)) return rawPath;
  const decoded = percentDecode(rawPath);
  if (decoded === undefined) return undefined;
  return encodePath(cleanPath(decoded));
}

/**
 * Applies a route's `strip=` then `prepend=` to the (normalised) path, as fabio does: strip is a
 * plain string prefix (`/strip/mex` with strip `/strip` gives `/mex`), the result always starts
 * with '/'. Returns the input itself when there is nothing to do.
 */
export function rewritePath(path: string, strip: string | undefined, prepend: string | undefined): string {
  let p = path;
  if (strip !== undefined && strip !== '' && p.startsWith(strip)) {
    const rest = strip.length;
    if (rest === p.length) p = '/';
    else p = p.charCodeAt(rest) === 47 ? p.slice(rest) : `/${p.slice(rest)}`;
  }
  if (prepend !== undefined && prepend !== '') {
    p = prepend.charCodeAt(0) === 47 ? prepend + p : `/${prepend}${p}`;
  }
  return p;
}

/** True when normalising would not change the path: no '%', no '//', no `.`/`..` segment. */
function isClean(path: string): boolean {
  const len = path.length;
  for (let i = 0; i < len; i++) {
    const c = path.charCodeAt(i);
    if (c === 37) return false;
    if (c !== 47) continue;
    const n = path.charCodeAt(i + 1);
    if (n === 47) return false;
    if (n !== 46) continue;
    // "/." followed by the end, '/', or ".": and then the end or '/'.
    const n2 = path.charCodeAt(i + 2);
    if (i + 2 >= len || n2 === 47) return false;
    if (n2 === 46 && (i + 3 >= len || path.charCodeAt(i + 3) === 47)) return false;
  }
  return true;
}

const HEX = '0123456789ABCDEF';

function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 65 && c <= 70) return c - 55;
  if (c >= 97 && c <= 102) return c - 87;
  return -1;
}

/**
 * Decodes %XX escapes into a byte string (one char per byte, 0-255). Raw characters above 0x7f
 * (Node's parser rejects them, but callers may pass any string) become their UTF-8 bytes.
 */
function percentDecode(s: string): string | undefined {
  let out = '';
  let runStart = 0;
  const len = s.length;
  for (let i = 0; i < len; i++) {
    const c = s.charCodeAt(i);
    if (c === 37) {
      const hi = hexValue(s.charCodeAt(i + 1));
      const lo = hexValue(s.charCodeAt(i + 2));
      if (hi < 0 || lo < 0) return undefined;
      out += s.slice(runStart, i) + String.fromCharCode(hi * 16 + lo);
      i += 2;
      runStart = i + 1;
    } else if (c > 0x7f) {
      out += s.slice(runStart, i);
      let cp = c;
      if (c >= 0xd800 && c <= 0xdbff) {
        const d = s.charCodeAt(i + 1);
        if (d >= 0xdc00 && d <= 0xdfff) {
          cp = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
          i++;
        } else {
          cp = 0xfffd;
        }
      } else if (c >= 0xdc00 && c <= 0xdfff) {
        cp = 0xfffd;
      }
      out += utf8Bytes(cp);
      runStart = i + 1;
    }
  }
  return out + s.slice(runStart);
}

function utf8Bytes(cp: number): string {
  const f = String.fromCharCode;
  if (cp < 0x800) return f(0xc0 | (cp >> 6), 0x80 | (cp & 0x3f));
  if (cp < 0x10000) return f(0xe0 | (cp >> 12), 0x80 | ((cp >> 6) & 0x3f), 0x80 | (cp & 0x3f));
  return f(0xf0 | (cp >> 18), 0x80 | ((cp >> 12) & 0x3f), 0x80 | ((cp >> 6) & 0x3f), 0x80 | (cp & 0x3f));
}

/** Go's path.Clean for a rooted path, plus fabio's rule of keeping a trailing slash. */
function cleanPath(p: string): string {
  const segments: string[] = [];
  const len = p.length;
  let i = 1;
  while (i <= len) {
    let j = p.indexOf('/', i);
    if (j < 0) j = len;
    const segLen = j - i;
    if (segLen === 0 || (segLen === 1 && p.charCodeAt(i) === 46)) {
      // empty or "." segment
    } else if (segLen === 2 && p.charCodeAt(i) === 46 && p.charCodeAt(i + 1) === 46) {
      segments.pop();
    } else {
      segments.push(p.slice(i, j));
    }
    i = j + 1;
  }
  if (segments.length === 0) return '/';
  const cleaned = `/${segments.join('/')}`;
  return p.charCodeAt(len - 1) === 47 ? `${cleaned}/` : cleaned;
}

/** Bytes allowed raw in a path: unreserved, sub-delims, ':', '@' and '/'. */
function allowedInPath(c: number): boolean {
  if ((c >= 97 && c <= 122) || (c >= 65 && c <= 90) || (c >= 48 && c <= 57)) return true;
  switch (c) {
    case 45: // -
    case 46: // .
    case 95: // _
    case 126: // ~
    case 33: // !
    case 36: // $
    case 38: // &
    case 39: // '
    case 40: // (
    case 41: // )
    case 42: // *
    case 43: // +
    case 44: // ,
    case 59: // ;
    case 61: // =
    case 58: // :
    case 64: // @
    case 47: // /
      return true;
    default:
      return false;
  }
}

/** Percent-encodes (upper-case hex) every byte of a byte string not allowed raw in a path. */
function encodePath(bytes: string): string {
  let out = '';
  let runStart = 0;
  const len = bytes.length;
  for (let i = 0; i < len; i++) {
    const c = bytes.charCodeAt(i);
    if (allowedInPath(c)) continue;
    out += `${bytes.slice(runStart, i)}%${HEX[c >> 4]}${HEX[c & 15]}`;
    runStart = i + 1;
  }
  return runStart === 0 ? bytes : out + bytes.slice(runStart);
}
