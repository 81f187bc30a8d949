// nginx configurations for the HTTP bench: the backend every proxy forwards to, and nginx as the
// reference proxy (BENCH.md). Both run in the foreground (`daemon off`) with every path nginx
// writes (pid, error log, temp dirs) inside a private prefix, so nothing touches /etc/nginx,
// /var/log or /run and several runs can coexist.

import { chmodSync, mkdirSync, openSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Pinned, spawnPinned } from './processes.ts';

/** Bodies up to this size are inlined in `return 200 "..."`; nginx caps a config token at 4 KB. */
export const maxInlineBody = 3072;

/** The URL path that serves a body of `size` bytes. */
export function bodyPath(size: number): string {
  return `/s${size}`;
}

/** A printable body of exactly `size` bytes (no quotes, backslashes or `$`, which nginx would interpret). */
export function bodyOf(size: number): string {
  const pattern = 'cairn-bench-0123456789-abcdefghijklmnopqrstuvwxyz-';
  return pattern.repeat(Math.ceil(size / pattern.length)).slice(0, size);
}

/** The file name (under `<prefix>/html`) of a body too large to inline. */
export function bodyFileName(size: number): string {
  return `s${size}`;
}

function common(prefix: string): string {
  return [
    'daemon off;',
    'master_process on;',
    'worker_processes 1;',
    `pid ${prefix}/nginx.pid;`,
    `error_log ${prefix}/error.log warn;`,
    'events { worker_connections 4096; }',
  ].join('\n');
}

function httpCommon(prefix: string): string {
  return [
    '  access_log off;',
    '  keepalive_requests 1000000;',
    '  keepalive_timeout 300s;',
    `  client_body_temp_path ${prefix}/client_temp;`,
    `  proxy_temp_path ${prefix}/proxy_temp;`,
    `  fastcgi_temp_path ${prefix}/fastcgi_temp;`,
    `  uwsgi_temp_path ${prefix}/uwsgi_temp;`,
    `  scgi_temp_path ${prefix}/scgi_temp;`,
  ].join('\n');
}

/**
 * The backend: one worker, `return 200 "<body>"` per size (bodies larger than `maxInlineBody`
 * are static files under `<prefix>/html`, served with sendfile and an open-file cache, because
 * nginx refuses config tokens over 4 KB). Anything else is 404.
 */
export function backendNginxConfig(prefix: string, port: number, sizes: readonly number[]): string {
  const locations = sizes.map((size) =>
    size <= maxInlineBody
      ? `    location = ${bodyPath(size)} { default_type text/plain; return 200 "${bodyOf(size)}"; }`
      : `    location = ${bodyPath(size)} { default_type text/plain; root ${prefix}/html; }`,
  );
  return `${common(prefix)}
http {
${httpCommon(prefix)}
  sendfile on;
  tcp_nopush on;
  open_file_cache max=16 inactive=3600s;
  open_file_cache_valid 3600s;
  server {
    listen 127.0.0.1:${port} backlog=4096;
${locations.join('\n')}
    location / { return 404; }
  }
}
`;
}

/** nginx as the reference proxy, exactly BENCH.md's upstream block plus access_log off. */
export function proxyNginxConfig(prefix: string, port: number, backendPort: number): string {
  return `${common(prefix)}
http {
${httpCommon(prefix)}
  upstream up {
    server 127.0.0.1:${backendPort};
    keepalive 64;
    keepalive_requests 1000000;
  }
  server {
    listen 127.0.0.1:${port} backlog=4096;
    location / {
      proxy_pass http://up;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
`;
}

/**
 * The backend every proxy bench shares: nginx (one worker) pinned to `cpu`, serving each size at
 * bodyPath(size) from `<dir>/backend`. Returns the process and its error log (for readiness
 * messages); the caller waits until it answers.
 */
export function spawnBackendNginx(
  dir: string,
  cpu: string,
  nginx: string,
  port: number,
  sizes: readonly number[],
): { readonly backend: Pinned; readonly errorLog: string } {
  const backendDir = join(dir, 'backend');
  mkdirSync(join(backendDir, 'html'), { recursive: true });
  chmodSync(backendDir, 0o755);
  chmodSync(join(backendDir, 'html'), 0o755);
  for (const size of sizes) {
    if (size > maxInlineBody)
      writeFileSync(join(backendDir, 'html', bodyFileName(size)), bodyOf(size), { mode: 0o644 });
  }
  writeFileSync(join(backendDir, 'nginx.conf'), backendNginxConfig(backendDir, port, sizes));
  const errorLog = join(backendDir, 'error.log');
  const backend = spawnPinned(
    'backend nginx',
    cpu,
    nginx,
    ['-p', backendDir, '-c', join(backendDir, 'nginx.conf'), '-e', errorLog],
    { stdout: 'ignore', stderr: openSync(join(backendDir, 'stderr.log'), 'w') },
  );
  return { backend, errorLog };
}
