// Certificates for TLS listeners, chosen by SNI. `cert=FILE[;key=FILE]` gives one certificate;
// `cert=DIR` loads every `NAME.crt|NAME.pem|NAME-cert.pem` with its `NAME.key|NAME-key.pem` key
// from the directory (fabio's "path" certificate source). The certificate whose subject
// alternative names match the client's server name wins (exact name, then wildcard); clients
// without SNI, or with an unknown name, get the first certificate.

import { X509Certificate } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { createSecureContext, type SecureContext } from 'node:tls';

export interface LoadedCert {
  readonly names: readonly string[];
  readonly cert: Buffer;
  readonly key: Buffer;
  readonly context: SecureContext;
}

export interface CertStore {
  readonly certs: readonly LoadedCert[];
  /** For `tls.createServer({ SNICallback })`. */
  readonly sniCallback: (servername: string, cb: (err: Error | null, ctx?: SecureContext) => void) => void;
  /** The context a server name gets (exported for tests). */
  contextFor(servername: string): LoadedCert | undefined;
}

const certSuffixes = ['.crt', '-cert.pem', '.cert.pem', '.pem'];
const keyCandidates = (base: string) => [`${base}.key`, `${base}-key.pem`, `${base}.key.pem`];

function loadPair(certFile: string, keyFile: string): LoadedCert {
  const cert = readFileSync(certFile);
  const key = readFileSync(keyFile);
  const x = new X509Certificate(cert);
  const names: string[] = [];
  for (const part of (x.subjectAltName ?? '').split(',')) {
    const p = part.trim();
    if (p.startsWith('DNS:')) names.push(p.slice(4).toLowerCase());
  }
  const cn = /CN=([^\n,]+)/.exec(x.subject)?.[1];
  if (names.length === 0 && cn !== undefined) names.push(cn.toLowerCase());
  return { names, cert, key, context: createSecureContext({ cert, key }) };
}

/** Loads the certificates a listener names; throws a one-line error naming the file. */
export function loadCertStore(certPath: string, keyPath?: string): CertStore {
  const certs: LoadedCert[] = [];
  if (statSync(certPath).isDirectory()) {
    const files = readdirSync(certPath).sort();
    for (const f of files) {
      const suffix = certSuffixes.find((s) => f.endsWith(s));
      if (suffix === undefined || f.endsWith('-key.pem') || f.endsWith('.key.pem')) continue;
      const base = join(certPath, f.slice(0, -suffix.length));
      const keyFile = keyCandidates(base).find((k) => existsSync(k));
      if (keyFile === undefined) continue; // a CA bundle or a chain without a key
      certs.push(loadPair(join(certPath, f), keyFile));
    }
    if (certs.length === 0) throw new Error(`no certificate with a key in directory ${certPath}`);
  } else {
    certs.push(loadPair(certPath, keyPath ?? certPath));
  }
  const exact = new Map<string, LoadedCert>();
  const wildcard = new Map<string, LoadedCert>();
  for (const c of certs) {
    for (const n of c.names) {
      if (n.startsWith('*.')) {
        if (!wildcard.has(n.slice(2))) wildcard.set(n.slice(2), c);
      } else if (!exact.has(n)) exact.set(n, c);
    }
  }
  const contextFor = (servername: string): LoadedCert | undefined => {
    const name = servername.toLowerCase().replace(/\.$/, '');
    const e = exact.get(name);
    if (e !== undefined) return e;
    const dot = name.indexOf('.');
    if (dot > 0) {
      const w = wildcard.get(name.slice(dot + 1));
      if (w !== undefined) return w;
    }
    return certs[0];
  };
  return {
    certs,
    contextFor,
    sniCallback: (servername, cb) => cb(null, contextFor(servername)?.context),
  };
}
