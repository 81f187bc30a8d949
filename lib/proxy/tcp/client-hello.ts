// Reads the server name (SNI, RFC 6066) out of a TLS ClientHello without decrypting anything, so
// a tcp+sni listener can pick a route and then forward the untouched bytes.
//
// The parser is re-run on everything received so far each time more bytes arrive (a ClientHello
// is a few hundred bytes to a couple of KB, so re-parsing is cheaper than keeping parser state).
// It copes with a ClientHello split across TCP segments (the caller simply has more bytes next
// time) and across several TLS records (allowed by RFC 8446 5.1; the handshake message is
// reassembled from the records' fragments). Anything that is not a TLS handshake is reported as
// an error at the first byte that proves it, so garbage is rejected without waiting.

/** More bytes are needed to decide. */
export const HELLO_INCOMPLETE = 0;
/** A complete ClientHello: `serverName` is set ('' when the client sent no SNI). */
export const HELLO_OK = 1;
/** Not a TLS ClientHello (or a malformed one): `reason` says why. */
export const HELLO_ERROR = 2;

export type HelloStatus = typeof HELLO_INCOMPLETE | typeof HELLO_OK | typeof HELLO_ERROR;

export interface HelloResult {
  readonly status: HelloStatus;
  /** Lowercase host name from the server_name extension; '' when absent. */
  readonly serverName: string;
  readonly reason: string;
}

/** Largest ClientHello accepted (handshake body). Post-quantum key shares make ~2 KB common. */
export const MAX_HELLO_BYTES = 64 * 1024;
const RECORD_HEADER = 5;
const MAX_RECORD = 16384 + 2048;
const CONTENT_HANDSHAKE = 0x16;
const HANDSHAKE_CLIENT_HELLO = 0x01;
const EXT_SERVER_NAME = 0x0000;
const NAME_TYPE_HOST = 0x00;

const incomplete: HelloResult = Object.freeze({ status: HELLO_INCOMPLETE, serverName: '', reason: '' });

function error(reason: string): HelloResult {
  return { status: HELLO_ERROR, serverName: '', reason };
}

/**
 * Examines the bytes received so far on a connection. Never throws; never reads past `buf`.
 */
export function readClientHello(buf: Uint8Array): HelloResult {
  // First record header: decide early on garbage.
  if (buf.length >= 1 && buf[0] !== CONTENT_HANDSHAKE) {
    return error(`not a TLS handshake (first byte 0x${hex(buf[0] ?? 0)})`);
  }
  if (buf.length >= 2 && buf[1] !== 0x03) return error('not a TLS handshake (bad record version)');
  if (buf.length >= 6 && buf[5] !== HANDSHAKE_CLIENT_HELLO)
    return error('first handshake message is not a ClientHello');

  // Reassemble the handshake message from the records' fragments. In the usual case the whole
  // ClientHello is in one record and `msg` is a view into `buf`, without copying.
  let msg: Uint8Array | undefined;
  let parts: Uint8Array[] | undefined;
  let have = 0;
  let need = -1;
  let off = 0;
  while (need < 0 || have < need) {
    if (buf.length - off < RECORD_HEADER) return incomplete;
    if (buf[off] !== CONTENT_HANDSHAKE) return error('ClientHello interrupted by a non-handshake record');
    if (buf[off + 1] !== 0x03) return error('not a TLS handshake (bad record version)');
    const len = ((buf[off + 3] ?? 0) << 8) | (buf[off + 4] ?? 0);
    if (len === 0 || len > MAX_RECORD) return error(`bad TLS record length ${len}`);
    if (buf.length - off - RECORD_HEADER < len) {
      // The record is not complete yet, but its start may already prove the message too large.
      if (need < 0 && parts === undefined && buf.length - off - RECORD_HEADER >= 4) {
        const n = u24(buf, off + RECORD_HEADER + 1);
        if (n + 4 > MAX_HELLO_BYTES) return error(`ClientHello too large (${n} bytes)`);
      }
      return incomplete;
    }
    const fragment = buf.subarray(off + RECORD_HEADER, off + RECORD_HEADER + len);
    off += RECORD_HEADER + len;
    if (msg === undefined) {
      msg = fragment;
    } else {
      parts ??= [msg];
      parts.push(fragment);
    }
    have += len;
    if (need < 0 && have >= 4) {
      const first = parts === undefined ? msg : concat(parts, have);
      if (first[0] !== HANDSHAKE_CLIENT_HELLO) return error('first handshake message is not a ClientHello');
      need = 4 + u24(first, 1);
      if (need > MAX_HELLO_BYTES) return error(`ClientHello too large (${need - 4} bytes)`);
    }
  }
  const whole = parts === undefined ? (msg as Uint8Array) : concat(parts, have);
  return parseHello(whole.subarray(4, need));
}

