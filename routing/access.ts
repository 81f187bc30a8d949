// fabio's per-route access rules (`allow=ip:10.0.0.0/8,ip:::1` / `deny=...`).
//
// Parsing follows Go's net.ParseIP / net.ParseCIDR grammar (no leading zeros in IPv4 octets, no
// IPv6 zones) and reproduces fabio's error texts, because users compare them with fabio's logs.
// Matching follows Go's IPNet.Contains: an IPv4-mapped IPv6 address (`::ffff:1.2.3.4`, the form
// Node reports for IPv4 clients on a dual-stack socket) is an IPv4 address, and a rule written as a
// mapped network (`::ffff:10.0.0.0/104`) is the IPv4 network it embeds.
//
// `isDenied` runs per request, so address parsing works on index ranges of the original strings:
// no regex, no split, no substring, and IPv4 addresses are plain numbers. Only IPv6 addresses
// allocate (a bigint), which is fine for the minority of clients that use it.

import type { Cidr } from './types.ts';

export type AccessRulesResult = { readonly cidrs: Cidr[] } | { readonly error: string };

/** Go's unicode.IsSpace, the set strings.TrimSpace and strings.Fields use. */
export function isGoSpace(c: number): boolean {
  if (c <= 0x20) return c === 0x20 || (c >= 0x09 && c <= 0x0d);
  if (c < 0x85) return false;
  return (
    c === 0x85 ||
    c === 0xa0 ||
    c === 0x1680 ||
    (c >= 0x2000 && c <= 0x200a) ||
    c === 0x2028 ||
    c === 0x2029 ||
    c === 0x202f ||
    c === 0x205f ||
    c === 0x3000
  );
}

/** Go's strings.TrimSpace. */
export function goTrimSpace(s: string): string {
  let a = 0;
  let b = s.length;
  while (a < b && isGoSpace(s.charCodeAt(a))) a++;
  while (b > a && isGoSpace(s.charCodeAt(b - 1))) b--;
  return a === 0 && b === s.length ? s : s.slice(a, b);
}

// Results of the last parseAddress() call. A module-level scratch area instead of a returned
// object keeps the per-request path allocation-free.
let scratchV4 = 0;
const scratchV6 = new Uint8Array(16);

const FAMILY_NONE = 0;
const FAMILY_V4 = 4;
const FAMILY_V6 = 6;
type ParsedFamily = typeof FAMILY_NONE | typeof FAMILY_V4 | typeof FAMILY_V6;

/**
 * Parses s[start, end) as Go's netip.ParseAddr would, rejecting zones like net.ParseIP does.
 * Returns the family of the literal (a mapped `::ffff:a.b.c.d` is 6 here) or 0 when invalid; the
 * value is left in scratchV4 / scratchV6.
 */
function parseAddress(s: string, start: number, end: number): ParsedFamily {
  for (let i = start; i < end; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x2e /* . */) {
      const v = parseV4(s, start, end);
      if (v < 0) return FAMILY_NONE;
      scratchV4 = v;
      return FAMILY_V4;
    }
    if (c === 0x3a /* : */) return parseV6(s, start, end) ? FAMILY_V6 : FAMILY_NONE;
    if (c === 0x25 /* % */) return FAMILY_NONE;
  }
  return FAMILY_NONE;
}

/** Dotted-quad IPv4 in s[start, end) as an unsigned number, or -1. */
function parseV4(s: string, start: number, end: number): number {
  let value = 0;
  let octet = 0;
  let digits = 0;
  let dots = 0;
  for (let i = start; i < end; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x30 && c <= 0x39) {
      // Go rejects leading zeros: "010" could mean octal to other parsers.
      if (digits === 1 && octet === 0) return -1;
      octet = octet * 10 + (c - 0x30);
      digits++;
      if (octet > 255) return -1;
    } else if (c === 0x2e) {
      if (digits === 0 || i === end - 1 || dots === 3) return -1;
      value = value * 256 + octet;
      dots++;
      octet = 0;
      digits = 0;
    } else {
      return -1;
    }
  }
  if (dots < 3) return -1;
  return value * 256 + octet;
}

