'use strict';
// Mocha reporter: the spec reporter's output, then one plain closing line
// `N passed, N failed` (plus `, N skipped` when tests were skipped) that CI reads.
const { reporters, Runner } = require('mocha');

const { EVENT_RUN_BEGIN, EVENT_RUN_END } = Runner.constants;
const { Base } = reporters;
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching ANSI escape sequences
const ansi = /\u001b\[[0-9;]*m/g;

class CairnReporter extends reporters.Spec {
  constructor(runner, options) {
    super(runner, options);
    // Mocha colours its ✔/✖ symbols whenever CI is set, even with colours off: uncolour them.
    runner.once(EVENT_RUN_BEGIN, () => {
      if (Base.useColors) return;
      Base.symbols.ok = Base.symbols.ok.replace(ansi, '');
      Base.symbols.err = Base.symbols.err.replace(ansi, '');
    });
    // Registered after the spec reporter's epilogue, so this is the last line printed.
    // The counts are the epilogue's own (hook failures count as failures, pending as skipped).
    runner.once(EVENT_RUN_END, () => {
      const passed = this.stats.passes || 0;
      const failed = this.stats.failures || 0;
      const skipped = this.stats.pending || 0;
      const line = `${passed} passed, ${failed} failed${skipped > 0 ? `, ${skipped} skipped` : ''}`;
      process.stdout.write(`${line}\n`);
    });
  }
}

CairnReporter.description = 'spec, then a plain "N passed, N failed" closing line';

module.exports = CairnReporter;
