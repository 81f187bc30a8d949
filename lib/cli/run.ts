// The `cairn` command line: `routes` and `explain` read the registry once and print; no command
// (or `serve`) serves; `register` keeps an instance registered in etcd. Exit codes: 0 ok, 1 the registry cannot be read (or explain finds no route),
// 2 bad configuration or usage (one line on stderr naming the key and the expected form).

import { readFile } from 'node:fs/promises';
import { parseFileRegistry } from '../../registry-adapters/file/parse.ts';
import { explainUrl, parseExplainUrl } from '../../routing/explain.ts';
import { buildTable, tableConfig } from '../../routing/table.ts';
import type { Problem, ServiceInstance, Snapshot } from '../../routing/types.ts';
import { type CairnConfig, loadConfig, type RegistrySpec, tableOptions } from '../config/index.ts';
import { normalizeRequestPath } from '../proxy/request-path.ts';
import type { RegistryAdapter } from '../../registry-adapters/types.ts';
import { createRegistry } from '../registries.ts';
import { isRegisterCommand, registerCommand } from '../register/cli.ts';
import { formatProblemLine } from './format.ts';
import { commandOf, commandUsage, isCommandName, usage } from './usage.ts';
import { isWorkerProcess } from '../workers/role.ts';
import { packageVersion } from './version.ts';

export interface CliIo {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
  readonly env: Readonly<Record<string, string | undefined>>;
}

const defaultIo: CliIo = {
  stdout: (t) => process.stdout.write(`${t}\n`),
  stderr: (t) => process.stderr.write(`${t}\n`),
  env: process.env,
};

/** Runs `cairn <args>`; resolves to the exit code. */
export async function runCli(args: readonly string[], io: CliIo = defaultIo): Promise<number> {
  // `--workers N`: the control process starts this same entry again as each worker.
  if (isWorkerProcess()) {
    const { runWorker } = await import('../workers/worker-main.ts');
    return runWorker();
  }
  // `register` has flags of its own (--service, --tag, ...), so it parses its arguments itself.
  if (isRegisterCommand(args)) return registerCommand(args, io);
  const loaded = loadConfig(args, io.env);
  switch (loaded.kind) {
    case 'help': {
      // `cairn routes --help`: that command's help; `cairn --help` (or an unknown word): all.
      const command = commandOf(args);
      io.stdout(isCommandName(command) ? commandUsage(command) : usage());
      return 0;
    }
    case 'version':
      io.stdout(`cairn ${packageVersion()}`);
      return 0;
    case 'error':
      io.stderr(loaded.error.message);
      return 2;
  }
  const { config, positionals } = loaded;
  const [command, ...rest] = positionals;
  switch (command) {
    case undefined:
      return serve(config, io);
    case 'serve':
      if (rest.length > 0) return usageError(io, 'serve', `unexpected argument ${JSON.stringify(rest[0])}`);
      return serve(config, io);
    case 'routes':
      if (rest.length > 0) return usageError(io, 'routes', `unexpected argument ${JSON.stringify(rest[0])}`);
      return routesCommand(config, io);
    case 'explain':
      if (rest.length !== 1) {
        return usageError(io, 'explain', 'expected one URL, e.g. cairn explain http://example.com/api');
      }
      return explainCommand(config, rest[0] as string, io);
    default:
      return usageError(io, command, 'unknown command (commands: routes, explain; see cairn --help)');
  }
}

async function serve(config: CairnConfig, io: CliIo): Promise<number> {
  if (config.registries.length === 0 && !config.demo) {
    return usageError(
      io,
      '--registry',
      'expected file:PATH|consul:URL|etcd:URL to serve (or --demo; see cairn --help)',
    );
  }
  // Loaded only when serving, so `routes` and `explain` stay quick and independent of the proxy.
  const { runServer } = await import('../server.ts');
  await runServer(config);
  return 0;
}

