// The web UI in real headless Chromium (Debian's /usr/bin/chromium driven by playwright-core; no
// browser download): the table renders a file registry's routes, the filter works and is kept
// in the URL, a registry change appears without a reload, explain shows the right target, an
// override saved in the editor changes routing (checked with a real request), and a save with a
// stale version shows the conflict. A screenshot is saved as a test artifact
// (.cache/artifacts/ui.png; CAIRN_UPDATE_SCREENSHOT=1 also refreshes docs/ui.png for the README).

import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import { request } from 'undici';
import { type Cairn, type RegistryContent, startCairn, waitFor } from '../integration/helpers/cairn.ts';
import { closeAll, startUpstream, type Upstream } from '../integration/helpers/upstream.ts';

const chromiumPath = '/usr/bin/chromium';
const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const launchFlags = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

function instance(u: Upstream, tags: string[]) {
  return { id: u.name, address: '127.0.0.1', port: u.port, tags };
}

describe('admin web UI (headless Chromium)', function () {
  this.timeout(30_000);

  let ups: Record<string, Upstream> = {};
  let cairn: Cairn;
  let context: BrowserContext | undefined;
  let profile: string | undefined;
  let page: Page;
  let adminOrigin: string;
  const pageErrors: string[] = [];

  const registry = (extra: NonNullable<RegistryContent['services']> = []): RegistryContent => {
    const u = ups as Record<'api1' | 'api2' | 'web1' | 'static1', Upstream>;
    return {
      services: [
        {
          name: 'api',
          instances: [
            instance(u.api1, ['urlprefix-/api strip=/api']),
            instance(u.api2, ['urlprefix-/api strip=/api']),
          ],
        },
        { name: 'web', instances: [instance(u.web1, ['urlprefix-www.example.com/'])] },
        {
          name: 'static',
          instances: [
            instance(u.static1, ['urlprefix-/static', 'urlprefix-/assets bogus-option=1 strip=nolead']),
          ],
        },
        ...extra,
      ],
    };
  };

  before(async function () {
    if (!existsSync(chromiumPath)) {
      // ensure-servers.sh installs it; CAIRN_SKIP_BROWSER=1 leaves it out on purpose.
      this.skip();
    }
    for (const n of ['api1', 'api2', 'web1', 'static1', 'live1', 'override1'])
      ups[n] = await startUpstream(n);
    cairn = await startCairn(registry());
    adminOrigin = `http://127.0.0.1:${cairn.server.adminAddress()?.port ?? 0}`;
    profile = mkdtempSync(join(tmpdir(), 'cairn-chromium-'));
    context = await chromium.launchPersistentContext(profile, {
      executablePath: chromiumPath,
      headless: true,
      args: launchFlags,
      viewport: { width: 1360, height: 900 },
    });
  });

  after(async () => {
    await context?.close();
    if (profile !== undefined) rmSync(profile, { recursive: true, force: true });
    await cairn?.stop();
    await closeAll(Object.values(ups));
    ups = {};
  });

  async function open(query = ''): Promise<Page> {
    if (context === undefined) throw new Error('no browser');
    const p = await context.newPage();
    p.on('pageerror', (e) => pageErrors.push(e.message));
    await p.goto(`${adminOrigin}/${query}`);
    await p.waitForSelector('body[data-ready="true"]', { timeout: 5000 });
    return p;
  }

  beforeEach(async () => {
    page = await open();
  });

  afterEach(async () => {
    await page?.close();
    expect(pageErrors, 'errors in the page').to.deep.equal([]);
  });

  const rowTexts = (p: Page = page) => p.locator('#routes tbody tr').allInnerTexts();

  it('renders the routes of the file registry, with accessible markup', async () => {
    const rows = await rowTexts();
    expect(rows).to.have.length(4);
    const api = rows.filter((r) => r.includes('/api'));
    expect(api).to.have.length(2);
    expect(api.join('\n')).to.include(`http://127.0.0.1:${ups.api1?.port}/`);
    expect(api.join('\n')).to.include('50 %');
    expect(rows.join('\n')).to.include('www.example.com/');
    expect(rows.every((r) => r.includes('passing'))).to.equal(true);
    expect(await page.locator('#route-count').innerText()).to.equal('4 targets in 3 routes');
    // Registry status bar, table version, problems (the bad tag), change history.
    expect(await page.locator('#status').innerText()).to.include(`file:${cairn.file}`);
    expect(await page.locator('#status .chip.up').count()).to.equal(1);
    const version = cairn.server.controller.current.table.version;
    expect(await page.locator('#table-version').innerText()).to.include(version.slice(0, 8));
    expect(await page.locator('#problems').innerText()).to.include('static/static1');
    expect(await page.locator('#history > li').count()).to.be.at.least(1);
    // A real table with column headers, and a label for every control.
    expect(await page.locator('#routes thead th[scope="col"]').count()).to.equal(10);
    const unlabelled = await page.evaluate(() =>
      [...document.querySelectorAll('input, textarea')]
        .filter((el) => (el as HTMLInputElement).labels?.length === 0)
        .map((el) => el.id),
    );
    expect(unlabelled).to.deep.equal([]);
  });

  it('filters by service, host, path, tag or address and keeps the filter in ?filter=', async () => {
    await page.fill('#filter', 'example.com');
    expect(await rowTexts()).to.have.length(1);
    expect(new URL(page.url()).searchParams.get('filter')).to.equal('example.com');
    await page.fill('#filter', `127.0.0.1:${ups.api2?.port}`);
    const byAddress = await rowTexts();
    expect(byAddress).to.have.length(1);
    expect(byAddress[0]).to.include('api');
    await page.fill('#filter', 'nothing-matches-this');
    expect(await rowTexts()).to.have.length(0);
    expect(await page.locator('#routes-empty').innerText()).to.include('No route matches');

    const linked = await open('?filter=api');
    expect(await linked.inputValue('#filter')).to.equal('api');
    expect(await rowTexts(linked)).to.have.length(2);
    await linked.close();
  });

  it('sorts by a column when its header is clicked', async () => {
    await page.click('#routes th[data-sort="service"] button');
    expect(await page.getAttribute('#routes th[data-sort="service"]', 'aria-sort')).to.equal('ascending');
    const services = await page.locator('#routes tbody td.service').allInnerTexts();
    expect(services.map((s) => s.split('\n')[0])).to.deep.equal(['api', 'api', 'static', 'web']);
    await page.click('#routes th[data-sort="service"] button');
    const reversed = await page.locator('#routes tbody td.service').allInnerTexts();
    expect(reversed.map((s) => s.split('\n')[0])).to.deep.equal(['web', 'static', 'api', 'api']);
  });

  it('shows a registry change live, without reloading the page', async () => {
    await page.evaluate(() => {
      (window as unknown as { marker: number }).marker = 42;
    });
    const live1 = ups.live1 as Upstream;
    await cairn.update(registry([{ name: 'live', instances: [instance(live1, ['urlprefix-/live'])] }]));
    await page.waitForSelector(`#routes tbody tr:has-text("127.0.0.1:${live1.port}")`, { timeout: 2000 });
    expect(await page.evaluate(() => (window as unknown as { marker?: number }).marker)).to.equal(42);
    expect(await page.getAttribute('body', 'data-version')).to.equal(
      cairn.server.controller.current.table.version,
    );
    expect(await page.locator('#history > li').first().innerText()).to.include('+1');
    // Live traffic reaches the row within a stats tick or two.
    for (let i = 0; i < 5; i++) expect((await cairn.fetch('/live/x')).status).to.equal(200);
    const row = page.locator(`#routes tbody tr:has-text("127.0.0.1:${live1.port}")`);
    await waitForText(row.locator('td').nth(5), (t) => t !== '0', 3000);
    expect(await row.locator('td').nth(6).innerText()).to.match(/ms$/);
    await cairn.update(registry());
  });

  it('explains a URL: the chosen route, the next target and the rejected candidates', async () => {
    await page.fill('#explain-url', 'http://www.example.com/api/users');
    await page.click('#explain-form button[type="submit"]');
    await page.waitForSelector('#explain-target');
    expect(await page.locator('#explain-route').innerText()).to.include('www.example.com/');
    expect(await page.locator('#explain-target').innerText()).to.equal(`http://127.0.0.1:${ups.web1?.port}/`);
    expect(await page.locator('#explain-rejected').innerText()).to.include('/api');

    await page.fill('#explain-url', 'http://other.example/nothing');
    await page.click('#explain-form button[type="submit"]');
    await page.waitForSelector('#explain-verdict');
    expect(await page.locator('#explain-verdict').innerText()).to.include('No route');
  });

  it('checks an override before saving: bad lines are shown, nothing is saved', async () => {
    const fileBefore = readFileSync(cairn.file, 'utf8');
    await page.fill('#manual', 'route add x /x http://10.0.0.1/\nroute frobnicate everything');
    await page.waitForSelector('#manual-feedback.error', { timeout: 3000 });
    expect(await page.locator('#manual-feedback').innerText()).to.include('line 2');
    await page.click('#manual-save');
    await page.waitForSelector('#manual-feedback.error:has-text("Not saved")', { timeout: 3000 });
    expect(readFileSync(cairn.file, 'utf8')).to.equal(fileBefore);
  });

  it('saves an override from the editor, and routing follows (a real request)', async () => {
    const target = ups.override1 as Upstream;
    const line = `route add override /override http://127.0.0.1:${target.port}/`;
    await page.fill('#manual', line);
    await page.waitForSelector('#manual-feedback.ok:has-text("1 added")', { timeout: 3000 });
    await page.click('#manual-save');
    await page.waitForSelector('#manual-feedback.ok:has-text("Saved")', { timeout: 3000 });
    await page.waitForSelector('#routes tbody tr:has-text("/override")', { timeout: 3000 });
    const r = await request(`${cairn.origin}/override/hello`);
    await r.body.dump();
    expect(r.headers['x-upstream']).to.equal('override1');
    expect(readFileSync(cairn.file, 'utf8')).to.include(line);
  });

  it('a save with a stale version shows the conflict and keeps the text being edited', async () => {
    await page.fill('#manual', 'route del override');
    // Someone else changes the overrides after this page loaded them.
    const current = (await (await request(`${adminOrigin}/api/manual`)).body.json()) as { version: string };
    const theirs = 'route add someone /else http://10.0.0.99/';
    const put = await request(`${adminOrigin}/api/manual`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ value: theirs, version: current.version }),
    });
    expect(put.statusCode).to.equal(200);
    await put.body.dump();
    await page.click('#manual-save');
    await page.waitForSelector('#manual-feedback.conflict', { timeout: 3000 });
    const feedback = await page.locator('#manual-feedback').innerText();
    expect(feedback).to.include('Conflict');
    expect(await page.inputValue('#manual')).to.equal('route del override');
    expect(readFileSync(cairn.file, 'utf8')).to.include(theirs);
    // "Load the current version" replaces the text with theirs.
    await page.click('#manual-load-current');
    await page.waitForFunction(
      (t) => (document.getElementById('manual') as HTMLTextAreaElement).value === t,
      theirs,
    );
    const reset = (await (await request(`${adminOrigin}/api/manual`)).body.json()) as { version: string };
    const clear = await request(`${adminOrigin}/api/manual`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ value: '', version: reset.version }),
    });
    await clear.body.dump();
  });

  it('is readable on a phone: no horizontal scrolling at 390 px', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    await page.waitForTimeout(100);
    const width = await page.evaluate(() => document.documentElement.scrollWidth);
    expect(width).to.be.at.most(390);
    expect(await page.locator('#routes tbody tr').first().isVisible()).to.equal(true);
  });

  it('saves a screenshot of the UI with live traffic', async () => {
    for (let i = 0; i < 30; i++) await cairn.fetch('/api/users');
    for (let i = 0; i < 10; i++) await cairn.fetch('/', { headers: { host: 'www.example.com' } });
    for (let i = 0; i < 4; i++) await cairn.fetch('/static/app.css');
    const ticks = cairn.server.telemetry.traffic.second;
    await waitFor(() => cairn.server.telemetry.traffic.second >= ticks + 2, 4000, 'two stats ticks');
    await page.waitForTimeout(300);
    await page.fill('#explain-url', 'http://www.example.com/api/users');
    await page.click('#explain-form button[type="submit"]');
    await page.waitForSelector('#explain-target');
    // An override being edited, checked but not saved.
    await page.fill(
      '#manual',
      `# api2 is being upgraded: no traffic until it is back\nroute del api /api http://127.0.0.1:${ups.api2?.port}/`,
    );
    await page.waitForSelector('#manual-feedback.ok:has-text("1 removed")', { timeout: 3000 });
    const dir = join(repoRoot, '.cache', 'artifacts');
    mkdirSync(dir, { recursive: true });
    const shot = join(dir, 'ui.png');
    await page.screenshot({ path: shot, fullPage: true });
    expect(existsSync(shot)).to.equal(true);
    if (process.env.CAIRN_UPDATE_SCREENSHOT === '1') {
      mkdirSync(join(repoRoot, 'docs'), { recursive: true });
      await page.screenshot({ path: join(repoRoot, 'docs', 'ui.png'), fullPage: true });
    }
  });
});

/** Polls a locator's text until `ok` holds. */
async function waitForText(
  loc: ReturnType<Page['locator']>,
  ok: (text: string) => boolean,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    last = await loc.innerText();
    if (ok(last)) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out after ${timeoutMs} ms; last text ${JSON.stringify(last)}`);
}
