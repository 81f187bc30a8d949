// Where Cairn's data lives in etcd (DESIGN.md section 6), with the default prefix `/cairn`:
//
//   /cairn/services/<service>/<instance-id>   one instance record (JSON), written with a lease
//   /cairn/config                             manual route commands (fabio's `route ...` lines)
//
// plus, optionally, etcd's own gRPC naming records under other prefixes:
//
//   <naming-prefix>/<service>/<addr>          {"Op":0,"Addr":"host:port","Metadata":{...}}
//
// Keys are compared as strings: etcd keys are bytes, and Cairn writes and reads UTF-8 only.

export const defaultEtcdPrefix = '/cairn';

export interface EtcdLayout {
  /** The prefix as configured, without a trailing slash (`/cairn`; `/` stays `/`). */
  readonly prefix: string;
  /** `<prefix>/services/`: every instance record starts with it. */
  readonly services: string;
  /** `<prefix>/config`: the manual route commands. */
  readonly config: string;
  /** The gRPC naming prefixes, each ending in `/`. */
  readonly naming: readonly string[];
}

export function etcdLayout(
  prefix: string = defaultEtcdPrefix,
  namingPrefixes: readonly string[] = [],
): EtcdLayout {
  const p = trimSlashes(prefix);
  const base = p === '/' ? '' : p;
  const naming: string[] = [];
  for (const n of namingPrefixes) {
    // Naming targets are often written without a leading slash (`services/greeter`): keep as is.
    const t = n.trim().replace(/\/+$/, '');
    if (t === '') continue;
    const withSlash = `${t}/`;
    if (!naming.includes(withSlash)) naming.push(withSlash);
  }
  return { prefix: p, services: `${base}/services/`, config: `${base}/config`, naming };
}

/** The key of one instance record. */
export function instanceKey(layout: EtcdLayout, service: string, id: string): string {
  return `${layout.services}${service}/${id}`;
}

export type KeyParse =
  { readonly service: string; readonly id: string } | { readonly error: string; readonly service?: string };

/**
 * `<prefix>/services/<service>/<instance-id>` -> service and id. The id is everything after the
 * service segment (an id may contain `/`); an empty service or id is an error.
 */
export function parseInstanceKey(layout: EtcdLayout, key: string): KeyParse {
  const rest = key.slice(layout.services.length);
  const slash = rest.indexOf('/');
  const expected = `expected a key ${layout.services}<service>/<instance-id>`;
  if (slash <= 0)
    return rest === '' || slash === 0 ? { error: expected } : { error: expected, service: rest };
  const service = rest.slice(0, slash);
  const id = rest.slice(slash + 1);
  if (id === '') return { error: expected, service };
  return { service, id };
}

/**
 * A gRPC naming key `<naming-prefix><target>/<addr>`: the last segment is the instance id and the
 * segments between the prefix and it are the service (etcd targets may contain `/`). A key right
 * under the prefix (`<naming-prefix><addr>`) belongs to the service named by the prefix's last
 * segment, so `--etcd-naming-prefix /services/grpc/greeter` works for one target too.
 */
export function parseNamingKey(namingPrefix: string, key: string): KeyParse {
  const rest = key.slice(namingPrefix.length);
  const slash = rest.lastIndexOf('/');
  if (slash < 0) {
    const parts = namingPrefix.split('/').filter((s) => s !== '');
    const service = parts[parts.length - 1];
    if (service === undefined || rest === '') {
      return { error: `expected a key ${namingPrefix}<service>/<address>` };
    }
    return { service, id: rest };
  }
  const service = rest.slice(0, slash);
  const id = rest.slice(slash + 1);
  if (service === '' || id === '') return { error: `expected a key ${namingPrefix}<service>/<address>` };
  return { service, id };
}

/** Which part of the layout a key belongs to. */
export type KeyKind =
  | { readonly kind: 'config' }
  | { readonly kind: 'instance' }
  | { readonly kind: 'naming'; readonly prefix: string }
  | { readonly kind: 'other' };

export function classifyKey(layout: EtcdLayout, key: string): KeyKind {
  if (key === layout.config) return configKind;
  if (key.startsWith(layout.services)) return instanceKind;
  for (const prefix of layout.naming) if (key.startsWith(prefix)) return { kind: 'naming', prefix };
  return otherKind;
}

const configKind: KeyKind = { kind: 'config' };
const instanceKind: KeyKind = { kind: 'instance' };
const otherKind: KeyKind = { kind: 'other' };

/** `/cairn/` -> `/cairn`, `cairn` -> `/cairn`, `/` stays `/`. */
function trimSlashes(p: string): string {
  const t = p.trim();
  const s = t.startsWith('/') ? t : `/${t}`;
  return s.replace(/\/+$/, '') || '/';
}
