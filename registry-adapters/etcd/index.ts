export { createEtcdClient, type EtcdConnectionOptions, etcdClientOptions } from './client.ts';
export {
  classifyKey,
  defaultEtcdPrefix,
  type EtcdLayout,
  etcdLayout,
  instanceKey,
  parseInstanceKey,
  parseNamingKey,
} from './layout.ts';
export {
  encodeRecord,
  type InstanceRecord,
  instanceStatuses,
  parseInstanceRecord,
  parseNamingRecord,
  type RecordParse,
} from './record.ts';
export { EtcdRegistry, type EtcdRegistryOptions, type EtcdRegistryStats } from './registry.ts';
export { RecordStore } from './store.ts';
