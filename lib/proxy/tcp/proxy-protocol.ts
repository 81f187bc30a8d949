// The PROXY protocol (HAProxy's spec, versions 1 and 2): a header at the very start of a TCP
// connection that carries the original client's address through a proxy.
//
// - Reading (`--listen ...;pxyproto=true`): a load balancer in front of Cairn prepends the header;
//   the client address in it is what allow=/deny= rules and the upstream header see. Both
//   versions are accepted on the same listener (the first byte tells them apart).
// - Writing (route option `pxyproto=true|v1|v2`): Cairn prepends a header to the upstream
//   connection so the instance learns the client's address.
//
// The reader is re-run on everything received so far when more bytes arrive; a v1 header is at
// most 107 bytes and a v2 header is bounded here, so that stays cheap.

import { isIPv4, isIPv6 } from 'node:net';

export interface ProxyAddress {
  readonly address: string;
  readonly port: number;
}

export interface ProxyHeader {
  readonly version: 1 | 2;
  /**
   * The addresses the header carries; undefined for `PROXY UNKNOWN`, v2 LOCAL (a health check
   * from the balancer itself) and address families other than TCP over IPv4/IPv6: the
   * connection's own addresses apply then.
   */
  readonly source: ProxyAddress | undefined;
  readonly destination: ProxyAddress | undefined;
}

export const PROXY_INCOMPLETE = 0;
export const PROXY_OK = 1;
export const PROXY_ERROR = 2;
export type ProxyStatus = typeof PROXY_INCOMPLETE | typeof PROXY_OK | typeof PROXY_ERROR;

export interface ProxyReadResult {
  readonly status: ProxyStatus;
  /** Bytes of `buf` the header took (the rest belongs to the proxied stream). */
  readonly consumed: number;
  readonly header: ProxyHeader | undefined;
  readonly reason: string;
}

/** The v2 signature: `\r\n\r\n\0\r\nQUIT\n`. */
export const PROXY_V2_SIGNATURE = Buffer.from([
  0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a,
]);
const V1_PREFIX = Buffer.from('PROXY ', 'latin1');
/** The spec's worst case: `PROXY TCP6 <39> <39> 65535 65535\r\n`. */
const V1_MAX = 107;
/** Address block plus TLVs; real balancers send well under 1 KB. */
const V2_MAX_PAYLOAD = 4096;

const incomplete: ProxyReadResult = Object.freeze({
  status: PROXY_INCOMPLETE,
  consumed: 0,
  header: undefined,
  reason: '',
});

function error(reason: string): ProxyReadResult {
  return { status: PROXY_ERROR, consumed: 0, header: undefined, reason };
}

function ok(consumed: number, header: ProxyHeader): ProxyReadResult {
  return { status: PROXY_OK, consumed, header, reason: '' };
}

/** Examines the first bytes of a connection for a PROXY header (v1 or v2). Never throws. */
export function readProxyHeader(buf: Uint8Array): ProxyReadResult {
  if (buf.length === 0) return incomplete;
  if (buf[0] === 0x0d) return readV2(buf);
  if (buf[0] === 0x50 /* P */) return readV1(buf);
  return error('connection does not start with a PROXY protocol header');
}

function readV1(buf: Uint8Array): ProxyReadResult {
  const n = Math.min(buf.length, V1_MAX);
  for (let i = 0; i < Math.min(n, V1_PREFIX.length); i++) {
    if (buf[i] !== V1_PREFIX[i]) return error('connection does not start with a PROXY protocol header');
  }
  let eol = -1;
  for (let i = V1_PREFIX.length; i + 1 < n; i++) {
    if (buf[i] === 0x0d && buf[i + 1] === 0x0a) {
      eol = i;
      break;
    }
  }
  if (eol < 0) {
    return buf.length >= V1_MAX ? error('PROXY v1 header longer than 107 bytes') : incomplete;
  }
  const line = Buffer.from(buf.buffer, buf.byteOffset, eol).toString('latin1');
  const f = line.split(' ');
  const consumed = eol + 2;
  if (f[1] === 'UNKNOWN') return ok(consumed, { version: 1, source: undefined, destination: undefined });
  if (f.length !== 6 || (f[1] !== 'TCP4' && f[1] !== 'TCP6')) {
    return error(`bad PROXY v1 header ${JSON.stringify(line)}`);
  }
  const isFamily = f[1] === 'TCP4' ? isIPv4 : isIPv6;
  const src = f[2] as string;
  const dst = f[3] as string;
  const sport = parsePort(f[4] as string);
  const dport = parsePort(f[5] as string);
  if (!isFamily(src) || !isFamily(dst) || sport < 0 || dport < 0) {
    return error(`bad PROXY v1 header ${JSON.stringify(line)}`);
  }
  return ok(consumed, {
    version: 1,
    source: { address: src, port: sport },
    destination: { address: dst, port: dport },
  });
}

