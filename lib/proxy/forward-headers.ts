// Request headers sent upstream and response headers sent back, on the proxy's hot path.
//
// Semantics follow fabio's addHeaders() plus what Go's ReverseProxy does after it (append to
// X-Forwarded-For, strip hop-by-hop headers), in one pass over Node's flat `rawHeaders`:
//
// - Hop-by-hop headers are removed (RFC 9110 7.6.1): Connection, Proxy-Connection, Keep-Alive, TE,
//   Transfer-Encoding, Trailer, Upgrade and every header named in Connection. Proxy-Authorization
//   is removed as well: it carries credentials for a forward proxy, never for the backend (Go's
//   ReverseProxy, and so fabio, removes it too). `Expect` is removed because Node's server has
//   already answered `100-continue` and undici refuses to send it.
// - A client cannot make Cairn drop Host, Content-Length, X-Real-Ip, X-Forwarded-* or Forwarded by
//   naming them in Connection: those carry routing, framing and the proxy's own information.
// - X-Forwarded-For: the client IP is appended to the existing values (several headers are merged
//   in order), for websockets too (fabio overwrites it for websockets, losing the chain).
// - X-Real-Ip, X-Forwarded-Proto, X-Forwarded-Port, X-Forwarded-Host: kept when present (and not
//   empty), otherwise set. X-Forwarded-Prefix, the client-IP header, the TLS header and the request
//   id header are always set by Cairn (a client-sent value is replaced).
// - Forwarded: created as `for=<ip>; proto=<p>[; by=<local ip>][; httpproto=..][; tlsver=..]
//   [; tlscipher=..]` like fabio; an existing one is only extended with `; by=<local ip>` (fabio
//   also appends httpproto/tlsver/tlscipher, describing Cairn's hop inside a client's element).
//   IPv6 addresses are written `"[v6]"` as RFC 7239 requires (fabio writes them bare).
// - Unknown client address (Node reports `undefined` once the socket is gone): no X-Real-Ip, no
//   client-IP header, X-Forwarded-For only carries the existing chain, and Forwarded says
//   `for=unknown` (RFC 7239 6.3). fabio answers 500 "cannot parse"; Cairn never throws here.
// - HTTP/2 pseudo-headers (`:method`, ...) are dropped; `:authority` stands in for a missing Host.
// - Body framing is left to the caller: Transfer-Encoding is dropped, Content-Length kept (the
//   first one only, and none when the request also had Transfer-Encoding, RFC 9112 6.3). Several
//   Cookie headers (HTTP/2 splits them) are joined with "; " as HTTP/1.1 requires.
//
// Header names are compared without allocating: switch on the length, gate on the first letter,
// then an ASCII case-insensitive compare against a lowercase constant. Only the rare cases
// allocate beyond the output: Connection naming custom headers, merged X-Forwarded-For/Cookie.
//
// With undici's `dispatch({ upgrade })` leave ctx.upgrade unset (undici refuses an `upgrade`
// header and writes Connection/Upgrade itself); websocket semantics (Forwarded proto=ws) come from
// the client's Upgrade header either way.

/** What the HTTP listener knows about the client connection and the chosen route. */
import { clientAddress, isTrustedPeer } from '../../routing/access.ts';
import type { Cidr } from '../../routing/types.ts';

