export { type FileRegistryParse, parseFileRegistry } from './parse.ts';
export { FileRegistry, type FileRegistryOptions, manualVersion } from './registry.ts';
