// The last N table swaps with what each changed, for the UI's change history and the SSE stream.

import type { RouteTable } from '../../routing/types.ts';
import { diffTables, type TableDiff } from './table-diff.ts';

export interface HistoryEntry extends TableDiff {
  /** 1 for the first table, then one more per swap. */
  readonly seq: number;
  /** Epoch ms. */
  readonly at: number;
  readonly version: string;
  readonly previous: string;
  readonly routes: number;
  readonly problems: number;
}

export class ChangeHistory {
  private readonly limit: number;
  private readonly entries: HistoryEntry[] = [];
  private seq = 0;

  constructor(limit = 100) {
    this.limit = limit;
  }

  record(previous: RouteTable | undefined, current: RouteTable, at = Date.now()): HistoryEntry {
    const entry: HistoryEntry = {
      seq: ++this.seq,
      at,
      version: current.version,
      previous: previous?.version ?? '',
      routes: current.routes.length,
      problems: current.problems.length,
      ...diffTables(previous, current),
    };
    this.entries.push(entry);
    if (this.entries.length > this.limit) this.entries.shift();
    return entry;
  }

  /** Newest first. */
  list(): HistoryEntry[] {
    return [...this.entries].reverse();
  }
}