export interface ForwardContext {
  /** `socket.remoteAddress` as Node reports it (IPv4, IPv6, `::ffff:1.2.3.4`); may be undefined. */
  readonly remoteAddress: string | undefined;
  /** The client connection is TLS. */
  readonly tls: boolean;
  /** `req.httpVersion` ('1.1', '2.0'); '' leaves `httpproto=` out of Forwarded. */
  readonly httpVersion: string;
  /**
   * The listener's port. Reserved: X-Forwarded-Port follows fabio (the Host header's port, else
   * 80/443), which is the port the client used even behind NAT or container port mapping.
   */
  readonly localPort: number;
  /** `tlsSocket.getProtocol()`, e.g. 'TLSv1.3'; becomes `tlsver=tls13`. */
  readonly tlsVersion?: string | undefined;
  /** Cipher suite, written as given into `tlscipher=` (fabio writes the IANA id, e.g. 0x1303). */
  readonly tlsCipher?: string | undefined;
  /** The route's `strip=` prefix; sets X-Forwarded-Prefix. */
  readonly stripPrefix?: string | undefined;
  /** Replaces the Host header (`host=<name>`, or the target's host for `host=dst`). */
  readonly hostOverride?: string | undefined;
  /** `proxy.header.requestid`: header set to this value, replacing any the client sent. */
  readonly requestId?: { readonly header: string; readonly value: string } | undefined;
  /** `proxy.header.clientip`: header set to the client IP (ignored if X-Forwarded-For/X-Real-Ip). */
  readonly clientIpHeader?: string | undefined;
  /**
   * `--trusted-proxies` (lib/config): when set, X-Real-Ip and the client-IP header carry the client
   * address these proxies vouch for (routing/access.ts clientAddress), and a client-sent X-Real-Ip
   * is kept only from a trusted peer. Unset: fabio's behaviour (X-Real-Ip kept when present).
   */
  readonly trustedProxies?: readonly Cidr[] | undefined;
  /** `proxy.localip`: appended to Forwarded as `by=`. */
  readonly localIp?: string | undefined;
  /** `proxy.header.tls` / `.value`: set on TLS connections, removed from plain HTTP requests. */
  readonly tlsHeader?: { readonly name: string; readonly value: string } | undefined;
  /**
   * Keep `Upgrade` and send `Connection: upgrade` (WebSocket written on a raw socket). Leave it
   * unset with undici's `dispatch({ upgrade })`: undici rejects an `upgrade` header and writes
   * both headers itself.
   */
  readonly upgrade?: boolean | undefined;
}

/**
 * Builds the flat `[name, value, ...]` header list for the upstream request from Node's
 * `req.rawHeaders`. Never throws; malformed entries (odd length, non-strings) are skipped.
 */
