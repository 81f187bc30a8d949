// HAProxy as the second reference proxy (BENCH.md): one thread, `mode http`, server-side
// connection reuse always. Run in the foreground with `haproxy -db -f <file>` (no master-worker,
// no daemon, no logging configured, so it writes nothing outside the bench's temp dir).

export function haproxyConfig(port: number, backendPort: number): string {
  return `global
  nbthread 1
  maxconn 4096

defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  timeout http-keep-alive 60s
  http-reuse always

frontend fe
  bind 127.0.0.1:${port}
  default_backend be

backend be
  server backend 127.0.0.1:${backendPort}
`;
}