function readV2(buf: Uint8Array): ProxyReadResult {
  const sigLen = Math.min(buf.length, PROXY_V2_SIGNATURE.length);
  for (let i = 0; i < sigLen; i++) {
    if (buf[i] !== PROXY_V2_SIGNATURE[i])
      return error('connection does not start with a PROXY protocol header');
  }
  if (buf.length < 16) return incomplete;
  const verCmd = buf[12] ?? 0;
  if (verCmd >> 4 !== 2) return error(`unsupported PROXY protocol version ${verCmd >> 4}`);
  const cmd = verCmd & 0x0f;
  if (cmd > 1) return error(`unsupported PROXY v2 command ${cmd}`);
  const fam = buf[13] ?? 0;
  const len = ((buf[14] ?? 0) << 8) | (buf[15] ?? 0);
  if (len > V2_MAX_PAYLOAD) return error(`PROXY v2 header too long (${len} bytes)`);
  if (buf.length < 16 + len) return incomplete;
  const consumed = 16 + len;
  const local: ProxyHeader = { version: 2, source: undefined, destination: undefined };
  // LOCAL: the balancer's own connection (health checks); its addresses are the real ones.
  if (cmd === 0) return ok(consumed, local);
  if (fam === 0x11) {
    if (len < 12) return error('PROXY v2 header too short for IPv4 addresses');
    return ok(consumed, {
      version: 2,
      source: { address: formatV4(buf, 16), port: u16(buf, 24) },
      destination: { address: formatV4(buf, 20), port: u16(buf, 26) },
    });
  }
  if (fam === 0x21) {
    if (len < 36) return error('PROXY v2 header too short for IPv6 addresses');
    return ok(consumed, {
      version: 2,
      source: { address: formatV6(buf, 16), port: u16(buf, 48) },
      destination: { address: formatV6(buf, 32), port: u16(buf, 50) },
    });
  }
  // UNSPEC, UDP or unix sockets: keep the connection, ignore the addresses (the spec's advice).
  return ok(consumed, local);
}

/** `PROXY TCP4 src dst sport dport\r\n` (or `PROXY UNKNOWN\r\n` when an address is unknown). */
export function encodeProxyV1(src: ProxyAddress | undefined, dst: ProxyAddress | undefined): Buffer {
  const pair = addressPair(src, dst);
  if (pair === undefined) return Buffer.from('PROXY UNKNOWN\r\n', 'latin1');
  const [s, d, v6] = pair;
  const sa = v6 ? formatV6(s.bytes, 0) : formatV4(s.bytes, 0);
  const da = v6 ? formatV6(d.bytes, 0) : formatV4(d.bytes, 0);
  return Buffer.from(`PROXY ${v6 ? 'TCP6' : 'TCP4'} ${sa} ${da} ${s.port} ${d.port}\r\n`, 'latin1');
}

/** Binary v2 header, command PROXY over TCP4/TCP6 (LOCAL when an address is unknown). */
export function encodeProxyV2(src: ProxyAddress | undefined, dst: ProxyAddress | undefined): Buffer {
  const pair = addressPair(src, dst);
  if (pair === undefined) {
    const b = Buffer.alloc(16);
    PROXY_V2_SIGNATURE.copy(b, 0);
    b[12] = 0x20;
    return b;
  }
  const [s, d, v6] = pair;
  const alen = v6 ? 36 : 12;
  const b = Buffer.alloc(16 + alen);
  PROXY_V2_SIGNATURE.copy(b, 0);
  b[12] = 0x21;
  b[13] = v6 ? 0x21 : 0x11;
  b.writeUInt16BE(alen, 14);
  const w = v6 ? 16 : 4;
  b.set(s.bytes, 16);
  b.set(d.bytes, 16 + w);
  b.writeUInt16BE(s.port, 16 + 2 * w);
  b.writeUInt16BE(d.port, 18 + 2 * w);
  return b;
}

interface Packed {
  readonly bytes: Uint8Array;
  readonly port: number;
}