/** IPv6 in s[start, end) into scratchV6 (Go's parseIPv6 rules, embedded IPv4 allowed). */
function parseV6(s: string, start: number, end: number): boolean {
  const ip = scratchV6;
  ip.fill(0);
  let p = start;
  let ellipsis = -1;
  if (end - p >= 2 && s.charCodeAt(p) === 0x3a && s.charCodeAt(p + 1) === 0x3a) {
    ellipsis = 0;
    p += 2;
    if (p === end) return true;
  }
  let i = 0;
  while (i < 16) {
    let off = 0;
    let acc = 0;
    for (; p + off < end; off++) {
      const c = s.charCodeAt(p + off);
      let d: number;
      if (c >= 0x30 && c <= 0x39) d = c - 0x30;
      else if (c >= 0x61 && c <= 0x66) d = c - 0x57;
      else if (c >= 0x41 && c <= 0x46) d = c - 0x37;
      else break;
      if (off > 3) return false;
      acc = acc * 16 + d;
    }
    if (off === 0) return false;
    if (p + off < end && s.charCodeAt(p + off) === 0x2e) {
      // Trailing dotted IPv4: only as the last 32 bits.
      if ((ellipsis < 0 && i !== 12) || i + 4 > 16) return false;
      const v = parseV4(s, p, end);
      if (v < 0) return false;
      ip[i] = v >>> 24;
      ip[i + 1] = (v >>> 16) & 0xff;
      ip[i + 2] = (v >>> 8) & 0xff;
      ip[i + 3] = v & 0xff;
      p = end;
      i += 4;
      break;
    }
    ip[i] = acc >> 8;
    ip[i + 1] = acc & 0xff;
    i += 2;
    p += off;
    if (p === end) break;
    if (s.charCodeAt(p) !== 0x3a || p + 1 === end) return false;
    p++;
    if (s.charCodeAt(p) === 0x3a) {
      if (ellipsis >= 0) return false;
      ellipsis = i;
      p++;
      if (p === end) break;
    }
  }
  if (p !== end) return false;
  if (i < 16) {
    if (ellipsis < 0) return false;
    const n = 16 - i;
    for (let j = i - 1; j >= ellipsis; j--) ip[j + n] = ip[j] ?? 0;
    ip.fill(0, ellipsis, ellipsis + n);
  } else if (ellipsis >= 0) {
    // "::" must stand for at least one group of zeros.
    return false;
  }
  return true;
}

/** scratchV6 holds `::ffff:a.b.c.d` (Go's To4() != nil). */
function scratchIsMappedV4(): boolean {
  const ip = scratchV6;
  for (let i = 0; i < 10; i++) if (ip[i] !== 0) return false;
  return ip[10] === 0xff && ip[11] === 0xff;
}

function scratchMappedV4(): number {
  const ip = scratchV6;
  return ((ip[12] ?? 0) * 0x1000000 + (ip[13] ?? 0) * 0x10000 + (ip[14] ?? 0) * 0x100 + (ip[15] ?? 0)) >>> 0;
}

function scratchV6BigInt(): bigint {
  let x = 0n;
  for (let i = 0; i < 16; i += 2) {
    x = (x << 16n) | BigInt(((scratchV6[i] ?? 0) << 8) | (scratchV6[i + 1] ?? 0));
  }
  return x;
}

const ALL_V6 = (1n << 128n) - 1n;

function v6Mask(bits: number): bigint {
  return bits <= 0 ? 0n : ALL_V6 ^ ((1n << BigInt(128 - Math.min(bits, 128))) - 1n);
}

function v4Mask(bits: number): number {
  // `<< 32` is a no-op in JS, so /0 needs its own case.
  return bits <= 0 ? 0 : (0xffffffff << (32 - Math.min(bits, 32))) >>> 0;
}

