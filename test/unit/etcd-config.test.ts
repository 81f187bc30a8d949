// The etcd configuration keys (flag, CAIRN_ env, config file) and the registry factory's etcd case.

import { expect } from 'chai';
import { type CairnConfig, loadConfig } from '../../lib/config/index.ts';
import { createRegistry, etcdConnection } from '../../lib/registries.ts';
import { EtcdRegistry } from '../../registry-adapters/etcd/index.ts';

function config(args: string[], env: Record<string, string> = {}, file?: string): CairnConfig {
  const r = loadConfig(args, env, file === undefined ? {} : { readFile: () => file });
  if (r.kind !== 'config') throw new Error(r.kind === 'error' ? r.error.message : r.kind);
  return r.config;
}

function error(args: string[], env: Record<string, string> = {}): string {
  const r = loadConfig(args, env);
  if (r.kind !== 'error') throw new Error(`expected an error, got ${r.kind}`);
  return r.error.message;
}

describe('etcd configuration', () => {
  it('has defaults: prefix /cairn, no naming prefixes, no auth or TLS, 5 s deadline', () => {
    const c = config([]);
    expect(c.etcdPrefix).to.equal('/cairn');
    expect(c.etcdNamingPrefixes).to.deep.equal([]);
    expect(c.etcdTimeoutMs).to.equal(5000);
    for (const k of ['etcdUser', 'etcdPassword', 'etcdCa', 'etcdCert', 'etcdKey'] as const) {
      expect(c[k], k).to.equal(undefined);
    }
  });

  it('reads every key from flags, CAIRN_ env and the config file', () => {
    const args = [
      '--etcd-naming-prefix',
      '/grpc/a,/grpc/b',
      '--etcd-naming-prefix',
      'services/c',
      '--etcd-user',
      'cairn',
      '--etcd-password',
      'secret',
      '--etcd-ca',
      'ca.pem',
      '--etcd-cert',
      'c.pem',
      '--etcd-key',
      'k.pem',
      '--etcd-timeout',
      '2s',
    ];
    const fromFlags = config(args);
    expect([
      fromFlags.etcdNamingPrefixes,
      fromFlags.etcdUser,
      fromFlags.etcdPassword,
      fromFlags.etcdCa,
      fromFlags.etcdCert,
      fromFlags.etcdKey,
      fromFlags.etcdTimeoutMs,
    ]).to.deep.equal([
      ['/grpc/a', '/grpc/b', 'services/c'],
      'cairn',
      'secret',
      'ca.pem',
      'c.pem',
      'k.pem',
      2000,
    ]);

    const fromEnv = config([], {
      CAIRN_ETCD_USER: 'u',
      CAIRN_ETCD_PASSWORD: 'p',
      CAIRN_ETCD_NAMING_PREFIX: '/g',
    });
    expect([fromEnv.etcdUser, fromEnv.etcdPassword, fromEnv.etcdNamingPrefixes]).to.deep.equal([
      'u',
      'p',
      ['/g'],
    ]);

    const fromFile = config(
      ['--config', 'cairn.yaml'],
      {},
      'etcd_naming_prefix: [/x, /y]\netcdCa: ca.pem\netcd-timeout: 750ms\n',
    );
    expect([fromFile.etcdNamingPrefixes, fromFile.etcdCa, fromFile.etcdTimeoutMs]).to.deep.equal([
      ['/x', '/y'],
      'ca.pem',
      750,
    ]);
  });

  it('rejects half of a pair and bad values with one line naming the key', () => {
    expect(error(['--etcd-user', 'u'])).to.equal(
      'cairn: --etcd-user: needs --etcd-password too (etcd password auth)',
    );
    expect(error([], { CAIRN_ETCD_PASSWORD: 'p' })).to.equal(
      'cairn: CAIRN_ETCD_PASSWORD: needs --etcd-user too (etcd password auth)',
    );
    expect(error(['--etcd-key', 'k.pem'])).to.equal(
      'cairn: --etcd-key: needs --etcd-cert too (etcd client certificate)',
    );
    expect(error(['--etcd-timeout', '0'])).to.match(
      /^cairn: --etcd-timeout: expected a duration of at least 1ms/,
    );
    expect(error(['--etcd-naming-prefix', '/'])).to.match(
      /^cairn: --etcd-naming-prefix: expected a key prefix, not the whole keyspace/,
    );
  });

  it('the factory builds an EtcdRegistry named like the spec, with the configured prefixes', async () => {
    const c = config([
      '--registry',
      'etcd:http://127.0.0.1:1,http://127.0.0.1:2',
      '--etcd-prefix',
      '/prod/cairn/',
      '--etcd-naming-prefix',
      '/grpc',
    ]);
    const spec = c.registries[0];
    if (spec?.kind !== 'etcd') throw new Error('expected an etcd spec');
    const r = await createRegistry(spec, c);
    expect(r).to.be.instanceOf(EtcdRegistry);
    expect(r.name).to.equal('etcd:http://127.0.0.1:1,http://127.0.0.1:2');
    expect((r as EtcdRegistry).layout).to.deep.equal({
      prefix: '/prod/cairn',
      services: '/prod/cairn/services/',
      config: '/prod/cairn/config',
      naming: ['/grpc/'],
    });
    await r.stop();
    expect(etcdConnection(spec.urls, c)).to.deep.equal({
      endpoints: ['http://127.0.0.1:1', 'http://127.0.0.1:2'],
      timeoutMs: 5000,
    });
  });

  it('the factory fails at once (not at first use) for an unreadable TLS file', async () => {
    const c = config(['--registry', 'etcd:https://127.0.0.1:2379', '--etcd-ca', '/nonexistent/ca.pem']);
    const spec = c.registries[0];
    if (spec?.kind !== 'etcd') throw new Error('expected an etcd spec');
    const failed = await createRegistry(spec, c).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(failed).to.be.instanceOf(Error);
    expect((failed as Error).message).to.include(
      'cannot read the etcd TLS CA "/nonexistent/ca.pem": no such file',
    );
  });
});
