// `cairn register`: a registrar for services that cannot talk to etcd themselves (a sidecar in a
// compose stack, a wrapper in a VM's unit file).
//
//   cairn register --registry etcd:http://127.0.0.1:2379 --service api --address 10.0.0.5 \
//     --port 8080 --tag 'urlprefix-/api strip=/api' [--check http://10.0.0.5:8080/health] [--ttl 10s]
//
// The registration flags are read here; everything else (--registry, --etcd-*, --log-level,
// --config, CAIRN_* env) goes through the normal configuration loader, so the etcd connection
// is configured exactly as for `cairn` itself. Runs until SIGTERM/SIGINT, then revokes the lease
// (the instance is gone at once) and exits 0.

import { parseArgs } from 'node:util';
import { type CairnConfig, loadConfig } from '../config/index.ts';
import { configKeys } from '../config/keys.ts';
import { type Parsed, parseDuration, parseInteger } from '../config/values.ts';
import { createLogger, type Logger } from '../logging.ts';
import { etcdConnection } from '../registries.ts';
// The registrar (and with it etcd3) is imported when `cairn register` runs, not by every Cairn.
import type { HealthCheckOptions, Registrar, RegistrarEvent, RegistrationOptions } from './registrar.ts';

export interface RegisterIo {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Where SIGTERM/SIGINT come from (default `process`). */
  readonly signals?: { once(signal: 'SIGTERM' | 'SIGINT', fn: () => void): unknown };
  /** Log destination (default stderr). */
  readonly logTo?: NodeJS.WritableStream;
}

const registerFlags = {
  service: { type: 'string' },
  address: { type: 'string' },
  port: { type: 'string' },
  id: { type: 'string' },
  tag: { type: 'string', multiple: true },
  weight: { type: 'string' },
  meta: { type: 'string', multiple: true },
  ttl: { type: 'string' },
  check: { type: 'string' },
  'check-interval': { type: 'string' },
  'check-timeout': { type: 'string' },
} as const;
type RegisterFlag = keyof typeof registerFlags;

export function registerUsage(): string {
  return [
    'Usage:',
    '  cairn register --registry etcd:URL --service NAME --address HOST --port N [flags]',
    '',
    'Keeps one instance registered in etcd at <etcd-prefix>/services/NAME/ID with a lease;',
    'SIGTERM or SIGINT revokes the lease (the instance is gone at once), a crash lets it expire.',
    '',
    'Flags:',
    '  --service NAME           service name (required)',
    '  --address HOST           address Cairn forwards to (required)',
    '  --port N                 port Cairn forwards to (required)',
    '  --id ID                  instance id [ADDRESS:PORT]',
    "  --tag TAG                a tag, e.g. 'urlprefix-/api strip=/api' (repeatable)",
    '  --weight N               per-instance weight (lbweight)',
    '  --meta KEY=VALUE         metadata (repeatable)',
    '  --ttl DURATION           lease TTL, whole seconds [10s]',
    '  --check URL              HTTP health check: 2xx passing, 429 warning, else critical',
    '  --check-interval DURATION  time between checks [5s]',
    '  --check-timeout DURATION time one check may take [2s]',
    '',
    'Also: --registry (one etcd:URL[,URL]), --etcd-prefix, --etcd-user, --etcd-password,',
    '--etcd-ca, --etcd-cert, --etcd-key, --etcd-timeout, --log-level, --config (see cairn --help).',
  ].join('\n');
}

/**
 * Whether `args` run `cairn register`: its first positional argument is `register` (values of
 * flags that take one are skipped, so `--tag-prefix register` is not the command).
 */
export function isRegisterCommand(args: readonly string[]): boolean {
  const takesValue = new Set<string>(['config', 'c']);
  for (const k of configKeys) if (k.type === 'string') takesValue.add(k.name);
  for (const [name, spec] of Object.entries(registerFlags)) if (spec.type === 'string') takesValue.add(name);
  for (let i = 0; i < args.length; i++) {
    const a = args[i] as string;
    if (a === '--') return args[i + 1] === 'register';
    if (a.startsWith('-')) {
      const name = a.replace(/^--?/, '');
      if (!name.includes('=') && takesValue.has(name)) i++;
      continue;
    }
    return a === 'register';
  }
  return false;
}

export type ParsedRegister =
  | { readonly kind: 'help' | 'version' }
  /** A one-line message for stderr (exit code 2). */
  | { readonly kind: 'error'; readonly message: string }
  | {
      readonly kind: 'register';
      readonly config: CairnConfig;
      readonly registry: string;
      /** Everything the Registrar needs but the event callback. */
      readonly options: RegistrationOptions;
    };

