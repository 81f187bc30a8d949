// The contract every registry adapter (file, consul, etcd) implements. An adapter watches one
// registry and reports the *full* current state as a Snapshot each time it changes, never a
// delta. When the registry fails (unreachable, unparseable) it reports a state, not an empty
// snapshot: the controller keeps serving the last good table and marks it stale.

import type { Snapshot } from '../routing/types.ts';

/**
 * - `up`: the last snapshot reflects the registry as it is now.
 * - `stale`: a snapshot was delivered earlier, but the registry now fails; that snapshot keeps
 *   serving while the adapter retries.
 * - `down`: the registry fails and no snapshot was ever delivered.
 */
export type RegistryStateName = 'up' | 'down' | 'stale';

export interface RegistryState {
  /** The adapter's name, e.g. `file:./routes.yaml`. */
  readonly registry: string;
  readonly state: RegistryStateName;
  /** Epoch ms of the transition into this state. */
  readonly since: number;
  /** One-line reason while stale or down. */
  readonly error?: string;
}

/** The manual route commands an adapter stores, with an opaque version for compare-and-swap. */
export interface ManualValue {
  readonly value: string;
  readonly version: string;
}

export type WriteManualResult =
  | { readonly ok: true; readonly version: string }
  /** The stored version is not the one the writer read: someone else changed it. */
  | { readonly ok: false; readonly conflict: ManualValue }
  | { readonly ok: false; readonly error: string };

export type SnapshotListener = (snapshot: Snapshot) => void;
export type StateListener = (state: RegistryState) => void;

export interface RegistryAdapter {
  /** `kind:where`, e.g. `file:./routes.yaml`, `consul:http://127.0.0.1:8500`. */
  readonly name: string;
  /**
   * Starts watching. Resolves after the first attempt to read the registry (successful or not:
   * failures are reported through `onState`, never by rejecting). Callbacks run until `stop()`.
   */
  start(onSnapshot: SnapshotListener, onState: StateListener): Promise<void>;
  /** Stops watching; no callback runs after the returned promise resolves. */
  stop(): Promise<void>;
  /** The stored manual route commands (adapters that store them: file, consul KV, etcd). */
  readManual?(): Promise<ManualValue>;
  /** Replaces the manual route commands if `version` is still the stored one. */
  writeManual?(value: string, version: string): Promise<WriteManualResult>;
}
