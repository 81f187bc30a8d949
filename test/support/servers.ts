// Real etcd and Consul servers for integration tests: each on free loopback ports, with its own
// data, started fresh and stopped (with its whole process group) by the test that asked for it.
// `npm run pretest` (test/support/ensure-servers.sh) installs the binaries.
import { type ChildProcess, spawn } from 'node:child_process';
import { accessSync, constants as fsConstants, rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { homedir, tmpdir } from 'node:os';
import { delimiter, dirname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const startTimeoutMs = 15_000;
const pollIntervalMs = 50;

// ---------------------------------------------------------------------------------------------
// Ports

// Ports handed out by this process recently: a server started in the same test may not have
// bound the previous one yet, so the kernel could give it out twice.
const recentlyHanded = new Set<number>();

/** A TCP port on 127.0.0.1 that was free a moment ago (and not handed out before by this process). */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = await new Promise<number>((resolvePort, reject) => {
      const server = createServer();
      server.unref();
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        const address = server.address();
        const port = typeof address === 'object' && address !== null ? address.port : 0;
        server.close(() => resolvePort(port));
      });
    });
    if (port > 0 && !recentlyHanded.has(port)) {
      recentlyHanded.add(port);
      return port;
    }
  }
  throw new Error('freePort: no free port found on 127.0.0.1');
}

// ---------------------------------------------------------------------------------------------
// Child processes

export interface ManagedProcess {
  readonly name: string;
  readonly pid: number;
  /** Resolves with the exit code (or the signal name) once the process has exited. */
  readonly exited: Promise<number | string>;
  /** Whether the process is still running. */
  running(): boolean;
  /** The last 64 KiB of its stdout and stderr, for error messages. */
  output(): string;
  /** SIGTERM to the whole process group, SIGKILL after `graceMs`; resolves once it has exited. */
  stop(graceMs?: number): Promise<void>;
  /** SIGSTOP / SIGCONT to the whole process group: the server hangs without closing sockets. */
  pause(): void;
  resume(): void;
}

const outputLimit = 64 * 1024;
const liveGroups = new Set<number>();
const liveDataDirs = new Set<string>();
let exitHookInstalled = false;

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // Already gone.
  }
}

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // A test that forgot stop(), or a run cut short, must not leave servers behind.
  process.on('exit', () => {
    for (const pid of liveGroups) killGroup(pid, 'SIGKILL');
    for (const dir of liveDataDirs) rmSync(dir, { recursive: true, force: true });
  });
}

/**
 * Runs `command` in its own process group, collecting its output. stop() ends the whole group,
 * so servers that fork helpers go too.
 */