function formatV4(v: number): string {
  return `${v >>> 24}.${(v >>> 16) & 0xff}.${(v >>> 8) & 0xff}.${v & 0xff}`;
}

/** Go's dtoi over a CIDR's prefix length: decimal digits only, at least one. */
function parsePrefixLength(s: string): number {
  if (s === '') return -1;
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return -1;
    n = n * 10 + (c - 0x30);
    if (n > 0xffffff) return -1;
  }
  return n;
}

/** A network from the last parsed literal (family as written) and a prefix length. */
function makeCidr(text: string, family: ParsedFamily, bits: number): Cidr {
  if (family === FAMILY_V4) {
    return { text, family: 4, network: BigInt((scratchV4 & v4Mask(bits)) >>> 0), bits };
  }
  const network = scratchV6BigInt() & v6Mask(bits);
  // Go's IPNet.Contains treats a network inside ::ffff:0:0/96 as the IPv4 network it embeds.
  if (bits >= 96 && network >> 32n === 0xffffn) {
    return { text, family: 4, network: network & 0xffffffffn, bits: bits - 96 };
  }
  return { text, family: 6, network, bits };
}

/**
 * Parses fabio's access rule list (`ip:10.0.0.0/8,ip:fe80::/10,ip:1.2.3.4`). A bare address is a
 * /32 or /128 network. Errors are fabio's texts, e.g. `unknown access item type: xxx`.
 */
export function parseAccessRules(text: string): AccessRulesResult {
  const cidrs: Cidr[] = [];
  for (const item of text.split(',')) {
    const colon = item.indexOf(':');
    if (colon < 0) return { error: `invalid access item, expected <type>:<data>, got [${item}]` };
    const type = item.slice(0, colon);
    if (goTrimSpace(type).toLowerCase() !== 'ip') return { error: `unknown access item type: ${type}` };
    const value = goTrimSpace(item.slice(colon + 1));
    const slash = value.indexOf('/');
    if (slash < 0) {
      const family = parseAddress(value, 0, value.length);
      if (family === FAMILY_NONE) return { error: `failed to parse IP ${value}` };
      if (family === FAMILY_V6 && scratchIsMappedV4()) {
        scratchV4 = scratchMappedV4();
        cidrs.push(makeCidr(`${formatV4(scratchV4)}/32`, FAMILY_V4, 32));
      } else if (family === FAMILY_V4) {
        cidrs.push(makeCidr(`${value}/32`, FAMILY_V4, 32));
      } else {
        cidrs.push(makeCidr(`${value}/128`, FAMILY_V6, 128));
      }
      continue;
    }
    const family = parseAddress(value, 0, slash);
    const bits = parsePrefixLength(value.slice(slash + 1));
    const maxBits = family === FAMILY_V4 ? 32 : 128;
    if (family === FAMILY_NONE || bits < 0 || bits > maxBits) {
      return { error: `failed to parse CIDR ${item} with error: invalid CIDR address: ${value}` };
    }
    cidrs.push(makeCidr(value, family, bits));
  }
  return { cidrs };
}

/** Family of the address in s[start, end) for matching: mapped IPv6 counts as IPv4. */
function parseClientAddress(s: string, start: number, end: number): ParsedFamily {
  // Fast path for Node's dual-stack form of every IPv4 client: `::ffff:a.b.c.d`.
  if (end - start > 7 && s.charCodeAt(start) === 0x3a && s.startsWith('::ffff:', start)) {
    const v = parseV4(s, start + 7, end);
    if (v >= 0) {
      scratchV4 = v;
      return FAMILY_V4;
    }
  }
  const family = parseAddress(s, start, end);
  if (family === FAMILY_V6 && scratchIsMappedV4()) {
    scratchV4 = scratchMappedV4();
    return FAMILY_V4;
  }
  return family;
}

