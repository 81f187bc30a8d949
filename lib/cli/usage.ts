// `cairn --help`, `cairn <command> --help` and the README's flag reference: all generated from the
// configuration keys, so flags, help and documentation never disagree with what the loader
// accepts (test/unit/cli-help.test.ts keeps README.md in step; `npm run docs:flags` rewrites it).

import { type ConfigKey, configKeys, envName } from '../config/index.ts';
import { registerUsage } from '../register/cli.ts';

/** The sub-commands, with the one-line synopsis `cairn --help` lists. */
export const commands = [
  {
    name: 'serve',
    synopsis: 'cairn [serve] --registry KIND:WHERE [flags]',
    what: 'proxy listeners + admin UI/API (the default command)',
  },
  { name: 'routes', synopsis: 'cairn routes --registry KIND:WHERE [flags]', what: 'print the routing table' },
  {
    name: 'explain',
    synopsis: 'cairn explain --registry KIND:WHERE [flags] URL',
    what: 'which route URL takes, and why (JSON)',
  },
  {
    name: 'register',
    synopsis: 'cairn register --registry etcd:URL --service S --address A --port P [flags]',
    what: 'keep an instance registered in etcd',
  },
] as const;
export type CommandName = (typeof commands)[number]['name'];

export function isCommandName(s: string | undefined): s is CommandName {
  return commands.some((c) => c.name === s);
}

/** `cairn --help`. */
export function usage(): string {
  const lines = ['Usage:'];
  // Synopses longer than the column get their description on the next line.
  const width = 50;
  for (const c of commands) {
    if (c.synopsis.length + 2 > width) lines.push(`  ${c.synopsis}`, `  ${''.padEnd(width)}${c.what}`);
    else lines.push(`  ${c.synopsis.padEnd(width)}${c.what}`);
  }
  lines.push(
    `  ${'cairn --demo'.padEnd(width)}run the embedded demo (npm start)`,
    `  ${'cairn <command> --help'.padEnd(width)}help on one command`,
    `  ${'cairn --version'.padEnd(width)}print the version`,
    '',
    'Flags (each also as env CAIRN_<KEY> or as "<key>:" in the --config YAML;',
    'precedence: flag > env > file > default):',
    ...flagLines(),
    '',
    `Example: ${envName('tag-prefix')}=svc- cairn routes --registry file:./routes.yaml`,
  );
  return lines.join('\n');
}

/** `cairn <command> --help`. */
export function commandUsage(command: CommandName): string {
  switch (command) {
    case 'serve':
      return [
        'Usage:',
        '  cairn [serve] --registry KIND:WHERE [--listen ADDR]... [--admin HOST:PORT] [flags]',
        '  cairn [serve] --config cairn.yaml',
        '',
        'Runs the proxy listeners (--listen, default :9999) and the admin UI/API (--admin, default',
        '127.0.0.1:9998), routing every instance of the registries (--registry, repeatable; their',
        'instances are merged). Registries are watched: no reload, no restart. SIGTERM or SIGINT',
        'stops accepting connections and drains for up to --shutdown-wait.',
        '',
        'Flags (each also as env CAIRN_<KEY> or as "<key>:" in the --config YAML):',
        ...flagLines(),
      ].join('\n');
    case 'routes':
      return [
        'Usage:',
        '  cairn routes --registry KIND:WHERE [flags]',
        '',
        'Reads the registries once and prints the routing table as fabio route commands, one',
        '`route add` line per target with its effective weight, then one `# problem:` line per',
        'bad tag, record or override line. Exit code 0; 1 if a registry cannot be read; 2 on bad',
        'flags.',
        '',
        'The flags that shape the table apply: --registry, --tag-prefix, --health-status,',
        '--matcher, --glob-matching, --config, and the registry connection flags (--consul-*,',
        '--etcd-*); see cairn --help.',
        '',
        'Example: cairn routes --registry file:examples/file/routes.yaml',
      ].join('\n');
    case 'explain':
      return [
        'Usage:',
        '  cairn explain --registry KIND:WHERE [flags] URL',
        '',
        'Reads the registries once and prints, as JSON, the route URL takes, the target that would',
        'be picked next, and why every other candidate lost. The path is normalised as the proxy',
        'does. Exit code 0 when URL is routed; 1 when it is not (or a registry cannot be read); 2 on',
        'bad flags or a bad URL.',
        '',
        'The flags of cairn routes apply, and --strategy; see cairn --help.',
        '',
        'Example: cairn explain --registry file:examples/file/routes.yaml http://www.example.com/assets/app.css',
      ].join('\n');
    case 'register':
      return registerUsage();
  }
}

/**
 * The command a command line runs: its first positional argument (values of flags that take
 * one are skipped, so `--tag-prefix routes` is not the command).
 */
export function commandOf(args: readonly string[]): string | undefined {
  const takesValue = new Set<string>(['--config', '-c']);
  for (const k of configKeys) {
    if (k.type !== 'string') continue;
    takesValue.add(`--${k.name}`);
    if (k.short !== undefined) takesValue.add(`-${k.short}`);
  }
  for (let i = 0; i < args.length; i++) {
    const a = args[i] as string;
    if (a === '--') return args[i + 1];
    if (a.startsWith('-')) {
      if (takesValue.has(a)) i++;
      continue;
    }
    return a;
  }
  return undefined;
}

function flagName(k: ConfigKey): string {
  return `--${k.name}${k.value === undefined ? '' : ` ${k.value}`}`;
}

function flagLines(): string[] {
  const rows: [string, string][] = [['-c, --config FILE', 'YAML/JSON config file (env CAIRN_CONFIG)']];
  for (const k of configKeys) {
    let help = k.help;
    if (k.default !== undefined) help += ` [${k.default}]`;
    if (k.multiple === true) help += ' (repeatable)';
    rows.push([flagName(k), help]);
  }
  const width = Math.max(...rows.map(([f]) => f.length)) + 2;
  return rows.map(([flag, help]) => `  ${flag.padEnd(width)}${help}`);
}

/** Markdown table cell text: `|` would end the cell. */
function cell(s: string): string {
  return s.replace(/\|/g, '\\|');
}

/**
 * The README's reference of every flag, env var and config-file key with its default: the block
 * `npm run docs:flags` writes between the markers in README.md.
 */
export function flagReferenceMarkdown(): string {
  const lines = [
    '| flag | env | config file | default | what |',
    '|---|---|---|---|---|',
    '| `-c, --config FILE` | `CAIRN_CONFIG` | | | YAML or JSON config file with any of the keys below |',
  ];
  for (const k of configKeys) {
    const flag = `\`${cell(flagName(k))}\`${k.multiple === true ? ' (repeatable)' : ''}`;
    const negation = k.type === 'boolean' ? ` (\`--no-${k.name}\`)` : '';
    const def = k.default === undefined ? '' : `\`${cell(k.default)}\``;
    lines.push(`| ${flag}${negation} | \`${envName(k.name)}\` | \`${k.name}:\` | ${def} | ${cell(k.help)} |`);
  }
  lines.push(
    '| `-h, --help` | | | | this help; `cairn <command> --help` for one command |',
    '| `-v, --version` | | | | print the version |',
  );
  return lines.join('\n');
}
