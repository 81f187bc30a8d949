// Parsers for single configuration values. Each returns the value or a `detail` string (the part
// of a ConfigError message after the key), so every source (flag, env, file) reports the same way.

import { isIPv6 } from 'node:net';
import { quote } from './errors.ts';

export type Parsed<T> = { readonly value: T } | { readonly detail: string };

const durationUnits: Readonly<Record<string, number>> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};
const reDurationPart = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)/y;

/** Go-style durations (`10s`, `500ms`, `1m30s`, `0`) in milliseconds. */
export function parseDuration(text: string): Parsed<number> {
  const s = text.trim();
  const expected = `expected a duration like 10s, 500ms or 1m30s, got ${quote(text)}`;
  if (s === '0') return { value: 0 };
  if (s === '') return { detail: expected };
  let ms = 0;
  reDurationPart.lastIndex = 0;
  while (reDurationPart.lastIndex < s.length) {
    const at = reDurationPart.lastIndex;
    const m = reDurationPart.exec(s);
    if (m === null || m.index !== at) return { detail: expected };
    ms += Number(m[1]) * (durationUnits[m[2] ?? ''] ?? 0);
  }
  return { value: ms };
}

const trueWords = new Set(['true', '1', 'yes', 'on']);
const falseWords = new Set(['false', '0', 'no', 'off']);

export function parseBoolean(text: string): Parsed<boolean> {
  const s = text.trim().toLowerCase();
  if (trueWords.has(s)) return { value: true };
  if (falseWords.has(s)) return { value: false };
  return { detail: `expected true or false, got ${quote(text)}` };
}

export function parseInteger(text: string, min: number, max: number, what = 'an integer'): Parsed<number> {
  const s = text.trim();
  const n = Number(s);
  if (!/^[+-]?\d+$/.test(s) || !Number.isSafeInteger(n) || n < min || n > max) {
    return { detail: `expected ${what} from ${min} to ${max}, got ${quote(text)}` };
  }
  return { value: n };
}

export function parseChoice<T extends string>(
  text: string,
  choices: readonly T[],
  aliases: Readonly<Record<string, T>> = {},
): Parsed<T> {
  const s = text.trim();
  const alias = aliases[s];
  if (alias !== undefined) return { value: alias };
  for (const c of choices) if (c === s) return { value: c };
  return { detail: `expected one of ${choices.join('|')}, got ${quote(text)}` };
}

/** A socket address: `host` without brackets ('' = all interfaces) and `port`. */
export interface HostPort {
  readonly address: string;
  readonly port: number;
}

const reHostName = /^[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_.])?$/;
const reIPv4ish = /^[0-9.]+$/;
const reIPv4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

/** `[host]:port` as in fabio's addresses: `:9999`, `0.0.0.0:443`, `[::1]:80`, `localhost:80`. */
export function parseHostPort(text: string): Parsed<HostPort> {
  const s = text.trim();
  const expected = `expected [host]:port (e.g. :9999, 0.0.0.0:443, [::1]:80), got ${quote(text)}`;
  let host: string;
  let portText: string;
  if (s.startsWith('[')) {
    const close = s.indexOf(']');
    if (close < 0 || s[close + 1] !== ':') return { detail: expected };
    host = s.slice(1, close);
    portText = s.slice(close + 2);
    if (!isIPv6(host)) return { detail: `${quote(host)} is not an IPv6 address; ${expected}` };
  } else {
    const colon = s.lastIndexOf(':');
    if (colon < 0) return { detail: expected };
    host = s.slice(0, colon);
    portText = s.slice(colon + 1);
    if (host.includes(':')) return { detail: `IPv6 addresses need brackets; ${expected}` };
    if (host !== '' && !isHostOrIPv4(host))
      return { detail: `${quote(host)} is not a host name or IP; ${expected}` };
  }
  const port = Number(portText);
  if (!/^\d+$/.test(portText) || port > 65535) {
    return { detail: `port must be 0..65535; ${expected}` };
  }
  return { value: { address: host, port } };
}

function isHostOrIPv4(host: string): boolean {
  if (reIPv4ish.test(host)) return reIPv4.test(host);
  return reHostName.test(host);
}

/** Formats a HostPort back to `host:port` (`[v6]:port`, `:port` for all interfaces). */
export function formatHostPort(hp: HostPort): string {
  const host = hp.address.includes(':') ? `[${hp.address}]` : hp.address;
  return `${host}:${hp.port}`;
}
