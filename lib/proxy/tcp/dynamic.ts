// fabio's `proto=tcp-dynamic`: one listener per `ip:port` TCP route in the table, opened when the
// route appears and closed when it disappears. A closed listener stops accepting at once; the
// connections it already has are left to finish like any other (drained on shutdown).
//
// fabio polls the table every `refresh=` interval; Cairn syncs on every table swap, and uses the
// refresh interval only to retry binds that failed (an address not yet configured on the host).

import type { Logger } from '../../logging.ts';
import type { RouteTable } from '../../../routing/types.ts';
import {
  type RuntimeSource,
  TcpListener,
  type TcpListenerDeps,
  type TcpListenerOptions,
} from './listener.ts';

export interface DynamicListenerOptions {
  /** Options of every listener opened (mode and src are set per route). */
  readonly base: Omit<TcpListenerOptions, 'mode' | 'src'>;
  /** Only routes on this IP get a listener ('' = every `ip:port` route). */
  readonly onlyHost: string;
  /** Retry interval for binds that failed, ms; 0 = retry only on the next table swap. */
  readonly retryMs: number;
}

export interface DynamicListenerInfo {
  readonly src: string;
  readonly address: string;
  readonly port: number;
}

export class DynamicTcpListeners {
  private readonly deps: TcpListenerDeps & { readonly runtime: RuntimeSource };
  private readonly opts: DynamicListenerOptions;
  private readonly logger: Logger | undefined;
  private readonly active = new Map<string, TcpListener>();
  /** Listeners no longer in the table whose connections are still open. */
  private readonly retired = new Set<TcpListener>();
  /** src -> why its bind failed (for status and retries). */
  readonly failed = new Map<string, string>();
  private running: Promise<void> | undefined;
  private again = false;
  private stopped = false;
  private retryTimer: NodeJS.Timeout | undefined;

  constructor(deps: TcpListenerDeps, opts: DynamicListenerOptions, logger?: Logger) {
    this.deps = deps;
    this.opts = opts;
    this.logger = logger;
  }

  /** Brings the listeners in line with the live table; concurrent calls coalesce. */
  sync(): Promise<void> {
    if (this.running !== undefined) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      do {
        this.again = false;
        await this.syncOnce(this.deps.runtime.current.table);
      } while (this.again && !this.stopped);
      this.running = undefined;
    })();
    return this.running;
  }

  private async syncOnce(table: RouteTable): Promise<void> {
    if (this.stopped) return;
    const wanted = new Map<string, { host: string; port: number }>();
    for (const r of table.routes) {
      if (r.proto !== 'tcp' || r.host === '' || r.port <= 0) continue;
      const host = r.host.startsWith('[') && r.host.endsWith(']') ? r.host.slice(1, -1) : r.host;
      if (this.opts.onlyHost !== '' && host !== this.opts.onlyHost) continue;
      wanted.set(r.src, { host, port: r.port });
    }
    for (const [src, l] of this.active) {
      if (wanted.has(src)) continue;
      this.active.delete(src);
      this.retire(l);
      this.logger?.info({ src }, 'tcp-dynamic: route gone, listener closed');
    }
    for (const src of this.failed.keys()) if (!wanted.has(src)) this.failed.delete(src);
    for (const [src, { host, port }] of wanted) {
      if (this.active.has(src)) continue;
      const l = new TcpListener(this.deps, { ...this.opts.base, mode: 'src', src });
      try {
        await l.listen(port, host);
      } catch (err) {
        const reason = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
        if (this.failed.get(src) !== reason) {
          this.logger?.warn({ src, error: reason }, 'tcp-dynamic: cannot listen; will retry');
        }
        this.failed.set(src, reason);
        continue;
      }
      if (this.stopped) {
        await l.close();
        return;
      }
      this.failed.delete(src);
      this.active.set(src, l);
      this.logger?.info({ src }, 'tcp-dynamic: listening');
    }
    this.scheduleRetry();
  }

  private scheduleRetry(): void {
    if (this.failed.size === 0 || this.opts.retryMs <= 0 || this.retryTimer !== undefined || this.stopped)
      return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      void this.sync();
    }, this.opts.retryMs);
    this.retryTimer.unref();
  }

  private retire(l: TcpListener): void {
    this.retired.add(l);
    void l.close().then(() => this.retired.delete(l));
  }

  /** Listeners open right now. */
  addresses(): DynamicListenerInfo[] {
    return [...this.active].map(([src, l]) => {
      const a = l.server.address();
      return { src, address: typeof a === 'object' && a !== null ? a.address : '', port: l.port };
    });
  }

  /** Stops accepting everywhere (shutdown); open connections stay until destroyAll(). */
  async close(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    await this.running;
    for (const l of this.active.values()) this.retire(l);
    this.active.clear();
  }

  destroyAll(): void {
    for (const l of this.active.values()) l.destroyAll();
    for (const l of this.retired) l.destroyAll();
  }
}
