/// <reference lib="dom" />
// The admin JSON API as the UI calls it. Types come from the server modules (type-only imports,
// erased before the browser sees this file), so the two cannot drift apart.

import type { ExplainOutput } from '../../../routing/explain.ts';
import type { Problem } from '../../../routing/types.ts';
import type { HistoryEntry } from '../../stats/history.ts';
import type { TableDiff } from '../../stats/table-diff.ts';
import type { RouteRow, RowStats } from '../routes-json.ts';
import type { RegistryJson, StatusJson } from '../status-json.ts';

export type { ExplainOutput, HistoryEntry, Problem, RegistryJson, RouteRow, RowStats, StatusJson, TableDiff };

export interface ManualJson {
  readonly value: string;
  readonly version: string;
}

export interface ManualCheckJson {
  readonly problems: readonly Problem[];
  readonly errors: number;
  readonly changes: TableDiff;
}

export interface StatsRow {
  readonly id: number;
  readonly health: RouteRow['health'];
  readonly health_reason?: string;
  readonly weight_effective: number;
  readonly stats: RowStats;
}

export interface StatsEvent {
  readonly at: number;
  readonly rows: readonly StatsRow[];
}

/** A non-2xx answer: the status and the JSON body (`error`, and per endpoint more). */
export class ApiError extends Error {
  readonly status: number;
  readonly body: Record<string, unknown>;
  constructor(status: number, body: Record<string, unknown>) {
    super(typeof body.error === 'string' ? body.error : `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

async function call<T>(path: string, init: RequestInit = {}): Promise<T> {
  const res = await fetch(path, { ...init, headers: { accept: 'application/json', ...init.headers } });
  const text = await res.text();
  let body: unknown;
  try {
    body = text === '' ? {} : JSON.parse(text);
  } catch {
    body = { error: text.trim() };
  }
  if (!res.ok) throw new ApiError(res.status, body as Record<string, unknown>);
  return body as T;
}

export const api = {
  routes: (): Promise<RouteRow[]> => call('/api/routes'),
  status: (): Promise<StatusJson> => call('/api/status'),
  history: (): Promise<HistoryEntry[]> => call('/api/history'),
  explain: (url: string): Promise<ExplainOutput> => call(`/api/explain?url=${encodeURIComponent(url)}`),
  manual: (): Promise<ManualJson> => call('/api/manual'),
  checkManual: (value: string): Promise<ManualCheckJson> =>
    call('/api/manual/check', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ value }),
    }),
  saveManual: (value: string, version: string, token: string): Promise<ManualJson> =>
    call('/api/manual', {
      method: 'PUT',
      headers: {
        'content-type': 'application/json',
        ...(token !== '' ? { authorization: `Bearer ${token}` } : {}),
      },
      body: JSON.stringify({ value, version }),
    }),
};
