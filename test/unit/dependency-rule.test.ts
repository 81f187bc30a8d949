// The layering rule of DESIGN.md section 2, enforced on every build:
// - routing/ is pure: it imports only routing/ (relative paths) and node: built-ins;
// - registry-adapters/ import from routing/ only with `import type` / `export type`;
// - lib/ may import anything.
// Imports are found by a small scanner that skips comments, strings, template literals and
// regular expressions, so an import inside a comment or a string does not count.
import { type Dirent, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

interface ImportRef {
  specifier: string;
  /** `import type ...` or `export type ... from`: erased at run time. */
  typeOnly: boolean;
  line: number;
}

type Token =
  | { kind: 'word'; text: string; line: number }
  | { kind: 'string'; text: string; line: number }
  | { kind: 'punct'; text: string; line: number }
  | { kind: 'other'; text: string; line: number };

const wordStart = /[A-Za-z_$]/;
const wordPart = /[A-Za-z0-9_$]/;
// After these a `/` starts a regular expression rather than a division.
const regexAfterWords = new Set([
  'return',
  'typeof',
  'instanceof',
  'in',
  'of',
  'new',
  'delete',
  'void',
  'throw',
  'case',
  'do',
  'else',
  'yield',
  'await',
]);

/** Splits TypeScript source into the tokens that matter for finding imports. */
function tokenize(source: string): Token[] {
  const tokens: Token[] = [];
  // Brace depths at which an enclosing template literal resumes after `${ ... }`.
  const templateStack: number[] = [];
  let braceDepth = 0;
  let line = 1;
  let i = 0;
  const n = source.length;

  const regexAllowed = (): boolean => {
    const prev = tokens[tokens.length - 1];
    if (prev === undefined) return true;
    if (prev.kind === 'string' || prev.kind === 'other') return false;
    if (prev.kind === 'word') return regexAfterWords.has(prev.text);
    return !(prev.text === ')' || prev.text === ']' || prev.text === '}');
  };

  // Reads a template literal body from i (just after ` or after the } closing a ${ }).
  const readTemplate = (): void => {
    const startLine = line;
    let text = '';
    while (i < n) {
      const c = source[i] as string;
      if (c === '\\') {
        text += source.slice(i, i + 2);
        i += 2;
        continue;
      }
      if (c === '\n') line++;
      if (c === '`') {
        i++;
        tokens.push({ kind: 'string', text, line: startLine });
        return;
      }
      if (c === '$' && source[i + 1] === '{') {
        i += 2;
        tokens.push({ kind: 'other', text: 'template', line: startLine });
        templateStack.push(braceDepth);
        braceDepth++;
        return;
      }
      text += c;
      i++;
    }
  };

  while (i < n) {
    const c = source[i] as string;
    const next = source[i + 1];
    if (c === '\n') {
      line++;
      i++;
    } else if (c === ' ' || c === '\t' || c === '\r') {
      i++;
    } else if (c === '/' && next === '/') {
      while (i < n && source[i] !== '\n') i++;
    } else if (c === '/' && next === '*') {
      const end = source.indexOf('*/', i + 2);
      const stop = end === -1 ? n : end + 2;
      for (let j = i; j < stop; j++) if (source[j] === '\n') line++;
      i = stop;
    } else if (c === '"' || c === "'") {
      const startLine = line;
      let text = '';
      i++;
      while (i < n && source[i] !== c && source[i] !== '\n') {
        if (source[i] === '\\') {
          text += source[i + 1] ?? '';
          i += 2;
        } else {
          text += source[i];
          i++;
        }
      }
      i++;
      tokens.push({ kind: 'string', text, line: startLine });
    } else if (c === '`') {
      i++;
      readTemplate();
    } else if (c === '/' && regexAllowed()) {
      let inClass = false;
      i++;
      while (i < n && source[i] !== '\n') {
        const r = source[i];
        if (r === '\\') i++;
        else if (r === '[') inClass = true;
        else if (r === ']') inClass = false;
        else if (r === '/' && !inClass) break;
        i++;
      }
      i++;
      while (i < n && wordPart.test(source[i] as string)) i++;
      tokens.push({ kind: 'other', text: 'regex', line });
    } else if (wordStart.test(c)) {
      let j = i + 1;
      while (j < n && wordPart.test(source[j] as string)) j++;
      tokens.push({ kind: 'word', text: source.slice(i, j), line });
      i = j;
    } else if (/[0-9]/.test(c)) {
      let j = i + 1;
      while (j < n && /[0-9A-Za-z_.]/.test(source[j] as string)) j++;
      tokens.push({ kind: 'other', text: source.slice(i, j), line });
      i = j;
    } else if (c === '{') {
      braceDepth++;
      tokens.push({ kind: 'punct', text: c, line });
      i++;
    } else if (c === '}') {
      braceDepth--;
      i++;
      if (templateStack.length > 0 && templateStack[templateStack.length - 1] === braceDepth) {
        templateStack.pop();
        readTemplate();
      } else {
        tokens.push({ kind: 'punct', text: c, line });
      }
    } else {
      tokens.push({ kind: 'punct', text: c, line });
      i++;
    }
  }
  return tokens;
}

const isWord = (t: Token | undefined, text: string): boolean => t?.kind === 'word' && t.text === text;
const isPunct = (t: Token | undefined, text: string): boolean => t?.kind === 'punct' && t.text === text;

/** Every module specifier a file imports or re-exports, static or dynamic. */
function findImports(source: string): ImportRef[] {
  const tokens = tokenize(source);
  const refs: ImportRef[] = [];
  for (let k = 0; k < tokens.length; k++) {
    const t = tokens[k] as Token;
    const prev = tokens[k - 1];
    if (t.kind !== 'word' || isPunct(prev, '.')) continue;
    const a = tokens[k + 1];

    // import('x'), require('x')
    if ((t.text === 'import' || t.text === 'require') && isPunct(a, '(')) {
      const arg = tokens[k + 2];
      const specifier = arg?.kind === 'string' && isPunct(tokens[k + 3], ')') ? arg.text : '<computed>';
      refs.push({ specifier, typeOnly: false, line: t.line });
      continue;
    }
    if (t.text !== 'import' && t.text !== 'export') continue;
    if (isPunct(a, '.')) continue; // import.meta

    // import 'x' (side effects only)
    if (t.text === 'import' && a?.kind === 'string') {
      refs.push({ specifier: a.text, typeOnly: false, line: t.line });
      continue;
    }
    const b = tokens[k + 2];
    // `import type from 'x'` and `import type, {...}` import a default binding named "type".
    const typeOnly = isWord(a, 'type') && !isWord(b, 'from') && !isPunct(b, ',') && !isPunct(b, '=');
    if (t.text === 'export') {
      const first = typeOnly ? b : a;
      if (!isPunct(first, '{') && !isPunct(first, '*')) continue; // export const / function / default ...
    }
    // Find `from '<specifier>'` at brace depth 0 before the statement ends.
    let depth = 0;
    for (let m = k + 1; m < tokens.length && m < k + 2000; m++) {
      const u = tokens[m] as Token;
      if (isPunct(u, '{')) depth++;
      else if (isPunct(u, '}')) depth--;
      else if (depth === 0 && (isPunct(u, ';') || isPunct(u, '='))) break;
      else if (depth === 0 && isWord(u, 'from') && tokens[m + 1]?.kind === 'string') {
        refs.push({ specifier: (tokens[m + 1] as Token).text, typeOnly, line: t.line });
        break;
      } else if (depth === 0 && m > k + 1 && (isWord(u, 'import') || isWord(u, 'export'))) break;
    }
  }
  return refs;
}

type Layer = 'routing' | 'registry-adapters' | 'lib' | 'other';

function layerOf(repoRelativePath: string): Layer {
  const top = repoRelativePath.split('/')[0];
  return top === 'routing' || top === 'registry-adapters' || top === 'lib' ? top : 'other';
}

/** Violations of the layering rule in one file (path relative to the repo root, with `/`). */
function checkFile(repoRelativePath: string, source: string): string[] {
  const layer = layerOf(repoRelativePath);
  if (layer === 'lib' || layer === 'other') return [];
  const problems: string[] = [];
  for (const ref of findImports(source)) {
    const where = `${repoRelativePath}:${ref.line} imports '${ref.specifier}'`;
    const relativeSpec = ref.specifier.startsWith('./') || ref.specifier.startsWith('../');
    const target = relativeSpec
      ? relative(repoRoot, resolve(repoRoot, dirname(repoRelativePath), ref.specifier))
          .split(sep)
          .join('/')
      : undefined;
    const targetLayer = target === undefined ? undefined : layerOf(target);
    if (layer === 'routing') {
      if (ref.specifier.startsWith('node:')) continue;
      if (targetLayer === 'routing') continue;
      problems.push(`${where}: routing/ may import only routing/ (relative paths) and node: built-ins`);
    } else if (targetLayer === 'routing' && !ref.typeOnly) {
      problems.push(`${where}: registry-adapters/ may import from routing/ only with \`import type\``);
    }
  }
  return problems;
}

function listTsFiles(dir: string): string[] {
  let entries: Dirent[];
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return [];
  }
  const files: string[] = [];
  for (const entry of entries) {
    const full = join(dir, entry.name);
    if (entry.isDirectory()) {
      if (entry.name !== 'node_modules') files.push(...listTsFiles(full));
    } else if (/\.[cm]?ts$/.test(entry.name)) {
      files.push(full);
    }
  }
  return files;
}

