// The benches measure what ships: the compiled `dist/` (the npm package's `cairn` bin, the Docker
// image's entrypoint and the standalone binary's bundle all run it), not the `.ts` sources under
// Node's type stripping, which also loads the stripper (a few MB of code and heap per process)
// and so overstates every process's memory.

import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

/** Set once dist/ is fresh for this run, so nested benches (npm run bench) build only once. */
const builtEnv = 'CAIRN_BENCH_DIST_BUILT';

/** Compiles the sources into dist/ (tsconfig.build.json) unless this run already did; returns the CLI's path. */
export function shippedCairn(repoRoot: string): string {
  if (process.env[builtEnv] !== '1') {
    const tsc = join(repoRoot, 'node_modules', 'typescript', 'bin', 'tsc');
    const r = spawnSync(process.execPath, [tsc, '-p', join(repoRoot, 'tsconfig.build.json')], {
      cwd: repoRoot,
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    if (r.status !== 0) throw new Error(`building dist/ for the bench failed (tsc exit ${r.status})`);
    process.env[builtEnv] = '1';
  }
  return join(repoRoot, 'dist', 'lib', 'cli', 'main.js');
}
