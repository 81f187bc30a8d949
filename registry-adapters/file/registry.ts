// The file registry adapter: reads a YAML/JSON file, emits a snapshot, then watches it.
//
// The *directory* is watched, not the file: editors and config managers often replace a file by
// writing a temporary one and renaming it over the original, which ends a watch on the file
// itself (and Kubernetes swaps a `..data` symlink). Every event in the directory schedules one
// debounced re-read; unchanged content is ignored. A file that does not parse only changes the
// state (stale, with the error): no snapshot is emitted, so the last good table keeps serving.

import { randomBytes, createHash } from 'node:crypto';
import { type FSWatcher, watch } from 'node:fs';
import { chmod, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { parseDocument, Scalar } from 'yaml';
import type { Snapshot } from '../../routing/types.ts';
import type {
  ManualValue,
  RegistryAdapter,
  RegistryState,
  SnapshotListener,
  StateListener,
  WriteManualResult,
} from '../types.ts';
import { parseFileRegistry } from './parse.ts';

export interface FileRegistryOptions {
  /** Quiet time after the last change before the file is re-read, ms (default 100). */
  readonly debounceMs?: number;
  /** Delay before watching the directory again after the watch failed, ms (default 1000). */
  readonly rewatchMs?: number;
  readonly now?: () => number;
}

/** Opaque compare-and-swap version of a manual routes text. */
export function manualVersion(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 16);
}

export class FileRegistry implements RegistryAdapter {
  readonly name: string;
  /** The path as given (used in names and messages). */
  readonly path: string;
  private readonly absPath: string;
  private readonly debounceMs: number;
  private readonly rewatchMs: number;
  private readonly now: () => number;

  private onSnapshot: SnapshotListener | undefined;
  private onState: StateListener | undefined;
  private watcher: FSWatcher | undefined;
  private debounceTimer: NodeJS.Timeout | undefined;
  /** When the first change of the current (not yet re-read) burst arrived; 0 = no burst. */
  private burstStart = 0;
  private rewatchTimer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private pending = false;
  private stopped = false;
  /**
   * Digest of the text of the last successful read (good or bad content); undefined after a read
   * failure. Not the text: a 10,000-service file is over a megabyte, kept for one comparison.
   */
  private lastDigest: string | undefined;
  private delivered = false;
  private state: RegistryState | undefined;
  private writes: Promise<unknown> = Promise.resolve();

  constructor(path: string, options: FileRegistryOptions = {}) {
    this.path = path;
    this.name = `file:${path}`;
    this.absPath = resolve(path);
    this.debounceMs = options.debounceMs ?? 100;
    this.rewatchMs = options.rewatchMs ?? 1000;
    this.now = options.now ?? Date.now;
  }

