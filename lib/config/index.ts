// Cairn's configuration: `cairn [--config cairn.yaml] [flags]`, every key also as env
// `CAIRN_<KEY>`, precedence flag > env > file > default. Loading never throws for bad input; it
// returns a ConfigError whose one-line message names the key as the user wrote it.

import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { type ParseArgsConfig, parseArgs } from 'node:util';
import { parse as parseYaml } from 'yaml';
import { type AccessRulesResult, parseTrustedProxies } from '../../routing/access.ts';
import type { BuildOptions, Cidr, InstanceStatus, PathMatcher, Strategy } from '../../routing/types.ts';
import { ConfigError, quote } from './errors.ts';
import { type ConfigKey, canonicalKey, configKeys, envName } from './keys.ts';
import { type ListenSpec, parseListenList } from './listen.ts';
import { parseRegistryList, type RegistrySpec } from './registry-spec.ts';
import {
  formatHostPort,
  type HostPort,
  type Parsed,
  parseBoolean,
  parseChoice,
  parseDuration,
  parseHostPort,
  parseInteger,
} from './values.ts';

export { ConfigError } from './errors.ts';
export { type ConfigKey, configKeys, envName } from './keys.ts';
export { type ListenProto, type ListenSpec, listenProtos, parseListen, parseListenList } from './listen.ts';
export { parseRegistryList, parseRegistrySpec, type RegistrySpec } from './registry-spec.ts';
export { formatHostPort, type HostPort, parseDuration, parseHostPort } from './values.ts';

export const strategies: readonly Strategy[] = ['wrr', 'rr', 'random', 'p2c'];
export const matchers: readonly PathMatcher[] = ['prefix', 'iprefix', 'glob', 'segment'];
export const logLevels = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export type LogLevel = (typeof logLevels)[number];
export const accessLogFormats = ['off', 'json', 'common', 'combined'] as const;
export type AccessLogFormat = (typeof accessLogFormats)[number];
const acceptableStatuses = ['passing', 'warning'] as const;

export interface AdminAddress extends HostPort {
  /** As written, e.g. `127.0.0.1:9998`. */
  readonly text: string;
}