export function buildUpstreamHeaders(raw: readonly string[], ctx: ForwardContext): string[] {
  const out: string[] = [];
  const clientIp = clientIpOf(ctx.remoteAddress);
  const tls = ctx.tls;
  const upgradeMode = ctx.upgrade === true;
  const hostOverride = ctx.hostOverride;
  const strip = ctx.stripPrefix ?? '';
  const clientIpName = usableClientIpHeader(ctx.clientIpHeader);
  const requestIdName = ctx.requestId === undefined ? '' : ctx.requestId.header;
  const tlsName = ctx.tlsHeader === undefined ? '' : ctx.tlsHeader.name;
  const trusted = ctx.trustedProxies;
  // Only a trusted proxy may tell the backend who the client is (X-Real-Ip).
  const keepClientRealIp = trusted === undefined || isTrustedPeer(trusted, clientIp);

  let host: string | undefined;
  let authority: string | undefined;
  let xff = '';
  let forwarded = '';
  let xfProto: string | undefined;
  let hasRealIp = false;
  let hasXfPort = false;
  let hasXfHost = false;
  let websocket = false;
  let connectionNamed = '';
  let connectionAt = -1;
  let contentLengthAt = -1;
  let cookieAt = -1;
  let sawTransferEncoding = false;

  const end = raw.length - (raw.length & 1);
  for (let i = 0; i < end; i += 2) {
    const name = raw[i];
    const value = raw[i + 1];
    if (typeof name !== 'string' || typeof value !== 'string' || name.length === 0) continue;

    // The first letter, lowercased, rules most names out before a full compare.
    const c0 = name.charCodeAt(0) | 0x20;
    switch (name.length) {
      case 2:
        if (isName(name, 'te')) continue;
        break;
      case 4:
        if (c0 === 104 /* h */ && isName(name, 'host')) {
          // undici rejects a second Host; the first one is what Node routed on.
          if (host === undefined) {
            host = value;
            out.push(name, hostOverride ?? value);
          }
          continue;
        }
        break;
      case 6:
        if (c0 === 99 /* c */ && isName(name, 'cookie')) {
          if (cookieAt < 0) {
            cookieAt = out.length;
            out.push(name, value);
          } else {
            out[cookieAt + 1] = `${out[cookieAt + 1]}; ${value}`;
          }
          continue;
        }
        if (c0 === 101 /* e */ && isName(name, 'expect')) continue;
        break;
      case 7:
        if (c0 === 117 /* u */ && isName(name, 'upgrade')) {
          if (!websocket && isName(value, 'websocket')) websocket = true;
          if (upgradeMode) out.push(name, value);
          continue;
        }
        if (c0 === 116 /* t */ && isName(name, 'trailer')) continue;
        break;
      case 9:
        if (c0 === 102 /* f */ && isName(name, 'forwarded')) {
          if (value !== '') forwarded = forwarded === '' ? value : `${forwarded}, ${value}`;
          continue;
        }
        if (c0 === 120 /* x */ && isName(name, 'x-real-ip')) {
          if (value !== '' && keepClientRealIp) {
            hasRealIp = true;
            out.push(name, value);
          }
          continue;
        }
        break;
      case 10:
        if (c0 === 99 /* c */ && isName(name, 'connection')) {
          const named = unusualConnectionTokens(value);
          if (named !== '') connectionNamed += named;
          if (upgradeMode && connectionAt < 0) {
            connectionAt = out.length;
            out.push(name, 'upgrade');
          }
          continue;
        }
        if (c0 === 107 /* k */ && isName(name, 'keep-alive')) continue;
        if (c0 === 58 /* : */ && isName(name, ':authority')) {
          if (authority === undefined) authority = value;
          continue;
        }
        break;
      case 14:
        if (c0 === 99 /* c */ && isName(name, 'content-length')) {
          if (contentLengthAt < 0) {
            contentLengthAt = out.length;
            out.push(name, value);
          }
          continue;
        }
        break;
      case 15:
        if (c0 === 120 /* x */ && isName(name, 'x-forwarded-for')) {
          if (value !== '') xff = xff === '' ? value : `${xff}, ${value}`;
          continue;
        }
        break;
      case 16:
        if (c0 === 120 /* x */ && isName(name, 'x-forwarded-host')) {
          if (value !== '') {
            hasXfHost = true;
            out.push(name, value);
          }
          continue;
        }
        if (c0 === 120 /* x */ && isName(name, 'x-forwarded-port')) {
          if (value !== '') {
            hasXfPort = true;
            out.push(name, value);
          }
          continue;
        }
        if (c0 === 112 /* p */ && isName(name, 'proxy-connection')) continue;
        break;
      case 17:
        if (c0 === 120 /* x */ && isName(name, 'x-forwarded-proto')) {
          if (value !== '') {
            if (xfProto === undefined) xfProto = value;
            out.push(name, value);
          }
          continue;
        }
        if (c0 === 116 /* t */ && isName(name, 'transfer-encoding')) {
          sawTransferEncoding = true;
          continue;
        }
        break;
      case 18:
        if (strip !== '' && c0 === 120 /* x */ && isName(name, 'x-forwarded-prefix')) continue;
        break;
      case 19:
        if (c0 === 112 /* p */ && isName(name, 'proxy-authorization')) continue;
        break;
    }
    // Remaining pseudo-headers (:method, :path, :scheme) are not valid HTTP/1.1 field names.
    if (name.charCodeAt(0) === 58) continue;
    // Headers Cairn sets itself; the client's copy is never forwarded.
    if (clientIpName !== '' && sameName(name, clientIpName)) continue;
    if (requestIdName !== '' && sameName(name, requestIdName)) continue;
    if (tlsName !== '' && sameName(name, tlsName)) continue;
    out.push(name, value);
  }

  if (sawTransferEncoding && contentLengthAt >= 0) out.splice(contentLengthAt, 2);
  if (connectionNamed !== '') removeConnectionNamed(out, connectionNamed, true);

  const originalHost = host ?? authority;
  if (host === undefined) {
    const h = hostOverride ?? authority;
    if (h !== undefined) out.push('host', h);
  }

  if (clientIp !== '') out.push('x-forwarded-for', xff === '' ? clientIp : `${xff}, ${clientIp}`);
  else if (xff !== '') out.push('x-forwarded-for', xff);

  // The client as trusted proxies report it (the socket address when none is trusted).
  const realIp = trusted === undefined || clientIp === '' ? clientIp : clientAddress(trusted, clientIp, xff);
  if (!hasRealIp && realIp !== '') out.push('x-real-ip', realIp);

  // fabio's scheme(): X-Forwarded-Proto alone wins, Forwarded's proto= alone wins, otherwise the
  // connection decides (ws/wss for websocket upgrades).
  const connScheme = websocket ? (tls ? 'wss' : 'ws') : tls ? 'https' : 'http';
  if (xfProto === undefined) {
    let proto = forwarded === '' ? undefined : forwardedProto(forwarded);
    if (proto === undefined || proto === '') proto = connScheme;
    // fabio #133: Java websocket clients break on X-Forwarded-Proto ws/wss.
    out.push('x-forwarded-proto', proto === 'ws' ? 'http' : proto === 'wss' ? 'https' : proto);
  }

  if (!hasXfPort) {
    const port = originalHost === undefined ? undefined : hostPort(originalHost);
    out.push('x-forwarded-port', port ?? (tls ? '443' : '80'));
  }

  if (!hasXfHost && originalHost !== undefined && originalHost !== '') {
    out.push('x-forwarded-host', originalHost);
  }

  if (strip !== '') out.push('x-forwarded-prefix', strip);

  const localIp = ctx.localIp;
  let fwd: string;
  if (forwarded === '') {
    fwd = `for=${clientIp === '' ? 'unknown' : forwardedNode(clientIp)}; proto=${xfProto ?? connScheme}`;
    if (localIp !== undefined && localIp !== '') fwd += `; by=${forwardedNode(localIp)}`;
    const httpProto = httpProtoOf(ctx.httpVersion);
    if (httpProto !== '') fwd += `; httpproto=${httpProto}`;
    if (tls) {
      const tlsVersion = ctx.tlsVersion;
      if (tlsVersion !== undefined && tlsVersion !== '') fwd += `; tlsver=${tlsVerOf(tlsVersion)}`;
      const cipher = ctx.tlsCipher;
      if (cipher !== undefined && cipher !== '') fwd += `; tlscipher=${cipher}`;
    }
  } else {
    fwd = forwarded;
    if (localIp !== undefined && localIp !== '') fwd += `; by=${forwardedNode(localIp)}`;
  }
  out.push('forwarded', fwd);

  if (clientIpName !== '' && realIp !== '') out.push(clientIpName, realIp);
  if (tlsName !== '' && tls && ctx.tlsHeader !== undefined) out.push(tlsName, ctx.tlsHeader.value);
  if (ctx.requestId !== undefined && requestIdName !== '') out.push(requestIdName, ctx.requestId.value);

  return out;
}

