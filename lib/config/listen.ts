// fabio's listener strings: `[host]:port[;key=value...]`, several separated by commas, e.g.
//   :9999
//   0.0.0.0:443;proto=https;cert=c.pem;key=k.pem
//   :5432;proto=tcp
//   :443;proto=tcp+sni;it=10m
//   :443;proto=https+tcp+sni;cert=c.pem;key=k.pem
//   :0;proto=tcp-dynamic
//   [::1]:80;pxyproto=true
// fabio names a certificate *source* (`cs=`); Cairn reads PEM files directly (`cert=`, `key=`,
// `ca=` for client certificates), which is what a standalone user has at hand.

import { quote } from './errors.ts';
import {
  type HostPort,
  type Parsed,
  parseBoolean,
  parseChoice,
  parseDuration,
  parseHostPort,
  parseInteger,
} from './values.ts';

export const listenProtos = [
  'http',
  'https',
  'tcp',
  'tcp+sni',
  'grpc',
  'grpcs',
  'tcp-dynamic',
  'https+tcp+sni',
] as const;
export type ListenProto = (typeof listenProtos)[number];

/** Protos served by the TCP data plane (lib/proxy/tcp/). */
export const tcpListenProtos: readonly ListenProto[] = ['tcp', 'tcp+sni', 'tcp-dynamic', 'https+tcp+sni'];

export function isTcpListenProto(proto: string): boolean {
  return (tcpListenProtos as readonly string[]).includes(proto);
}

export interface ListenSpec extends HostPort {
  /** The listener exactly as written (one comma-separated item). */
  readonly text: string;
  readonly proto: ListenProto;
  /** PEM certificate chain file (https, grpcs; tcp for TLS-terminated TCP). */
  readonly cert?: string;
  /** PEM private key file; defaults to `cert` (a PEM holding both). */
  readonly key?: string;
  /** PEM CA bundle: when set, clients must present a certificate it signed. */
  readonly ca?: string;
  /** Expect a PROXY protocol (v1/v2) header on every connection. */
  readonly proxyProtocol: boolean;
  /** How long to wait for the PROXY header, ms. */
  readonly proxyProtocolTimeoutMs?: number;
  readonly readTimeoutMs?: number;
  readonly writeTimeoutMs?: number;
  readonly idleTimeoutMs?: number;
  /** Concurrent client connections on this listener (`maxconn=`); overrides --max-conns. */
  readonly maxConnections?: number;
  /** TCP listeners: upstream connect timeout (`ct=`); overrides --connect-timeout. */
  readonly connectTimeoutMs?: number;
  /** TCP listeners: connections to a target that left the table are closed after this (`drain=`). */
  readonly drainMs?: number;
  /** tcp-dynamic: retry interval for listeners that could not bind (`refresh=`, fabio's key). */
  readonly refreshMs?: number;
}

const listenOptionKeys = [
  'proto',
  'cert',
  'key',
  'ca',
  'pxyproto',
  'pxytimeout',
  'rt',
  'wt',
  'it',
  'maxconn',
  'ct',
  'drain',
  'refresh',
] as const;
type ListenOptionKey = (typeof listenOptionKeys)[number];
const tlsProtos: ReadonlySet<string> = new Set(['https', 'grpcs', 'tcp', 'https+tcp+sni']);
const certRequired: ReadonlySet<string> = new Set(['https', 'grpcs', 'https+tcp+sni']);

/** Parses one or more comma-separated listener strings. */
export function parseListenList(text: string): Parsed<ListenSpec[]> {
  const out: ListenSpec[] = [];
  for (const item of text.split(',')) {
    if (item.trim() === '') continue;
    const r = parseListen(item);
    if ('detail' in r) return r;
    out.push(r.value);
  }
  if (out.length === 0) return { detail: `expected [host]:port[;proto=...], got ${quote(text)}` };
  return { value: out };
}

