// Manual route commands in Consul's KV store, fabio-style: every key under the configured path
// (`cairn/config` and `cairn/config/<anything>`), in key order, each value introduced by a
// `# --- <key>` comment line so a problem's line number leads back to its key. The route
// command parser skips comment lines and reports a bad line without dropping the others.

export interface KvEntry {
  readonly key: string;
  readonly value: string;
  readonly modifyIndex: number;
}

type Obj = Record<string, unknown>;

/** `cairn/config`, `/cairn/config/` -> `cairn/config` (Consul keys have no leading slash). */
export function normaliseKvPath(path: string): string {
  return path.trim().replace(/^\/+/, '').replace(/\/+$/, '');
}

/**
 * `/v1/kv/<path>?recurse` -> the entries under `path`. A missing prefix is a 404 with no body
 * (undefined here): no entries. Keys that merely start with the same letters
 * (`cairn/configuration`) are not under the path.
 */
export function kvEntries(body: unknown, path: string): KvEntry[] | { error: string } {
  if (body === undefined || body === null) return [];
  if (!Array.isArray(body)) return { error: `/v1/kv/${path}: expected a list of keys` };
  const out: KvEntry[] = [];
  for (const raw of body) {
    if (typeof raw !== 'object' || raw === null) continue;
    const e = raw as Obj;
    const key = typeof e.Key === 'string' ? e.Key : '';
    if (key !== path && !key.startsWith(`${path}/`)) continue;
    const value = typeof e.Value === 'string' ? Buffer.from(e.Value, 'base64').toString('utf8') : '';
    out.push({ key, value, modifyIndex: typeof e.ModifyIndex === 'number' ? e.ModifyIndex : 0 });
  }
  out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  return out;
}

/** The entries as one route-command text (fabio's layout); folders and empty values are left out. */
export function manualText(entries: readonly KvEntry[]): string {
  const parts: string[] = [];
  for (const e of entries) {
    const v = e.value.trim();
    if (v === '') continue;
    parts.push(`# --- ${e.key}\n${v}`);
  }
  return parts.join('\n\n');
}

/** `/v1/kv/<key>` (single key) -> its value and ModifyIndex; missing -> '' and 0. */
export function kvValue(body: unknown): KvEntry | undefined {
  if (!Array.isArray(body) || body.length === 0) return undefined;
  const e = body[0] as Obj;
  if (typeof e !== 'object' || e === null) return undefined;
  return {
    key: typeof e.Key === 'string' ? e.Key : '',
    value: typeof e.Value === 'string' ? Buffer.from(e.Value, 'base64').toString('utf8') : '',
    modifyIndex: typeof e.ModifyIndex === 'number' ? e.ModifyIndex : 0,
  };
}
