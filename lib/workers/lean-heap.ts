// V8 heap sizing for Cairn's processes (issue 9: RSS under 150 MB per process with a 10,000-route
// table). With V8's defaults a large table build (many short-lived objects, large young
// generation, a generous old-generation growth factor) lets the heap grow to about 4x what stays
// live, and V8 keeps those pages resident afterwards: measured with 10,000 routes, 410 MB RSS
// idle for 73 MB of live heap. `--optimize-for-size` keeps the heap close to its live size
// (175 MB RSS idle in the same run, of which 55 MB is Node's own binary) with no throughput loss
// we could measure above the noise of a shared 2-core box.
//
// Workers get the flag on their command line (before workerNodeFlags); the process started by the user
// sets it at run time, before any table is built (V8 reads these flags when it sizes the heap).
// A user who passes the flag either way on the command line or in NODE_OPTIONS keeps their choice.

import { availableParallelism } from 'node:os';
import { setFlagsFromString } from 'node:v8';

export const leanHeapFlags: readonly string[] = ['--optimize-for-size'];

/**
 * Of `flags`, those the user did not set either way on Node's command line or in NODE_OPTIONS:
 * a user's `--no-optimize-for-size` or `--max_semi_space_size=8` wins over Cairn's tuning.
 */
export function flagsNotChosen(
  flags: readonly string[],
  execArgv: readonly string[],
  nodeOptions: string = process.env['NODE_OPTIONS'] ?? '',
): string[] {
  const nameOf = (flag: string) =>
    flag
      .replace(/^--(no-)?/, '')
      .replace(/=.*$/, '')
      .replaceAll('_', '-');
  const given = [...execArgv, ...nodeOptions.split(/\s+/)].filter((a) => a.startsWith('--'));
  const chosen = new Set(given.map(nameOf));
  return flags.filter((f) => !chosen.has(nameOf(f)));
}

/** The lean-heap flags the user did not choose either way (command line or NODE_OPTIONS). */
export function leanHeapFlagsFor(execArgv: readonly string[], nodeOptions?: string): string[] {
  return flagsNotChosen(leanHeapFlags, execArgv, nodeOptions);
}

/** Whether the process the user started (control or single) runs lean, per `--lean-heap`. */
export function leanHeapHere(where: 'control' | 'all' | 'off', workers: number): boolean {
  return where === 'all' || (where === 'control' && workers > 1);
}

/** This process: sets the lean-heap flags the user did not choose; returns whether it set any. */
export function useLeanHeap(): boolean {
  const flags = leanHeapFlagsFor(process.execArgv);
  for (const flag of flags) setFlagsFromString(flag);
  return flags.length > 0;
}

/**
 * With one CPU to run on (a 1-CPU container or VM, or a process pinned with taskset), V8's
 * parallel scavenger only makes its helper threads take turns with the event loop on that CPU:
 * the young-generation pauses get longer, and they are what a proxy's p99 is made of. Measured
 * side by side on one pinned CPU (npm run bench, --compare-node-args '--parallel-scavenge'):
 * p99 at 100 B 2.35 ms without parallel scavenging, 2.70 ms with it (medians of 3); at 2 KB the
 * same within the noise; requests per CPU-second unchanged. On more CPUs it stays on. Unlike heap
 * sizes, V8 reads this flag at each scavenge, so setting it at run time works.
 */
export const oneCpuGcFlags: readonly string[] = ['--no-parallel-scavenge'];

/** The one-CPU GC flags for a process that may use `cpus` CPUs, less those the user chose. */
export function oneCpuGcFlagsFor(cpus: number, execArgv: readonly string[], nodeOptions?: string): string[] {
  return cpus === 1 ? flagsNotChosen(oneCpuGcFlags, execArgv, nodeOptions) : [];
}

/** This process (any role): sets the one-CPU GC flags when it may use one CPU only. */
export function useOneCpuGc(): boolean {
  const flags = oneCpuGcFlagsFor(availableParallelism(), process.execArgv);
  for (const flag of flags) setFlagsFromString(flag);
  return flags.length > 0;
}
