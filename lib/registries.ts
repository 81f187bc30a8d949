// Registry specs from the configuration -> adapters. One case per registry kind.
//
// The etcd adapter is imported on first use: its client (etcd3, gRPC, protobufjs) is about
// 6 MB of heap and more of code in every process that loads it, and neither the --workers
// processes nor a Cairn without an etcd registry need it.

import type { EtcdConnectionOptions } from '../registry-adapters/etcd/index.ts';
import { readFileSync } from 'node:fs';
import {
  ConsulRegistry,
  type ConsulRegistryOptions,
  type SelfRegistration,
} from '../registry-adapters/consul/index.ts';
import { FileRegistry } from '../registry-adapters/file/index.ts';
import type { RegistryAdapter } from '../registry-adapters/types.ts';
import type { CairnConfig, RegistrySpec } from './config/index.ts';
import { createLogger } from './logging.ts';

export async function createRegistry(spec: RegistrySpec, config: CairnConfig): Promise<RegistryAdapter> {
  switch (spec.kind) {
    case 'file':
      return new FileRegistry(spec.path);
    case 'consul':
      return new ConsulRegistry(consulOptions(spec.url, spec.text, config));
    case 'etcd': {
      const { EtcdRegistry } = await import('../registry-adapters/etcd/index.ts');
      return new EtcdRegistry({
        ...etcdConnection(spec.urls, config),
        name: spec.text,
        prefix: config.etcdPrefix,
        namingPrefixes: config.etcdNamingPrefixes,
      });
    }
  }
}

/** The etcd client settings of the configuration (shared by the adapter and `cairn register`). */
export function etcdConnection(urls: readonly string[], config: CairnConfig): EtcdConnectionOptions {
  return {
    endpoints: urls,
    timeoutMs: config.etcdTimeoutMs,
    ...(config.etcdUser !== undefined ? { username: config.etcdUser } : {}),
    ...(config.etcdPassword !== undefined ? { password: config.etcdPassword } : {}),
    ...(config.etcdCa !== undefined ? { caFile: config.etcdCa } : {}),
    ...(config.etcdCert !== undefined ? { certFile: config.etcdCert } : {}),
    ...(config.etcdKey !== undefined ? { keyFile: config.etcdKey } : {}),
  };
}

/**
 * The Consul adapter's settings from the configuration. Reads the TLS files now, so a missing
 * file stops startup with a message naming the key.
 */
export function consulOptions(url: string, name: string, config: CairnConfig): ConsulRegistryOptions {
  const read = (file: string | undefined, key: string): Buffer | undefined => {
    if (file === undefined) return undefined;
    try {
      return readFileSync(file);
    } catch (e) {
      const code = (e as { code?: unknown }).code;
      throw new Error(
        `--${key}: cannot read ${JSON.stringify(file)}: ${code === 'ENOENT' ? 'no such file' : (e as Error).message}`,
        { cause: e },
      );
    }
  };
  const ca = read(config.consulCaFile, 'consul-ca-file');
  const cert = read(config.consulCertFile, 'consul-cert-file');
  const key = read(config.consulKeyFile, 'consul-key-file');
  const tls =
    ca === undefined && cert === undefined && key === undefined
      ? undefined
      : {
          ...(ca !== undefined ? { ca } : {}),
          ...(cert !== undefined ? { cert } : {}),
          ...(key !== undefined ? { key } : {}),
        };
  return {
    address: url,
    name,
    token: config.consulToken,
    tls,
    tagPrefix: config.tagPrefix,
    checksRequired: config.consulChecksRequired,
    consistent: config.consulConsistent,
    waitMs: config.consulWaitMs,
    kvPath: config.consulKvPath,
    register: config.consulRegister ? selfRegistration(config) : undefined,
    log: createLogger(config.logLevel).child({ registry: name }),
  };
}

/** Cairn's own Consul registration: the admin listener, checked on /health. */
function selfRegistration(config: CairnConfig): SelfRegistration {
  const admin = config.admin;
  const adv = config.consulRegisterAddr ?? admin;
  const wildcard = (a: string): boolean => a === '' || a === '0.0.0.0' || a === '::';
  // Consul checks the address Cairn registers (as fabio does); with a wildcard admin bind and
  // no address given, the checking agent is taken to run on this host.
  const checkHost = !wildcard(adv.address)
    ? adv.address
    : !wildcard(admin.address)
      ? admin.address
      : '127.0.0.1';
  const hostInUrl = checkHost.includes(':') ? `[${checkHost}]` : checkHost;
  return {
    name: config.consulRegisterName,
    tags: config.consulRegisterTags,
    address: wildcard(adv.address) ? '' : adv.address,
    port: adv.port,
    checkUrl: `http://${hostInUrl}:${adv.port}/health`,
  };
}
