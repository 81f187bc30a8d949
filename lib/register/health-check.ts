// The HTTP health check of `cairn register --check URL`, with Consul's reading of the answer:
// 2xx passing, 429 warning (overloaded but alive), anything else (or no answer) critical.

import { request } from 'undici';
import type { InstanceStatus } from '../../routing/types.ts';

export interface CheckResult {
  readonly status: InstanceStatus;
  /** Why, in a few words: `HTTP 200`, `HTTP 503`, `timeout after 2000 ms`, `ECONNREFUSED`. */
  readonly detail: string;
}

export async function checkHttp(url: string, timeoutMs: number): Promise<CheckResult> {
  try {
    const res = await request(url, {
      method: 'GET',
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
      signal: AbortSignal.timeout(timeoutMs),
      headers: { 'user-agent': 'cairn-register' },
    });
    // Drain so the connection can be reused; the body does not matter.
    await res.body.dump().catch(() => undefined);
    const code = res.statusCode;
    const status: InstanceStatus =
      code >= 200 && code < 300 ? 'passing' : code === 429 ? 'warning' : 'critical';
    return { status, detail: `HTTP ${code}` };
  } catch (e) {
    const err = e as { name?: string; code?: string; message?: string };
    if (err.name === 'TimeoutError' || err.code === 'UND_ERR_HEADERS_TIMEOUT') {
      return { status: 'critical', detail: `timeout after ${timeoutMs} ms` };
    }
    return { status: 'critical', detail: err.code ?? (err.message ?? String(e)).split('\n')[0] ?? 'failed' };
  }
}
