// Registry churn for the file registry: every step rewrites the registry file (write + rename,
// as editors and config tools do) with a different table: the weight of one instance moves, an
// extra instance comes and goes (its requests in flight must finish), and an unrelated service's
// route changes. Used by the churn scenario and by `npm run soak`.

import { rename, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { stringify } from 'yaml';

export interface ChurnPorts {
  /** Instances that stay (the route under load is /churn). */
  readonly base: readonly number[];
  /** The instance that comes and goes on /churn. */
  readonly extra: number;
  /** An unrelated service whose route moves. */
  readonly other: number;
}

export function churnContent(ports: ChurnPorts, step: number): string {
  const instances = ports.base.map((port, i) => ({
    id: `base${i}`,
    address: '127.0.0.1',
    port,
    tags: ['urlprefix-/churn'],
    weight: i === 0 ? 1 + (step % 3) : 1,
  }));
  if (step % 2 === 0) {
    instances.push({
      id: 'extra',
      address: '127.0.0.1',
      port: ports.extra,
      tags: ['urlprefix-/churn'],
      weight: 1,
    });
  }
  return stringify({
    services: [
      { name: 'churn', instances },
      {
        name: 'other',
        instances: [
          { id: 'o', address: '127.0.0.1', port: ports.other, tags: [`urlprefix-/other${step % 25}`] },
        ],
      },
    ],
  });
}

/** Writes step `step` of the churn to `file` atomically. */
export async function writeChurn(file: string, ports: ChurnPorts, step: number): Promise<void> {
  const tmp = join(dirname(file), `.churn.${step}.tmp`);
  await writeFile(tmp, churnContent(ports, step));
  await rename(tmp, file);
}

/** Rewrites the registry every `everyMs` until stopped; resolves with the number of changes. */
export function startChurn(
  file: string,
  ports: ChurnPorts,
  everyMs: number,
  firstStep = 1,
): { stop(): Promise<number> } {
  let running = true;
  let step = firstStep;
  const loop = (async () => {
    while (running) {
      const t0 = Date.now();
      await writeChurn(file, ports, step++);
      await new Promise((r) => setTimeout(r, Math.max(0, everyMs - (Date.now() - t0))));
    }
    return step - firstStep;
  })();
  return {
    stop: async () => {
      running = false;
      return loop;
    },
  };
}
