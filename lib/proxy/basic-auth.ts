// `auth=NAME` on a route: HTTP basic auth against an htpasswd file (fabio's `proxy.auth`).
// Supported entries: bcrypt (`$2y$`, `$2a$`, `$2b$`) and SHA-1 (`{SHA}`); other schemes are
// reported when the file is loaded and never match.
//
// bcrypt is deliberately slow (tens of ms), so a verified `Authorization` value is remembered for
// a short while: repeated requests from a logged-in client cost one Map lookup, not a hash.

import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import bcrypt from 'bcryptjs';
import type { AuthSpec } from '../config/index.ts';

interface Entry {
  readonly kind: 'bcrypt' | 'sha';
  readonly hash: string;
}

export interface AuthProblem {
  readonly realm: string;
  readonly line: number;
  readonly reason: string;
}

const verifiedTtlMs = 60_000;
const maxVerified = 10_000;

export class BasicAuthRealm {
  readonly name: string;
  readonly realm: string;
  readonly challenge: string;
  private readonly users = new Map<string, Entry>();
  /** Authorization header value -> time it stops being trusted without a new check. */
  private readonly verified = new Map<string, number>();
  readonly problems: AuthProblem[] = [];

  constructor(name: string, realm: string, htpasswd: string) {
    this.name = name;
    this.realm = realm;
    this.challenge = `Basic realm="${realm.replace(/["\\]/g, '')}"`;
    const lines = htpasswd.split('\n');
    for (let i = 0; i < lines.length; i++) {
      const line = (lines[i] ?? '').trim();
      if (line === '' || line.startsWith('#')) continue;
      const colon = line.indexOf(':');
      if (colon <= 0) {
        this.problems.push({ realm: name, line: i + 1, reason: 'expected user:hash' });
        continue;
      }
      const user = line.slice(0, colon);
      const hash = line.slice(colon + 1);
      if (/^\$2[aby]\$\d\d\$/.test(hash)) this.users.set(user, { kind: 'bcrypt', hash });
      else if (hash.startsWith('{SHA}')) this.users.set(user, { kind: 'sha', hash: hash.slice(5) });
      else
        this.problems.push({
          realm: name,
          line: i + 1,
          reason: `unsupported hash for user ${user} (use bcrypt or {SHA})`,
        });
    }
  }

  static fromSpec(spec: AuthSpec): BasicAuthRealm {
    return new BasicAuthRealm(spec.name, spec.realm, readFileSync(spec.file, 'utf8'));
  }

  /** True if the `Authorization` header carries a valid user and password. */
  check(authorization: string | undefined): boolean {
    if (authorization === undefined || !authorization.startsWith('Basic ')) return false;
    const until = this.verified.get(authorization);
    const now = Date.now();
    if (until !== undefined) {
      if (until > now) return true;
      this.verified.delete(authorization);
    }
    const decoded = Buffer.from(authorization.slice(6).trim(), 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) return false;
    const entry = this.users.get(decoded.slice(0, colon));
    if (entry === undefined) return false;
    const password = decoded.slice(colon + 1);
    const ok =
      entry.kind === 'bcrypt' ? bcrypt.compareSync(password, entry.hash) : shaMatches(password, entry.hash);
    if (ok) {
      if (this.verified.size >= maxVerified) this.verified.clear();
      this.verified.set(authorization, now + verifiedTtlMs);
    }
    return ok;
  }
}

function shaMatches(password: string, expectedBase64: string): boolean {
  const got = createHash('sha1').update(password).digest();
  const want = Buffer.from(expectedBase64, 'base64');
  return got.length === want.length && timingSafeEqual(got, want);
}

/** Loads every configured realm; a missing file is a startup error naming the realm. */
export function loadRealms(specs: readonly AuthSpec[]): Map<string, BasicAuthRealm> {
  const out = new Map<string, BasicAuthRealm>();
  for (const s of specs) {
    try {
      out.set(s.name, BasicAuthRealm.fromSpec(s));
    } catch (err) {
      throw new Error(`--auth name=${s.name}: cannot read ${s.file}: ${(err as Error).message}`, {
        cause: err,
      });
    }
  }
  return out;
}
