import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { expect } from 'chai';
import { UiAssets } from '../../lib/admin/ui-assets.ts';

describe('admin UI assets', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'cairn-ui-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));
  const assets = () => new UiAssets(pathToFileURL(`${dir}/`));

  it('from source: serves the .ts modules with their types stripped', () => {
    writeFileSync(
      join(dir, 'app.ts'),
      "import type { X } from './x.ts';\nconst n: number = 1;\nexport { n };\n",
    );
    const a = assets();
    expect(a.ext).to.equal('.ts');
    expect(a.index().body).to.include('<script type="module" src="/ui/app.ts">');
    const app = a.get('app.ts');
    expect(app?.type).to.match(/^text\/javascript/);
    expect(app?.body).to.not.include('import type');
    expect(app?.body).to.not.include(': number');
    expect(app?.body).to.include('const n');
  });

  it('built (dist/): serves the compiled .js modules as they are', () => {
    writeFileSync(join(dir, 'app.js'), 'export const n = 1;\n');
    writeFileSync(join(dir, 'app.js.map'), '{}');
    const a = assets();
    expect(a.ext).to.equal('.js');
    expect(a.index().body).to.include('src="/ui/app.js"');
    expect(a.get('app.js')?.body).to.equal('export const n = 1;\n');
    expect(a.get('app.js.map')?.type).to.match(/^application\/json/);
  });

  it('serves the stylesheet, and nothing outside the module names', () => {
    writeFileSync(join(dir, 'page.ts'), 'export {};\n');
    const a = assets();
    expect(a.get('style.css')?.type).to.match(/^text\/css/);
    for (const name of [
      'page.ts',
      'missing.ts',
      '../server.ts',
      'a/b.ts',
      '.hidden.ts',
      'App.ts',
      'app.json',
    ]) {
      expect(a.get(name), name).to.equal(undefined);
    }
  });

  it('the real UI modules all load from source', () => {
    const a = new UiAssets();
    for (const m of [
      'app',
      'api',
      'dom',
      'format',
      'routes-view',
      'status-view',
      'explain-view',
      'overrides-view',
      'problems-view',
      'history-view',
    ]) {
      const body = a.get(`${m}${a.ext}`)?.body;
      expect(body, m).to.be.a('string').and.not.equal('');
    }
  });
});
