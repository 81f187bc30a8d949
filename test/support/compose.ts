// Reading the compose files of examples/ as Docker Compose would (for the deployment tests).

import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';

const root = resolve(import.meta.dirname, '../..');

export interface ComposeService {
  readonly image?: string;
  readonly build?: { readonly context: string; readonly dockerfile: string } | string;
  readonly entrypoint?: string[];
  readonly command?: string[] | string;
  readonly environment?: Record<string, string | number | boolean | null>;
  readonly ports?: string[];
  readonly volumes?: string[];
  readonly depends_on?: string[] | Record<string, { condition: string }>;
  readonly healthcheck?: unknown;
}

export interface Compose {
  readonly name?: string;
  readonly services: Record<string, ComposeService>;
  readonly volumes?: Record<string, unknown>;
}

export function readCompose(dir: string): Compose {
  const text = readFileSync(join(root, dir, 'compose.yaml'), 'utf8');
  // Compose resolves `<<: *anchor` merge keys; so must the test, or it checks something else.
  return parseYaml(text, { merge: true }) as Compose;
}

/** The service's environment as Cairn's process would see it (compose values are strings). */
export function envOf(s: ComposeService): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(s.environment ?? {})) if (v !== null) out[k] = String(v);
  return out;
}