/**
 * Both addresses in one family, as the protocol requires: IPv4 when both are IPv4 (including
 * Node's `::ffff:a.b.c.d` form of IPv4 clients on dual-stack sockets), else IPv6 with any IPv4
 * address mapped.
 */
function addressPair(
  src: ProxyAddress | undefined,
  dst: ProxyAddress | undefined,
): [Packed, Packed, boolean] | undefined {
  if (src === undefined || dst === undefined) return undefined;
  const s = ipBytes(src.address);
  const d = ipBytes(dst.address);
  if (s === undefined || d === undefined) return undefined;
  const v4s = asV4(s);
  const v4d = asV4(d);
  if (v4s !== undefined && v4d !== undefined) {
    return [{ bytes: v4s, port: src.port }, { bytes: v4d, port: dst.port }, false];
  }
  return [{ bytes: asV6(s), port: src.port }, { bytes: asV6(d), port: dst.port }, true];
}

/** 4 or 16 bytes of an IP literal (IPv6 zone ids dropped), or undefined. */
export function ipBytes(text: string): Uint8Array | undefined {
  if (isIPv4(text)) return Uint8Array.from(text.split('.').map(Number));
  const pct = text.indexOf('%');
  const t = pct < 0 ? text : text.slice(0, pct);
  if (!isIPv6(t)) return undefined;
  const out = new Uint8Array(16);
  let head = t;
  let tail = '';
  const dbl = t.indexOf('::');
  if (dbl >= 0) {
    head = t.slice(0, dbl);
    tail = t.slice(dbl + 2);
  }
  const groups = (s: string): number[] => {
    if (s === '') return [];
    const out: number[] = [];
    for (const g of s.split(':')) {
      if (g.includes('.')) {
        const v = g.split('.').map(Number);
        out.push(((v[0] ?? 0) << 8) | (v[1] ?? 0), ((v[2] ?? 0) << 8) | (v[3] ?? 0));
      } else {
        out.push(parseInt(g, 16));
      }
    }
    return out;
  };
  const h = groups(head);
  const tl = groups(tail);
  const all = dbl >= 0 ? [...h, ...new Array<number>(8 - h.length - tl.length).fill(0), ...tl] : h;
  for (let i = 0; i < 8; i++) {
    out[2 * i] = ((all[i] ?? 0) >> 8) & 0xff;
    out[2 * i + 1] = (all[i] ?? 0) & 0xff;
  }
  return out;
}

function asV4(b: Uint8Array): Uint8Array | undefined {
  if (b.length === 4) return b;
  for (let i = 0; i < 10; i++) if (b[i] !== 0) return undefined;
  if (b[10] !== 0xff || b[11] !== 0xff) return undefined;
  return b.subarray(12, 16);
}

function asV6(b: Uint8Array): Uint8Array {
  if (b.length === 16) return b;
  const out = new Uint8Array(16);
  out[10] = 0xff;
  out[11] = 0xff;
  out.set(b, 12);
  return out;
}

function formatV4(b: Uint8Array, p: number): string {
  return `${b[p] ?? 0}.${b[p + 1] ?? 0}.${b[p + 2] ?? 0}.${b[p + 3] ?? 0}`;
}

/** RFC 5952 text of 16 bytes at `p` (`::ffff:a.b.c.d` for mapped IPv4). */
export function formatV6(b: Uint8Array, p: number): string {
  const g: number[] = [];
  for (let i = 0; i < 8; i++) g.push(((b[p + 2 * i] ?? 0) << 8) | (b[p + 2 * i + 1] ?? 0));
  if (g[0] === 0 && g[1] === 0 && g[2] === 0 && g[3] === 0 && g[4] === 0 && g[5] === 0xffff) {
    return `::ffff:${formatV4(b, p + 12)}`;
  }
  // Longest run of two or more zero groups becomes `::` (the first one on a tie).
  let bestAt = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      bestAt = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (xs: number[]) => xs.map((x) => x.toString(16)).join(':');
  if (bestAt < 0) return hex(g);
  return `${hex(g.slice(0, bestAt))}::${hex(g.slice(bestAt + bestLen))}`;
}

function u16(b: Uint8Array, p: number): number {
  return ((b[p] ?? 0) << 8) | (b[p + 1] ?? 0);
}

function parsePort(s: string): number {
  if (s.length === 0 || s.length > 5) return -1;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return -1;
  }
  if (s.length > 1 && s.charCodeAt(0) === 0x30) return -1;
  const n = Number(s);
  return n <= 65535 ? n : -1;
}
