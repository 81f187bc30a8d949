// The admin UI is safe against what registries put in it: service names, tags, route commands,
// problems and explained URLs carrying HTML and script payloads are shown as text. Checked in
// real headless Chromium (as admin-ui.test.ts): no payload runs (a marker the payloads would set
// stays unset, no dialog opens) and no element is injected (no <img>, <svg>, <script>, <iframe>
// or on* attribute anywhere in the DOM), while the payload text itself is visible.

import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import { type Cairn, startCairn } from '../integration/helpers/cairn.ts';
import { closeAll, startUpstream, type Upstream } from '../integration/helpers/upstream.ts';

const chromiumPath = '/usr/bin/chromium';
const launchFlags = ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-sync'];

// Payloads without spaces work as service names and single route-command words.
const imgName = '<img/src=x/onerror=window.__xss=1>';
const svgName = '<svg/onload=window.__xss=2>';
const scriptTag = 'urlprefix-/s"><script>window.__xss=3</script>';
const attrTag = `urlprefix-/a x='"><iframe/src=javascript:window.__xss=4>'`;
const optionTag = 'urlprefix-/o <img/src=x/onerror=alert(5)>=1';

describe('admin web UI: injected service names and tags (headless Chromium)', function () {
  this.timeout(40_000);
  let up: Upstream;
  let cairn: Cairn;
  let context: BrowserContext | undefined;
  let profile: string | undefined;

  before(async function () {
    if (!existsSync(chromiumPath)) this.skip();
    up = await startUpstream('xss');
    const inst = (id: string, tags: string[]) => ({ id, address: '127.0.0.1', port: up.port, tags });
    cairn = await startCairn({
      services: [
        { name: imgName, instances: [inst('i1', ['urlprefix-/img', scriptTag, attrTag])] },
        { name: svgName, instances: [inst('<b>bold</b>', ['urlprefix-/svg', optionTag])] },
      ],
      routes: `route add ${imgName} /manual http://127.0.0.1:${up.port}/ tags "<script>window.__xss=6</script>"`,
    });
    profile = mkdtempSync(join(tmpdir(), 'cairn-chromium-xss-'));
    context = await chromium.launchPersistentContext(profile, {
      executablePath: chromiumPath,
      headless: true,
      args: launchFlags,
    });
  });

  after(async () => {
    await context?.close();
    if (profile !== undefined) rmSync(profile, { recursive: true, force: true });
    await cairn?.stop();
    await closeAll([up]);
  });

  async function injected(page: Page): Promise<string[]> {
    return page.evaluate(() => {
      const found: string[] = [];
      for (const el of document.querySelectorAll('img, svg, iframe, object, embed, b'))
        found.push(el.outerHTML);
      const scripts = [...document.querySelectorAll('script')].filter((s) => !s.src);
      for (const s of scripts) if (s.textContent?.includes('__xss')) found.push(s.outerHTML);
      for (const el of document.querySelectorAll('*')) {
        for (const a of el.getAttributeNames()) if (a.startsWith('on')) found.push(`${el.tagName} ${a}`);
      }
      if ((window as unknown as { __xss?: unknown }).__xss !== undefined) found.push('window.__xss set');
      return found;
    });
  }

  it('shows names, tags, problems and history as text; nothing runs, nothing is injected', async () => {
    if (context === undefined) throw new Error('no browser');
    const page = await context.newPage();
    const dialogs: string[] = [];
    page.on('dialog', async (d) => {
      dialogs.push(d.message());
      await d.dismiss();
    });
    const adminOrigin = `http://127.0.0.1:${cairn.server.adminAddress()?.port ?? 0}`;
    await page.goto(`${adminOrigin}/`);
    await page.waitForSelector('body[data-ready="true"]', { timeout: 10_000 });
    // the payloads are there, as text
    const routes = await page.locator('#routes').innerText();
    expect(routes).to.include(imgName);
    expect(routes).to.include(svgName);
    const problems = await page.locator('#problems').innerText();
    expect(problems.length).to.be.greaterThan(0);
    // filter with a payload (kept in the URL, rendered back into the input)
    await page.fill('#filter', imgName);
    expect(await page.locator('#routes tbody tr').count()).to.be.at.least(1);
    // explain a URL whose path carries a payload
    await page.fill('#explain-url', `http://x.example/img/"><img/src=x/onerror=window.__xss=7>`);
    await page.click('#explain-form button[type="submit"]');
    await page.waitForFunction(() => (document.querySelector('#explain-result')?.textContent ?? '') !== '');
    // reload with a payload in ?filter=
    await page.goto(`${adminOrigin}/?filter=${encodeURIComponent(svgName)}`);
    await page.waitForSelector('body[data-ready="true"]', { timeout: 10_000 });
    await new Promise((r) => setTimeout(r, 300));
    expect(await injected(page)).to.deep.equal([]);
    expect(dialogs).to.deep.equal([]);
    await page.close();
  });

  it('the API serves names and tags as JSON, the UI page with a script-src CSP', async () => {
    const adminOrigin = `http://127.0.0.1:${cairn.server.adminAddress()?.port ?? 0}`;
    const page = await fetch(`${adminOrigin}/`);
    expect(page.headers.get('content-security-policy')).to.include("default-src 'self'");
    expect(page.headers.get('x-content-type-options')).to.equal('nosniff');
    await page.text();
    const routes = await fetch(`${adminOrigin}/api/routes`);
    expect(routes.headers.get('content-type')).to.match(/^application\/json/);
    // JSON, never sniffed as HTML: the payload is data
    expect(routes.headers.get('x-content-type-options')).to.equal('nosniff');
    expect(JSON.stringify(await routes.json())).to.include(imgName);
  });
});