export interface CairnConfig {
  /** The config file that was read, if any. */
  readonly configFile?: string;
  readonly listen: readonly ListenSpec[];
  readonly admin: AdminAddress;
  readonly adminToken?: string;
  readonly adminReadonly: boolean;
  /** Per-request metrics and the UI's live traffic (the proxy's onResponse hook). */
  readonly metrics: boolean;
  readonly registries: readonly RegistrySpec[];
  readonly strategy: Strategy;
  readonly matcher: PathMatcher;
  readonly tagPrefix: string;
  /** Registry statuses that receive traffic (`BuildOptions.acceptedStatus`). */
  readonly healthStatus: readonly InstanceStatus[];
  readonly globMatching: boolean;
  /** Worker processes; 1 = no cluster. */
  readonly workers: number;
  readonly logLevel: LogLevel;
  readonly accessLog: AccessLogFormat;
  readonly shutdownWaitMs: number;
  readonly norouteStatus: number;
  readonly norouteHtmlFile?: string;
  readonly requestIdHeader?: string;
  readonly clientIpHeader?: string;
  /** Basic-auth realms by name (`auth=NAME` on a route). */
  readonly auth: readonly AuthSpec[];
  /** Plain HTTP listeners: the lean raw-socket engine or node:http. */
  readonly http1Engine: 'lean' | 'node';
  /** Plain-HTTP upstreams: the lean raw-socket client or undici. */
  readonly upstreamEngine: 'lean' | 'undici';
  /** Which processes run V8 with --optimize-for-size (lib/workers/lean-heap.ts). */
  readonly leanHeap: 'control' | 'all' | 'off';
  readonly retries: number;
  readonly ejectAfter: number;
  readonly ejectTimeMs: number;
  readonly connectTimeoutMs: number;
  readonly responseTimeoutMs: number;
  readonly upstreamIdleTimeoutMs: number;
  readonly clientHeaderTimeoutMs: number;
  readonly clientIdleTimeoutMs: number;
  readonly requestTimeoutMs: number;
  /** Longest pause between two reads of a request body; 0 = none. */
  readonly clientBodyTimeoutMs: number;
  readonly maxHeaderSize: number;
  readonly maxConns: number;
  /** Request header fields allowed on HTTP/1.x listeners (431 beyond). */
  readonly maxHeaderCount: number;
  /** Concurrent upstream requests per target; 0 = no limit. */
  readonly maxPerTarget: number;
  /** `--trusted-proxies`: peers whose X-Forwarded-For entries count (empty: none). */
  readonly trustedProxies: readonly Cidr[];
  readonly consulToken?: string;
  /** `?consistent` Consul reads instead of `?stale`. */
  readonly consulConsistent: boolean;
  /** Blocking-query wait, ms. */
  readonly consulWaitMs: number;
  readonly consulCaFile?: string;
  readonly consulCertFile?: string;
  readonly consulKeyFile?: string;
  /** KV prefix of the manual route commands, without leading or trailing slash. */
  readonly consulKvPath: string;
  readonly consulChecksRequired: 'one' | 'all';
  /** Register Cairn itself in Consul. */
  readonly consulRegister: boolean;
  readonly consulRegisterName: string;
  readonly consulRegisterTags: readonly string[];
  /** Address Cairn registers with and Consul checks; default the admin address. */
  readonly consulRegisterAddr?: AdminAddress;
  /** etcd key prefix without a trailing slash, e.g. `/cairn`. */
  readonly etcdPrefix: string;
  /** Prefixes of etcd gRPC naming records to route too. */
  readonly etcdNamingPrefixes: readonly string[];
  /** etcd password auth (both or neither). */
  readonly etcdUser?: string;
  readonly etcdPassword?: string;
  /** etcd TLS: CA file; client certificate and key files (both or neither). */
  readonly etcdCa?: string;
  readonly etcdCert?: string;
  readonly etcdKey?: string;
  /** Deadline of one etcd request. */
  readonly etcdTimeoutMs: number;
  readonly demo: boolean;
}

export type ConfigResult =
  | { readonly kind: 'help' }
  | { readonly kind: 'version' }
  | { readonly kind: 'config'; readonly config: CairnConfig; readonly positionals: readonly string[] }
  | { readonly kind: 'error'; readonly error: ConfigError };

export interface LoadConfigIo {
  /** Reads the config file; defaults to `fs.readFileSync(path, 'utf8')`. */
  readonly readFile?: (path: string) => string;
}

/** The table-building options a configuration implies. */
export function tableOptions(config: CairnConfig): BuildOptions {
  return {
    tagPrefix: config.tagPrefix,
    acceptedStatus: config.healthStatus,
    matcher: config.matcher,
    globMatching: config.globMatching,
  };
}

/** One raw value and where it came from (for error messages). */
interface Raw {
  readonly values: readonly string[];
  /** `--strategy`, `CAIRN_STRATEGY` or `cairn.yaml: strategy`. */
  readonly where: string;
}

class Failure {
  readonly error: ConfigError;
  constructor(error: ConfigError) {
    this.error = error;
  }
}