/** Whether the address last parsed (of `family`) lies in one of the networks. */
function inAny(rules: readonly Cidr[], family: ParsedFamily): boolean {
  let v6: bigint | undefined;
  for (let i = 0; i < rules.length; i++) {
    const r = rules[i];
    if (r === undefined || r.family !== family) continue;
    if (family === FAMILY_V4) {
      const mask = v4Mask(r.bits);
      if ((scratchV4 & mask) >>> 0 === (Number(r.network) & mask) >>> 0) return true;
    } else {
      if (v6 === undefined) v6 = scratchV6BigInt();
      const mask = v6Mask(r.bits);
      if ((v6 & mask) === (r.network & mask)) return true;
    }
  }
  return false;
}

/**
 * fabio's access check for an HTTP request: the remote address and every element of
 * X-Forwarded-For must pass. With an allow list (which, as in fabio, wins over a deny list) each
 * address must be inside it; with a deny list any address inside it denies.
 *
 * `remoteAddr` may be `ip`, `ip:port` or `[ipv6]:port`. X-Forwarded-For elements that are not
 * addresses are skipped, as fabio does. Unlike fabio, an unparsable remote address is denied when
 * an allow list is set (fabio lets it through); Node always reports a valid one, so this only
 * closes a fail-open corner.
 */
export function isDenied(
  allow: readonly Cidr[] | undefined,
  deny: readonly Cidr[] | undefined,
  remoteAddr: string,
  xForwardedFor: string,
): boolean {
  const allowList = allow !== undefined && allow.length > 0;
  const rules = allowList ? allow : deny;
  if (rules === undefined || rules.length === 0) return false;

  let start = 0;
  let end = remoteAddr.length;
  if (remoteAddr.charCodeAt(0) === 0x5b /* [ */) {
    start = 1;
    end = remoteAddr.indexOf(']');
    if (end < 0) end = start;
  } else {
    const colon = remoteAddr.indexOf(':');
    // Exactly one colon is `host:port`; more is a bare IPv6 address.
    if (colon >= 0 && remoteAddr.indexOf(':', colon + 1) < 0) end = colon;
  }
  const family = parseClientAddress(remoteAddr, start, end);
  if (family === FAMILY_NONE) {
    if (allowList) return true;
  } else if (inAny(rules, family) !== allowList) {
    return true;
  }

  const n = xForwardedFor.length;
  let a = 0;
  while (a < n) {
    let b = xForwardedFor.indexOf(',', a);
    if (b < 0) b = n;
    const next = b + 1;
    while (a < b && isGoSpace(xForwardedFor.charCodeAt(a))) a++;
    while (b > a && isGoSpace(xForwardedFor.charCodeAt(b - 1))) b--;
    const f = parseClientAddress(xForwardedFor, a, b);
    if (f !== FAMILY_NONE && inAny(rules, f) !== allowList) return true;
    a = next;
  }
  return false;
}

// ---- Trusted proxies (`--trusted-proxies`): whose X-Forwarded-For entries count ----
//
// fabio checks the socket address and every X-Forwarded-For entry against allow/deny. When Cairn
// is the edge, the client writes X-Forwarded-For itself: it can get a request denied in someone
// else's name, and X-Real-Ip, the client-IP header and the access log would show an address the
// client chose (a backend that trusts X-Real-Ip is then bypassed). So Cairn believes X-Forwarded-For only as far as trusted proxies vouch for it, walking from the
// right (nginx's real_ip_recursive, Traefik's forwardedHeaders.trustedIPs): the socket peer must be
// trusted for its last entry to count, that entry must be trusted for the one before it, and so on.
// The first untrusted entry met is the client. With no trusted proxies (the default) only the
// socket address counts; with every address trusted (0.0.0.0/0,::/0) every entry counts, which is
// exactly fabio's behaviour.

/**
 * Parses `--trusted-proxies`: comma-separated addresses or CIDR networks (`10.0.0.0/8,::1`).
 * Errors use the access-rule texts. An empty list (no trusted proxy) is valid.
 */
export function parseTrustedProxies(text: string): AccessRulesResult {
  const items = text
    .split(',')
    .map((s) => goTrimSpace(s))
    .filter((s) => s !== '');
  if (items.length === 0) return { cidrs: [] };
  return parseAccessRules(items.map((s) => `ip:${s}`).join(','));
}