/**
 * Removes hop-by-hop headers (and those named in Connection) from an upstream response's raw
 * headers: undici's legacy `onHeaders(statusCode, rawHeaders: Buffer[], ...)` / `onUpgrade`
 * hand over the flat `[name, value, ...]` Buffer list in wire order and case (the newer
 * `onResponseStart` only gets a parsed, lowercased object). Returns strings (latin1, byte for
 * byte) for `res.writeHead(status, flat)`. `keepUpgrade` keeps Upgrade and sends
 * `Connection: upgrade`, for relaying a 101 answer. Proxy-Authenticate is dropped (it addresses
 * the next proxy, as in Go's ReverseProxy); Content-Length is dropped when Transfer-Encoding was
 * present (RFC 9112 6.3), since Node re-frames the body itself.
 */
export function filterResponseHeaders(raw: readonly (string | Buffer)[], keepUpgrade = false): string[] {
  const out: string[] = [];
  let connectionNamed = '';
  let connectionAt = -1;
  let contentLengthAt = -1;
  let sawTransferEncoding = false;

  const end = raw.length - (raw.length & 1);
  for (let i = 0; i < end; i += 2) {
    const n = raw[i];
    const v = raw[i + 1];
    if (n === undefined || v === undefined) continue;
    const name = typeof n === 'string' ? n : responseName(n);
    if (name.length === 0) continue;

    const c0 = name.charCodeAt(0) | 0x20;
    switch (name.length) {
      case 2:
        if (isName(name, 'te')) continue;
        break;
      case 7:
        if (c0 === 117 /* u */ && isName(name, 'upgrade')) {
          if (keepUpgrade) out.push(name, latin1(v));
          continue;
        }
        if (c0 === 116 /* t */ && isName(name, 'trailer')) continue;
        break;
      case 10:
        if (c0 === 99 /* c */ && isName(name, 'connection')) {
          const named = unusualConnectionTokens(latin1(v));
          if (named !== '') connectionNamed += named;
          if (keepUpgrade && connectionAt < 0) {
            connectionAt = out.length;
            out.push(name, 'upgrade');
          }
          continue;
        }
        if (c0 === 107 /* k */ && isName(name, 'keep-alive')) continue;
        break;
      case 14:
        if (c0 === 99 /* c */ && isName(name, 'content-length')) {
          if (contentLengthAt < 0) {
            contentLengthAt = out.length;
            out.push(name, latin1(v));
          }
          continue;
        }
        break;
      case 16:
        if (c0 === 112 /* p */ && isName(name, 'proxy-connection')) continue;
        break;
      case 17:
        if (c0 === 116 /* t */ && isName(name, 'transfer-encoding')) {
          sawTransferEncoding = true;
          continue;
        }
        break;
      case 18:
        if (c0 === 112 /* p */ && isName(name, 'proxy-authenticate')) continue;
        break;
    }
    // HTTP/2 upstreams: `:status` and friends are not header fields.
    if (name.charCodeAt(0) === 58) continue;
    out.push(name, latin1(v));
  }

  if (sawTransferEncoding && contentLengthAt >= 0) out.splice(contentLengthAt, 2);
  if (connectionNamed !== '') removeConnectionNamed(out, connectionNamed, false);
  return out;
}

