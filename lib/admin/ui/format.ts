// Pure helpers of the web UI (no DOM): number and time formatting, the filter and the sort.
// Shared by the browser modules and the unit tests.

import type { RouteRow, RowStats } from '../routes-json.ts';

export type SortKey =
  'service' | 'source' | 'destination' | 'weight' | 'health' | 'rate' | 'p50' | 'p99' | 'errors' | 'open';
export type SortDir = 'ascending' | 'descending';

/** A row as the UI keeps it: the API row plus what the stats stream updates. */
export type UiRow = RouteRow;

/** Requests per second: `0`, `0.35`, `12.3`, `1.2k`. */
export function formatRate(n: number): string {
  if (n === 0) return '0';
  if (n < 10) return n.toFixed(2).replace(/\.?0+$/, '');
  if (n < 1000) return n.toFixed(1).replace(/\.0$/, '');
  return `${(n / 1000).toFixed(1).replace(/\.0$/, '')}k`;
}

/** A latency: `–` for none, `0.42 ms`, `12 ms`, `1.3 s`. */
export function formatMs(ms: number | null): string {
  if (ms === null) return '–';
  if (ms < 10) return `${ms.toFixed(2).replace(/\.?0+$/, '')} ms`;
  if (ms < 1000) return `${Math.round(ms)} ms`;
  return `${(ms / 1000).toFixed(1).replace(/\.0$/, '')} s`;
}

/** A ratio 0..1 as a percentage: `0 %`, `0.5 %`, `12 %`, `100 %`. */
export function formatPercent(ratio: number): string {
  if (ratio === 0) return '0 %';
  const p = ratio * 100;
  if (p < 10) return `${p.toFixed(1).replace(/\.0$/, '')} %`;
  return `${Math.round(p)} %`;
}

/** "3 s ago", "5 min ago", "2 h ago", "4 d ago". */
export function formatAgo(epochMs: number, now: number): string {
  const s = Math.max(0, Math.round((now - epochMs) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86_400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86_400)} d ago`;
}

/** What the Source column shows: `host/path`, `/path` or `:port`. */
export function sourceText(row: Pick<RouteRow, 'src'>): string {
  return row.src;
}

/** The host[:port] of a destination URL, for address filtering. */
export function destinationAddress(dst: string): string {
  const i = dst.indexOf('://');
  const rest = i < 0 ? dst : dst.slice(i + 3);
  const end = rest.search(/[/?#]/);
  return (end < 0 ? rest : rest.slice(0, end)).toLowerCase();
}

/** Filter words: every one must match service, host, path, source, a tag or the address. */
export function parseFilter(text: string): string[] {
  return text
    .toLowerCase()
    .split(/\s+/)
    .filter((w) => w !== '');
}

export function rowMatches(row: RouteRow, words: readonly string[]): boolean {
  if (words.length === 0) return true;
  const fields = [
    row.service.toLowerCase(),
    row.host.toLowerCase(),
    row.path.toLowerCase(),
    row.src.toLowerCase(),
    row.dst.toLowerCase(),
    destinationAddress(row.dst),
    ...(row.tags ?? []).map((t) => t.toLowerCase()),
  ];
  return words.every((w) => fields.some((f) => f.includes(w)));
}

const healthOrder: Readonly<Record<string, number>> = { ejected: 0, draining: 1, warning: 2, passing: 3 };

function sortValue(row: RouteRow, key: SortKey): string | number {
  const s: RowStats = row.stats;
  switch (key) {
    case 'service':
      return row.service;
    case 'source':
      return row.src;
    case 'destination':
      return row.dst;
    case 'weight':
      return row.weight_effective;
    case 'health':
      return healthOrder[row.health] ?? 9;
    case 'rate':
      return s.req_per_sec_1m;
    case 'p50':
      return s.p50_ms ?? -1;
    case 'p99':
      return s.p99_ms ?? -1;
    case 'errors':
      return s.errors_5xx_ratio_1m;
    case 'open':
      return s.open;
  }
}

/** A sorted copy; ties keep table order (the sort is stable). */
export function sortRows(rows: readonly RouteRow[], key: SortKey | undefined, dir: SortDir): RouteRow[] {
  const out = [...rows];
  if (key === undefined) return out;
  const sign = dir === 'ascending' ? 1 : -1;
  out.sort((a, b) => {
    const x = sortValue(a, key);
    const y = sortValue(b, key);
    if (typeof x === 'number' && typeof y === 'number') return (x - y) * sign;
    return String(x).localeCompare(String(y)) * sign;
  });
  return out;
}

export function isSortKey(s: string | undefined): s is SortKey {
  return (
    s === 'service' ||
    s === 'source' ||
    s === 'destination' ||
    s === 'weight' ||
    s === 'health' ||
    s === 'rate' ||
    s === 'p50' ||
    s === 'p99' ||
    s === 'errors' ||
    s === 'open'
  );
}
