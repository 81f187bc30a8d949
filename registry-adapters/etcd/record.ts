// The values stored under the etcd keys, parsed into ServiceInstances (or Problems).
//
// A Cairn instance record (`<prefix>/services/<service>/<id>`):
//   {"address":"10.0.0.5","port":8080,"tags":["urlprefix-/api strip=/api"],"weight":2,
//    "status":"passing","meta":{"version":"1.4"}}
// address and port are required; the rest is optional. A gRPC naming record (etcd's
// `naming/endpoints` and the older `naming.Update`):
//   {"Op":0,"Addr":"10.0.0.5:50051","Metadata":{"tags":["urlprefix-/greeter proto=grpc"]}}
// Cairn reads `tags`, `weight` and `status` from an object Metadata (any other Metadata is left
// alone, it belongs to the naming clients); Op 1 (delete) means the record does not count.
//
// A bad record is a Problem (source `registry`, the key in the reason) and is skipped; an unknown
// field in a Cairn record is a warning and the instance still counts.

import { isIP, isIPv6 } from 'node:net';
import type { InstanceStatus, Problem, ServiceInstance } from '../../routing/types.ts';

/** What a registrar writes: the JSON shape of one instance record. */
export interface InstanceRecord {
  readonly address: string;
  readonly port: number;
  readonly tags?: readonly string[];
  readonly weight?: number;
  readonly status?: InstanceStatus;
  readonly meta?: Readonly<Record<string, string>>;
}

export type RecordParse =
  | { readonly instance: ServiceInstance; readonly warnings: readonly Problem[] }
  | { readonly problem: Problem }
  /** A naming record that says "deleted" (Op 1): not an instance, not a problem. */
  | { readonly skip: true };

export const instanceStatuses: readonly InstanceStatus[] = [
  'passing',
  'warning',
  'critical',
  'maintenance',
  'unknown',
];
const recordFields = ['address', 'port', 'tags', 'weight', 'status', 'meta'];
const recordFieldSet = new Set(recordFields);
export const maxInstanceWeight = 1_000_000;
const reName = /^\S+$/;
const reHostName = /^[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_.])?$/;
const reIPv4ish = /^[0-9.]+$/;
const reDigits = /^\d+$/;

/** The JSON a registrar stores; fields in a fixed order so equal records are equal strings. */
export function encodeRecord(r: InstanceRecord): string {
  return JSON.stringify({
    address: r.address,
    port: r.port,
    tags: r.tags ?? [],
    ...(r.weight !== undefined ? { weight: r.weight } : {}),
    ...(r.status !== undefined ? { status: r.status } : {}),
    ...(r.meta !== undefined ? { meta: r.meta } : {}),
  });
}

/** Parses a Cairn instance record stored at `key` for `service`/`id`. */
export function parseInstanceRecord(
  key: string,
  value: string,
  service: string,
  id: string,
  registry: string,
): RecordParse {
  const bad = (reason: string): RecordParse => ({
    problem: { ...problem('error', `${key}: ${reason}`, value), service, instance: id },
  });
  const names = checkNames(service, id);
  if (names !== undefined) return bad(names);
  const json = parseJson(value);
  if ('error' in json) return bad(json.error);
  const rec = json.value;
  if (!isRecord(rec)) return bad(`expected a JSON object {"address","port","tags"}, got ${kind(rec)}`);

  const address = parseAddress(rec.address);
  if (address === undefined) {
    return bad(`address: expected a host name or IP (no scheme, no port), got ${show(rec.address)}`);
  }
  const port = parseInteger(rec.port);
  if (port === undefined || port < 1 || port > 65535) {
    return bad(`port: expected an integer from 1 to 65535, got ${show(rec.port)}`);
  }
  const fields = parseOptionalFields(rec, '');
  if ('error' in fields) return bad(fields.error);

  const warnings: Problem[] = [];
  for (const field of Object.keys(rec)) {
    if (!recordFieldSet.has(field)) {
      warnings.push({
        ...problem(
          'warning',
          `${key}: unknown field "${field}" ignored (expected ${recordFields.join(', ')})`,
          value,
        ),
        service,
        instance: id,
      });
    }
  }
  return { instance: instance(service, id, address, port, fields, registry), warnings };
}

/** Parses an etcd gRPC naming record stored at `key` for `service`/`id`. */
export function parseNamingRecord(
  key: string,
  value: string,
  service: string,
  id: string,
  registry: string,
): RecordParse {
  const bad = (reason: string): RecordParse => ({
    problem: { ...problem('error', `${key}: ${reason}`, value), service, instance: id },
  });
  const names = checkNames(service, id);
  if (names !== undefined) return bad(names);
  const json = parseJson(value);
  if ('error' in json) return bad(json.error);
  const rec = json.value;
  if (!isRecord(rec))
    return bad(`expected a gRPC naming record {"Op":0,"Addr":"host:port"}, got ${kind(rec)}`);
  const op = rec.Op ?? 0;
  if (op === 1) return { skip: true };
  if (op !== 0) return bad(`Op: expected 0 (add) or 1 (delete), got ${show(op)}`);
  const addr = parseHostPort(rec.Addr);
  if (addr === undefined) return bad(`Addr: expected "host:port", got ${show(rec.Addr)}`);
  const meta = rec.Metadata;
  const fields = isRecord(meta) ? parseOptionalFields(meta, 'Metadata.') : { tags: [] as string[] };
  if ('error' in fields) return bad(fields.error);
  return { instance: instance(service, id, addr.address, addr.port, fields, registry), warnings: [] };
}

