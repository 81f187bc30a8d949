// Serves the web UI's browser modules from lib/admin/ui/, the same way from a checkout and from
// the built package:
//
// - built (dist/): tsc compiled ui/*.ts to ui/*.js (imports rewritten to .js); those are served.
// - from source (`npm start`, tests): only ui/*.ts exist; each is served with its types stripped
//   by Node's own TypeScript stripper (the same one that runs Cairn's sources), imports kept as
//   `./x.ts` (the browser only cares about the content type).
//
// Everything is read once and kept in memory; no CDN, no network, works offline.

import { existsSync, readFileSync } from 'node:fs';
import { stripTypeScriptTypes } from 'node:module';
import { pageHtml, styleCss } from './ui/page.ts';

const defaultUiDir = new URL('./ui/', import.meta.url);
const moduleName = /^[a-z][a-z0-9-]*\.(?:js|ts|js\.map)$/;

export interface Asset {
  readonly body: string;
  readonly type: string;
}

export class UiAssets {
  /** `.js` when the compiled modules are present (dist/), else `.ts`. */
  readonly ext: '.js' | '.ts';
  private readonly dir: URL;
  private readonly cache = new Map<string, Asset | null>();
  private page: Asset | undefined;

  /** `dir`: the folder of the browser modules (a file: URL ending in `/`). */
  constructor(dir: URL = defaultUiDir) {
    this.dir = dir;
    this.ext = existsSync(new URL('app.js', dir)) ? '.js' : '.ts';
  }

  index(): Asset {
    this.page ??= { body: pageHtml(`/ui/app${this.ext}`), type: 'text/html; charset=utf-8' };
    return this.page;
  }

  /** `/ui/<name>`: the stylesheet or a browser module; undefined when there is no such file. */
  get(name: string): Asset | undefined {
    if (name === 'style.css') return { body: styleCss, type: 'text/css; charset=utf-8' };
    if (!moduleName.test(name) || name === 'page.ts' || name === 'page.js') return undefined;
    let a = this.cache.get(name);
    if (a === undefined) {
      a = this.load(name);
      this.cache.set(name, a);
    }
    return a ?? undefined;
  }

  private load(name: string): Asset | null {
    const url = new URL(name, this.dir);
    if (!existsSync(url)) return null;
    const text = readFileSync(url, 'utf8');
    if (name.endsWith('.map')) return { body: text, type: 'application/json; charset=utf-8' };
    const body = name.endsWith('.ts') ? stripTypes(text) : text;
    return { body, type: 'text/javascript; charset=utf-8' };
  }
}

/**
 * Node marks `stripTypeScriptTypes` experimental and warns once per process; the warning would
 * land in Cairn's log on the first UI visit and say nothing useful to an operator.
 */
function stripTypes(source: string): string {
  const emit = process.emitWarning;
  process.emitWarning = ((warning: string | Error, ...rest: unknown[]) => {
    const text = typeof warning === 'string' ? warning : warning.message;
    if (text.includes('stripTypeScriptTypes')) return;
    (emit as (...a: unknown[]) => void).call(process, warning, ...rest);
  }) as typeof process.emitWarning;
  try {
    return stripTypeScriptTypes(source, { mode: 'strip' });
  } finally {
    process.emitWarning = emit;
  }
}
