'use strict';
// Mocha configuration. Spec files are TypeScript, loaded as ESM by Node 24's type stripping.
//
// Mocha appends a config `spec` to the files named on the command line, so `mocha one.test.ts`
// would run the whole suite. The default spec is therefore set only when no file or glob is
// given on the command line (`npx mocha test/unit/x.test.ts` runs just that file).

// Mocha options that take a value: the word after them is not a spec.
const optionsWithValue = new Set(
  [
    '--config --package --reporter -R --reporter-option --reporter-options -O --ui -u --grep -g',
    '--fgrep -f --timeout --timeouts -t --slow -s --require -r --file --ignore --exclude --extension',
    '--global --globals --node-option -n --retries --jobs -j --watch-files --watch-ignore --spec',
  ]
    .join(' ')
    .split(' '),
);

function specGivenOnCommandLine(argv) {
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--spec' || arg.startsWith('--spec=')) return true;
    if (optionsWithValue.has(arg)) {
      i++;
      continue;
    }
    if (!arg.startsWith('-')) return true;
  }
  return false;
}

const config = {
  extension: ['ts'],
  reporter: './test/support/reporter.cjs',
  // Unit tests get 2 s; integration tests set their own with this.timeout().
  timeout: 2000,
  slow: 300,
  // A run that executes no test is a failure, not a silent pass.
  'fail-zero': true,
  // Leaked handles (a client left open) must not hang CI; the reporter has already printed.
  exit: true,
  'forbid-only': process.env.CI === 'true' || process.env.CI === '1',
};

// With CI set, mocha colours even a log file; keep colours for terminals (or when asked for).
if (
  !process.stdout.isTTY &&
  process.env.FORCE_COLOR === undefined &&
  process.env.MOCHA_COLORS === undefined
) {
  config.color = false;
}

if (!specGivenOnCommandLine(process.argv.slice(2))) {
  config.spec = ['test/{unit,integration,chaos}/**/*.test.ts', 'test/browser/**/*.test.ts'];
}

module.exports = config;