export function spawnManaged(
  name: string,
  command: string,
  args: readonly string[],
  options: { env?: NodeJS.ProcessEnv; cwd?: string } = {},
): ManagedProcess {
  installExitHook();
  const child: ChildProcess = spawn(command, args, {
    cwd: options.cwd ?? repoRoot,
    env: options.env ?? process.env,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let buffered = '';
  const collect = (chunk: Buffer): void => {
    buffered += chunk.toString('utf8');
    if (buffered.length > outputLimit * 2) buffered = buffered.slice(-outputLimit);
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);

  let done = false;
  const exited = new Promise<number | string>((resolveExit) => {
    child.once('error', (err) => {
      done = true;
      buffered += `\n${name}: ${err.message}`;
      resolveExit(-1);
    });
    child.once('exit', (code, signal) => {
      done = true;
      if (child.pid !== undefined) liveGroups.delete(child.pid);
      resolveExit(code ?? signal ?? -1);
    });
  });
  const pid = child.pid ?? -1;
  if (pid > 0) liveGroups.add(pid);

  return {
    name,
    pid,
    exited,
    running: () => !done,
    output: () => buffered.slice(-outputLimit),
    async stop(graceMs = 5_000): Promise<void> {
      if (done || pid <= 0) {
        await exited;
        return;
      }
      killGroup(pid, 'SIGCONT');
      killGroup(pid, 'SIGTERM');
      const timer = setTimeout(() => killGroup(pid, 'SIGKILL'), graceMs);
      try {
        await exited;
      } finally {
        clearTimeout(timer);
        // Helpers that ignored SIGTERM after their parent left.
        killGroup(pid, 'SIGKILL');
        liveGroups.delete(pid);
      }
    },
    pause: () => killGroup(pid, 'SIGSTOP'),
    resume: () => killGroup(pid, 'SIGCONT'),
  };
}

/**
 * Polls `probe` until it returns true; fails early (with the process output) if the process exits.
 */
async function waitUntil(
  proc: ManagedProcess,
  what: string,
  probe: () => Promise<boolean>,
  timeoutMs = startTimeoutMs,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (!proc.running()) {
      throw new Error(`${proc.name} exited before ${what} (code ${await proc.exited}):\n${proc.output()}`);
    }
    if (await probe().catch(() => false)) return;
    if (Date.now() > deadline) {
      await proc.stop();
      throw new Error(`${proc.name}: no ${what} after ${timeoutMs} ms:\n${proc.output()}`);
    }
    await sleep(pollIntervalMs);
  }
}

async function fetchText(url: string, init: RequestInit = {}): Promise<{ status: number; body: string }> {
  const response = await fetch(url, { ...init, signal: AbortSignal.timeout(2_000) });
  return { status: response.status, body: await response.text() };
}

// ---------------------------------------------------------------------------------------------
// Binaries

function isExecutable(path: string): boolean {
  try {
    accessSync(path, fsConstants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function onPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir === '') continue;
    const candidate = join(dir, name);
    if (isExecutable(candidate)) return candidate;
  }
  return undefined;
}

/** The cache dirs ensure-servers.sh may have put binaries in, most specific first. */
function cacheBinDirs(): string[] {
  const dirs: string[] = [];
  const env = process.env;
  if (env.CAIRN_CACHE_DIR) dirs.push(join(env.CAIRN_CACHE_DIR, 'bin'));
  if (env.XDG_CACHE_HOME) dirs.push(join(env.XDG_CACHE_HOME, 'cairn', 'bin'));
  dirs.push(join(env.HOME ?? homedir(), '.cache', 'cairn', 'bin'));
  dirs.push(join(repoRoot, '.cache', 'bin'));
  return dirs;
}

const installHint = 'run `npm run pretest` (bash test/support/ensure-servers.sh) to install it';

/** Path of the consul binary: $CAIRN_CONSUL_BIN, the ensure-servers cache, then PATH. */
/** Ports of a Consul agent on loopback; a server agent also needs the WAN serf and server ports. */
export interface ConsulPorts {
  readonly http: number;
  readonly serfLan: number;
  readonly serfWan?: number;
  readonly server?: number;
}

/**
 * The arguments every test Consul agent shares: loopback only, the given ports, no DNS or gRPC
 * listener, quiet logs. Callers add the agent's mode (-dev, -server, a client) and -hcl fragments.
 */
export function consulLoopbackArgs(node: string, ports: ConsulPorts): string[] {
  return [
    '-node',
    node,
    '-bind',
    '127.0.0.1',
    '-client',
    '127.0.0.1',
    '-http-port',
    String(ports.http),
    '-dns-port',
    '-1',
    '-grpc-port',
    '-1',
    '-serf-lan-port',
    String(ports.serfLan),
    ...(ports.serfWan !== undefined ? ['-serf-wan-port', String(ports.serfWan)] : []),
    ...(ports.server !== undefined ? ['-server-port', String(ports.server)] : []),
    '-log-level',
    'warn',
  ];
}

export function findConsulBinary(): string {
  const fromEnv = process.env.CAIRN_CONSUL_BIN;
  if (fromEnv) {
    if (isExecutable(fromEnv)) return fromEnv;
    throw new Error(`CAIRN_CONSUL_BIN=${fromEnv} is not an executable file`);
  }
  for (const dir of cacheBinDirs()) {
    const candidate = join(dir, 'consul');
    if (isExecutable(candidate)) return candidate;
  }
  const found = onPath('consul');
  if (found) return found;
  throw new Error(`consul not found; ${installHint}`);
}

/** Path of the etcd binary: $CAIRN_ETCD_BIN, /usr/bin/etcd, then PATH. */
export function findEtcdBinary(): string {
  const fromEnv = process.env.CAIRN_ETCD_BIN;
  if (fromEnv) {
    if (isExecutable(fromEnv)) return fromEnv;
    throw new Error(`CAIRN_ETCD_BIN=${fromEnv} is not an executable file`);
  }
  if (isExecutable('/usr/bin/etcd')) return '/usr/bin/etcd';
  const found = onPath('etcd');
  if (found) return found;
  throw new Error(`etcd not found; ${installHint}`);
}

// ---------------------------------------------------------------------------------------------
// etcd

export interface EtcdServer {
  /** Client URL, e.g. http://127.0.0.1:40123 (give it to etcd3 as `hosts`). */
  readonly endpoint: string;
  readonly clientPort: number;
  readonly dataDir: string;
  /** The running process (changes on restart()). */
  process(): ManagedProcess;
  /** Stops the server and deletes its data dir. */
  stop(): Promise<void>;
  /** Stops and starts it again on the same ports with the same data (keys and revisions survive). */
  restart(): Promise<void>;
}

export async function startEtcd(): Promise<EtcdServer> {
  const binary = findEtcdBinary();
  const dataDir = await mkdtemp(join(tmpdir(), 'cairn-etcd-'));
  installExitHook();
  liveDataDirs.add(dataDir);
  const clientPort = await freePort();
  const peerPort = await freePort();
  const endpoint = `http://127.0.0.1:${clientPort}`;
  const peerUrl = `http://127.0.0.1:${peerPort}`;
  const name = `cairn-test-${clientPort}`;
  const args = [
    '--name',
    name,
    '--data-dir',
    dataDir,
    '--listen-client-urls',
    endpoint,
    '--advertise-client-urls',
    endpoint,
    '--listen-peer-urls',
    peerUrl,
    '--initial-advertise-peer-urls',
    peerUrl,
    '--initial-cluster',
    `${name}=${peerUrl}`,
    '--initial-cluster-state',
    'new',
    '--initial-cluster-token',
    name,
    '--logger',
    'zap',
    '--log-level',
    'warn',
  ];

  const launch = async (): Promise<ManagedProcess> => {
    const proc = spawnManaged(`etcd :${clientPort}`, binary, args);
    await waitUntil(proc, 'healthy /health', async () => {
      const { status, body } = await fetchText(`${endpoint}/health`);
      return status === 200 && (JSON.parse(body) as { health?: unknown }).health === 'true';
    });
    return proc;
  };

  let current: ManagedProcess;
  try {
    current = await launch();
  } catch (err) {
    await rm(dataDir, { recursive: true, force: true });
    liveDataDirs.delete(dataDir);
    throw err;
  }
  return {
    endpoint,
    clientPort,
    dataDir,
    process: () => current,
    async stop() {
      await current.stop();
      await rm(dataDir, { recursive: true, force: true });
      liveDataDirs.delete(dataDir);
    },
    async restart() {
      await current.stop();
      current = await launch();
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Consul

export interface ConsulOptions {
  /** Turns ACLs on (default policy deny) with this master (and agent) token. */
  aclMasterToken?: string;
}

export interface ConsulServer {
  /** HTTP API base, e.g. http://127.0.0.1:40123 */
  readonly address: string;
  readonly httpPort: number;
  /** The ACL master token when ACLs are on. */
  readonly token: string | undefined;
  process(): ManagedProcess;
  stop(): Promise<void>;
  /**
   * Stops and starts it again on the same ports. It is a -dev agent (state in memory), so the
   * catalog and KV come back empty and the Raft index starts over: what a client sees when a
   * Consul cluster is rebuilt.
   */
  restart(): Promise<void>;
}

export async function startConsul(opts: ConsulOptions = {}): Promise<ConsulServer> {
  const binary = findConsulBinary();
  const httpPort = await freePort();
  const serfLanPort = await freePort();
  const serfWanPort = await freePort();
  const serverPort = await freePort();
  const address = `http://127.0.0.1:${httpPort}`;
  const token = opts.aclMasterToken;
  // Never phone home for update checks: the test machines only reach loopback.
  const hcl = ['disable_update_check = true'];
  if (token !== undefined) {
    const quoted = JSON.stringify(token);
    hcl.push(
      [
        'acl {',
        '  enabled = true',
        '  default_policy = "deny"',
        '  enable_token_persistence = false',
        '  tokens {',
        `    master = ${quoted}`,
        `    agent = ${quoted}`,
        '  }',
        '}',
      ].join('\n'),
    );
  }
  const args = [
    'agent',
    '-dev',
    ...consulLoopbackArgs(`cairn-test-${httpPort}`, {
      http: httpPort,
      serfLan: serfLanPort,
      serfWan: serfWanPort,
      server: serverPort,
    }),
    ...hcl.flatMap((fragment) => ['-hcl', fragment]),
  ];
  const headers: Record<string, string> = token !== undefined ? { 'X-Consul-Token': token } : {};

  const launch = async (): Promise<ManagedProcess> => {
    const proc = spawnManaged(`consul :${httpPort}`, binary, args);
    await waitUntil(proc, 'leader', async () => {
      const { status, body } = await fetchText(`${address}/v1/status/leader`);
      return status === 200 && body.trim() !== '' && body.trim() !== '""';
    });
    // The node registers itself (and, with ACLs, the token system comes up) just after the
    // election; a test that writes at once would otherwise see 403s or "No cluster leader".
    await waitUntil(proc, 'node in catalog', async () => {
      const { status, body } = await fetchText(`${address}/v1/catalog/nodes`, { headers });
      return status === 200 && body.includes(`cairn-test-${httpPort}`);
    });
    return proc;
  };

  let current = await launch();
  return {
    address,
    httpPort,
    token,
    process: () => current,
    stop: () => current.stop(),
    async restart() {
      await current.stop();
      current = await launch();
    },
  };
}
