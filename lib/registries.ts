// Registry specs from the configuration -> adapters. One case per registry kind.

import { FileRegistry } from '../registry-adapters/file/index.ts';
import type { RegistryAdapter } from '../registry-adapters/types.ts';
import type { CairnConfig, RegistrySpec } from './config/index.ts';

export class RegistryUnavailable extends Error {}

export function createRegistry(spec: RegistrySpec, config: CairnConfig): RegistryAdapter {
  void config;
  switch (spec.kind) {
    case 'file':
      return new FileRegistry(spec.path);
    case 'consul':
      throw new RegistryUnavailable('consul registries are not available in this version');
    case 'etcd':
      throw new RegistryUnavailable('etcd registries are not available in this version');
  }
}
