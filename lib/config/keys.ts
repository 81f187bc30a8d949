// Every configuration key, once: its flag, env name and file key derive from `name`, and the
// help text is generated from here so it cannot drift from what the loader accepts.

export interface ConfigKey {
  /** Flag name without dashes, kebab-case: `tag-prefix` -> `--tag-prefix`, `CAIRN_TAG_PREFIX`. */
  readonly name: string;
  readonly type: 'string' | 'boolean';
  /** Repeatable: every occurrence adds (and commas separate items too). */
  readonly multiple?: boolean;
  readonly short?: string;
  /** Value placeholder for the help text. */
  readonly value?: string;
  readonly help: string;
  /** Default as the user would write it, for the help text. */
  readonly default?: string;
}

export const configKeys: readonly ConfigKey[] = [
  {
    name: 'listen',
    type: 'string',
    multiple: true,
    value: 'ADDR[;proto=..]',
    default: ':9999',
    help: 'proxy listener: [host]:port[;proto=http|https|tcp|tcp+sni|https+tcp+sni|tcp-dynamic|grpc|grpcs][;cert=F;key=F][;pxyproto=true][;maxconn=N][;ct=DUR][;drain=DUR]',
  },
  {
    name: 'admin',
    type: 'string',
    value: 'HOST:PORT',
    default: '127.0.0.1:9998',
    help: 'admin UI/API listener',
  },
  { name: 'admin-token', type: 'string', value: 'TOKEN', help: 'bearer token required for admin mutations' },
  { name: 'admin-readonly', type: 'boolean', default: 'false', help: 'refuse every admin mutation' },
  {
    name: 'metrics',
    type: 'boolean',
    default: 'true',
    help: 'record per-request metrics and live UI traffic (--no-metrics: off)',
  },
  {
    name: 'registry',
    type: 'string',
    multiple: true,
    value: 'KIND:WHERE',
    help: 'file:PATH | consul:URL | etcd:URL; the instances of several are merged',
  },
  {
    name: 'strategy',
    type: 'string',
    value: 'NAME',
    default: 'wrr',
    help: 'balancing: wrr|rr|random|p2c (rnd = random)',
  },
  {
    name: 'matcher',
    type: 'string',
    value: 'NAME',
    default: 'prefix',
    help: 'path matcher: prefix|iprefix|glob|segment',
  },
  {
    name: 'tag-prefix',
    type: 'string',
    value: 'PREFIX',
    default: 'urlprefix-',
    help: 'prefix of route tags',
  },
  {
    name: 'health-status',
    type: 'string',
    value: 'LIST',
    default: 'passing',
    help: 'registry statuses that receive traffic: passing[,warning]',
  },
  {
    name: 'glob-matching',
    type: 'boolean',
    default: 'true',
    help: 'host globs like *.example.com (--no-glob-matching)',
  },
  {
    name: 'workers',
    type: 'string',
    value: 'N|auto',
    default: 'auto',
    help: 'proxy worker processes sharing the ports (auto: one per CPU; 1: a single process)',
  },
  {
    name: 'log-level',
    type: 'string',
    value: 'LEVEL',
    default: 'info',
    help: 'trace|debug|info|warn|error|fatal|silent',
  },
  { name: 'access-log', type: 'string', value: 'FORMAT', default: 'off', help: 'off|json|common|combined' },
  { name: 'shutdown-wait', type: 'string', value: 'DURATION', default: '10s', help: 'drain time on SIGTERM' },
  {
    name: 'noroute-status',
    type: 'string',
    value: 'CODE',
    default: '404',
    help: 'status when no route matches',
  },
  {
    name: 'noroute-html',
    type: 'string',
    value: 'FILE',
    help: 'HTML body sent with the no-route status (default: a short text)',
  },
  {
    name: 'request-id-header',
    type: 'string',
    value: 'NAME',
    help: 'set this header to a new UUID on every request, e.g. X-Request-Id (default: off)',
  },
  { name: 'client-ip-header', type: 'string', value: 'NAME', help: 'also send the client IP in this header' },
  {
    name: 'auth',
    type: 'string',
    multiple: true,
    value: 'SPEC',
    help: 'basic auth for routes with auth=NAME: name=NAME;type=basic;file=HTPASSWD[;realm=R]',
  },
  {
    name: 'http1-engine',
    type: 'string',
    value: 'NAME',
    default: 'lean',
    help: 'plain HTTP listeners: lean (raw sockets + llhttp, fast) or node (node:http)',
  },
  {
    name: 'lean-heap',
    type: 'string',
    value: 'WHERE',
    default: 'control',
    help: 'V8 --optimize-for-size (less RSS with big tables, worse p99): control (only the --workers control process), all, or off',
  },
  {
    name: 'upstream-engine',
    type: 'string',
    value: 'NAME',
    default: 'lean',
    help: 'plain-HTTP upstreams: lean (raw sockets + llhttp, fast) or undici; TLS upstreams and upgrades always use undici',
  },
  {
    name: 'retries',
    type: 'string',
    value: 'N',
    default: '2',
    help: 'default retries= for routes without one',
  },
  {
    name: 'eject-after',
    type: 'string',
    value: 'N',
    default: '5',
    help: 'consecutive failures (connect, reset, 5xx, response timeout) that eject a target; 0 = never',
  },
  {
    name: 'eject-time',
    type: 'string',
    value: 'DURATION',
    default: '30s',
    help: 'first ejection time (doubles, max 10x)',
  },
  {
    name: 'connect-timeout',
    type: 'string',
    value: 'DURATION',
    default: '5s',
    help: 'upstream connect timeout',
  },
  {
    name: 'response-timeout',
    type: 'string',
    value: 'DURATION',
    default: '60s',
    help: 'upstream response header timeout (504)',
  },
  {
    name: 'upstream-idle-timeout',
    type: 'string',
    value: 'DURATION',
    default: '30s',
    help: 'idle keep-alive connections to upstreams are closed after this',
  },
  {
    name: 'client-header-timeout',
    type: 'string',
    value: 'DURATION',
    default: '30s',
    help: 'time a client has to send its request headers (slowloris)',
  },
  {
    name: 'client-idle-timeout',
    type: 'string',
    value: 'DURATION',
    default: '65s',
    help: 'idle keep-alive client connections are closed after this',
  },
  {
    name: 'request-timeout',
    type: 'string',
    value: 'DURATION',
    default: '0',
    help: 'time a client has to send its whole request; 0 = no limit (uploads)',
  },
  {
    name: 'client-body-timeout',
    type: 'string',
    value: 'DURATION',
    default: '60s',
    help: 'longest pause between two reads of a request body (408); 0 = none',
  },
  {
    name: 'max-header-size',
    type: 'string',
    value: 'BYTES',
    default: '65536',
    help: 'request header limit (431)',
  },
  {
    name: 'max-conns',
    type: 'string',
    value: 'N',
    default: '0',
    help: 'maximum client connections per listener; 0 = no limit',
  },
  {
    name: 'max-header-count',
    type: 'string',
    value: 'N',
    default: '100',
    help: 'request header fields allowed (431 beyond; HAProxy allows 101)',
  },
  {
    name: 'max-per-target',
    type: 'string',
    value: 'N',
    default: '0',
    help: 'concurrent upstream requests per target; beyond it 503 (or another target on retry); 0 = no limit',
  },
  {
    name: 'trusted-proxies',
    type: 'string',
    multiple: true,
    value: 'CIDR[,CIDR]',
    help: 'peers whose X-Forwarded-For is believed (access rules, X-Real-Ip, client IP, access log); default none: only the socket address counts; 0.0.0.0/0,::/0 = fabio',
  },
  {
    name: 'consul-token',
    type: 'string',
    value: 'TOKEN',
    help: 'Consul ACL token (else env CONSUL_HTTP_TOKEN)',
  },
  {
    name: 'consul-consistent',
    type: 'boolean',
    default: 'false',
    help: 'read Consul with ?consistent (through the leader) instead of ?stale',
  },
  {
    name: 'consul-wait',
    type: 'string',
    value: 'DURATION',
    default: '5m',
    help: 'how long a Consul blocking query waits for a change (1s to 10m)',
  },
  {
    name: 'consul-ca-file',
    type: 'string',
    value: 'FILE',
    help: 'CA bundle for an https:// Consul (else env CONSUL_CACERT)',
  },
  {
    name: 'consul-cert-file',
    type: 'string',
    value: 'FILE',
    help: "client certificate for Consul's verify_incoming (else env CONSUL_CLIENT_CERT)",
  },
  {
    name: 'consul-key-file',
    type: 'string',
    value: 'FILE',
    help: 'key of --consul-cert-file (else env CONSUL_CLIENT_KEY)',
  },
  {
    name: 'consul-kv-path',
    type: 'string',
    value: 'KEY',
    default: 'cairn/config',
    help: 'Consul KV prefix whose keys (and sub-keys) hold manual route commands',
  },
  {
    name: 'consul-checks-required',
    type: 'string',
    value: 'all|one',
    default: 'all',
    help: "all: an instance's status is the worst of its checks; one: one passing check is enough (fabio)",
  },
  {
    name: 'consul-register',
    type: 'boolean',
    default: 'false',
    help: 'register Cairn in Consul with an HTTP check on the admin /health; deregistered on shutdown',
  },
  {
    name: 'consul-register-name',
    type: 'string',
    value: 'NAME',
    default: 'cairn',
    help: "service name of Cairn's own registration",
  },
  {
    name: 'consul-register-tags',
    type: 'string',
    multiple: true,
    value: 'TAG',
    help: "tags of Cairn's own registration",
  },
  {
    name: 'consul-register-addr',
    type: 'string',
    value: 'HOST:PORT',
    help: 'address Cairn registers with and Consul checks (default: the --admin address)',
  },
  { name: 'etcd-prefix', type: 'string', value: 'PREFIX', default: '/cairn', help: 'etcd key prefix' },
  {
    name: 'etcd-naming-prefix',
    type: 'string',
    multiple: true,
    value: 'PREFIX',
    help: 'also route etcd gRPC naming records ({"Op":0,"Addr":"host:port"}) under this prefix',
  },
  { name: 'etcd-user', type: 'string', value: 'USER', help: 'etcd user (password auth)' },
  {
    name: 'etcd-password',
    type: 'string',
    value: 'PASSWORD',
    help: 'etcd password (prefer env CAIRN_ETCD_PASSWORD)',
  },
  { name: 'etcd-ca', type: 'string', value: 'FILE', help: "PEM CA for etcd's certificate (TLS)" },
  {
    name: 'etcd-cert',
    type: 'string',
    value: 'FILE',
    help: 'PEM client certificate for etcd (with --etcd-key)',
  },
  { name: 'etcd-key', type: 'string', value: 'FILE', help: 'PEM client key for etcd (with --etcd-cert)' },
  {
    name: 'etcd-timeout',
    type: 'string',
    value: 'DURATION',
    default: '5s',
    help: 'deadline of one etcd request',
  },
  {
    name: 'demo',
    type: 'boolean',
    default: 'false',
    help: 'run the embedded demo (file registry + demo backends)',
  },
];

/** `tag-prefix` -> `CAIRN_TAG_PREFIX`. */
export function envName(key: string): string {
  return `CAIRN_${key.toUpperCase().replace(/-/g, '_')}`;
}

/** File keys may be written kebab-case, snake_case or camelCase; all map to the kebab name. */
export function canonicalKey(fileKey: string): string {
  return fileKey
    .replace(/([a-z0-9])([A-Z])/g, '$1-$2')
    .replace(/_/g, '-')
    .toLowerCase();
}
