// Checks of what a request names as its host, on the hot path: the Host header and the
// absolute-form target (`GET http://host/path`). A malformed host is answered with 400 before the
// route lookup: it would otherwise be matched, logged and forwarded as the client wrote it
// (a path or userinfo smuggled into Host, a header split across lines by the backend...).
// No regex, no allocation for a valid Host.

/** RFC 3986 reg-name and IPv4 characters: unreserved, sub-delims, pct-encoded's '%'. */
function isRegNameChar(c: number): boolean {
  return (
    (c >= 0x61 && c <= 0x7a) || // a-z
    (c >= 0x41 && c <= 0x5a) || // A-Z
    (c >= 0x30 && c <= 0x39) || // 0-9
    c === 0x2d || // -
    c === 0x2e || // .
    c === 0x5f || // _
    c === 0x7e || // ~
    c === 0x21 || // !
    c === 0x24 || // $
    c === 0x26 || // &
    c === 0x27 || // '
    c === 0x28 || // (
    c === 0x29 || // )
    c === 0x2a || // *
    c === 0x2b || // +
    c === 0x2c || // ,
    c === 0x3b || // ;
    c === 0x3d || // =
    c === 0x25 // %
  );
}

function isHex(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66) || (c >= 0x41 && c <= 0x46);
}

/**
 * `host[:port]` as RFC 9110 allows it in Host (uri-host [":" port]): a reg-name or IPv4, or an
 * IP-literal in brackets; the port all digits (may be empty, as RFC 3986 allows). An empty Host is
 * valid (RFC 9112 3.2: a target without authority). Userinfo, paths, spaces, controls: invalid.
 */
export function isValidHost(host: string): boolean {
  const n = host.length;
  if (n === 0) return true;
  let i = 0;
  if (host.charCodeAt(0) === 0x5b /* [ */) {
    const close = host.indexOf(']');
    if (close < 2) return false;
    for (let j = 1; j < close; j++) {
      const c = host.charCodeAt(j);
      if (!(isHex(c) || c === 0x3a || c === 0x2e)) return false;
    }
    i = close + 1;
  } else {
    while (i < n) {
      const c = host.charCodeAt(i);
      if (c === 0x3a /* : */) break;
      if (!isRegNameChar(c)) return false;
      i++;
    }
    if (i === 0) return false;
  }
  if (i === n) return true;
  if (host.charCodeAt(i) !== 0x3a) return false;
  for (let j = i + 1; j < n; j++) {
    const c = host.charCodeAt(j);
    if (c < 0x30 || c > 0x39) return false;
  }
  return n - i - 1 <= 5;
}

/** Result of the last parseAbsoluteForm(): the authority and where the path begins. */
export interface AbsoluteTarget {
  authority: string;
  pathStart: number;
}

/**
 * Parses an absolute-form target `http://authority/path?query` (RFC 9112 3.2.2) into `out`.
 * Only http and https, a non-empty valid authority without userinfo. Returns false otherwise.
 * `pathStart` is url.length when there is no path (the path is then '/').
 */
export function parseAbsoluteForm(url: string, out: AbsoluteTarget): boolean {
  const sep = url.indexOf('://');
  if (sep !== 4 && sep !== 5) return false;
  const scheme = url.slice(0, sep).toLowerCase();
  if (scheme !== 'http' && scheme !== 'https') return false;
  const start = sep + 3;
  let end = start;
  while (end < url.length) {
    const c = url.charCodeAt(end);
    if (c === 0x2f /* / */ || c === 0x3f /* ? */ || c === 0x23 /* # */) break;
    end++;
  }
  const authority = url.slice(start, end);
  if (authority === '' || authority.indexOf('@') >= 0 || !isValidHost(authority)) return false;
  out.authority = authority;
  out.pathStart = end;
  return true;
}

/** Sets the Host field of a flat raw header list to `host` (replacing the first, else appending). */
export function setHostHeader(raw: string[], host: string): void {
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i] as string;
    if (name.length === 4 && name.toLowerCase() === 'host') {
      raw[i + 1] = host;
      return;
    }
  }
  raw.push('Host', host);
}
