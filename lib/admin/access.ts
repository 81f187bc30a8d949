// Who may change things through the admin listener (today: PUT /api/manual).
//
// - `--admin-readonly`: nobody.
// - `--admin-token T`: requests with `Authorization: Bearer T`, wherever the admin listens.
// - No token, loopback address: anyone who can reach it, which is the local machine. Browsers
//   are held to the same: a page from another site may not drive the API (Origin must be the
//   admin itself), nor reach it through a DNS name that resolves to 127.0.0.1 (Host must be a
//   loopback name), the two ways a web page could otherwise act for the operator.
// - No token, any other address: Cairn refuses to start, unless `--admin-readonly`.

import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { isIP } from 'node:net';

export interface AdminAccessConfig {
  readonly admin: { readonly address: string; readonly text?: string };
  readonly adminToken?: string;
  readonly adminReadonly: boolean;
}

export type MutationCheck =
  { readonly ok: true } | { readonly ok: false; readonly status: 401 | 403; readonly reason: string };

/** 127.0.0.0/8, ::1, ::ffff:127.x and `localhost`; '' (every interface) is not loopback. */
export function isLoopbackAddress(address: string): boolean {
  let a = address.trim().toLowerCase();
  if (a.startsWith('[') && a.endsWith(']')) a = a.slice(1, -1);
  if (a === 'localhost' || a.endsWith('.localhost')) return true;
  if (a.startsWith('::ffff:')) a = a.slice(7);
  if (isIP(a) === 4) return a.startsWith('127.');
  if (isIP(a) === 6) return a === '::1' || a === '0:0:0:0:0:0:0:1';
  return false;
}

/** Why the admin listener must not start with this configuration, or undefined. */
export function adminStartupProblem(config: AdminAccessConfig): string | undefined {
  if (isLoopbackAddress(config.admin.address)) return undefined;
  if (config.adminToken !== undefined || config.adminReadonly) return undefined;
  const where = config.admin.text ?? (config.admin.address === '' ? 'every interface' : config.admin.address);
  return (
    `--admin ${where}: the admin API is reachable beyond this machine without a token; ` +
    'set --admin-token (mutations then need "Authorization: Bearer TOKEN"), ' +
    'or --admin-readonly, or bind it to 127.0.0.1'
  );
}

function digest(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}

export class AdminAccess {
  readonly readonly: boolean;
  private readonly token: Buffer | undefined;

  constructor(config: AdminAccessConfig) {
    this.readonly = config.adminReadonly;
    this.token = config.adminToken === undefined ? undefined : digest(config.adminToken);
  }

  get tokenRequired(): boolean {
    return this.token !== undefined;
  }

  checkMutation(req: Pick<IncomingMessage, 'headers'>): MutationCheck {
    if (this.readonly)
      return { ok: false, status: 403, reason: 'the admin API is read-only (--admin-readonly)' };
    const h = req.headers;
    if (this.token !== undefined) {
      const auth = h.authorization ?? '';
      const m = /^Bearer\s+(\S+)\s*$/i.exec(auth);
      // Digests have equal length, so the comparison time says nothing about the token.
      if (m === null || !timingSafeEqual(digest(m[1] as string), this.token))
        return { ok: false, status: 401, reason: 'admin token required: Authorization: Bearer TOKEN' };
      return { ok: true };
    }
    const host = hostName(h.host ?? '');
    if (!isLoopbackAddress(host))
      return {
        ok: false,
        status: 403,
        reason: `changes are accepted on a loopback host name only, not ${JSON.stringify(h.host ?? '')}`,
      };
    const origin = h.origin;
    if (origin !== undefined && origin !== 'null') {
      let originHost: string;
      try {
        originHost = new URL(origin).host;
      } catch {
        originHost = '';
      }
      if (originHost.toLowerCase() !== (h.host ?? '').toLowerCase())
        return { ok: false, status: 403, reason: `cross-origin change refused (Origin ${origin})` };
    }
    return { ok: true };
  }
}

/** `host:port` / `[v6]:port` / `host` -> host. */
function hostName(hostHeader: string): string {
  const s = hostHeader.trim();
  if (s.startsWith('[')) {
    const end = s.indexOf(']');
    return end < 0 ? s : s.slice(1, end);
  }
  const colon = s.indexOf(':');
  return colon < 0 || s.indexOf(':', colon + 1) >= 0 ? s : s.slice(0, colon);
}
