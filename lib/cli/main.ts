#!/usr/bin/env node
// The `cairn` executable. Kept to this so the shebang stays the first line of the compiled file;
// everything else is in run.ts.

import { runCli } from './run.ts';

// `cairn routes | head` closes the pipe early: that is the reader's choice, not an error.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw e;
});

process.exitCode = await runCli(process.argv.slice(2));