/** Parses `cairn register ...` (flags, env, config file) without connecting anywhere. */
export function parseRegisterCommand(
  args: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
): ParsedRegister {
  const error = (key: string, detail: string): ParsedRegister => ({
    kind: 'error',
    message: `cairn: ${key}: ${detail}`,
  });
  const split = splitArgs(args);
  if ('error' in split) return error(split.key, split.error);
  if (split.help) return { kind: 'help' };
  const loaded = loadConfig(split.rest, env);
  switch (loaded.kind) {
    case 'help':
    case 'version':
      return { kind: loaded.kind };
    case 'error':
      return { kind: 'error', message: loaded.error.message };
  }
  const { config, positionals } = loaded;
  if (positionals.length > 0)
    return error('register', `unexpected argument ${JSON.stringify(positionals[0])}`);
  const spec = config.registries[0];
  if (spec?.kind !== 'etcd' || config.registries.length !== 1) {
    return error('--registry', 'cairn register needs exactly one etcd:URL[,URL...] registry');
  }
  const built = registrationOptions(split.flags);
  if ('error' in built) return error(built.key, built.error);
  return {
    kind: 'register',
    config,
    registry: spec.text,
    options: { ...etcdConnection(spec.urls, config), ...built.options, prefix: config.etcdPrefix },
  };
}

/** Runs `cairn register ...`; resolves to the exit code once stopped by a signal. */
export async function registerCommand(args: readonly string[], io: RegisterIo): Promise<number> {
  const parsed = parseRegisterCommand(args, io.env);
  switch (parsed.kind) {
    case 'help':
      io.stdout(registerUsage());
      return 0;
    case 'version':
      return runVersion(io);
    case 'error':
      io.stderr(parsed.message);
      return 2;
  }
  const { config } = parsed;
  const logger = createLogger(config.logLevel, io.logTo);
  const { Registrar } = await import('./registrar.ts');
  let registrar: Registrar;
  try {
    registrar = new Registrar({ ...parsed.options, onEvent: (e) => logEvent(logger, e) });
  } catch (e) {
    return usageError(io, 'register', firstLine(e));
  }

  const signals = io.signals ?? process;
  const stopped = new Promise<string>((resolve) => {
    signals.once('SIGTERM', () => resolve('SIGTERM'));
    signals.once('SIGINT', () => resolve('SIGINT'));
  });
  logger.info({ key: registrar.key, registry: parsed.registry }, 'registering');
  void registrar.start();
  const signal = await stopped;
  logger.info({ signal, key: registrar.key }, 'deregistering: revoking the lease');
  try {
    await registrar.stop({ revoke: true });
  } catch (e) {
    // The lease still expires after its TTL; the instance is gone then.
    logger.warn({ error: firstLine(e) }, 'could not revoke the lease; the record expires with its TTL');
  }
  logger.flush?.();
  return 0;
}

async function runVersion(io: RegisterIo): Promise<number> {
  const { packageVersion } = await import('../cli/version.ts');
  io.stdout(`cairn ${packageVersion()}`);
  return 0;
}

type Split =
  | {
      readonly help: boolean;
      readonly flags: Partial<Record<RegisterFlag, string | string[]>>;
      readonly rest: string[];
    }
  | { readonly key: string; readonly error: string };

/** Takes the registration flags and the `register` word out; the rest is Cairn's configuration. */
function splitArgs(args: readonly string[]): Split {
  const mine: string[] = [];
  const rest: string[] = [];
  let help = false;
  let commandSeen = false;
  const configTakesValue = new Set<string>(['--config', '-c']);
  for (const k of configKeys) if (k.type === 'string') configTakesValue.add(`--${k.name}`);
  for (let i = 0; i < args.length; i++) {
    const a = args[i] as string;
    const name = a.startsWith('--') ? a.slice(2).split('=')[0] : undefined;
    if (a === '--help' || a === '-h') {
      help = true;
    } else if (name !== undefined && name in registerFlags) {
      mine.push(a);
      if (!a.includes('=')) {
        const v = args[i + 1];
        if (v === undefined) return { key: a, error: 'expected a value' };
        mine.push(v);
        i++;
      }
    } else if (!commandSeen && a === 'register') {
      commandSeen = true;
    } else {
      rest.push(a);
      if (configTakesValue.has(a) && i + 1 < args.length) rest.push(args[++i] as string);
    }
  }
  try {
    const { values } = parseArgs({
      args: mine,
      options: registerFlags,
      strict: true,
      allowPositionals: false,
    });
    return { help, flags: values as Partial<Record<RegisterFlag, string | string[]>>, rest };
  } catch (e) {
    return { key: 'register', error: firstLine(e) };
  }
}

