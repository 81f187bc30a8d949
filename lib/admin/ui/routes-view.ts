/// <reference lib="dom" />
// The routing table: one row per route target, filtered (the filter is kept in `?filter=` so a
// link shows the same view), sortable by any column, and updated in place by the SSE `stats`
// events: a tick rewrites the numbers of the rows that changed, nothing is re-rendered.

import type { RouteRow, StatsEvent, StatsRow } from './api.ts';
import { byId, fill, h } from './dom.ts';
import {
  formatMs,
  formatPercent,
  formatRate,
  isSortKey,
  parseFilter,
  rowMatches,
  type SortDir,
  type SortKey,
  sortRows,
} from './format.ts';

interface RowCells {
  readonly tr: HTMLTableRowElement;
  readonly weight: HTMLTableCellElement;
  readonly health: HTMLTableCellElement;
  readonly rate: HTMLTableCellElement;
  readonly p50: HTMLTableCellElement;
  readonly p99: HTMLTableCellElement;
  readonly errors: HTMLTableCellElement;
  readonly open: HTMLTableCellElement;
}

export class RoutesView {
  private rows: RouteRow[] = [];
  private readonly cells = new Map<number, RowCells>();
  private readonly tbody: HTMLTableSectionElement;
  private readonly filterInput: HTMLInputElement;
  private readonly count: HTMLElement;
  private readonly empty: HTMLElement;
  private sortKey: SortKey | undefined;
  private sortDir: SortDir = 'ascending';

  constructor() {
    const table = byId<HTMLTableElement>('routes');
    this.tbody = table.tBodies[0] as HTMLTableSectionElement;
    this.filterInput = byId<HTMLInputElement>('filter');
    this.count = byId('route-count');
    this.empty = byId('routes-empty');
    const params = new URLSearchParams(location.search);
    this.filterInput.value = params.get('filter') ?? '';
    const [key, dir] = (params.get('sort') ?? '').split(':');
    if (isSortKey(key)) {
      this.sortKey = key;
      this.sortDir = dir === 'descending' ? 'descending' : 'ascending';
    }
    this.filterInput.addEventListener('input', () => {
      this.keepInUrl();
      this.render();
    });
    for (const th of table.tHead?.querySelectorAll<HTMLTableCellElement>('th[data-sort]') ?? []) {
      th.querySelector('button')?.addEventListener('click', () => this.sortBy(th.dataset.sort));
    }
    this.markSorted();
  }

  /** A new table (first load or after a swap); rows whose id is new are highlighted briefly. */
  setRows(rows: RouteRow[], highlightNew: boolean): void {
    const known = new Set(this.rows.map((r) => r.id));
    this.rows = rows;
    this.render(highlightNew ? rows.filter((r) => !known.has(r.id)).map((r) => r.id) : []);
  }

  /**
   * The SSE `stats` tick: update the numbers of the rows that changed, in place. Rows do not move
   * under a sorted live column until the next render (a swap, a sort, a filter): rows jumping
   * every second would make the table unreadable.
   */
  applyStats(e: StatsEvent): void {
    const updates = new Map<number, StatsRow>();
    for (const s of e.rows) updates.set(s.id, s);
    this.rows = this.rows.map((r) => {
      const s = updates.get(r.id);
      if (s === undefined) return r;
      const { health_reason: _old, ...rest } = r;
      const next: RouteRow = {
        ...rest,
        health: s.health,
        healthy: s.health !== 'ejected',
        weight_effective: s.weight_effective,
        stats: s.stats,
        ...(s.health_reason !== undefined ? { health_reason: s.health_reason } : {}),
      };
      const c = this.cells.get(r.id);
      if (c !== undefined) this.fillLive(c, next);
      return next;
    });
  }

  private sortBy(key: string | undefined): void {
    if (!isSortKey(key)) return;
    if (this.sortKey === key) this.sortDir = this.sortDir === 'ascending' ? 'descending' : 'ascending';
    else {
      this.sortKey = key;
      // Numbers read best largest first; names alphabetically.
      this.sortDir =
        key === 'service' || key === 'source' || key === 'destination' || key === 'health'
          ? 'ascending'
          : 'descending';
    }
    this.markSorted();
    this.keepInUrl();
    this.render();
  }