/** Bounds of the host part of `ip`, `ip:port` or `[ipv6]:port` into scratchStart/scratchEnd. */
let scratchStart = 0;
let scratchEnd = 0;
function hostBounds(addr: string): void {
  let start = 0;
  let end = addr.length;
  if (addr.charCodeAt(0) === 0x5b /* [ */) {
    start = 1;
    end = addr.indexOf(']');
    if (end < 0) end = start;
  } else {
    const colon = addr.indexOf(':');
    if (colon >= 0 && addr.indexOf(':', colon + 1) < 0) end = colon;
  }
  scratchStart = start;
  scratchEnd = end;
}

/** Whether s[start, end) is an address inside one of the networks. */
function addressIn(nets: readonly Cidr[], s: string, start: number, end: number): boolean {
  const family = parseClientAddress(s, start, end);
  return family !== FAMILY_NONE && inAny(nets, family);
}

/** The socket peer (`ip`, `ip:port`, `[v6]:port`) is a trusted proxy. */
export function isTrustedPeer(trusted: readonly Cidr[], remoteAddr: string): boolean {
  if (trusted.length === 0) return false;
  hostBounds(remoteAddr);
  return addressIn(trusted, remoteAddr, scratchStart, scratchEnd);
}

/**
 * Where the believable part of X-Forwarded-For begins: entries from the returned index on were
 * written by trusted proxies (plus the first untrusted entry, the client, which a trusted proxy
 * appended). Returns `xff.length` when no entry counts: no trusted proxy, an untrusted peer, or no
 * header. Never allocates.
 */
export function forwardedForStart(trusted: readonly Cidr[], remoteAddr: string, xff: string): number {
  const n = xff.length;
  if (n === 0 || !isTrustedPeer(trusted, remoteAddr)) return n;
  let b = n;
  let start = n;
  while (b >= 0) {
    const comma = b === 0 ? -1 : xff.lastIndexOf(',', b - 1);
    let a = comma + 1;
    let e = b;
    while (a < e && isGoSpace(xff.charCodeAt(a))) a++;
    while (e > a && isGoSpace(xff.charCodeAt(e - 1))) e--;
    if (a < e) {
      // An entry that is no address ends the walk: nothing to its left can be believed.
      const family = parseClientAddress(xff, a, e);
      if (family === FAMILY_NONE) return start;
      start = comma + 1;
      if (!inAny(trusted, family)) return start;
    } else {
      start = comma + 1;
    }
    if (comma < 0) break;
    b = comma;
  }
  return start;
}

/**
 * The X-Forwarded-For entries access rules check (see forwardedForStart): '' with no trusted
 * proxy, so only the socket address counts; the whole header when every hop is trusted (fabio).
 */
export function checkedForwardedFor(trusted: readonly Cidr[], remoteAddr: string, xff: string): string {
  if (trusted.length === 0 || xff.length === 0) return '';
  const start = forwardedForStart(trusted, remoteAddr, xff);
  return start === 0 ? xff : start >= xff.length ? '' : xff.slice(start);
}

/**
 * The client's address as Cairn reports it (X-Real-Ip, the client-IP header, the access log):
 * the first believable X-Forwarded-For entry from the left (see forwardedForStart), else the socket
 * address `remoteIp` itself.
 */
export function clientAddress(trusted: readonly Cidr[], remoteIp: string, xff: string): string {
  if (trusted.length === 0 || xff.length === 0) return remoteIp;
  const start = forwardedForStart(trusted, remoteIp, xff);
  if (start >= xff.length) return remoteIp;
  let a = start;
  let e = xff.indexOf(',', a);
  if (e < 0) e = xff.length;
  while (a < e && isGoSpace(xff.charCodeAt(a))) a++;
  while (e > a && isGoSpace(xff.charCodeAt(e - 1))) e--;
  return a < e ? xff.slice(a, e) : remoteIp;
}
