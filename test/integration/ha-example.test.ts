// examples/ha: the keepalived configuration passes keepalived's own config test (when keepalived
// is installed), and check-cairn.sh, its health check, passes against a running Cairn and fails
// once nothing answers on the admin address.

import { execFile, execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { expect } from 'chai';
import { freePort, type ManagedProcess, spawnManaged } from '../support/servers.ts';
import { eventually } from './helpers/consul.ts';

const root = resolve(import.meta.dirname, '../..');
const dir = join(root, 'examples/ha');
const checkScript = join(dir, 'check-cairn.sh');

function runCheck(admin: string): Promise<number> {
  return new Promise((done) => {
    execFile('sh', [checkScript], { env: { ...process.env, CAIRN_ADMIN: admin }, timeout: 10_000 }, (e) =>
      done(e === null ? 0 : typeof e.code === 'number' ? e.code : 1),
    );
  });
}

function which(bin: string): string | undefined {
  for (const d of (process.env.PATH ?? '').split(':').concat(['/usr/sbin', '/sbin'])) {
    try {
      execFileSync('test', ['-x', join(d, bin)]);
      return join(d, bin);
    } catch {
      // not here
    }
  }
  return undefined;
}

describe('examples/ha (keepalived + check script)', function () {
  this.timeout(60_000);
  let tmp = '';

  before(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'cairn-ha-'));
  });
  after(async () => {
    await rm(tmp, { recursive: true, force: true });
  });

  it('keepalived.conf tracks check-cairn.sh against the admin /health', () => {
    const conf = readFileSync(join(dir, 'keepalived.conf'), 'utf8');
    expect(conf).to.match(/vrrp_script chk_cairn \{[^}]*script "\/etc\/keepalived\/check-cairn\.sh"/);
    expect(conf).to.match(/track_script \{\s*chk_cairn\s*\}/);
    expect(readFileSync(checkScript, 'utf8')).to.include('/health');
    execFileSync('sh', ['-n', checkScript]);
  });

  it('keepalived.conf passes keepalived -t (skipped when keepalived is not installed)', function () {
    const keepalived = which('keepalived');
    if (keepalived === undefined) this.skip();
    // The script where the test can see it. keepalived 2.2's config test kills itself after
    // switching to another script user to check the script's access, hence `root` here.
    const conf = readFileSync(join(dir, 'keepalived.conf'), 'utf8')
      .replace('/etc/keepalived/check-cairn.sh', checkScript)
      .replace('script_user nobody', 'script_user root');
    const file = join(tmp, 'keepalived.conf');
    writeFileSync(file, conf);
    const r = new Promise<{ code: number; stderr: string }>((done) => {
      execFile(keepalived as string, ['-t', '-f', file], { timeout: 10_000 }, (e, _out, stderr) =>
        done({ code: e === null ? 0 : typeof e.code === 'number' ? e.code : 1, stderr }),
      );
    });
    return r.then(({ code, stderr }) => expect(code, stderr).to.equal(0));
  });

  it('check-cairn.sh passes while Cairn serves and fails when it is gone', async () => {
    const admin = `127.0.0.1:${await freePort()}`;
    const listen = `127.0.0.1:${await freePort()}`;
    const cairn: ManagedProcess = spawnManaged(
      'cairn',
      process.execPath,
      [join(root, 'lib/cli/main.ts'), '--demo', '--listen', listen, '--admin', admin, '--log-level', 'warn'],
      {},
    );
    try {
      await eventually(
        () => runCheck(admin),
        (code) => code === 0,
        `check-cairn.sh to pass (cairn: ${cairn.output()})`,
        20_000,
      );
    } finally {
      await cairn.stop();
    }
    expect(await runCheck(admin)).to.not.equal(0);
  });
});
