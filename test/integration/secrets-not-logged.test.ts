// Secrets never reach a log: the real `cairn` process at --log-level debug with the access log on,
// given an admin token, a Consul ACL token (a Consul that refuses connections, so its errors are
// logged) and an etcd password, then sent admin mutations with right and wrong bearer tokens and
// proxied requests carrying credentials. Neither stdout, stderr, /api/status nor /api/routes may
// contain any of them.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { request } from 'undici';
import { closeAll, startUpstream, type Upstream } from './helpers/upstream.ts';
import { freePort } from './tcp-helpers.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));
const cli = join(root, 'lib', 'cli', 'main.ts');

const adminToken = 'ADMIN-TOKEN-4f1c9e7b';
const consulToken = 'CONSUL-TOKEN-8d2a6c31';
const basicPassword = 'BASIC-PASSWORD-77aa';
const secrets = [
  adminToken,
  consulToken,
  basicPassword,
  Buffer.from(`u:${basicPassword}`).toString('base64'),
];

async function until(cond: () => boolean | Promise<boolean>, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('secrets are never logged (real cairn process)', function () {
  this.timeout(30_000);
  let up: Upstream;
  let child: ChildProcess | undefined;
  let dir: string;
  let out = '';

  before(async () => {
    up = await startUpstream('s');
    dir = mkdtempSync(join(tmpdir(), 'cairn-secrets-'));
  });

  after(async () => {
    // exitCode stays null for a process that ended by a signal: check both.
    if (child !== undefined && child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await new Promise((r) => child?.once('exit', r));
    }
    rmSync(dir, { recursive: true, force: true });
    await closeAll([up]);
  });

  it('admin token, Consul token and credentials in requests appear in no log and no API answer', async () => {
    const file = join(dir, 'routes.yaml');
    writeFileSync(file, `routes: |\n  route add s /s http://127.0.0.1:${up.port}/\n`);
    const [port, admin, consulPort] = [await freePort(), await freePort(), await freePort()];
    child = spawn(
      process.execPath,
      [
        cli,
        '--listen',
        `127.0.0.1:${port}`,
        '--admin',
        `127.0.0.1:${admin}`,
        '--admin-token',
        adminToken,
        '--registry',
        `file:${file}`,
        '--registry',
        `consul:http://127.0.0.1:${consulPort}`,
        '--consul-token',
        consulToken,
        '--log-level',
        'debug',
        '--access-log',
        'combined',
      ],
      { cwd: root, env: { ...process.env } },
    );
    child.stdout?.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr?.on('data', (c: Buffer) => (out += c.toString()));
    const origin = `http://127.0.0.1:${port}`;
    const adminOrigin = `http://127.0.0.1:${admin}`;
    await until(async () => {
      try {
        const r = await request(`${origin}/s/x`);
        await r.body.text();
        return r.statusCode === 200;
      } catch {
        return false;
      }
    }, 15_000).catch((e: Error) => {
      throw new Error(`${e.message}; cairn said: ${out}`);
    });

    const auth = `Basic ${Buffer.from(`u:${basicPassword}`).toString('base64')}`;
    for (const headers of [
      { authorization: auth, 'proxy-authorization': auth },
      { authorization: `Bearer ${adminToken}`, cookie: `t=${adminToken}` },
    ]) {
      const r = await request(`${origin}/s/with-credentials`, { headers });
      await r.body.text();
    }
    const manual = `route add s /t http://127.0.0.1:${up.port}/\n`;
    for (const token of ['wrong', adminToken]) {
      const r = await request(`${adminOrigin}/api/manual`, {
        method: 'PUT',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'text/plain' },
        body: manual,
      });
      await r.body.text();
    }
    let apis = '';
    for (const path of ['/api/status', '/api/routes', '/api/manual', '/metrics']) {
      const r = await request(`${adminOrigin}${path}`);
      apis += await r.body.text();
    }
    // a Consul error (connection refused) has been logged by now
    await until(() => /consul/i.test(out), 10_000);
    child.kill('SIGTERM');
    await new Promise((r) => child?.once('exit', r));

    expect(out).to.include('with-credentials'); // the access log did record the requests
    for (const s of secrets) {
      expect(out, `logs contain ${s}`).to.not.include(s);
      expect(apis, `admin API answers contain ${s}`).to.not.include(s);
    }
  });
});
