// `--registry file:PATH | consul:URL | etcd:URL[,URL...]` (repeatable). etcd takes several
// endpoints separated by commas, so a comma-separated list of registries is split only where the
// next item starts with a registry kind.

import { quote } from './errors.ts';
import type { Parsed } from './values.ts';

export type RegistrySpec =
  | { readonly kind: 'file'; readonly text: string; readonly path: string }
  | { readonly kind: 'consul'; readonly text: string; readonly url: string }
  | { readonly kind: 'etcd'; readonly text: string; readonly urls: readonly string[] };

export const registryForms = 'file:PATH|consul:URL|etcd:URL';
const defaultConsulUrl = 'http://127.0.0.1:8500';
const defaultEtcdUrl = 'http://127.0.0.1:2379';
const reKind = /^(file|consul|etcd):/;

/** Parses a list of registry specs written as `a,b` or given as separate values. */
export function parseRegistryList(values: readonly string[]): Parsed<RegistrySpec[]> {
  const items: string[] = [];
  for (const value of values) {
    for (const raw of value.split(',')) {
      const part = raw.trim();
      if (part === '') continue;
      const last = items.length - 1;
      // `etcd:http://a:2379,http://b:2379`: a kind-less part continues the previous etcd item.
      if (!reKind.test(part) && last >= 0 && (items[last] ?? '').startsWith('etcd:')) {
        items[last] = `${items[last]},${part}`;
      } else {
        items.push(part);
      }
    }
  }
  const out: RegistrySpec[] = [];
  for (const item of items) {
    const r = parseRegistrySpec(item);
    if ('detail' in r) return r;
    out.push(r.value);
  }
  return { value: out };
}

export function parseRegistrySpec(text: string): Parsed<RegistrySpec> {
  const s = text.trim();
  const m = reKind.exec(s);
  if (m === null) return { detail: `expected ${registryForms}, got ${quote(text)}` };
  const rest = s.slice(m[0].length);
  switch (m[1]) {
    case 'file':
      if (rest === '') return { detail: `file: needs a path (file:./routes.yaml), got ${quote(text)}` };
      return { value: { kind: 'file', text: s, path: rest } };
    case 'consul': {
      const url = normaliseUrl(rest === '' ? defaultConsulUrl : rest);
      if (url === undefined)
        return { detail: `consul: expected an http(s) URL (consul:${defaultConsulUrl}), got ${quote(text)}` };
      return { value: { kind: 'consul', text: `consul:${url}`, url } };
    }
    default: {
      const urls: string[] = [];
      for (const part of (rest === '' ? defaultEtcdUrl : rest).split(',')) {
        const url = normaliseUrl(part);
        if (url === undefined) {
          return { detail: `etcd: expected http(s) URLs (etcd:${defaultEtcdUrl}), got ${quote(text)}` };
        }
        urls.push(url);
      }
      return { value: { kind: 'etcd', text: `etcd:${urls.join(',')}`, urls } };
    }
  }
}

/** `127.0.0.1:8500` -> `http://127.0.0.1:8500`; anything but http(s) with a host is rejected. */
function normaliseUrl(text: string): string | undefined {
  const s = text.trim();
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(s) ? s : `http://${s}`;
  let u: URL;
  try {
    u = new URL(withScheme);
  } catch {
    return undefined;
  }
  if ((u.protocol !== 'http:' && u.protocol !== 'https:') || u.hostname === '') return undefined;
  // Keep what the user wrote, minus a trailing slash, so names stay recognisable in the UI.
  return withScheme.replace(/\/+$/, '');
}
