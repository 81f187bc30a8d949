// The file registry format (YAML or JSON):
//
//   services:
//     - name: api
//       instances:
//         - { id: api-1, address: 127.0.0.1, port: 8081, tags: ["urlprefix-/api"], weight: 1 }
//   routes: |
//     route weight api /api weight 0.1 tags "canary"
//
// A bad record (instance or service) is reported as a Problem and skipped; the rest loads. Only a
// file that cannot be read as a whole (syntax error, wrong top-level shape) is an error, and then
// the caller keeps its last good table.

import { isIP, isIPv6 } from 'node:net';
import { parseDocument } from 'yaml';
import type { InstanceStatus, Problem, ServiceInstance, Snapshot } from '../../routing/types.ts';

export type FileRegistryParse = { readonly snapshot: Snapshot } | { readonly error: string };

const statuses: readonly InstanceStatus[] = ['passing', 'warning', 'critical', 'maintenance', 'unknown'];
const topKeys = new Set(['services', 'routes']);
const serviceKeys = new Set(['name', 'instances']);
const instanceKeys = new Set(['id', 'address', 'port', 'tags', 'weight', 'status', 'meta']);
const maxWeight = 1_000_000;
const reName = /^\S+$/;
const reHostName = /^[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_.])?$/;
const reIPv4ish = /^[0-9.]+$/;

/** Parses a file registry's text. `fileName` picks the format (`.json`) and labels messages. */
export function parseFileRegistry(text: string, fileName: string): FileRegistryParse {
  if (text.trim() === '')
    return { error: `${fileName}: file is empty (write "services: []" to route nothing)` };
  const doc = parseText(text, fileName);
  if ('error' in doc) return doc;
  const root = doc.value;
  if (root === null || root === undefined) {
    return { error: `${fileName}: no content (write "services: []" to route nothing)` };
  }
  if (!isRecord(root)) return { error: `${fileName}: expected a mapping with "services:" and "routes:"` };

  const problems: Problem[] = [];
  for (const key of Object.keys(root)) {
    if (!topKeys.has(key)) {
      problems.push(
        problem('warning', `unknown top-level key "${key}" ignored (expected services, routes)`, key),
      );
    }
  }

  const services = root.services ?? [];
  if (!Array.isArray(services)) return { error: `${fileName}: services: expected a list of services` };

  const routes = root.routes ?? '';
  let manual: string;
  if (typeof routes === 'string') manual = routes;
  else if (Array.isArray(routes) && routes.every((r) => typeof r === 'string')) manual = routes.join('\n');
  else
    return {
      error: `${fileName}: routes: expected text ("routes: |" block) or a list of route command lines`,
    };

  const registry = `file:${fileName}`;
  const instances: ServiceInstance[] = [];
  const strings = new Interner();
  const seenIds = new Map<string, Set<string>>();
  for (let i = 0; i < services.length; i++) {
    const svc: unknown = services[i];
    const where = `services[${i}]`;
    if (!isRecord(svc)) {
      problems.push(problem('error', `${where}: expected a mapping with "name:" and "instances:"`, svc));
      continue;
    }
    const name = svc.name;
    if (typeof name !== 'string' || !reName.test(name)) {
      problems.push(
        problem('error', `${where}: name: expected a service name without spaces, got ${show(name)}`, svc),
      );
      continue;
    }
    for (const key of Object.keys(svc)) {
      if (!serviceKeys.has(key)) {
        problems.push({
          ...problem('warning', `unknown key "${key}" ignored (expected name, instances)`, svc),
          service: name,
        });
      }
    }
    const list = svc.instances ?? [];
    if (!Array.isArray(list)) {
      problems.push({
        ...problem('error', `instances: expected a list, got ${show(list)}`, svc),
        service: name,
      });
      continue;
    }
    let ids = seenIds.get(name);
    if (ids === undefined) {
      ids = new Set();
      seenIds.set(name, ids);
    }
    for (let j = 0; j < list.length; j++) {
      const r = parseInstance(list[j], name, j, registry, strings);
      if ('problem' in r) {
        problems.push(r.problem);
        continue;
      }
      for (const p of r.warnings) problems.push(p);
      if (ids.has(r.instance.id)) {
        problems.push({
          ...problem(
            'error',
            `id: duplicate instance id "${r.instance.id}" in service "${name}" (first one kept)`,
            list[j],
          ),
          service: name,
          instance: r.instance.id,
        });
        continue;
      }
      ids.add(r.instance.id);
      instances.push(r.instance);
    }
  }
  return { snapshot: { instances, manual, problems } };
}

