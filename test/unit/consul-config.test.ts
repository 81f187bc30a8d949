// The Consul settings of the configuration, and the adapter options the registry factory makes
// of them.

import { expect } from 'chai';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type CairnConfig, loadConfig } from '../../lib/config/index.ts';
import { consulOptions, createRegistry } from '../../lib/registries.ts';
import { ConsulRegistry } from '../../registry-adapters/consul/index.ts';

function load(args: string[], env: Record<string, string> = {}): CairnConfig {
  const r = loadConfig(args, env);
  if (r.kind !== 'config') throw new Error(r.kind === 'error' ? r.error.message : r.kind);
  return r.config;
}

function error(args: string[], env: Record<string, string> = {}): string {
  const r = loadConfig(args, env);
  if (r.kind !== 'error') throw new Error(`expected an error, got ${r.kind}`);
  return r.error.message;
}

describe('consul config', () => {
  it('has the documented defaults', () => {
    const c = load([]);
    expect(c.consulToken).to.equal(undefined);
    expect(c.consulConsistent).to.equal(false);
    expect(c.consulWaitMs).to.equal(300_000);
    expect(c.consulKvPath).to.equal('cairn/config');
    expect(c.consulChecksRequired).to.equal('all');
    expect(c.consulRegister).to.equal(false);
    expect(c.consulRegisterName).to.equal('cairn');
    expect(c.consulRegisterTags).to.deep.equal([]);
    expect(c.consulCaFile).to.equal(undefined);
  });

  it('reads the token from --consul-token, CAIRN_CONSUL_TOKEN, then CONSUL_HTTP_TOKEN', () => {
    expect(load([], { CONSUL_HTTP_TOKEN: 'consul-env' }).consulToken).to.equal('consul-env');
    expect(
      load([], { CONSUL_HTTP_TOKEN: 'consul-env', CAIRN_CONSUL_TOKEN: 'cairn-env' }).consulToken,
    ).to.equal('cairn-env');
    expect(load(['--consul-token', 'flag'], { CAIRN_CONSUL_TOKEN: 'cairn-env' }).consulToken).to.equal(
      'flag',
    );
    expect(load([], { CONSUL_CACERT: '/ca.pem' }).consulCaFile).to.equal('/ca.pem');
  });

  it('parses the other keys', () => {
    const c = load([
      '--consul-consistent',
      '--consul-wait',
      '30s',
      '--consul-kv-path',
      '/lb/routes/',
      '--consul-checks-required',
      'one',
      '--consul-register',
      '--consul-register-name',
      'edge',
      '--consul-register-tags',
      'lb,edge',
      '--consul-register-tags',
      'blue',
      '--consul-register-addr',
      '10.1.2.3:9998',
    ]);
    expect(c.consulConsistent).to.equal(true);
    expect(c.consulWaitMs).to.equal(30_000);
    expect(c.consulKvPath).to.equal('lb/routes');
    expect(c.consulChecksRequired).to.equal('one');
    expect(c.consulRegister).to.equal(true);
    expect(c.consulRegisterName).to.equal('edge');
    expect(c.consulRegisterTags).to.deep.equal(['lb', 'edge', 'blue']);
    expect(c.consulRegisterAddr).to.deep.include({ address: '10.1.2.3', port: 9998 });
  });

  it('rejects bad values with one line naming the key', () => {
    expect(error(['--consul-wait', '20m'])).to.equal(
      'cairn: --consul-wait: expected a duration from 1s to 10m, got "20m"',
    );
    expect(error(['--consul-wait', '100ms'])).to.match(/--consul-wait: expected a duration from 1s to 10m/);
    expect(error(['--consul-checks-required', 'some'])).to.match(
      /--consul-checks-required: expected one of all\|one/,
    );
    expect(error(['--consul-kv-path', '/'])).to.match(/--consul-kv-path: expected a KV key/);
    expect(error(['--consul-register-name', 'a b'])).to.match(
      /--consul-register-name: expected a service name/,
    );
    expect(error(['--consul-register-addr', 'nope'])).to.match(
      /--consul-register-addr: expected \[host\]:port/,
    );
  });
});

describe('consul registry factory', () => {
  it('makes a ConsulRegistry with the configured settings', async () => {
    const c = load([
      '--registry',
      'consul:127.0.0.1:8500',
      '--consul-token',
      't',
      '--consul-register',
      '--admin',
      '0.0.0.0:9998',
      '--tag-prefix',
      'svc-',
      '--log-level',
      'silent',
    ]);
    const spec = c.registries[0];
    if (spec?.kind !== 'consul') throw new Error('no consul spec');
    const o = consulOptions(spec.url, spec.text, c);
    expect(o).to.deep.include({
      address: 'http://127.0.0.1:8500',
      name: 'consul:http://127.0.0.1:8500',
      token: 't',
      tagPrefix: 'svc-',
      checksRequired: 'all',
      consistent: false,
      waitMs: 300_000,
      kvPath: 'cairn/config',
    });
    expect(o.register).to.deep.equal({
      name: 'cairn',
      tags: [],
      address: '',
      port: 9998,
      checkUrl: 'http://127.0.0.1:9998/health',
    });
    const behindName = load([
      ...['--registry', 'consul:127.0.0.1:8500', '--admin', '0.0.0.0:9998', '--admin-readonly'],
      '--consul-register',
      '--consul-register-addr',
      'cairn:9998',
    ]);
    expect(consulOptions(spec.url, spec.text, behindName).register).to.deep.include({
      address: 'cairn',
      port: 9998,
      checkUrl: 'http://cairn:9998/health',
    });
    const r = await createRegistry(spec, c);
    expect(r).to.be.instanceOf(ConsulRegistry);
    expect(r.name).to.equal('consul:http://127.0.0.1:8500');
  });

  it('reads the TLS files, and names the key when one is missing', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cairn-consul-tls-'));
    try {
      writeFileSync(join(dir, 'ca.pem'), 'CA');
      const c = load(['--registry', 'consul:https://c:8501', '--consul-ca-file', join(dir, 'ca.pem')]);
      const spec = c.registries[0];
      if (spec?.kind !== 'consul') throw new Error('no consul spec');
      expect(consulOptions(spec.url, spec.text, c).tls?.ca?.toString()).to.equal('CA');
      const bad = load(['--registry', 'consul:https://c:8501', '--consul-ca-file', join(dir, 'missing.pem')]);
      expect(() => consulOptions(spec.url, spec.text, bad)).to.throw(
        /--consul-ca-file: cannot read .*no such file/,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