/** Parses one listener string. */
export function parseListen(text: string): Parsed<ListenSpec> {
  const item = text.trim();
  const parts = item.split(';');
  const hp = parseHostPort(parts[0] ?? '');
  if ('detail' in hp) return fail(item, hp.detail);
  const seen = new Map<ListenOptionKey, string>();
  for (const part of parts.slice(1)) {
    const p = part.trim();
    if (p === '') continue;
    const eq = p.indexOf('=');
    const k = (eq < 0 ? p : p.slice(0, eq)).trim();
    const v = eq < 0 ? '' : p.slice(eq + 1).trim();
    if (k === 'cs') return fail(item, 'cert sources (cs=) are not supported; use cert=FILE;key=FILE');
    if (!isListenOptionKey(k)) {
      return fail(
        item,
        `unknown option ${quote(k)}; expected ${listenOptionKeys.map((o) => `${o}=`).join(' ')}`,
      );
    }
    if (eq < 0 || v === '') return fail(item, `${k}: expected ${k}=VALUE`);
    seen.set(k, v);
  }
  const protoText = seen.get('proto');
  let proto: ListenProto;
  if (protoText === undefined) {
    // fabio: a certificate source alone makes the listener https.
    proto = seen.has('cert') ? 'https' : 'http';
  } else {
    const p = parseChoice(protoText, listenProtos);
    if ('detail' in p) return fail(item, `proto: ${p.detail}`);
    proto = p.value;
  }
  const cert = seen.get('cert');
  const key = seen.get('key');
  const ca = seen.get('ca');
  if (certRequired.has(proto) && cert === undefined) {
    return fail(item, `proto=${proto} needs cert=FILE (and key=FILE unless the cert file holds the key)`);
  }
  if (cert !== undefined && !tlsProtos.has(proto)) {
    return fail(item, `cert= needs proto=https, grpcs, tcp or https+tcp+sni, not ${proto}`);
  }
  if ((key !== undefined || ca !== undefined) && cert === undefined) {
    return fail(item, `${key !== undefined ? 'key' : 'ca'}= needs cert=FILE`);
  }
  let proxyProtocol = false;
  const pxy = seen.get('pxyproto');
  if (pxy !== undefined) {
    const b = parseBoolean(pxy);
    if ('detail' in b) return fail(item, `pxyproto: ${b.detail}`);
    proxyProtocol = b.value;
  }
  const durations: Partial<Record<'pxytimeout' | 'rt' | 'wt' | 'it' | 'ct' | 'drain' | 'refresh', number>> =
    {};
  for (const k of ['pxytimeout', 'rt', 'wt', 'it', 'ct', 'drain', 'refresh'] as const) {
    const v = seen.get(k);
    if (v === undefined) continue;
    const d = parseDuration(v);
    if ('detail' in d) return fail(item, `${k}: ${d.detail}`);
    durations[k] = d.value;
  }
  for (const k of ['ct', 'drain'] as const) {
    if (seen.has(k) && !isTcpListenProto(proto)) {
      return fail(item, `${k}= applies to TCP listeners (proto=${tcpListenProtos.join('|')}), not ${proto}`);
    }
  }
  if (seen.has('refresh') && proto !== 'tcp-dynamic') {
    return fail(item, `refresh= applies to proto=tcp-dynamic listeners, not ${proto}`);
  }
  let maxConnections: number | undefined;
  const maxconn = seen.get('maxconn');
  if (maxconn !== undefined) {
    const n = parseInteger(maxconn, 0, 10_000_000);
    if ('detail' in n) return fail(item, `maxconn: ${n.detail}`);
    maxConnections = n.value;
  }
  const spec: ListenSpec = {
    text: item,
    address: hp.value.address,
    port: hp.value.port,
    proto,
    proxyProtocol,
    ...(cert !== undefined ? { cert, key: key ?? cert } : {}),
    ...(ca !== undefined ? { ca } : {}),
    ...(durations.pxytimeout !== undefined ? { proxyProtocolTimeoutMs: durations.pxytimeout } : {}),
    ...(durations.rt !== undefined ? { readTimeoutMs: durations.rt } : {}),
    ...(durations.wt !== undefined ? { writeTimeoutMs: durations.wt } : {}),
    ...(durations.it !== undefined ? { idleTimeoutMs: durations.it } : {}),
    ...(maxConnections !== undefined ? { maxConnections } : {}),
    ...(durations.ct !== undefined ? { connectTimeoutMs: durations.ct } : {}),
    ...(durations.drain !== undefined ? { drainMs: durations.drain } : {}),
    ...(durations.refresh !== undefined ? { refreshMs: durations.refresh } : {}),
  };
  return { value: spec };
}

function isListenOptionKey(k: string): k is ListenOptionKey {
  return (listenOptionKeys as readonly string[]).includes(k);
}

function fail(item: string, detail: string): { detail: string } {
  return { detail: `${quote(item)}: ${detail}` };
}