interface OptionalFields {
  readonly tags: readonly string[];
  readonly weight?: number;
  readonly status?: InstanceStatus;
  readonly meta?: Record<string, string>;
}

function parseOptionalFields(
  rec: Record<string, unknown>,
  label: string,
): OptionalFields | { error: string } {
  const tags = rec.tags ?? [];
  if (!Array.isArray(tags)) return { error: `${label}tags: expected a list of strings, got ${show(tags)}` };
  for (const t of tags) {
    if (typeof t !== 'string') {
      return { error: `${label}tags: expected a list of strings, got an element ${show(t)}` };
    }
  }
  let weight: number | undefined;
  if (rec.weight !== undefined && rec.weight !== null) {
    weight = parseInteger(rec.weight);
    if (weight === undefined || weight < 1 || weight > maxInstanceWeight) {
      return {
        error: `${label}weight: expected an integer from 1 to ${maxInstanceWeight}, got ${show(rec.weight)}`,
      };
    }
  }
  let status: InstanceStatus | undefined;
  if (rec.status !== undefined && rec.status !== null) {
    status = instanceStatuses.find((s) => s === rec.status);
    if (status === undefined) {
      return {
        error: `${label}status: expected one of ${instanceStatuses.join('|')}, got ${show(rec.status)}`,
      };
    }
  }
  // Metadata of naming records is free-form: only a Cairn record's `meta` is read.
  let meta: Record<string, string> | undefined;
  if (label === '' && rec.meta !== undefined && rec.meta !== null) {
    if (!isRecord(rec.meta)) return { error: `meta: expected an object of strings, got ${show(rec.meta)}` };
    meta = {};
    for (const [k, v] of Object.entries(rec.meta)) {
      if (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean') {
        return { error: `meta.${k}: expected a string, got ${show(v)}` };
      }
      meta[k] = String(v);
    }
  }
  return {
    tags: tags as string[],
    ...(weight !== undefined ? { weight } : {}),
    ...(status !== undefined ? { status } : {}),
    ...(meta !== undefined ? { meta } : {}),
  };
}

function instance(
  service: string,
  id: string,
  address: string,
  port: number,
  f: OptionalFields,
  registry: string,
): ServiceInstance {
  return {
    service,
    id,
    address,
    port,
    tags: f.tags,
    registry,
    ...(f.weight !== undefined ? { weight: f.weight } : {}),
    ...(f.status !== undefined ? { status: f.status } : {}),
    ...(f.meta !== undefined ? { meta: f.meta } : {}),
  };
}

/** Route commands name services by a word: a service (or id) with spaces cannot be routed. */
function checkNames(service: string, id: string): string | undefined {
  if (!reName.test(service)) return `service name ${JSON.stringify(service)} must not contain spaces`;
  if (!reName.test(id)) return `instance id ${JSON.stringify(id)} must not contain spaces`;
  return undefined;
}

function parseJson(value: string): { value: unknown } | { error: string } {
  if (value.trim() === '') return { error: 'empty value (expected a JSON object)' };
  try {
    return { value: JSON.parse(value) as unknown };
  } catch (e) {
    const m = e instanceof Error ? e.message : String(e);
    return { error: `not valid JSON: ${(m.split('\n')[0] ?? m).trim()}` };
  }
}

/** A host name, IPv4 or IPv6 (brackets optional); undefined if it is anything else. */
export function parseAddress(v: unknown): string | undefined {
  if (typeof v !== 'string') return undefined;
  let s = v.trim();
  if (s.startsWith('[') && s.endsWith(']')) s = s.slice(1, -1);
  if (s === '') return undefined;
  if (isIP(s) !== 0) return s;
  if (reIPv4ish.test(s)) return undefined;
  return reHostName.test(s) ? s : undefined;
}

/** `host:port` or `[v6]:port`. */
function parseHostPort(v: unknown): { address: string; port: number } | undefined {
  if (typeof v !== 'string') return undefined;
  const s = v.trim();
  const colon = s.lastIndexOf(':');
  if (colon <= 0) return undefined;
  const host = s.slice(0, colon);
  if (host.includes(':') && !(host.startsWith('[') && host.endsWith(']'))) return undefined;
  const address = parseAddress(host);
  const port = parseInteger(s.slice(colon + 1));
  if (address === undefined || port === undefined || port < 1 || port > 65535) return undefined;
  if (isIPv6(address) && !host.startsWith('[')) return undefined;
  return { address, port };
}

/** An integer given as a JSON number or as a string of digits. */
function parseInteger(v: unknown): number | undefined {
  if (typeof v === 'number') return Number.isInteger(v) ? v : undefined;
  if (typeof v === 'string' && reDigits.test(v.trim())) return Number(v.trim());
  return undefined;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function problem(severity: Problem['severity'], reason: string, input: string): Problem {
  const s = input.replace(/\s*\n\s*/g, ' ');
  return { source: 'registry', severity, reason, input: s.length > 300 ? `${s.slice(0, 300)}...` : s };
}

function kind(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'string') return 'a string';
  return typeof v === 'object' ? 'an object' : String(v);
}

/** A value as it appears in a reason: strings quoted, lists and objects named. */
function show(v: unknown): string {
  if (v === undefined || v === null) return 'nothing';
  if (typeof v === 'string') return JSON.stringify(v.length > 60 ? `${v.slice(0, 60)}...` : v);
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'an object';
  return String(v);
}
