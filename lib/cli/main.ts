#!/usr/bin/env node
// The `cairn` executable. Kept to this so the shebang stays the first line of the compiled file;
// everything else is in run.ts.

import { runCli } from './run.ts';

process.exitCode = await runCli(process.argv.slice(2));