// Response header names most upstreams send, as Go/nginx/Node spell them and lowercased (HTTP/2),
// by length: a byte compare returns the shared string instead of decoding a new one.
const COMMON_RESPONSE_NAMES: readonly (readonly string[])[] = (() => {
  const names = [
    'Content-Type',
    'Content-Length',
    'Date',
    'Server',
    'Cache-Control',
    'ETag',
    'Etag',
    'Vary',
    'Set-Cookie',
    'Last-Modified',
    'Expires',
    'Location',
    'Content-Encoding',
    'Accept-Ranges',
    'Age',
    'Connection',
    'Keep-Alive',
    'Transfer-Encoding',
    'Strict-Transport-Security',
    'X-Content-Type-Options',
    'X-Frame-Options',
    'Content-Security-Policy',
    'Referrer-Policy',
    'Access-Control-Allow-Origin',
    'X-Request-Id',
    'Pragma',
    'Via',
    'X-Powered-By',
  ];
  const byLength: string[][] = [];
  for (const name of [...names, ...names.map((n) => n.toLowerCase())]) {
    const list = byLength[name.length] ?? [];
    if (!list.includes(name)) list.push(name);
    byLength[name.length] = list;
  }
  return byLength;
})();

function responseName(buf: Buffer): string {
  const candidates = COMMON_RESPONSE_NAMES[buf.length];
  if (candidates !== undefined) {
    for (let c = 0; c < candidates.length; c++) {
      const s = candidates[c] as string;
      let i = 0;
      while (i < s.length && buf[i] === s.charCodeAt(i)) i++;
      if (i === s.length) return s;
    }
  }
  return buf.toString('latin1');
}

