/// <reference lib="dom" />
// The last 100 table swaps, newest first, each with the `route add` lines it added, removed or
// changed (SSE `swap` events prepend to it live).

import type { HistoryEntry } from './api.ts';
import { byId, fill, h } from './dom.ts';

const limit = 100;

export class HistoryView {
  private readonly list = byId('history');
  private entries: HistoryEntry[] = [];

  set(entries: HistoryEntry[]): void {
    this.entries = entries.slice(0, limit);
    this.render();
  }

  add(entry: HistoryEntry): void {
    if (this.entries.some((e) => e.seq === entry.seq)) return;
    this.entries = [entry, ...this.entries].slice(0, limit);
    this.render();
  }

  private render(): void {
    if (this.entries.length === 0) {
      fill(this.list, h('li', { class: 'muted' }, 'No table yet.'));
      return;
    }
    fill(this.list, ...this.entries.map((e, i) => item(e, i === 0)));
  }
}

function item(e: HistoryEntry, open: boolean): HTMLElement {
  const when = new Date(e.at);
  const summary = h(
    'summary',
    {},
    h('time', { datetime: when.toISOString() }, when.toLocaleTimeString()),
    ' ',
    h('code', {}, e.version.slice(0, 8)),
    ` ${e.routes} route${e.routes === 1 ? '' : 's'}: `,
    h('span', { class: 'add' }, `+${e.added.length}`),
    ' ',
    h('span', { class: 'del' }, `−${e.removed.length}`),
    ' ',
    h('span', { class: 'chg' }, `~${e.changed.length}`),
    e.previous === '' ? ' (first table)' : '',
  );
  const lines = [
    ...e.added.map((l) => h('li', { class: 'add' }, h('code', {}, `+ ${l}`))),
    ...e.removed.map((l) => h('li', { class: 'del' }, h('code', {}, `− ${l}`))),
    ...e.changed.map((c) =>
      h('li', { class: 'chg' }, h('code', {}, `− ${c.from}`), h('code', {}, `+ ${c.to}`)),
    ),
  ];
  if (e.truncated > 0) lines.push(h('li', { class: 'muted' }, `… and ${e.truncated} more`));
  return h(
    'li',
    { 'data-seq': e.seq },
    h('details', { open }, summary, h('ul', { class: 'explain-list' }, ...lines)),
  );
}
