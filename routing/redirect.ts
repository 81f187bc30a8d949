// The Location of a redirect route (`opts "redirect=301"`, destination URL with `$host`/`$path`),
// as fabio builds it:
//   - `$host` in the destination's host is the request's host;
//   - `$path` is the request path with `strip` removed and `prepend` put in front; a `/` written
//     right before `$path` merges with the request path's own leading slash;
//   - the request query is carried over only when `$path` is used and the destination has none;
//   - without `$path` the destination is used as written (its path defaulting to `/`).
// Request parts are copied raw (`/a%2fbc` stays `/a%2fbc`); characters that may not appear in a
// URL (controls, space, non-ASCII, quotes, ...) are percent-encoded so the result is always a
// valid Location header value.

export interface RedirectRequest {
  /** Host header as received. */
  readonly host: string;
  /** Raw request path, without the query. */
  readonly path: string;
  /** Raw query, with or without its leading '?'; '' when none. */
  readonly query: string;
}

export interface RedirectOptions {
  readonly strip?: string | undefined;
  readonly prepend?: string | undefined;
}

const PATH_VAR = '$path';
const HOST_VAR = '$host';

export function redirectLocation(dst: string, request: RedirectRequest, opts: RedirectOptions): string {
  // Split the destination like Go's url.Parse: fragment, scheme, query, authority, path.
  let rest = dst;
  const hash = rest.indexOf('#');
  if (hash >= 0) rest = rest.slice(0, hash);
  let scheme = '';
  const sep = rest.indexOf('://');
  if (sep >= 0) {
    scheme = rest.slice(0, sep);
    rest = rest.slice(sep + 3);
  }
  let query = '';
  const q = rest.indexOf('?');
  if (q >= 0) {
    query = rest.slice(q + 1);
    rest = rest.slice(0, q);
  }
  const slash = rest.indexOf('/');
  let host = slash < 0 ? rest : rest.slice(0, slash);
  let path = slash < 0 ? '' : rest.slice(slash);
  // fabio copies the host only, never user info.
  const at = host.lastIndexOf('@');
  if (at >= 0) host = host.slice(at + 1);

  // `http://bar.com$path`: Go's parser sees `$path` as part of the host.
  if (host.endsWith(PATH_VAR)) {
    host = host.slice(0, host.length - PATH_VAR.length);
    path = PATH_VAR;
  }
  // A `/` written before `$path` merges with the request path's own leading slash.
  const merged = path.indexOf(`/${PATH_VAR}`);
  if (merged >= 0) path = path.slice(0, merged) + path.slice(merged + 1);
  const varAt = path.indexOf(PATH_VAR);
  if (varAt >= 0) {
    let reqPath = request.path;
    const strip = opts.strip;
    if (strip !== undefined && strip !== '' && reqPath.startsWith(strip)) {
      reqPath = reqPath.slice(strip.length);
    }
    if (opts.prepend !== undefined) reqPath = opts.prepend + reqPath;
    path = path.slice(0, varAt) + escapeUnsafe(reqPath) + path.slice(varAt + PATH_VAR.length);
    if (query === '') query = escapeUnsafe(stripQuestionMark(request.query));
  }
  if (path === '') path = '/';
  else if (path.charCodeAt(0) !== 0x2f) path = `/${path}`;

  const hostAt = host.indexOf(HOST_VAR);
  if (hostAt >= 0) {
    host = host.slice(0, hostAt) + escapeUnsafe(request.host) + host.slice(hostAt + HOST_VAR.length);
  }

  let out = scheme === '' ? `//${host}${path}` : `${scheme}://${host}${path}`;
  if (query !== '') out += `?${query}`;
  return out;
}

function stripQuestionMark(q: string): string {
  return q.charCodeAt(0) === 0x3f ? q.slice(1) : q;
}

/**
 * Whether an ASCII code unit may be copied into the Location as is: RFC 3986 characters, with '%'
 * kept for existing escapes and '#' encoded (it would start a fragment).
 */
function isUrlSafe(c: number): boolean {
  if (c <= 0x20 || c >= 0x7f) return false;
  switch (c) {
    case 0x22: // "
    case 0x3c: // <
    case 0x3e: // >
    case 0x5c: // \
    case 0x5e: // ^
    case 0x60: // `
    case 0x7b: // {
    case 0x7c: // |
    case 0x7d: // }
    case 0x23: // #
      return false;
    default:
      return true;
  }
}

const HEX = '0123456789ABCDEF';

function pct(b: number): string {
  return `%${HEX[b >> 4]}${HEX[b & 15]}`;
}

/** Percent-encodes (UTF-8) what may not appear in a URL; returns `s` itself when all is safe. */
function escapeUnsafe(s: string): string {
  let i = 0;
  while (i < s.length && isUrlSafe(s.charCodeAt(i))) i++;
  if (i === s.length) return s;
  let out = s.slice(0, i);
  for (; i < s.length; i++) {
    let c = s.charCodeAt(i);
    if (c < 0x80) {
      out += isUrlSafe(c) ? s[i] : pct(c);
      continue;
    }
    if (c >= 0xd800 && c <= 0xdbff) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
        i++;
      } else {
        c = 0xfffd;
      }
    } else if (c >= 0xdc00 && c <= 0xdfff) {
      c = 0xfffd;
    }
    if (c < 0x800) {
      out += pct(0xc0 | (c >> 6)) + pct(0x80 | (c & 63));
    } else if (c < 0x10000) {
      out += pct(0xe0 | (c >> 12)) + pct(0x80 | ((c >> 6) & 63)) + pct(0x80 | (c & 63));
    } else {
      out += pct(0xf0 | (c >> 18)) + pct(0x80 | ((c >> 12) & 63));
      out += pct(0x80 | ((c >> 6) & 63)) + pct(0x80 | (c & 63));
    }
  }
  return out;
}
