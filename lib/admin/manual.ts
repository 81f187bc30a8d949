// The manual route commands behind `GET|PUT /api/manual` (fabio's overrides): where they are
// stored, and how a new text is checked before it is.
//
// They live in the first registry that can store them (file section, Consul KV, etcd key), so
// they survive restarts and every Cairn watching that registry applies them. When none can, they
// live in this process's memory and reach the table as one more (pseudo-)registry snapshot.

import type { ManualValue, RegistryAdapter, WriteManualResult } from '../../registry-adapters/types.ts';
import { buildTable } from '../../routing/table.ts';
import type { BuildOptions, Problem, ServiceInstance } from '../../routing/types.ts';
import type { Controller } from '../controller.ts';
import { memoryManualRegistry } from '../stats/telemetry.ts';
import { diffTables, type TableDiff } from '../stats/table-diff.ts';

export interface ManualStore {
  /** The registry name that stores them, or `memory`. */
  readonly where: string;
  read(): Promise<ManualValue>;
  write(value: string, version: string): Promise<WriteManualResult>;
}

class RegistryManualStore implements ManualStore {
  readonly where: string;
  private readonly registry: Required<Pick<RegistryAdapter, 'readManual' | 'writeManual'>>;

  constructor(registry: RegistryAdapter & Required<Pick<RegistryAdapter, 'readManual' | 'writeManual'>>) {
    this.where = registry.name;
    this.registry = registry;
  }

  read(): Promise<ManualValue> {
    return this.registry.readManual();
  }

  write(value: string, version: string): Promise<WriteManualResult> {
    return this.registry.writeManual(value, version);
  }
}

/** Overrides kept in memory; versions count up from 1 (the empty start is version 0). */
export class MemoryManualStore implements ManualStore {
  readonly where = 'memory';
  private value = '';
  private version = 0;
  private readonly controller: Controller;

  constructor(controller: Controller) {
    this.controller = controller;
  }

  async read(): Promise<ManualValue> {
    return { value: this.value, version: String(this.version) };
  }

  async write(value: string, version: string): Promise<WriteManualResult> {
    if (version !== String(this.version))
      return { ok: false, conflict: { value: this.value, version: String(this.version) } };
    this.value = value;
    this.version++;
    this.controller.updateSnapshot(memoryManualRegistry, { instances: [], manual: value });
    return { ok: true, version: String(this.version) };
  }
}

/** The first registry that stores overrides, else memory. */
export function chooseManualStore(
  registries: readonly RegistryAdapter[],
  controller: Controller,
): ManualStore {
  for (const r of registries) {
    if (typeof r.readManual === 'function' && typeof r.writeManual === 'function')
      return new RegistryManualStore(
        r as RegistryAdapter & Required<Pick<RegistryAdapter, 'readManual' | 'writeManual'>>,
      );
  }
  return new MemoryManualStore(controller);
}

export interface ManualCheck {
  /** Problems of the text itself (syntax, options); `error` ones block saving. */
  readonly problems: readonly Problem[];
  readonly errors: number;
  /** What the live table would become with this text in place of the stored one. */
  readonly changes: TableDiff;
}

/**
 * Checks an overrides text: its own problems (each line parsed and applied to an empty table,
 * so the text is judged on its own), and the change it would make to the live table (every
 * registry's last snapshot, with `store`'s overrides replaced by `value`).
 */
export function checkManual(
  value: string,
  controller: Controller,
  build: BuildOptions,
  store: string,
): ManualCheck {
  const own = buildTable({ instances: [], manual: value }, build).problems.filter(
    (p) => p.source === 'manual',
  );
  const instances: ServiceInstance[] = [];
  const manual: string[] = [];
  let replaced = false;
  for (const r of controller.registryInfos()) {
    const s = r.snapshot;
    const isStore = r.name === store || (store === 'memory' && r.name === memoryManualRegistry);
    if (isStore) {
      replaced = true;
      manual.push(value);
    }
    if (s === undefined) continue;
    for (const i of s.instances) instances.push(i.registry === undefined ? { ...i, registry: r.name } : i);
    if (!isStore && s.manual.trim() !== '') manual.push(s.manual);
  }
  if (!replaced) manual.push(value);
  const trial = buildTable({ instances, manual: manual.filter((m) => m.trim() !== '').join('\n') }, build);
  return {
    problems: own,
    errors: own.filter((p) => p.severity === 'error').length,
    changes: diffTables(controller.current.table, trial),
  };
}