type InstanceParse =
  { readonly instance: ServiceInstance; readonly warnings: Problem[] } | { readonly problem: Problem };

function parseInstance(
  rec: unknown,
  service: string,
  index: number,
  registry: string,
  strings: Interner,
): InstanceParse {
  const fallbackId = `#${index + 1}`;
  const bad = (instance: string, reason: string): InstanceParse => ({
    problem: { ...problem('error', reason, rec), service, instance },
  });
  if (!isRecord(rec))
    return bad(fallbackId, `instance ${fallbackId}: expected a mapping with address: and port:`);

  let id: string | undefined;
  if (rec.id !== undefined && rec.id !== null) {
    if ((typeof rec.id !== 'string' && typeof rec.id !== 'number') || !reName.test(String(rec.id))) {
      return bad(fallbackId, `id: expected an instance id without spaces, got ${show(rec.id)}`);
    }
    id = String(rec.id);
  }
  const label = id ?? fallbackId;

  const address = parseAddress(rec.address);
  if (address === undefined) {
    return bad(label, `address: expected a host name or IP (no scheme, no port), got ${show(rec.address)}`);
  }
  const port = parseInteger(rec.port);
  if (port === undefined || port < 1 || port > 65535) {
    return bad(label, `port: expected an integer from 1 to 65535, got ${show(rec.port)}`);
  }
  id ??= isIPv6(address) ? `[${address}]:${port}` : `${address}:${port}`;

  const tags = rec.tags ?? [];
  if (!Array.isArray(tags)) return bad(id, `tags: expected a list of strings, got ${show(tags)}`);
  for (const t of tags) {
    if (typeof t !== 'string') return bad(id, `tags: expected a list of strings, got an element ${show(t)}`);
  }

  let weight: number | undefined;
  if (rec.weight !== undefined && rec.weight !== null) {
    weight = parseInteger(rec.weight);
    if (weight === undefined || weight < 1 || weight > maxWeight) {
      return bad(id, `weight: expected an integer from 1 to ${maxWeight}, got ${show(rec.weight)}`);
    }
  }

  let status: InstanceStatus | undefined;
  if (rec.status !== undefined && rec.status !== null) {
    status = statuses.find((s) => s === rec.status);
    if (status === undefined)
      return bad(id, `status: expected one of ${statuses.join('|')}, got ${show(rec.status)}`);
  }

  let meta: Record<string, string> | undefined;
  if (rec.meta !== undefined && rec.meta !== null) {
    if (!isRecord(rec.meta)) return bad(id, `meta: expected a mapping of strings, got ${show(rec.meta)}`);
    meta = {};
    for (const [k, v] of Object.entries(rec.meta)) {
      if (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean') {
        return bad(id, `meta.${k}: expected a string, got ${show(v)}`);
      }
      meta[k] = String(v);
    }
  }

  const warnings: Problem[] = [];
  for (const key of Object.keys(rec)) {
    if (!instanceKeys.has(key)) {
      warnings.push({
        ...problem('warning', `unknown key "${key}" ignored (expected ${[...instanceKeys].join(', ')})`, rec),
        service,
        instance: id,
      });
    }
  }

  const instance: ServiceInstance = {
    service,
    id,
    address: strings.get(address),
    port,
    tags: strings.tags(tags as string[]),
    registry,
    ...(weight !== undefined ? { weight } : {}),
    ...(status !== undefined ? { status } : {}),
    ...(meta !== undefined ? { meta } : {}),
  };
  return { instance, warnings };
}

/**
 * One copy of each address and tag string of a file, flat, in exact-size tag arrays: the parsed
 * instances are what the process keeps (the table's inputs), and the YAML parser's own strings
 * are concatenation trees and its lists have room to grow (10,000 instances: ~2 MB). Instances of
 * one service usually repeat their tags, and many share an address.
 */