describe('dependency rule (routing/ is pure, adapters import only types from it)', () => {
  it('holds for every .ts file under routing/ and registry-adapters/', () => {
    const problems: string[] = [];
    let checked = 0;
    for (const top of ['routing', 'registry-adapters']) {
      for (const file of listTsFiles(join(repoRoot, top))) {
        const rel = relative(repoRoot, file).split(sep).join('/');
        problems.push(...checkFile(rel, readFileSync(file, 'utf8')));
        checked++;
      }
    }
    expect(checked, 'no .ts file found under routing/').to.be.greaterThan(0);
    expect(problems, problems.join('\n')).to.deep.equal([]);
  });

  describe('the checker itself', () => {
    it('finds static, type-only, re-export, side-effect and dynamic imports', () => {
      const source = [
        "import { a } from './a.ts';",
        "import type { B } from './b.ts';",
        "import type, { c } from './c.ts';",
        "import * as d from 'node:fs';",
        "import './side-effect.ts';",
        "export { e } from './e.ts';",
        "export type { F } from './f.ts';",
        "export * from './g.ts';",
        'import {',
        '  h,',
        "} from 'undici';",
        "const i = await import('./i.ts');",
        'export const notAnImport = 1;',
        'export { notAnImport as alias };',
        "const j = import.meta.url; import k from 'k';",
      ].join('\n');
      expect(
        findImports(source).map((r) => `${r.line}:${r.specifier}:${r.typeOnly ? 'type' : 'value'}`),
      ).to.deep.equal([
        '1:./a.ts:value',
        '2:./b.ts:type',
        '3:./c.ts:value',
        '4:node:fs:value',
        '5:./side-effect.ts:value',
        '6:./e.ts:value',
        '7:./f.ts:type',
        '8:./g.ts:value',
        '9:undici:value',
        '12:./i.ts:value',
        '15:k:value',
      ]);
    });

    it('ignores imports inside comments, strings, templates and regular expressions', () => {
      const source = [
        "// import x from 'undici';",
        "/* import y from '../lib/z.ts'; */",
        'const s = "import q from \'pino\'";',
        // biome-ignore lint/suspicious/noTemplateCurlyInString: the source text of a template literal
        "const t = `import r from '${'yaml'}' ${'}'}`;",
        "const re = /import u from 'v'/g;",
        "import { ok } from './ok.ts';",
      ].join('\n');
      expect(findImports(source).map((r) => r.specifier)).to.deep.equal(['./ok.ts']);
    });

    it('reports a routing/ file that imports an npm package, lib/ or an adapter', () => {
      const source = [
        "import { request } from 'undici';",
        "import { log } from '../lib/logging.ts';",
        "import type { Watcher } from '../registry-adapters/consul/watch.ts';",
        "import { createHash } from 'node:crypto';",
        "import { parseTag } from './tags.ts';",
        "import { readFile } from 'fs';",
      ].join('\n');
      const problems = checkFile('routing/bad.ts', source);
      expect(problems).to.have.length(4);
      expect(problems[0]).to.contain("routing/bad.ts:1 imports 'undici'");
      expect(problems[1]).to.contain("'../lib/logging.ts'");
      expect(problems[2]).to.contain("'../registry-adapters/consul/watch.ts'");
      expect(problems[3]).to.contain("routing/bad.ts:6 imports 'fs'");
    });

    it('reports an adapter that imports a value from routing/, accepts `import type`', () => {
      const source = [
        "import type { ServiceInstance } from '../../routing/types.ts';",
        "import { buildTable } from '../../routing/table.ts';",
        "import { Etcd3 } from 'etcd3';",
        "import { log } from '../../lib/logging.ts';",
        "export type { Snapshot } from '../../routing/types.ts';",
        "export { parseTag } from '../../routing/tags.ts';",
      ].join('\n');
      const problems = checkFile('registry-adapters/etcd/watch.ts', source);
      expect(problems).to.deep.equal([
        "registry-adapters/etcd/watch.ts:2 imports '../../routing/table.ts': registry-adapters/ may import from routing/ only with `import type`",
        "registry-adapters/etcd/watch.ts:6 imports '../../routing/tags.ts': registry-adapters/ may import from routing/ only with `import type`",
      ]);
    });

    it('lets lib/ import anything', () => {
      expect(
        checkFile('lib/controller.ts', "import { buildTable } from '../routing/table.ts';"),
      ).to.deep.equal([]);
    });
  });
});
