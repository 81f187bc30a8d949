// A destination URL split once, at table build time, into what the data plane needs.
// Hand-rolled rather than WHATWG `URL` because that drops default ports (`:80`), rejects
// nothing useful here, and we must keep `host` exactly as written (fabio prints it back).

import type { TargetUrl } from './types.ts';

const defaultPorts: Readonly<Record<string, number>> = {
  'http:': 80,
  'https:': 443,
  'ws:': 80,
  'wss:': 443,
  'grpc:': 80,
  'grpcs:': 443,
};

/** The known schemes as constants: every target's URL then shares one string, not a copy each. */
const knownProtocols: ReadonlyMap<string, string> = new Map(
  ['http:', 'https:', 'tcp:', 'grpc:', 'grpcs:', 'ws:', 'wss:'].map((p) => [p, p]),
);

function internProtocol(p: string): string {
  return knownProtocols.get(p) ?? p;
}

const reScheme = /^([a-zA-Z][a-zA-Z0-9+.-]*):\/\//;

/** Parses `scheme://host[:port][/path][?query]`; returns a reason string when it is not one. */
export function parseTargetUrl(dst: string): TargetUrl | string {
  // A control character or space would end up in a Host header, a request line or a redirect's
  // Location (CR/LF: header injection). Registries can carry them (an address, a tag value).
  for (let i = 0; i < dst.length; i++) {
    const c = dst.charCodeAt(i);
    if (c <= 0x20 || c === 0x7f) {
      return `target ${JSON.stringify(dst)} contains a control character or space (refused: header injection)`;
    }
  }
  const m = reScheme.exec(dst);
  if (m === null) return `target ${JSON.stringify(dst)} is not a URL (expected scheme://host:port/)`;
  const protocol = internProtocol(`${(m[1] ?? '').toLowerCase()}:`);
  const rest = dst.slice(m[0].length);
  let end = rest.length;
  for (let i = 0; i < rest.length; i++) {
    const c = rest.charCodeAt(i);
    if (c === 0x2f /* / */ || c === 0x3f /* ? */ || c === 0x23 /* # */) {
      end = i;
      break;
    }
  }
  const host = rest.slice(0, end);
  const tail = rest.slice(end);
  const q = tail.indexOf('?');
  const pathname = q < 0 ? tail : tail.slice(0, q);
  const search = q < 0 ? '' : tail.slice(q);
  if (host === '') return `target ${JSON.stringify(dst)} has no host`;

  let hostname = host;
  let portText = '';
  if (host.startsWith('[')) {
    const close = host.indexOf(']');
    if (close < 0) return `target ${JSON.stringify(dst)} has an unclosed IPv6 address`;
    hostname = host.slice(1, close);
    const after = host.slice(close + 1);
    if (after !== '') {
      if (!after.startsWith(':')) return `target ${JSON.stringify(dst)} has a bad port`;
      portText = after.slice(1);
    }
  } else {
    const colon = host.lastIndexOf(':');
    if (colon >= 0) {
      hostname = host.slice(0, colon);
      portText = host.slice(colon + 1);
    }
  }
  let port: number;
  if (portText === '') {
    const d = defaultPorts[protocol];
    if (d === undefined) return `target ${JSON.stringify(dst)} needs a port`;
    port = d;
  } else {
    if (!/^\d{1,5}$/.test(portText))
      return `target ${JSON.stringify(dst)} has a bad port ${JSON.stringify(portText)}`;
    port = Number(portText);
    if (port < 1 || port > 65535) return `target ${JSON.stringify(dst)} has a port out of range`;
  }
  if (hostname === '') return `target ${JSON.stringify(dst)} has no host`;
  return { protocol, hostname, port, host, pathname, search };
}