/** Parses a ClientHello body (after the 4-byte handshake header). */
function parseHello(b: Uint8Array): HelloResult {
  const n = b.length;
  // client_version(2) random(32)
  let p = 34;
  if (p + 1 > n) return error('truncated ClientHello');
  const sessionIdLen = b[p] ?? 0;
  if (sessionIdLen > 32) return error('bad session id length');
  p += 1 + sessionIdLen;
  if (p + 2 > n) return error('truncated ClientHello');
  const suitesLen = u16(b, p);
  if (suitesLen < 2 || suitesLen % 2 !== 0) return error('bad cipher suites length');
  p += 2 + suitesLen;
  if (p + 1 > n) return error('truncated ClientHello');
  const compLen = b[p] ?? 0;
  if (compLen < 1) return error('bad compression methods length');
  p += 1 + compLen;
  if (p > n) return error('truncated ClientHello');
  // A ClientHello without extensions (SSL 3.0 style) has no server name.
  if (p === n) return { status: HELLO_OK, serverName: '', reason: '' };
  if (p + 2 > n) return error('truncated extensions');
  const extEnd = p + 2 + u16(b, p);
  if (extEnd > n) return error('truncated extensions');
  p += 2;
  while (p + 4 <= extEnd) {
    const type = u16(b, p);
    const len = u16(b, p + 2);
    p += 4;
    if (p + len > extEnd) return error('truncated extension');
    if (type === EXT_SERVER_NAME) return serverNameExtension(b, p, p + len);
    p += len;
  }
  if (p !== extEnd) return error('truncated extensions');
  return { status: HELLO_OK, serverName: '', reason: '' };
}

function serverNameExtension(b: Uint8Array, start: number, end: number): HelloResult {
  if (start + 2 > end) return error('bad server_name extension');
  const listEnd = start + 2 + u16(b, start);
  if (listEnd > end) return error('bad server_name extension');
  let p = start + 2;
  while (p + 3 <= listEnd) {
    const type = b[p] ?? 0;
    const len = u16(b, p + 1);
    p += 3;
    if (p + len > listEnd) return error('bad server_name extension');
    if (type === NAME_TYPE_HOST) {
      const name = hostName(b, p, p + len);
      if (name === undefined) return error('server name is not a valid host name');
      return { status: HELLO_OK, serverName: name, reason: '' };
    }
    p += len;
  }
  return { status: HELLO_OK, serverName: '', reason: '' };
}

/**
 * The host name as lowercase ASCII, or undefined when it holds anything a DNS name cannot
 * (RFC 6066: no IP literals, no trailing dot; `*` would be read as a glob by the router).
 */
function hostName(b: Uint8Array, start: number, end: number): string | undefined {
  if (end === start || end - start > 253) return undefined;
  let s = '';
  for (let i = start; i < end; i++) {
    let c = b[i] ?? 0;
    if (c >= 0x41 && c <= 0x5a) c += 0x20;
    const ok = (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c === 0x2d || c === 0x2e || c === 0x5f;
    if (!ok) return undefined;
    s += String.fromCharCode(c);
  }
  return s;
}

function u16(b: Uint8Array, p: number): number {
  return ((b[p] ?? 0) << 8) | (b[p + 1] ?? 0);
}

function u24(b: Uint8Array, p: number): number {
  return ((b[p] ?? 0) << 16) | ((b[p + 1] ?? 0) << 8) | (b[p + 2] ?? 0);
}

function concat(parts: readonly Uint8Array[], total: number): Uint8Array {
  const out = new Uint8Array(total);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

function hex(n: number): string {
  return n.toString(16).padStart(2, '0');
}