/** Header bytes as Node writes them back (latin1), byte for byte. */
function latin1(v: string | Buffer): string {
  return typeof v === 'string' ? v : v.toString('latin1');
}

/** ASCII case-insensitive compare of `name` with a lowercase constant; no allocation. */
function isName(name: string, lower: string): boolean {
  const len = lower.length;
  if (name.length !== len) return false;
  for (let i = 0; i < len; i++) {
    const c = name.charCodeAt(i);
    const l = lower.charCodeAt(i);
    if (c !== l && !(l >= 97 && l <= 122 && c === l - 32)) return false;
  }
  return true;
}

/** ASCII case-insensitive compare of two arbitrary names; no allocation. */
function sameName(a: string, b: string): boolean {
  const len = a.length;
  if (b.length !== len) return false;
  for (let i = 0; i < len; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x === y) continue;
    if (x >= 65 && x <= 90) x += 32;
    if (y >= 65 && y <= 90) y += 32;
    if (x !== y) return false;
  }
  return true;
}

/** The client IP as headers carry it: IPv4-mapped IPv6 becomes plain IPv4; '' if unknown. */
function clientIpOf(addr: string | undefined): string {
  if (addr === undefined) return '';
  // Dual-stack listeners report IPv4 clients as ::ffff:a.b.c.d.
  const mapped = addr.length > 7 && addr.charCodeAt(0) === 58 && addr.indexOf('.', 7) > 7;
  if (mapped && tokenIs(addr, 0, '::ffff:')) return addr.slice(7);
  return addr;
}

function usableClientIpHeader(name: string | undefined): string {
  if (name === undefined || name === '') return '';
  if (isName(name, 'x-forwarded-for') || isName(name, 'x-real-ip')) return '';
  return name;
}

/** RFC 7239 node: IPv6 must be bracketed and quoted; IPv4 and names are written bare. */
function forwardedNode(ip: string): string {
  if (ip.indexOf(':') < 0 || ip.charCodeAt(0) === 34) return ip;
  return ip.charCodeAt(0) === 91 ? `"${ip}"` : `"[${ip}]"`;
}

function httpProtoOf(version: string): string {
  switch (version) {
    case '':
      return '';
    case '1.1':
      return 'http/1.1';
    case '2.0':
      return 'http/2.0';
    case '1.0':
      return 'http/1.0';
    default:
      return `http/${version.toLowerCase()}`;
  }
}

/** Node's protocol names to fabio's `tlsver=` spelling. */
function tlsVerOf(version: string): string {
  switch (version) {
    case 'TLSv1.3':
      return 'tls13';
    case 'TLSv1.2':
      return 'tls12';
    case 'TLSv1.1':
      return 'tls11';
    case 'TLSv1':
      return 'tls10';
    case 'SSLv3':
      return 'ssl30';
    default:
      return version.toLowerCase();
  }
}

/**
 * The port of a Host value, or undefined when there is none (or it is not a number): `h:8080`,
 * `[::1]:8080`. fabio takes whatever follows the first ':', which mangles IPv6 literals.
 */
function hostPort(host: string): string | undefined {
  let colon: number;
  if (host.charCodeAt(0) === 91) {
    const close = host.indexOf(']');
    if (close < 0 || host.charCodeAt(close + 1) !== 58) return undefined;
    colon = close + 1;
  } else {
    colon = host.indexOf(':');
    if (colon <= 0 || host.indexOf(':', colon + 1) >= 0) return undefined;
  }
  const len = host.length;
  if (colon + 1 >= len) return undefined;
  for (let i = colon + 1; i < len; i++) {
    const c = host.charCodeAt(i);
    if (c < 48 || c > 57) return undefined;
  }
  return host.slice(colon + 1);
}