const metaOptions = {
  config: { type: 'string', short: 'c' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean', short: 'v' },
} as const;

/** Loads the configuration from command-line arguments (without `node` and the script), env and file. */
export function loadConfig(
  args: readonly string[],
  env: Readonly<Record<string, string | undefined>> = process.env,
  io: LoadConfigIo = {},
): ConfigResult {
  try {
    return load(args, env, io);
  } catch (e) {
    if (e instanceof Failure) return { kind: 'error', error: e.error };
    throw e;
  }
}

function load(
  args: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
  io: LoadConfigIo,
): ConfigResult {
  const flags = parseFlags(args);
  if (flags.values.help === true) return { kind: 'help' };
  if (flags.values.version === true) return { kind: 'version' };

  const configFlag = flags.values.config;
  const configPath =
    typeof configFlag === 'string' ? configFlag : nonEmpty(env.CAIRN_CONFIG) ? env.CAIRN_CONFIG : undefined;
  const configWhere = typeof configFlag === 'string' ? '--config' : 'CAIRN_CONFIG';
  const file =
    configPath === undefined ? new Map<string, Raw>() : readConfigFile(configPath, configWhere, io);

  const raw = (key: ConfigKey): Raw | undefined => {
    const f = flags.values[key.name];
    if (f !== undefined) {
      const values = Array.isArray(f) ? f.map(String) : [String(f)];
      return { values, where: `--${key.name}` };
    }
    const e = env[envName(key.name)];
    if (nonEmpty(e)) return { values: [e], where: envName(key.name) };
    return file.get(key.name);
  };
  const get = (name: string): Raw | undefined => {
    const key = configKeys.find((k) => k.name === name);
    if (key === undefined) throw new Error(`unknown config key ${name}`);
    return raw(key);
  };
  const one = <T>(name: string, fallback: T, parse: (text: string) => Parsed<T>): T => {
    const r = get(name);
    if (r === undefined) return fallback;
    return check(r, parse(r.values[r.values.length - 1] ?? ''));
  };
  const text = (name: string, fallback: string, validate?: (s: string) => string | undefined): string =>
    one(name, fallback, (s) => {
      const t = s.trim();
      if (t === '') return { detail: 'expected a non-empty value' };
      const detail = validate?.(t);
      return detail === undefined ? { value: t } : { detail };
    });
  const optionalText = (name: string): string | undefined => {
    const v = text(name, '');
    return v === '' ? undefined : v;
  };

  const listenRaw = get('listen');
  const listen =
    listenRaw === undefined ? defaultListen() : check(listenRaw, parseListenList(listenRaw.values.join(',')));
  const registryRaw = get('registry');
  const registries =
    registryRaw === undefined ? [] : check(registryRaw, parseRegistryList(registryRaw.values));
  const adminToken = optionalText('admin-token');
  const norouteHtmlFile = optionalText('noroute-html');
  const requestIdHeader = optionalText('request-id-header');
  const clientIpHeader = optionalText('client-ip-header');
  const trustedRaw = get('trusted-proxies');
  const trustedProxies =
    trustedRaw === undefined
      ? []
      : check(trustedRaw, withCidrs(parseTrustedProxies(trustedRaw.values.join(','))));
  const authRaw = get('auth');
  const auth = authRaw === undefined ? [] : authRaw.values.map((v) => check(authRaw, parseAuthSpec(v)));
  // Consul's own env names come last, so a Cairn setting always wins.
  const consulFallback = (name: string, consulEnv: string): string | undefined => {
    const own = optionalText(name);
    if (own !== undefined) return own;
    const e = env[consulEnv]?.trim();
    return e === undefined || e === '' ? undefined : e;
  };
  const consulToken = consulFallback('consul-token', 'CONSUL_HTTP_TOKEN');
  const consulCaFile = consulFallback('consul-ca-file', 'CONSUL_CACERT');
  const consulCertFile = consulFallback('consul-cert-file', 'CONSUL_CLIENT_CERT');
  const consulKeyFile = consulFallback('consul-key-file', 'CONSUL_CLIENT_KEY');
  const registerTagsRaw = get('consul-register-tags');
  const consulRegisterTags =
    registerTagsRaw === undefined
      ? []
      : registerTagsRaw.values.flatMap((v) => v.split(',').map((t) => t.trim())).filter((t) => t !== '');
  const registerAddrRaw = get('consul-register-addr');
  const consulRegisterAddr =
    registerAddrRaw === undefined
      ? undefined
      : check(
          registerAddrRaw,
          withText(parseHostPort(registerAddrRaw.values[registerAddrRaw.values.length - 1] ?? '')),
        );
  const namingRaw = get('etcd-naming-prefix');
  const etcdNamingPrefixes =
    namingRaw === undefined ? [] : check(namingRaw, parseNamingPrefixes(namingRaw.values));
  const etcdUser = optionalText('etcd-user');
  const etcdPassword = optionalText('etcd-password');
  if ((etcdUser === undefined) !== (etcdPassword === undefined)) {
    const given = get(etcdUser === undefined ? 'etcd-password' : 'etcd-user') as Raw;
    const missing = etcdUser === undefined ? 'etcd-user' : 'etcd-password';
    throw new Failure(new ConfigError(given.where, `needs --${missing} too (etcd password auth)`));
  }
  const etcdCa = optionalText('etcd-ca');
  const etcdCert = optionalText('etcd-cert');
  const etcdKey = optionalText('etcd-key');
  if ((etcdCert === undefined) !== (etcdKey === undefined)) {
    const given = get(etcdCert === undefined ? 'etcd-key' : 'etcd-cert') as Raw;
    const missing = etcdCert === undefined ? 'etcd-cert' : 'etcd-key';
    throw new Failure(new ConfigError(given.where, `needs --${missing} too (etcd client certificate)`));
  }

  const config: CairnConfig = {
    ...(configPath !== undefined ? { configFile: configPath } : {}),
    listen,
    admin: one('admin', defaultAdmin(), (s) => {
      const hp = parseHostPort(s);
      return 'detail' in hp ? hp : { value: { ...hp.value, text: s.trim() } };
    }),
    ...(adminToken !== undefined ? { adminToken } : {}),
    adminReadonly: one('admin-readonly', false, parseBoolean),
    metrics: one('metrics', true, parseBoolean),
    registries,
    strategy: one('strategy', 'wrr', (s) => parseChoice(s, strategies, { rnd: 'random' })),
    matcher: one('matcher', 'prefix', (s) => parseChoice(s, matchers)),
    tagPrefix: text('tag-prefix', 'urlprefix-', (s) =>
      /\s/.test(s) ? `expected a prefix without spaces, got ${quote(s)}` : undefined,
    ),
    healthStatus: one('health-status', ['passing'], parseHealthStatus),
    globMatching: one('glob-matching', true, parseBoolean),
    // One worker per CPU by default; with one CPU that is the single-process mode.
    workers: one('workers', availableParallelism(), (s) =>
      s.trim() === 'auto' ? { value: availableParallelism() } : parseInteger(s, 1, 1024, 'auto or a number'),
    ),
    logLevel: one('log-level', 'info', (s) => parseChoice(s, logLevels)),
    accessLog: one('access-log', 'off', (s) => parseChoice(s, accessLogFormats)),
    shutdownWaitMs: one('shutdown-wait', 10_000, parseDuration),
    norouteStatus: one('noroute-status', 404, (s) => parseInteger(s, 200, 599, 'an HTTP status')),
    ...(norouteHtmlFile !== undefined ? { norouteHtmlFile } : {}),
    ...(requestIdHeader !== undefined ? { requestIdHeader } : {}),
    ...(clientIpHeader !== undefined ? { clientIpHeader } : {}),
    auth,
    http1Engine: one('http1-engine', 'lean', (s) => parseChoice(s, ['lean', 'node'] as const)),
    upstreamEngine: one('upstream-engine', 'lean', (s) => parseChoice(s, ['lean', 'undici'] as const)),
    leanHeap: one('lean-heap', 'control', (s) => parseChoice(s, ['control', 'all', 'off'] as const)),
    retries: one('retries', 2, (s) => parseInteger(s, 0, 10)),
    ejectAfter: one('eject-after', 5, (s) => parseInteger(s, 0, 1000)),
    ejectTimeMs: one('eject-time', 30_000, parseDuration),
    connectTimeoutMs: one('connect-timeout', 5_000, parseDuration),
    responseTimeoutMs: one('response-timeout', 60_000, parseDuration),
    upstreamIdleTimeoutMs: one('upstream-idle-timeout', 30_000, parseDuration),
    clientHeaderTimeoutMs: one('client-header-timeout', 30_000, parseDuration),
    clientIdleTimeoutMs: one('client-idle-timeout', 65_000, parseDuration),
    requestTimeoutMs: one('request-timeout', 0, parseDuration),
    clientBodyTimeoutMs: one('client-body-timeout', 60_000, parseDuration),
    maxHeaderSize: one('max-header-size', 65_536, (s) =>
      parseInteger(s, 1024, 16 * 1024 * 1024, 'a size in bytes'),
    ),
    maxConns: one('max-conns', 0, (s) => parseInteger(s, 0, 1_000_000)),
    maxHeaderCount: one('max-header-count', 100, (s) => parseInteger(s, 1, 10_000)),
    maxPerTarget: one('max-per-target', 0, (s) => parseInteger(s, 0, 1_000_000)),
    trustedProxies,
    ...(consulToken !== undefined ? { consulToken } : {}),
    consulConsistent: one('consul-consistent', false, parseBoolean),
    consulWaitMs: one('consul-wait', 300_000, parseConsulWait),
    ...(consulCaFile !== undefined ? { consulCaFile } : {}),
    ...(consulCertFile !== undefined ? { consulCertFile } : {}),
    ...(consulKeyFile !== undefined ? { consulKeyFile } : {}),
    consulKvPath: text('consul-kv-path', 'cairn/config', (s) =>
      s.replace(/^\/+|\/+$/g, '') === '' ? `expected a KV key like cairn/config, got ${quote(s)}` : undefined,
    ).replace(/^\/+|\/+$/g, ''),
    consulChecksRequired: one('consul-checks-required', 'all', (s) =>
      parseChoice(s, ['all', 'one'] as const),
    ),
    consulRegister: one('consul-register', false, parseBoolean),
    consulRegisterName: text('consul-register-name', 'cairn', (s) =>
      /^[A-Za-z0-9][A-Za-z0-9-]*$/.test(s)
        ? undefined
        : `expected a service name (letters, digits, -), got ${quote(s)}`,
    ),
    consulRegisterTags,
    ...(consulRegisterAddr !== undefined ? { consulRegisterAddr } : {}),
    etcdPrefix: text('etcd-prefix', '/cairn', (s) =>
      s.startsWith('/') ? undefined : `expected a key prefix starting with '/', got ${quote(s)}`,
    ).replace(/(.)\/+$/, '$1'),
    etcdNamingPrefixes,
    ...(etcdUser !== undefined ? { etcdUser } : {}),
    ...(etcdPassword !== undefined ? { etcdPassword } : {}),
    ...(etcdCa !== undefined ? { etcdCa } : {}),
    ...(etcdCert !== undefined ? { etcdCert } : {}),
    ...(etcdKey !== undefined ? { etcdKey } : {}),
    etcdTimeoutMs: one('etcd-timeout', 5_000, (s) => {
      const d = parseDuration(s);
      return 'value' in d && d.value < 1
        ? { detail: `expected a duration of at least 1ms, got ${quote(s)}` }
        : d;
    }),
    demo: one('demo', false, parseBoolean),
  };
  return { kind: 'config', config, positionals: flags.positionals };
}

function check<T>(raw: Raw, parsed: Parsed<T>): T {
  if ('detail' in parsed) throw new Failure(new ConfigError(raw.where, parsed.detail));
  return parsed.value;
}

/** `--etcd-naming-prefix` values, repeatable and comma-separated; blanks dropped. */
function parseNamingPrefixes(values: readonly string[]): Parsed<string[]> {
  const out: string[] = [];
  for (const v of values) {
    for (const part of v.split(',')) {
      const p = part.trim();
      if (p === '') continue;
      if (/\s/.test(p)) return { detail: `expected a key prefix without spaces, got ${quote(p)}` };
      if (p.replace(/\/+$/, '') === '')
        return { detail: `expected a key prefix, not the whole keyspace, got ${quote(p)}` };
      if (!out.includes(p)) out.push(p);
    }
  }
  return { value: out };
}

function parseConsulWait(text: string): Parsed<number> {
  const d = parseDuration(text);
  if ('detail' in d) return d;
  // Consul caps a blocking query at 10 minutes; under a second it is a busy loop.
  if (d.value < 1000 || d.value > 600_000)
    return { detail: `expected a duration from 1s to 10m, got ${quote(text)}` };
  return d;
}

/** `--trusted-proxies` as a config value (the access-rule parser's error text as the detail). */
function withCidrs(r: AccessRulesResult): Parsed<Cidr[]> {
  return 'error' in r ? { detail: `expected addresses or CIDR networks: ${r.error}` } : { value: r.cidrs };
}

function withText(p: Parsed<HostPort>): Parsed<AdminAddress> {
  return 'detail' in p ? p : { value: { ...p.value, text: formatHostPort(p.value) } };
}

function parseHealthStatus(text: string): Parsed<InstanceStatus[]> {
  const out: InstanceStatus[] = [];
  for (const part of text.split(',')) {
    const p = part.trim();
    if (p === '') continue;
    const c = parseChoice(p, acceptableStatuses);
    if ('detail' in c) return { detail: `expected passing or passing,warning, got ${quote(text)}` };
    if (!out.includes(c.value)) out.push(c.value);
  }
  if (out.length === 0) return { detail: `expected passing or passing,warning, got ${quote(text)}` };
  return { value: out };
}

export interface AuthSpec {
  readonly name: string;
  readonly type: 'basic';
  readonly file: string;
  readonly realm: string;
}

/** fabio's `proxy.auth` form: `name=NAME;type=basic;file=PATH[;realm=REALM]`. */
export function parseAuthSpec(text: string): Parsed<AuthSpec> {
  const fields = new Map<string, string>();
  for (const part of text.split(';')) {
    const p = part.trim();
    if (p === '') continue;
    const eq = p.indexOf('=');
    if (eq <= 0) return { detail: `expected name=NAME;type=basic;file=PATH[;realm=R], got ${quote(text)}` };
    fields.set(p.slice(0, eq), p.slice(eq + 1));
  }
  const name = fields.get('name');
  const file = fields.get('file');
  const type = fields.get('type') ?? 'basic';
  if (name === undefined || name === '' || file === undefined || file === '') {
    return { detail: `expected name=NAME;type=basic;file=PATH[;realm=R], got ${quote(text)}` };
  }
  if (type !== 'basic') return { detail: `auth type ${quote(type)} is not supported (type=basic)` };
  for (const k of fields.keys()) {
    if (k !== 'name' && k !== 'file' && k !== 'type' && k !== 'realm') {
      return { detail: `unknown auth option ${quote(k)} (name, type, file, realm)` };
    }
  }
  return { value: { name, type: 'basic', file, realm: fields.get('realm') ?? name } };
}

function defaultListen(): ListenSpec[] {
  return [{ text: ':9999', address: '', port: 9999, proto: 'http', proxyProtocol: false }];
}

function defaultAdmin(): AdminAddress {
  return { text: '127.0.0.1:9998', address: '127.0.0.1', port: 9998 };
}

function nonEmpty(s: string | undefined): s is string {
  return s !== undefined && s !== '';
}

// ---- flags ----

type FlagValues = Record<string, string | boolean | (string | boolean)[] | undefined>;

function parseFlags(args: readonly string[]): { values: FlagValues; positionals: string[] } {
  const options: NonNullable<ParseArgsConfig['options']> = { ...metaOptions };
  const booleans = new Set<string>(['help', 'version']);
  for (const k of configKeys) {
    options[k.name] = {
      type: k.type,
      ...(k.multiple === true ? { multiple: true } : {}),
      ...(k.short !== undefined ? { short: k.short } : {}),
    };
    if (k.type === 'boolean') booleans.add(k.name);
  }
  const argv = rewriteBooleanValues(args, booleans);
  try {
    const r = parseArgs({ args: argv, options, allowPositionals: true, allowNegative: true, strict: true });
    return { values: r.values as FlagValues, positionals: r.positionals };
  } catch (e) {
    throw new Failure(flagError(e));
  }
}

/** `--demo=false` -> `--no-demo`: parseArgs booleans take no value, users expect both forms. */
function rewriteBooleanValues(args: readonly string[], booleans: ReadonlySet<string>): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i] ?? '';
    if (a === '--') {
      out.push(...args.slice(i));
      break;
    }
    const eq = a.indexOf('=');
    const name = a.startsWith('--') && eq > 2 ? a.slice(2, eq) : '';
    if (!booleans.has(name)) {
      out.push(a);
      continue;
    }
    const b = parseBoolean(a.slice(eq + 1));
    if ('detail' in b) throw new Failure(new ConfigError(`--${name}`, b.detail));
    out.push(b.value ? `--${name}` : `--no-${name}`);
  }
  return out;
}