async function routesCommand(config: CairnConfig, io: CliIo): Promise<number> {
  const loaded = await loadSnapshotOnce(config.registries, config, 'routes', io);
  if (typeof loaded === 'number') return loaded;
  const table = buildTable(loaded, tableOptions(config));
  for (const line of tableConfig(table, true)) io.stdout(line);
  for (const p of table.problems) io.stdout(formatProblemLine(p));
  return 0;
}

async function explainCommand(config: CairnConfig, url: string, io: CliIo): Promise<number> {
  const parsed = parseExplainUrl(url);
  if (typeof parsed === 'string') return usageError(io, 'explain', `${parsed}: ${JSON.stringify(url)}`);
  const loaded = await loadSnapshotOnce(config.registries, config, 'explain', io);
  if (typeof loaded === 'number') return loaded;
  const table = buildTable(loaded, tableOptions(config));
  // The same path the proxy would look up (decoded, dot segments resolved).
  const out = explainUrl(table, url, {
    strategy: config.strategy,
    normalizePath: (p) => normalizeRequestPath(p) ?? p,
  });
  io.stdout(JSON.stringify(out, null, 2));
  return out.route === null ? 1 : 0;
}

/**
 * Reads every registry once and merges them as the server would. File registries are parsed
 * directly; the others are started, asked for their first snapshot, and stopped.
 * Resolves to an exit code on failure (after printing the one-line reason).
 */
async function loadSnapshotOnce(
  specs: readonly RegistrySpec[],
  config: CairnConfig,
  command: string,
  io: CliIo,
): Promise<Snapshot | number> {
  if (specs.length === 0)
    return usageError(
      io,
      '--registry',
      `expected file:PATH|consul:URL|etcd:URL (cairn ${command} reads a registry)`,
    );
  const instances: ServiceInstance[] = [];
  const manual: string[] = [];
  const problems: Problem[] = [];
  for (const spec of specs) {
    let snapshot: Snapshot;
    if (spec.kind === 'file') {
      let text: string;
      try {
        text = await readFile(spec.path, 'utf8');
      } catch (e) {
        const reason = (e as { code?: unknown }).code === 'ENOENT' ? 'no such file' : firstLine(e);
        io.stderr(`cairn: cannot read registry ${spec.text}: ${reason}`);
        return 1;
      }
      const parsed = parseFileRegistry(text, spec.path);
      if ('error' in parsed) {
        io.stderr(`cairn: registry ${spec.text}: ${parsed.error}`);
        return 1;
      }
      snapshot = parsed.snapshot;
    } else {
      let adapter: RegistryAdapter;
      try {
        adapter = await createRegistry(spec, config);
      } catch (e) {
        return usageError(io, '--registry', `${spec.text}: ${firstLine(e)}`);
      }
      const first = await firstSnapshot(adapter, 10_000);
      if (typeof first === 'string') {
        io.stderr(`cairn: registry ${spec.text}: ${first}`);
        return 1;
      }
      snapshot = first;
    }
    instances.push(...snapshot.instances);
    if (snapshot.manual.trim() !== '') manual.push(snapshot.manual);
    problems.push(...(snapshot.problems ?? []));
  }
  return { instances, manual: manual.join('\n'), problems };
}

function usageError(io: CliIo, key: string, detail: string): number {
  io.stderr(`cairn: ${key}: ${detail}`);
  return 2;
}

function firstLine(e: unknown): string {
  const m = e instanceof Error ? e.message : String(e);
  return (m.split('\n')[0] ?? m).trim();
}

/** Starts an adapter, waits for its first snapshot (or first failure), stops it. */
async function firstSnapshot(adapter: RegistryAdapter, timeoutMs: number): Promise<Snapshot | string> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await new Promise<Snapshot | string>((resolve) => {
      timer = setTimeout(() => resolve(`no answer within ${timeoutMs / 1000} s`), timeoutMs);
      adapter
        .start(
          (s) => resolve(s),
          (state) => {
            if (state.state !== 'up') resolve(state.error ?? state.state);
          },
        )
        .catch((e: unknown) => resolve(firstLine(e)));
    });
  } finally {
    clearTimeout(timer);
    await adapter.stop().catch(() => {});
  }
}
