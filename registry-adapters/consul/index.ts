export {
  ConsulClient,
  type ConsulClientOptions,
  ConsulError,
  type ConsulResponse,
  type ConsulTls,
} from './api.ts';
export { backoffDelay, type IndexStep, nextBlockingIndex, rateLimitDelay } from './blocking.ts';
export { type ChecksRequired, consulWeight, instanceStatus, isRelevantCheck } from './health.ts';
export { expandDatacenter, serviceData } from './instances.ts';
export {
  ConsulRegistry,
  type ConsulRegistryOptions,
  type ConsulRegistryStats,
  parseConsulAddress,
  type SelfRegistration,
} from './registry.ts';
export type { ConsulLog } from './watch.ts';