/** The first `proto=` parameter of a Forwarded value (quotes removed), or undefined. */
function forwardedProto(v: string): string | undefined {
  const len = v.length;
  let i = 0;
  while (i < len) {
    let c = v.charCodeAt(i);
    if (c === 32 || c === 9 || c === 59 || c === 44) {
      i++;
      continue;
    }
    const nameStart = i;
    while (i < len) {
      c = v.charCodeAt(i);
      if (c === 61 || c === 59 || c === 44) break;
      i++;
    }
    if (i >= len || c !== 61) continue;
    const nameEnd = i;
    i++;
    let valueStart = i;
    let valueEnd: number;
    if (v.charCodeAt(i) === 34) {
      valueStart = ++i;
      while (i < len && v.charCodeAt(i) !== 34) i += v.charCodeAt(i) === 92 ? 2 : 1;
      valueEnd = i < len ? i : len;
      i++;
    } else {
      while (i < len) {
        c = v.charCodeAt(i);
        if (c === 59 || c === 44) break;
        i++;
      }
      valueEnd = i;
      while (valueEnd > valueStart && isOws(v.charCodeAt(valueEnd - 1))) valueEnd--;
    }
    if (nameEnd - nameStart === 5 && tokenIs(v, nameStart, 'proto')) {
      return v.slice(valueStart, valueEnd);
    }
  }
  return undefined;
}

/**
 * Connection options other than those already handled (close, keep-alive, upgrade, and the
 * hop-by-hop names themselves), lowercased as `,a,b,`; '' in the common case, without
 * allocating.
 */
function unusualConnectionTokens(value: string): string {
  if (isName(value, 'keep-alive') || isName(value, 'close') || isName(value, 'upgrade')) return '';
  let found = '';
  const len = value.length;
  let i = 0;
  while (i < len) {
    let c = value.charCodeAt(i);
    if (c === 44 || c === 32 || c === 9) {
      i++;
      continue;
    }
    const start = i;
    while (i < len) {
      c = value.charCodeAt(i);
      if (c === 44) break;
      i++;
    }
    let stop = i;
    while (stop > start && isOws(value.charCodeAt(stop - 1))) stop--;
    if (!isHandledConnectionToken(value, start, stop)) {
      found += `,${value.slice(start, stop).toLowerCase()},`;
    }
  }
  return found;
}

function isOws(c: number): boolean {
  return c === 32 || c === 9;
}

function isHandledConnectionToken(value: string, start: number, stop: number): boolean {
  switch (stop - start) {
    case 2:
      return tokenIs(value, start, 'te');
    case 5:
      return tokenIs(value, start, 'close');
    case 7:
      return tokenIs(value, start, 'upgrade') || tokenIs(value, start, 'trailer');
    case 10:
      return tokenIs(value, start, 'keep-alive');
    case 16:
      return tokenIs(value, start, 'proxy-connection');
    case 17:
      return tokenIs(value, start, 'transfer-encoding');
    default:
      return false;
  }
}

function tokenIs(value: string, start: number, lower: string): boolean {
  const len = lower.length;
  for (let i = 0; i < len; i++) {
    const c = value.charCodeAt(start + i);
    const l = lower.charCodeAt(i);
    if (c !== l && !(l >= 97 && l <= 122 && c === l - 32)) return false;
  }
  return true;
}

/** Request fields a client cannot remove by naming them in Connection. */
function isProtected(lowerName: string): boolean {
  return (
    lowerName === 'host' ||
    lowerName === 'content-length' ||
    lowerName === 'x-real-ip' ||
    lowerName === 'forwarded' ||
    lowerName.startsWith('x-forwarded-')
  );
}

/** Rare path: compacts `out` in place, dropping headers listed in `named` (`,a,b,`). */
function removeConnectionNamed(out: string[], named: string, protect: boolean): void {
  let w = 0;
  for (let r = 0; r < out.length; r += 2) {
    const name = out[r] as string;
    const lower = name.toLowerCase();
    if (named.includes(`,${lower},`) && !(protect && isProtected(lower))) continue;
    out[w] = name;
    out[w + 1] = out[r + 1] as string;
    w += 2;
  }
  out.length = w;
}
