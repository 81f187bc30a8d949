// No Docker engine runs on these machines, so the deployment files are checked as far as they
// can be here: the Dockerfile against a checklist (and its CMD run outside Docker), the file
// example's compose stack and registry through Cairn's real loaders, the systemd unit's command
// line through the real config loader.

import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { expect } from 'chai';
import { parse as parseYaml } from 'yaml';
import { loadConfig } from '../../lib/config/index.ts';
import { parseFileRegistry } from '../../registry-adapters/file/parse.ts';
import { buildTable, tableConfig } from '../../routing/table.ts';
import { freePort } from '../support/servers.ts';

const root = resolve(import.meta.dirname, '../..');

interface Instruction {
  readonly op: string;
  readonly args: string;
  readonly stage: number;
}

/** Dockerfile instructions with line continuations joined; comments and parser directives dropped. */
function dockerfile(): Instruction[] {
  const text = readFileSync(join(root, 'Dockerfile'), 'utf8').replace(/\\\n\s*/g, ' ');
  const out: Instruction[] = [];
  let stage = -1;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const sp = line.indexOf(' ');
    const op = line.slice(0, sp).toUpperCase();
    if (op === 'FROM') stage++;
    out.push({ op, args: line.slice(sp + 1).trim(), stage });
  }
  return out;
}

function jsonArgs(args: string): string[] {
  return JSON.parse(args) as string[];
}

