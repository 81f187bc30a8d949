// Placeholder: the server wiring (controller, proxies, admin) replaces this file.

import type { CairnConfig } from './config/index.ts';

export async function runServer(_config: CairnConfig): Promise<void> {
  process.stderr.write('cairn: serving is not available yet (try cairn routes or cairn explain)\n');
  process.exit(1);
}
