// fabio side by side in the HTTP bench (issue 9), only when a fabio binary is on the machine:
// `FABIO_BIN=/path/to/fabio npm run bench -- --only http`. The bench never downloads fabio.
//
// fabio gets the same single route as the other proxies, from its static registry (no Consul):
// `route add svc / http://127.0.0.1:<backend>/`, listening on `proxy.addr`, its UI on another
// free loopback port, metrics and access log off, one process pinned to the proxy CPU like the
// others (Go sizes GOMAXPROCS from the CPU affinity, so it runs on that one CPU).

import { accessSync, constants, mkdirSync, openSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, type Pinned, spawnPinned } from './processes.ts';

export const fabioSkipped = 'fabio: skipped (set FABIO_BIN to a fabio binary to include it)';

/** The fabio binary named by FABIO_BIN, if it is set and executable; throws when it is set but unusable. */
export function fabioBinary(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const bin = env['FABIO_BIN'];
  if (bin === undefined || bin === '') return undefined;
  try {
    accessSync(bin, constants.X_OK);
  } catch {
    throw new Error(`FABIO_BIN=${bin} is not an executable file`);
  }
  return bin;
}

/** fabio.properties for one static route to the backend. */
export function fabioConfig(port: number, uiPort: number, backendPort: number): string {
  return [
    `proxy.addr = 127.0.0.1:${port}`,
    `ui.addr = 127.0.0.1:${uiPort}`,
    'registry.backend = static',
    `registry.static.routes = route add svc / http://127.0.0.1:${backendPort}/`,
    'metrics.target =',
    'log.access.target =',
    '',
  ].join('\n');
}

export interface FabioProxy {
  readonly name: string;
  readonly port: number;
  readonly server: Pinned;
  readonly stderrFile: string;
  readonly cairn: false;
}

/** Starts fabio pinned to `cpu` with its config and logs under `dir`. */
export async function startFabio(
  bin: string,
  dir: string,
  backendPort: number,
  cpu: string,
): Promise<FabioProxy> {
  const [port, uiPort] = [await freePort(), await freePort()];
  const prefix = join(dir, 'fabio');
  mkdirSync(prefix, { recursive: true });
  const cfg = join(prefix, 'fabio.properties');
  writeFileSync(cfg, fabioConfig(port, uiPort, backendPort));
  const stderrFile = join(prefix, 'stderr.log');
  const server = spawnPinned('fabio', cpu, bin, ['-cfg', cfg], {
    stdout: openSync(join(prefix, 'stdout.log'), 'w'),
    stderr: openSync(stderrFile, 'w'),
    cwd: prefix,
  });
  return { name: 'fabio', port, server, stderrFile, cairn: false };
}