  async start(onSnapshot: SnapshotListener, onState: StateListener): Promise<void> {
    if (this.onSnapshot !== undefined) throw new Error(`${this.name}: already started`);
    this.onSnapshot = onSnapshot;
    this.onState = onState;
    // Watch first, then read: a change between the two is not lost.
    this.watchDirectory();
    await this.reload();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.debounceTimer);
    clearTimeout(this.rewatchTimer);
    this.watcher?.close();
    this.watcher = undefined;
    await this.running;
  }

  /** The current state, or undefined before the first read. */
  currentState(): RegistryState | undefined {
    return this.state;
  }

  async readManual(): Promise<ManualValue> {
    const text = await readFile(this.absPath, 'utf8');
    const parsed = parseFileRegistry(text, this.path);
    if ('error' in parsed) throw new Error(parsed.error);
    return { value: parsed.snapshot.manual, version: manualVersion(parsed.snapshot.manual) };
  }

  /** Rewrites the file's `routes:` (keeping the rest, comments included) if `version` still matches. */
  writeManual(value: string, version: string): Promise<WriteManualResult> {
    const next = this.writes.then(() => this.writeManualNow(value, version));
    this.writes = next.catch(() => undefined);
    return next;
  }

  private async writeManualNow(value: string, version: string): Promise<WriteManualResult> {
    let text: string;
    try {
      text = await readFile(this.absPath, 'utf8');
    } catch (e) {
      return { ok: false, error: `cannot read ${this.path}: ${errorText(e)}` };
    }
    const parsed = parseFileRegistry(text, this.path);
    if ('error' in parsed) return { ok: false, error: parsed.error };
    const current = parsed.snapshot.manual;
    const currentVersion = manualVersion(current);
    if (currentVersion !== version)
      return { ok: false, conflict: { value: current, version: currentVersion } };
    const updated = replaceRoutes(text, this.path, value);
    try {
      await writeAtomically(this.absPath, updated);
    } catch (e) {
      return { ok: false, error: `cannot write ${this.path}: ${errorText(e)}` };
    }
    if (!this.stopped && this.onSnapshot !== undefined) this.schedule();
    return { ok: true, version: manualVersion(value) };
  }

  private watchDirectory(): void {
    if (this.stopped) return;
    try {
      const w = watch(dirname(this.absPath), { persistent: true }, () => this.schedule());
      w.on('error', (e) => {
        w.close();
        if (this.watcher === w) this.watcher = undefined;
        this.fail(`watching ${dirname(this.path)} failed: ${errorText(e)}`);
        this.rewatchLater();
      });
      this.watcher = w;
    } catch (e) {
      this.fail(`cannot watch ${dirname(this.path)}: ${errorText(e)}`);
      this.rewatchLater();
    }
  }

  private rewatchLater(): void {
    if (this.stopped) return;
    clearTimeout(this.rewatchTimer);
    this.rewatchTimer = setTimeout(() => {
      this.watchDirectory();
      if (this.watcher !== undefined) this.schedule();
    }, this.rewatchMs);
  }

  private schedule(): void {
    if (this.stopped) return;
    // Trailing debounce, bounded: a file rewritten more often than debounceMs (a config tool in
    // a loop, the chaos suite's churn) must still be re-read at least every 2 x debounceMs, or
    // the table would never follow it.
    const now = Date.now();
    if (this.burstStart === 0) this.burstStart = now;
    const wait = Math.max(0, Math.min(this.debounceMs, this.burstStart + 2 * this.debounceMs - now));
    clearTimeout(this.debounceTimer);
    this.debounceTimer = setTimeout(this.fireReload, wait);
  }

  private readonly fireReload = (): void => {
    this.burstStart = 0;
    void this.reload();
  };

  /** Reads the file; overlapping calls coalesce into one more read after the current one. */
  private reload(): Promise<void> {
    if (this.running !== undefined) {
      this.pending = true;
      return this.running;
    }
    const run = async (): Promise<void> => {
      try {
        do {
          this.pending = false;
          await this.readOnce();
        } while (this.pending && !this.stopped);
      } finally {
        this.running = undefined;
      }
    };
    this.running = run();
    return this.running;
  }

  private async readOnce(): Promise<void> {
    let text: string;
    try {
      text = await readFile(this.absPath, 'utf8');
    } catch (e) {
      this.lastDigest = undefined;
      const reason = (e as { code?: unknown }).code === 'ENOENT' ? 'no such file' : errorText(e);
      this.fail(`cannot read ${this.path}: ${reason}`);
      return;
    }
    if (this.stopped) return;
    const digest = createHash('sha256').update(text).digest('base64');
    if (digest === this.lastDigest) return;
    this.lastDigest = digest;
    const parsed = parseFileRegistry(text, this.path);
    if ('error' in parsed) {
      this.fail(parsed.error);
      return;
    }
    this.deliver(parsed.snapshot);
  }

  private deliver(snapshot: Snapshot): void {
    if (this.stopped) return;
    this.delivered = true;
    this.onSnapshot?.(snapshot);
    this.setState('up', undefined);
  }

  private fail(error: string): void {
    this.setState(this.delivered ? 'stale' : 'down', error);
  }

  private setState(name: RegistryState['state'], error: string | undefined): void {
    if (this.stopped) return;
    const prev = this.state;
    if (prev !== undefined && prev.state === name && prev.error === error) return;
    const since = prev !== undefined && prev.state === name ? prev.since : this.now();
    this.state = { registry: this.name, state: name, since, ...(error !== undefined ? { error } : {}) };
    this.onState?.(this.state);
  }
}

/** The file's text with `routes:` set to `value`; YAML keeps its comments and layout. */
function replaceRoutes(text: string, fileName: string, value: string): string {
  if (
    fileName.toLowerCase().endsWith('.json') ||
    (!/\.ya?ml$/i.test(fileName) && text.trimStart().startsWith('{'))
  ) {
    const obj = JSON.parse(text) as Record<string, unknown>;
    obj.routes = value;
    return `${JSON.stringify(obj, null, 2)}\n`;
  }
  const doc = parseDocument(text);
  const node = new Scalar(value);
  if (value.includes('\n')) node.type = Scalar.BLOCK_LITERAL;
  doc.set('routes', node);
  return doc.toString();
}

/** Write to a temporary file in the same directory, then rename: readers never see half a file. */
async function writeAtomically(path: string, text: string): Promise<void> {
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  let mode: number | undefined;
  try {
    mode = (await stat(path)).mode & 0o7777;
  } catch {
    mode = undefined;
  }
  try {
    await writeFile(tmp, text, 'utf8');
    if (mode !== undefined) await chmod(tmp, mode);
    await rename(tmp, path);
  } catch (e) {
    await unlink(tmp).catch(() => undefined);
    throw e;
  }
}

function errorText(e: unknown): string {
  const m = e instanceof Error ? e.message : String(e);
  return (m.split('\n')[0] ?? m).trim();
}