  private markSorted(): void {
    for (const th of document.querySelectorAll<HTMLTableCellElement>('#routes th[data-sort]')) {
      if (th.dataset.sort === this.sortKey) th.setAttribute('aria-sort', this.sortDir);
      else th.removeAttribute('aria-sort');
    }
  }

  private keepInUrl(): void {
    const params = new URLSearchParams(location.search);
    const f = this.filterInput.value.trim();
    if (f === '') params.delete('filter');
    else params.set('filter', f);
    if (this.sortKey === undefined) params.delete('sort');
    else params.set('sort', `${this.sortKey}:${this.sortDir}`);
    const q = params.toString();
    history.replaceState(null, '', `${location.pathname}${q === '' ? '' : `?${q}`}${location.hash}`);
  }

  private render(highlight: readonly number[] = []): void {
    const words = parseFilter(this.filterInput.value);
    const visible = sortRows(
      this.rows.filter((r) => rowMatches(r, words)),
      this.sortKey,
      this.sortDir,
    );
    this.cells.clear();
    const flash = new Set(highlight);
    const trs = visible.map((r) => {
      const c = this.rowCells(r);
      if (flash.has(r.id)) {
        c.tr.classList.add('flash');
        setTimeout(() => c.tr.classList.remove('flash'), 2000);
      }
      this.cells.set(r.id, c);
      return c.tr;
    });
    this.tbody.replaceChildren(...trs);
    const routes = new Set(this.rows.map((r) => r.src)).size;
    const total = `${this.rows.length} target${this.rows.length === 1 ? '' : 's'} in ${routes} route${routes === 1 ? '' : 's'}`;
    this.count.textContent = words.length === 0 ? total : `${visible.length} shown of ${total}`;
    this.empty.hidden = visible.length > 0;
    this.empty.textContent =
      this.rows.length === 0
        ? 'The table is empty: no registry reported a routable instance yet.'
        : 'No route matches the filter.';
  }

  private rowCells(r: RouteRow): RowCells {
    const num = (label: string): HTMLTableCellElement => h('td', { class: 'num', 'data-label': label });
    const c: RowCells = {
      tr: h('tr', { 'data-id': r.id }),
      weight: num('Weight'),
      health: h('td', { 'data-label': 'Health' }),
      rate: num('Req/s'),
      p50: num('p50'),
      p99: num('p99'),
      errors: num('5xx'),
      open: num('Open'),
    };
    const service = h('td', { 'data-label': 'Service', class: 'service' }, r.service);
    if (r.tags !== undefined && r.tags.length > 0) {
      service.append(h('br'), ...r.tags.map((t) => h('span', { class: 'tag' }, t)));
    }
    const src = h('td', { 'data-label': 'Source', class: 'src' }, r.src);
    if (r.proto !== 'http') src.append(h('span', { class: 'proto' }, r.proto));
    const dst = h('td', { 'data-label': 'Destination', class: 'dst' }, r.dst);
    if (r.opts !== '') dst.append(h('br'), h('span', { class: 'muted small' }, r.opts));
    c.tr.append(service, src, dst, c.weight, c.health, c.rate, c.p50, c.p99, c.errors, c.open);
    this.fillLive(c, r);
    return c;
  }

  private fillLive(c: RowCells, r: RouteRow): void {
    const s = r.stats;
    c.weight.textContent = formatPercent(r.weight_effective);
    c.weight.title =
      r.weight_effective === r.weight
        ? `${formatPercent(r.weight)} of the route's traffic`
        : `configured ${formatPercent(r.weight)}, now ${formatPercent(r.weight_effective)} (health)`;
    fill(c.health, h('span', { class: `badge ${r.health}`, title: r.health_reason }, r.health));
    c.rate.textContent = formatRate(s.req_per_sec_1m);
    c.rate.title = `${formatRate(s.req_per_sec_5m)} req/s over 5 min, ${s.requests_total} in total`;
    c.p50.textContent = formatMs(s.p50_ms);
    c.p99.textContent = formatMs(s.p99_ms);
    c.errors.textContent = formatPercent(s.errors_5xx_ratio_1m);
    c.errors.classList.toggle('bad', s.errors_5xx_ratio_1m > 0);
    c.errors.title =
      s.connect_errors_ratio_1m > 0 ? `connect errors: ${formatPercent(s.connect_errors_ratio_1m)}` : '';
    c.open.textContent = String(s.open);
  }
}
