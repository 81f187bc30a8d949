// Validation of route options (`opts "k=v ..."` of a route command, or the options of a tag).
//
// fabio reads a handful of keys and silently ignores the rest, and for bad values it logs and
// carries on with a half-configured route (a redirect with a bad code becomes a proxy route, bad
// access rules become no access rules). Cairn sorts every finding into:
//   errors   - the route must be skipped: applying it would route or expose something the user
//              did not ask for;
//   warnings - the route is applied, but something written was ignored (unknown keys, which fabio
//              ignores too, and values fabio would have ignored).

import { parseAccessRules } from './access.ts';
import type { Cidr, PathMatcher, RouteOptions, RouteProto } from './types.ts';

export interface ParsedRouteOptions {
  readonly opts: RouteOptions;
  /** Reasons the route must be skipped. */
  readonly errors: string[];
  /** Things that were ignored; the route still applies. */
  readonly warnings: string[];
  /** Cairn's `lbweight=` (integer >= 1), when given; it is a command attribute, not a RouteOption. */
  readonly instanceWeight?: number;
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

const PROTOS: readonly RouteProto[] = ['http', 'https', 'tcp', 'tcp+sni', 'grpc', 'grpcs'];
const MATCHERS: readonly PathMatcher[] = ['prefix', 'iprefix', 'glob', 'segment'];
export const MAX_LBWEIGHT = 1_000_000;
export const MAX_RETRIES = 10;

/** Route proto implied by a destination URL's scheme (fabio: only `proto=` in tags sets it). */
export function protoFromDst(dst: string): RouteProto {
  const sep = dst.indexOf('://');
  if (sep < 0) return 'http';
  switch (dst.slice(0, sep).toLowerCase()) {
    case 'https':
      return 'https';
    case 'tcp':
      return 'tcp';
    case 'grpc':
      return 'grpc';
    case 'grpcs':
      return 'grpcs';
    default:
      return 'http';
  }
}

function dstScheme(dst: string): string {
  const sep = dst.indexOf('://');
  return sep < 0 ? '' : dst.slice(0, sep).toLowerCase();
}

/** Decimal integer without sign, or -1. */
function parseUint(s: string): number {
  if (s === '' || s.length > 15) return -1;
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return -1;
    n = n * 10 + (c - 0x30);
  }
  return n;
}

const reFloat = /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/;

/** fabio's fixed weight (Go ParseFloat of a decimal), or undefined when not a number. */
export function parseFixedWeight(text: string): number | undefined {
  if (!reFloat.test(text)) return undefined;
  const n = Number(text);
  return Number.isFinite(n) ? n : undefined;
}

/** Cairn's per-instance weight: an integer 1..MAX_LBWEIGHT, or undefined. */
export function parseLbWeight(text: string): number | undefined {
  const n = parseUint(text);
  return n >= 1 && n <= MAX_LBWEIGHT ? n : undefined;
}

export function lbWeightError(value: string): string {
  return `lbweight must be an integer from 1 to ${MAX_LBWEIGHT} (got "${value}")`;
}

