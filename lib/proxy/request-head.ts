// The few request headers the proxy itself needs, found in one pass over the raw header array.
// Reading `req.headers` would make Node build a header object for every request; the raw array
// is already there and is what we forward anyway.

export class RequestHead {
  host = '';
  /** Host fields seen: more than one is a 400 (RFC 9112 3.2). */
  hostFields = 0;
  /** `host` came from an absolute-form target (set by HttpProxy.decide): forward it as Host. */
  absoluteHost = false;
  forwardedProto: string | undefined = undefined;
  forwardedFor = '';
  authorization: string | undefined = undefined;
  /** A request body follows (Content-Length > 0 or Transfer-Encoding present). */
  hasBody = false;
}

/** Case-insensitive compare of `s` against a lowercase ASCII `lower` of the same length. */
function is(s: string, lower: string): boolean {
  if (s.length !== lower.length) return false;
  for (let i = 0; i < s.length; i++) {
    let c = s.charCodeAt(i);
    if (c >= 65 && c <= 90) c += 32;
    if (c !== lower.charCodeAt(i)) return false;
  }
  return true;
}

export function scanRequestHead(raw: readonly string[]): RequestHead {
  const h = new RequestHead();
  let authority = '';
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i] as string;
    const value = raw[i + 1] as string;
    switch (name.length) {
      case 4:
        if (is(name, 'host')) {
          if (h.hostFields++ === 0) h.host = value;
        }
        break;
      case 10:
        if (name === ':authority') authority = value;
        break;
      case 13:
        if (h.authorization === undefined && is(name, 'authorization')) h.authorization = value;
        break;
      case 14:
        if (is(name, 'content-length')) h.hasBody = h.hasBody || (value !== '0' && value !== '');
        break;
      case 15:
        if (is(name, 'x-forwarded-for'))
          h.forwardedFor = h.forwardedFor === '' ? value : `${h.forwardedFor}, ${value}`;
        break;
      case 17:
        if (h.forwardedProto === undefined && is(name, 'x-forwarded-proto')) h.forwardedProto = value;
        else if (is(name, 'transfer-encoding')) h.hasBody = true;
        break;
    }
  }
  if (h.host === '') h.host = authority;
  return h;
}