function flagError(e: unknown): ConfigError {
  const code = (e as { code?: unknown }).code;
  const message = e instanceof Error ? e.message : String(e);
  const flag = /'(-[^' ]+)/.exec(message)?.[1] ?? 'flags';
  if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION')
    return new ConfigError(flag, 'unknown flag (see cairn --help)');
  if (code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
    if (message.includes('does not take an argument')) return new ConfigError(flag, 'takes no value');
    return new ConfigError(flag, `expected a value (write ${flag}=VALUE if it starts with '-')`);
  }
  return new ConfigError(flag, message.split('\n')[0] ?? message);
}

// ---- config file ----

function readConfigFile(path: string, where: string, io: LoadConfigIo): Map<string, Raw> {
  let text: string;
  try {
    text = (io.readFile ?? ((p: string) => readFileSync(p, 'utf8')))(path);
  } catch (e) {
    const reason = (e as { code?: unknown }).code === 'ENOENT' ? 'no such file' : errorText(e);
    throw new Failure(new ConfigError(where, `cannot read ${quote(path)}: ${reason}`));
  }
  let doc: unknown;
  try {
    doc = parseYaml(text, { prettyErrors: false });
  } catch (e) {
    throw new Failure(new ConfigError(path, `not valid YAML or JSON: ${errorText(e)}`));
  }
  const out = new Map<string, Raw>();
  if (doc === null || doc === undefined) return out;
  if (typeof doc !== 'object' || Array.isArray(doc)) {
    throw new Failure(new ConfigError(path, 'expected a mapping of keys (listen:, registry:, ...)'));
  }
  for (const [fileKey, value] of Object.entries(doc as Record<string, unknown>)) {
    const name = canonicalKey(fileKey);
    const key = configKeys.find((k) => k.name === name);
    const where = `${path}: ${fileKey}`;
    if (key === undefined) throw new Failure(new ConfigError(where, 'unknown key (see cairn --help)'));
    if (value === null || value === undefined) continue;
    const items = Array.isArray(value) ? value : [value];
    if (Array.isArray(value) && key.multiple !== true) {
      throw new Failure(new ConfigError(where, 'expected a single value, got a list'));
    }
    const values: string[] = [];
    for (const item of items) {
      if (typeof item === 'string' || typeof item === 'number' || typeof item === 'boolean')
        values.push(String(item));
      else throw new Failure(new ConfigError(where, 'expected a string, number or boolean'));
    }
    if (values.length > 0) out.set(name, { values, where });
  }
  return out;
}

function errorText(e: unknown): string {
  const m = e instanceof Error ? e.message : String(e);
  return (m.split('\n')[0] ?? m).trim();
}
