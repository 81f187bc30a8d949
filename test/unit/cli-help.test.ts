// `cairn --help`, `cairn <command> --help` and README.md must say the same thing as the config
// loader: every key of lib/config/keys.ts is in the help and in the README's generated reference,
// every command has its own help, and every flag the README shows on a cairn command line exists.

import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { expect } from 'chai';
import { runCli } from '../../lib/cli/run.ts';
import { commandOf, commands, commandUsage, usage } from '../../lib/cli/usage.ts';
import { configKeys, envName, loadConfig } from '../../lib/config/index.ts';
import { registerUsage } from '../../lib/register/cli.ts';
import { withFlagReference } from '../../scripts/docs-flags.ts';

const root = resolve(import.meta.dirname, '../..');
const readme = readFileSync(join(root, 'README.md'), 'utf8');
const regenerate =
  "README.md's flag reference is out of date with lib/config/keys.ts: run `npm run docs:flags` " +
  'and commit README.md';

async function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCli(args, { stdout: (t) => out.push(t), stderr: (t) => err.push(t), env: {} });
  return { code, stdout: out.join('\n'), stderr: err.join('\n') };
}

/** The flags `cairn register --help` lists (its own, not the shared configuration keys). */
function registerFlags(): string[] {
  return [...registerUsage().matchAll(/^ {2}--([a-z-]+)/gm)].map((m) => m[1] as string);
}

/** A README section: from its heading to the next heading of the same or a higher level. */
function section(heading: string): string {
  const start = readme.indexOf(heading);
  expect(start, `README.md has the heading ${heading}`).to.be.at.least(0);
  const level = /^#+/.exec(heading)?.[0].length ?? 2;
  const next = readme.slice(start + heading.length).search(new RegExp(`\\n#{1,${level}} `));
  return next < 0 ? readme.slice(start) : readme.slice(start, start + heading.length + next);
}

describe('cairn --help and README.md agree with the configuration keys', () => {
  it(`README.md's flag reference is the one generated from keys.ts (else: npm run docs:flags)`, () => {
    const regenerated = withFlagReference(readme);
    expect(regenerated, 'README.md lacks the flag reference markers; run npm run docs:flags').to.be.a(
      'string',
    );
    if (regenerated !== readme) expect.fail(regenerate);
  });

  it('every key is in cairn --help and in the README reference, with its env name and default', () => {
    const help = usage();
    const reference = section('### Flags, environment variables and config file keys');
    for (const k of configKeys) {
      expect(help, `cairn --help lacks --${k.name}`).to.include(`--${k.name}`);
      expect(reference, `${regenerate} (--${k.name})`).to.include(`\`--${k.name}`);
      expect(reference, `${regenerate} (${envName(k.name)})`).to.include(`\`${envName(k.name)}\``);
      if (k.default !== undefined) {
        expect(help).to.include(`[${k.default}]`);
        expect(reference).to.include(`\`${k.default.replace(/\|/g, '\\|')}\``);
      }
    }
  });

  it('every command has its own --help, listed in cairn --help and in the README command table', async () => {
    const table = section('### Commands');
    const help = usage();
    for (const c of commands) {
      expect(help).to.include(c.synopsis);
      expect(table, `README command table lacks cairn ${c.name}`).to.match(
        new RegExp(`\\| \`cairn \\[?${c.name}\\]?[ \`]`),
      );
      const r = await run([c.name, '--help']);
      expect(r.code, c.name).to.equal(0);
      expect(r.stdout).to.equal(commandUsage(c.name));
      expect(r.stdout).to.match(/^Usage:\n/);
      expect(r.stdout).to.include(c.name === 'serve' ? 'cairn [serve]' : `cairn ${c.name}`);
    }
    expect((await run(['--help'])).stdout).to.equal(help);
    expect((await run(['-h'])).stdout).to.equal(help);
    // `--help` after the command's own flags still gives that command's help.
    expect((await run(['routes', '--registry', 'file:x.yaml', '--help'])).stdout).to.equal(
      commandUsage('routes'),
    );
    expect((await run(['--tag-prefix', 'routes', '--help'])).stdout).to.equal(help);
  });

  it('cairn register --help and the README list the same registration flags', () => {
    const own = registerFlags();
    expect(own).to.include.members(['service', 'address', 'port', 'tag', 'check', 'ttl']);
    const table = section('### `cairn register` flags');
    const documented = [...table.matchAll(/^\| `--([a-z-]+)/gm)].map((m) => m[1]);
    expect(documented.sort()).to.deep.equal([...own].sort());
  });

  it('every flag on a cairn command line in README.md exists', () => {
    const known = new Set<string>(['config', 'help', 'version', ...registerFlags()]);
    for (const k of configKeys) {
      known.add(k.name);
      if (k.type === 'boolean') known.add(`no-${k.name}`);
    }
    const used = new Map<string, string>();
    const note = (text: string): void => {
      for (const m of text.matchAll(/(?:^|[\s`'"(])--([a-z][a-z0-9-]*)/g))
        used.set(m[1] as string, text.trim());
    };
    // Command lines in code blocks (with their continuation lines) that run cairn...
    let continued = false;
    for (const line of readme.split('\n')) {
      const isCairn = /^\s*(\$ )?(cairn|npx cairn-lb|node lib\/cli\/main\.ts|npm run cairn --)(\s|$)/.test(
        line,
      );
      if (isCairn || continued) note(line.replace(/#.*$/, ''));
      continued = (isCairn || continued) && /\\\s*$/.test(line);
    }
    // ...and inline code that starts with a flag.
    for (const m of readme.matchAll(/`(--[^`]+)`/g)) note(m[1] as string);
    expect(used.size).to.be.greaterThan(20);
    for (const [flag, where] of used)
      expect(known.has(flag), `--${flag} in README.md: ${where}`).to.equal(true);
  });

  it("the README's config file example loads through the real config loader", () => {
    const block = /```yaml\n(# cairn --config [^\n]+\n[\s\S]*?)```/.exec(readme)?.[1];
    expect(block, 'README config file example').to.be.a('string');
    const r = loadConfig(['--config', 'cairn.yaml'], {}, { readFile: () => block as string });
    if (r.kind !== 'config') throw new Error(r.kind === 'error' ? r.error.message : r.kind);
    expect(r.config.listen.map((l) => l.proto)).to.deep.equal(['http', 'tcp']);
    expect(r.config.registries.map((s) => s.kind)).to.deep.equal(['consul']);
  });

  it('commandOf finds the command past flags and their values', () => {
    expect(commandOf(['--registry', 'file:x', 'routes'])).to.equal('routes');
    expect(commandOf(['--tag-prefix', 'routes'])).to.equal(undefined);
    expect(commandOf(['--demo', 'explain', 'http://x/'])).to.equal('explain');
    expect(commandOf(['-c', 'serve.yaml'])).to.equal(undefined);
    expect(commandOf(['--', 'serve'])).to.equal('serve');
  });

  it('cairn serve is the default command and takes no argument', async () => {
    const r = await run(['serve', 'extra']);
    expect(r.code).to.equal(2);
    expect(r.stderr).to.equal('cairn: serve: unexpected argument "extra"');
    const none = await run(['serve']);
    expect(none.code).to.equal(2);
    expect(none.stderr).to.match(/^cairn: --registry: expected/);
  });
});
