// etcd3 (with gRPC and protobufjs: about 6 MB of heap, more of code) loads only where an etcd
// registry or `cairn register` needs it: never in --workers processes, nor in a Cairn that
// watches only files or Consul.

import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));

/** Whether etcd3 is in the CommonJS cache of a fresh Node after `script`. */
function loadsEtcd3(script: string): boolean {
  const out = execFileSync(
    process.execPath,
    [
      '--input-type=module',
      '-e',
      `${script}
       const { createRequire } = await import('node:module');
       const cache = createRequire(import.meta.url).cache;
       console.log(Object.keys(cache).some((k) => k.includes('/node_modules/etcd3/')) ? 'yes' : 'no');`,
    ],
    { cwd: repoRoot, encoding: 'utf8' },
  );
  return out.trim().endsWith('yes');
}

describe('etcd3 loads on first use', function () {
  this.timeout(30_000);

  it('the CLI, the server and the workers do not load it', () => {
    expect(
      loadsEtcd3(`
        await import('./lib/cli/run.ts');
        await import('./lib/server.ts');
        await import('./lib/workers/worker-main.ts');
        await import('./lib/workers/control.ts');`),
    ).to.equal(false);
  });

  it('an etcd registry loads it', () => {
    expect(
      loadsEtcd3(`
        const { loadConfig } = await import('./lib/config/index.ts');
        const { createRegistry } = await import('./lib/registries.ts');
        const loaded = loadConfig(['--registry', 'etcd:http://127.0.0.1:1'], {});
        if (loaded.kind !== 'config') throw new Error(loaded.kind);
        const c = loaded.config;
        const r = await createRegistry(c.registries[0], c);
        await r.stop();`),
    ).to.equal(true);
  });
});