describe('Dockerfile', () => {
  const ins = dockerfile();
  const last = Math.max(...ins.map((i) => i.stage));
  const runtime = ins.filter((i) => i.stage === last);

  it('is a multi-stage build on the official Node 24 slim image', () => {
    const froms = ins.filter((i) => i.op === 'FROM');
    expect(froms.length).to.be.at.least(2);
    for (const f of froms) expect(f.args).to.match(/^node:24-slim\b/);
  });

  it('builds the same artefact as the tests and the npm package (npm run build)', () => {
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { bin: { cairn: string } };
    expect(ins.some((i) => i.op === 'RUN' && /npm run build\b/.test(i.args))).to.equal(true);
    expect(runtime.some((i) => i.op === 'COPY' && /--from=build .*dist/.test(i.args))).to.equal(true);
    const entry = jsonArgs(runtime.find((i) => i.op === 'ENTRYPOINT')?.args ?? '[]');
    expect(entry).to.deep.equal(['node', pkg.bin.cairn]);
  });

  it('runs as a non-root user with production dependencies only', () => {
    const user = runtime.find((i) => i.op === 'USER');
    expect(user?.args).to.be.oneOf(['node', '1000']);
    expect(ins.some((i) => i.op === 'RUN' && /npm ci .*--omit=dev/.test(i.args))).to.equal(true);
  });

  it('.dockerignore keeps node_modules and .git out of the context, and nothing the Dockerfile copies', () => {
    const ignored = readFileSync(join(root, '.dockerignore'), 'utf8')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l !== '' && !l.startsWith('#'));
    expect(ignored).to.include.members(['node_modules', '.git']);
    const sources = ins
      .filter((i) => i.op === 'COPY' && !i.args.startsWith('--from'))
      .flatMap((i) => i.args.split(/\s+/).slice(0, -1));
    expect(sources).to.include('lib');
    for (const src of sources) {
      for (const pattern of ignored) {
        const re = new RegExp(
          `^${pattern.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*')}(/|$)`,
        );
        expect(re.test(src), `.dockerignore's ${pattern} hides COPY ${src}`).to.equal(false);
      }
    }
  });

  it('has a health check on the admin /health, SIGTERM as stop signal, and the two ports exposed', () => {
    const hc = runtime.find((i) => i.op === 'HEALTHCHECK');
    expect(hc?.args).to.include('127.0.0.1:9998/health');
    expect(runtime.find((i) => i.op === 'STOPSIGNAL')?.args).to.equal('SIGTERM');
    expect(runtime.find((i) => i.op === 'EXPOSE')?.args.split(/\s+/)).to.have.members(['9999', '9998']);
  });

  it('its CMD defaults parse, and start Cairn outside Docker (with the admin token the image requires)', async () => {
    const cmd = jsonArgs(runtime.find((i) => i.op === 'CMD')?.args ?? '[]');
    expect(cmd).to.deep.equal(['--listen', ':9999', '--admin', ':9998']);
    const listen = await freePort();
    const admin = await freePort();
    const args = cmd.map((a) =>
      a.replace(':9999', `127.0.0.1:${listen}`).replace(':9998', `127.0.0.1:${admin}`),
    );
    const child = spawn(
      process.execPath,
      [join(root, 'lib/cli/main.ts'), ...args, '--demo', '--log-level', 'warn'],
      {
        env: { ...process.env, CAIRN_ADMIN_TOKEN: 'test-token' },
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    try {
      let ok = false;
      for (let i = 0; i < 100 && !ok; i++) {
        try {
          // 503 'starting' until a worker listens (--workers defaults to one per CPU).
          ok = (await fetch(`http://127.0.0.1:${admin}/health`)).ok;
        } catch {
          // not up yet
        }
        if (!ok) await new Promise((r) => setTimeout(r, 100));
      }
      expect(ok, stderr).to.equal(true);
    } finally {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    }
  }).timeout(20_000);
});

describe('examples/file: compose stack and registry', () => {
  const dir = join(root, 'examples/file');
  const compose = parseYaml(readFileSync(join(dir, 'compose.yaml'), 'utf8')) as {
    services: Record<
      string,
      {
        build?: { context: string; dockerfile: string };
        command?: string[];
        environment?: Record<string, string>;
        ports?: string[];
        volumes?: string[];
      }
    >;
  };

  it('builds Cairn from the Dockerfile and publishes the proxy and admin ports', () => {
    const cairn = compose.services.cairn;
    expect(cairn?.build?.dockerfile).to.equal('Dockerfile');
    expect(existsSync(join(dir, cairn?.build?.context ?? '', 'Dockerfile'))).to.equal(true);
    expect(cairn?.ports).to.include.members(['9999:9999', '9998:9998']);
  });

  it("passes Cairn's real config loader with the container's flags and env, token included", () => {
    const cairn = compose.services.cairn;
    const loaded = loadConfig(cairn?.command ?? [], cairn?.environment ?? {});
    expect(loaded.kind, JSON.stringify(loaded)).to.equal('config');
    if (loaded.kind !== 'config') return;
    expect(loaded.config.adminToken).to.be.a('string');
    expect(loaded.config.registries.map((r) => r.kind)).to.deep.equal(['file']);
  });

  it('mounts a registry file that routes every compose backend', () => {
    const cairn = compose.services.cairn;
    const mount = (cairn?.volumes ?? []).find((v) => v.includes('/etc/cairn/routes.yaml'));
    const hostFile = join(dir, mount?.split(':')[0] ?? '');
    const parsed = parseFileRegistry(readFileSync(hostFile, 'utf8'), hostFile);
    expect('snapshot' in parsed).to.equal(true);
    if (!('snapshot' in parsed)) return;
    const table = buildTable(parsed.snapshot);
    expect(table.problems).to.deep.equal([]);
    const addresses = new Set(parsed.snapshot.instances.map((i) => i.address));
    for (const a of addresses) expect(Object.keys(compose.services)).to.include(a);
    expect(tableConfig(table, true).length).to.equal(parsed.snapshot.instances.length);
  });
});

describe('examples/systemd/cairn.service', () => {
  const unit = readFileSync(join(root, 'examples/systemd/cairn.service'), 'utf8');

  it('starts Cairn with flags the real config loader accepts, on the example registry path', () => {
    const exec = /^ExecStart=(.+)$/m.exec(unit)?.[1] ?? '';
    const [bin, ...args] = exec.split(/\s+/);
    expect(bin).to.equal('/usr/local/bin/cairn');
    const loaded = loadConfig(args, {});
    expect(loaded.kind, JSON.stringify(loaded)).to.equal('config');
    expect(dirname(args[args.indexOf('--registry') + 1]?.replace('file:', '') ?? '')).to.equal('/etc/cairn');
  });

  it('drains on SIGTERM and runs hardened', () => {
    for (const line of [
      'KillSignal=SIGTERM',
      'DynamicUser=yes',
      'NoNewPrivileges=yes',
      'ProtectSystem=strict',
      'AmbientCapabilities=CAP_NET_BIND_SERVICE',
    ]) {
      expect(unit).to.include(line);
    }
  });
});