type Built =
  | { readonly options: Omit<RegistrationOptions, 'endpoints'> }
  | { readonly key: string; readonly error: string };

function registrationOptions(f: Partial<Record<RegisterFlag, string | string[]>>): Built {
  const one = (k: RegisterFlag): string | undefined => {
    const v = f[k];
    return Array.isArray(v) ? v[v.length - 1] : v;
  };
  const list = (k: RegisterFlag): string[] => {
    const v = f[k];
    return v === undefined ? [] : Array.isArray(v) ? v : [v];
  };
  const service = one('service');
  if (service === undefined || service.trim() === '')
    return { key: '--service', error: 'required (the service name)' };
  const address = one('address');
  if (address === undefined || address.trim() === '') {
    return { key: '--address', error: 'required (the host or IP Cairn forwards to)' };
  }
  const portText = one('port');
  if (portText === undefined) return { key: '--port', error: 'required (the port Cairn forwards to)' };
  const port = parseInteger(portText, 1, 65535, 'a port');
  if ('detail' in port) return { key: '--port', error: port.detail };

  let weight: number | undefined;
  const weightText = one('weight');
  if (weightText !== undefined) {
    const w = parseInteger(weightText, 1, 1_000_000, 'a weight');
    if ('detail' in w) return { key: '--weight', error: w.detail };
    weight = w.value;
  }
  const meta: Record<string, string> = {};
  for (const m of list('meta')) {
    const eq = m.indexOf('=');
    if (eq <= 0) return { key: '--meta', error: `expected KEY=VALUE, got ${JSON.stringify(m)}` };
    meta[m.slice(0, eq)] = m.slice(eq + 1);
  }
  const ttl = duration(one('ttl'), 10_000, '--ttl');
  if ('key' in ttl) return ttl;
  if (ttl.value < 1000)
    return { key: '--ttl', error: `expected at least 1s, got ${JSON.stringify(one('ttl'))}` };

  let check: HealthCheckOptions | undefined;
  const checkUrl = one('check');
  if (checkUrl !== undefined) {
    let u: URL;
    try {
      u = new URL(checkUrl);
    } catch {
      return { key: '--check', error: `expected an http(s) URL, got ${JSON.stringify(checkUrl)}` };
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') {
      return { key: '--check', error: `expected an http(s) URL, got ${JSON.stringify(checkUrl)}` };
    }
    const interval = duration(one('check-interval'), 5_000, '--check-interval');
    if ('key' in interval) return interval;
    const timeout = duration(one('check-timeout'), 2_000, '--check-timeout');
    if ('key' in timeout) return timeout;
    check = {
      url: checkUrl,
      intervalMs: Math.max(100, interval.value),
      timeoutMs: Math.max(100, timeout.value),
    };
  } else if (one('check-interval') !== undefined || one('check-timeout') !== undefined) {
    return {
      key: one('check-interval') !== undefined ? '--check-interval' : '--check-timeout',
      error: 'needs --check URL',
    };
  }

  const id = one('id');
  return {
    options: {
      service: service.trim(),
      address: address.trim(),
      port: port.value,
      tags: list('tag'),
      ttlSeconds: Math.ceil(ttl.value / 1000),
      ...(id !== undefined ? { id } : {}),
      ...(weight !== undefined ? { weight } : {}),
      ...(Object.keys(meta).length > 0 ? { meta } : {}),
      ...(check !== undefined ? { check } : {}),
    },
  };
}

function duration(
  text: string | undefined,
  fallback: number,
  key: string,
): { value: number } | { key: string; error: string } {
  if (text === undefined) return { value: fallback };
  const d: Parsed<number> = parseDuration(text);
  return 'detail' in d ? { key, error: d.detail } : d;
}

function logEvent(logger: Logger, e: RegistrarEvent): void {
  switch (e.type) {
    case 'registered':
      logger.info({ key: e.key, lease: e.lease, record: e.record }, 'registered');
      return;
    case 'status':
      logger.info({ status: e.status, detail: e.detail }, `health check: ${e.status}`);
      return;
    case 'retry':
      logger.warn({ error: e.error, retryInMs: e.inMs }, 'etcd write failed; retrying');
      return;
    case 'lease-lost':
      logger.warn({ error: e.error }, 'lease lost; registering again with a new lease');
      return;
    case 'deregistered':
      logger.info({ key: e.key }, 'deregistered');
      return;
  }
}

function usageError(io: RegisterIo, key: string, detail: string): number {
  io.stderr(`cairn: ${key}: ${detail}`);
  return 2;
}

function firstLine(e: unknown): string {
  const m = e instanceof Error ? e.message : String(e);
  return (m.split('\n')[0] ?? m).trim();
}