/** Validates the options of one route command against `dst` (its destination URL). */
export function parseRouteOptions(raw: Readonly<Record<string, string>>, dst: string): ParsedRouteOptions {
  const errors: string[] = [];
  const warnings: string[] = [];
  const o: Mutable<RouteOptions> = { proto: protoFromDst(dst) };
  let instanceWeight: number | undefined;
  let allowText = '';
  let denyText = '';

  for (const key of Object.keys(raw)) {
    const value = raw[key] ?? '';
    const known = KNOWN_KEYS.has(key);
    if (!known) {
      warnings.push(`unknown option "${key}" ignored`);
      continue;
    }
    if (value === '') {
      // fabio treats an empty value as "not set".
      warnings.push(`option "${key}" has no value; ignored`);
      continue;
    }
    switch (key) {
      case 'strip':
      case 'prepend':
        if (value.charCodeAt(0) !== 0x2f) errors.push(`${key} must start with '/' (got "${value}")`);
        else o[key] = value;
        break;
      case 'proto':
        if ((PROTOS as readonly string[]).includes(value)) {
          o.proto = value as RouteProto;
          const mismatch = protoMismatch(o.proto, dst);
          if (mismatch !== '') warnings.push(mismatch);
        } else {
          errors.push(`proto must be one of ${PROTOS.join(', ')} (got "${value}")`);
        }
        break;
      case 'tlsskipverify':
        // fabio: anything but "true" means verify; keep that, but say so.
        if (value === 'true') o.tlsSkipVerify = true;
        else if (value === 'false') o.tlsSkipVerify = false;
        else warnings.push(`tlsskipverify must be true or false (got "${value}"); certificates are verified`);
        break;
      case 'host':
        o.host = value;
        break;
      case 'redirect': {
        const code = parseUint(value);
        if (code >= 300 && code <= 308) o.redirectCode = code;
        else errors.push(`redirect must be a redirect status code from 300 to 308 (got "${value}")`);
        break;
      }
      case 'allow':
      case 'deny': {
        const parsed = parseAccessRules(value);
        if ('error' in parsed) {
          errors.push(`${key}: ${parsed.error}`);
        } else {
          const cidrs: readonly Cidr[] = parsed.cidrs;
          if (key === 'allow') {
            o.allow = cidrs;
            allowText = value;
          } else {
            o.deny = cidrs;
            denyText = value;
          }
        }
        break;
      }
      case 'weight': {
        // The fixed weight of a tag; tags.ts turns it into the command's weight. In `opts` of a
        // manual command fabio ignores it, so a bad value here is only a warning.
        const w = parseFixedWeight(value);
        if (w === undefined) warnings.push(`weight must be a number (got "${value}"); ignored`);
        break;
      }
      case 'auth':
        o.auth = value;
        break;
      case 'lbweight': {
        const w = parseLbWeight(value);
        if (w === undefined) errors.push(lbWeightError(value));
        else instanceWeight = w;
        break;
      }
      case 'sticky':
        if (value === 'cookie' || value === 'ip') o.sticky = value;
        else errors.push(`sticky must be cookie or ip (got "${value}")`);
        break;
      case 'check':
        if (value.charCodeAt(0) === 0x2f) o.check = value;
        else errors.push(`check must be a path starting with '/' (got "${value}")`);
        break;
      case 'retries': {
        const n = parseUint(value);
        if (n >= 0 && n <= MAX_RETRIES) o.retries = n;
        else errors.push(`retries must be an integer from 0 to ${MAX_RETRIES} (got "${value}")`);
        break;
      }
      case 'register':
        o.register = value;
        break;
      case 'pxyproto':
        // PROXY protocol header to TCP upstreams; read by the TCP forwarder from the raw options.
        if (!['true', 'false', 'v1', 'v2'].includes(value)) {
          errors.push(`pxyproto must be true, false, v1 or v2 (got "${value}")`);
        }
        break;
      case 'matcher':
        if ((MATCHERS as readonly string[]).includes(value)) o.matcher = value as PathMatcher;
        else errors.push(`matcher must be one of ${MATCHERS.join(', ')} (got "${value}")`);
        break;
      default:
        // Known fabio options Cairn passes through untouched (grpcservername): read by the proxy
        // from the raw options.
        break;
    }
  }

  if (allowText !== '' && denyText !== '') {
    // fabio's exact message.
    errors.push('specifying allow and deny on the same route is not supported');
  }

  const result: Mutable<ParsedRouteOptions> = { opts: o, errors, warnings };
  if (instanceWeight !== undefined) result.instanceWeight = instanceWeight;
  return result;
}

const KNOWN_KEYS: ReadonlySet<string> = new Set([
  'strip',
  'prepend',
  'proto',
  'tlsskipverify',
  'host',
  'redirect',
  'allow',
  'deny',
  'weight',
  'auth',
  'lbweight',
  'sticky',
  'check',
  'retries',
  'register',
  'matcher',
  'grpcservername',
  'pxyproto',
]);

/** A warning when `proto=` contradicts the destination's scheme, else ''. */
function protoMismatch(proto: RouteProto, dst: string): string {
  const scheme = dstScheme(dst);
  if (proto === 'tcp' && scheme !== 'tcp') {
    return `proto=tcp but dst "${dst}" is not a tcp:// address`;
  }
  if (scheme === 'tcp' && proto !== 'tcp' && proto !== 'tcp+sni') {
    return `proto=${proto} but dst "${dst}" is a tcp:// address`;
  }
  return '';
}

/** fabio's option text, in written order: `strip=/api host=dst flag`. */
export function formatRouteOptions(raw: Readonly<Record<string, string>>): string {
  let s = '';
  for (const key of Object.keys(raw)) {
    const value = raw[key] ?? '';
    if (s !== '') s += ' ';
    s += value === '' ? key : `${key}=${value}`;
  }
  return s;
}
