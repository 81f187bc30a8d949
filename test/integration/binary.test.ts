// The standalone executable (`npm run build:binary`): built here, then run with an empty
// environment (no PATH, so no Node; a temp working directory, so no node_modules) against a
// file registry, proxying a real request.

import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { expect } from 'chai';
import { freePort } from '../support/servers.ts';

const root = resolve(import.meta.dirname, '../..');

describe('standalone binary', function () {
  this.timeout(120_000);
  let dir: string;
  let binary: string;
  let backend: http.Server;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'cairn-bin-'));
    binary = join(dir, 'cairn');
    execFileSync(process.execPath, [join(root, 'examples/standalone/build-binary.ts'), '--out', binary], {
      cwd: root,
      stdio: 'ignore',
    });
    backend = http.createServer((req, res) => res.end(`backend saw ${req.url}`));
    await new Promise<void>((r) => backend.listen(0, '127.0.0.1', () => r()));
  });

  after(async () => {
    backend?.closeAllConnections();
    await new Promise<void>((r) => (backend ? backend.close(() => r()) : r()));
    rmSync(dir, { recursive: true, force: true });
  });

  it('prints its version and the table with no Node and no node_modules around', () => {
    const port = (backend.address() as AddressInfo).port;
    const reg = join(dir, 'routes.yaml');
    writeFileSync(
      reg,
      `services:\n  - name: web\n    instances:\n      - { id: w1, address: 127.0.0.1, port: ${port}, tags: ["urlprefix-/web strip=/web"] }\n`,
    );
    const version = execFileSync(binary, ['--version'], { cwd: dir, env: {} }).toString().trim();
    expect(version).to.match(/^cairn \d+\.\d+\.\d+/);
    const routes = execFileSync(binary, ['routes', '--registry', `file:${reg}`], {
      cwd: dir,
      env: {},
    }).toString();
    expect(routes.trim()).to.equal(
      `route add web /web http://127.0.0.1:${port}/ weight 1.0000 opts "strip=/web"`,
    );
  });

  it('carries the etcd client it imports on first use (an etcd registry answers with the gRPC error)', () => {
    // Port 1 refuses: the message must come from the etcd client, not from a missing module.
    const r = spawnSync(binary, ['routes', '--registry', 'etcd:http://127.0.0.1:1'], {
      cwd: dir,
      env: {},
      encoding: 'utf8',
      timeout: 20_000,
    });
    expect(r.stderr).to.include('UNAVAILABLE');
    expect(r.stderr).to.not.match(/Cannot find module|ERR_MODULE_NOT_FOUND/);
  });

  it('serves: proxies a request through the binary', async () => {
    const port = (backend.address() as AddressInfo).port;
    const reg = join(dir, 'serve.yaml');
    writeFileSync(
      reg,
      `services:\n  - name: web\n    instances:\n      - { id: w1, address: 127.0.0.1, port: ${port}, tags: ["urlprefix-/web strip=/web"] }\n`,
    );
    const listen = await freePort();
    const admin = await freePort();
    const child = spawn(
      binary,
      [
        '--listen',
        `127.0.0.1:${listen}`,
        '--admin',
        `127.0.0.1:${admin}`,
        '--registry',
        `file:${reg}`,
        '--log-level',
        'warn',
      ],
      { cwd: dir, env: {}, stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    try {
      let body = '';
      const deadline = Date.now() + 10_000;
      while (Date.now() < deadline) {
        try {
          const r = await fetch(`http://127.0.0.1:${listen}/web/hello?x=1`);
          body = await r.text();
          if (r.status === 200) break;
        } catch {
          // not listening yet
        }
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(body, stderr).to.equal('backend saw /hello?x=1');
    } finally {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    }
  });
});