class Interner {
  private readonly seen = new Map<string, string>();
  private lastTags: readonly string[] = [];

  get(s: string): string {
    let hit = this.seen.get(s);
    if (hit === undefined) {
      hit = flat(s);
      this.seen.set(hit, hit);
    }
    return hit;
  }

  tags(list: readonly string[]): readonly string[] {
    const last = this.lastTags;
    if (list.length === last.length && list.every((t, i) => t === last[i])) return last;
    this.lastTags = list.map((t) => this.get(t));
    return this.lastTags;
  }
}

/**
 * `s` as one flat string. normalize() builds a new flat string from a concatenation tree; a string
 * it would change (not in NFC) is kept as it is.
 */
function flat(s: string): string {
  const f = s.normalize();
  return f === s ? f : s;
}

/** A host name, IPv4 or IPv6 (brackets optional); undefined if it is anything else. */
function parseAddress(v: unknown): string | undefined {
  if (typeof v !== 'string') return undefined;
  let s = v.trim();
  if (s.startsWith('[') && s.endsWith(']')) s = s.slice(1, -1);
  if (s === '') return undefined;
  if (isIP(s) !== 0) return s;
  if (reIPv4ish.test(s)) return undefined;
  return reHostName.test(s) ? s : undefined;
}

/** An integer given as a number or as a string of digits (YAML users quote ports sometimes). */
function parseInteger(v: unknown): number | undefined {
  if (typeof v === 'number') return Number.isInteger(v) ? v : undefined;
  if (typeof v === 'string' && /^\d+$/.test(v.trim())) return Number(v.trim());
  return undefined;
}

function parseText(text: string, fileName: string): { value: unknown } | { error: string } {
  if (isJson(text, fileName)) {
    try {
      return { value: JSON.parse(text) as unknown };
    } catch (e) {
      return { error: `${fileName}: invalid JSON: ${firstLine(e)}` };
    }
  }
  const doc = parseDocument(text, { prettyErrors: false, merge: true, logLevel: 'silent' });
  const err = doc.errors[0];
  if (err !== undefined) {
    const { line, col } = lineCol(text, err.pos[0]);
    return { error: `${fileName}: invalid YAML at line ${line}, column ${col}: ${firstLine(err)}` };
  }
  try {
    return { value: doc.toJS({ maxAliasCount: 1000 }) as unknown };
  } catch (e) {
    return { error: `${fileName}: invalid YAML: ${firstLine(e)}` };
  }
}

function isJson(text: string, fileName: string): boolean {
  const lower = fileName.toLowerCase();
  if (lower.endsWith('.json')) return true;
  if (lower.endsWith('.yaml') || lower.endsWith('.yml')) return false;
  return text.trimStart().startsWith('{');
}

function lineCol(text: string, offset: number): { line: number; col: number } {
  let line = 1;
  let start = 0;
  for (let i = 0; i < offset && i < text.length; i++) {
    if (text.charCodeAt(i) === 10) {
      line++;
      start = i + 1;
    }
  }
  return { line, col: offset - start + 1 };
}

function firstLine(e: unknown): string {
  const m = e instanceof Error ? e.message : String(e);
  return (m.split('\n')[0] ?? m).trim();
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function problem(severity: Problem['severity'], reason: string, input: unknown): Problem {
  return { source: 'registry', severity, reason, input: compact(input) };
}

/** A record as one line of JSON, for Problem.input. */
function compact(v: unknown): string {
  let s: string;
  try {
    s = typeof v === 'string' ? v : (JSON.stringify(v) ?? String(v));
  } catch {
    s = String(v);
  }
  return s.length > 300 ? `${s.slice(0, 300)}...` : s;
}

/** A value as it appears in a reason: strings quoted, lists and maps named. */
function show(v: unknown): string {
  if (v === undefined || v === null) return 'nothing';
  if (typeof v === 'string') return JSON.stringify(v.length > 60 ? `${v.slice(0, 60)}...` : v);
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  return String(v);
}
