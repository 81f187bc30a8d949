// `cairn --help`: generated from the configuration keys so flags and help never disagree.

import { configKeys, envName } from '../config/index.ts';

export function usage(): string {
  const lines = [
    'Usage:',
    '  cairn [--config cairn.yaml] [flags]             serve: proxy listeners + admin UI/API',
    '  cairn --demo                                    run the embedded demo',
    '  cairn routes --registry file:PATH [flags]       print the routing table as route commands',
    '  cairn explain --registry file:PATH [flags] URL  show which route URL takes (JSON)',
    '  cairn register --registry etcd:URL --service S --address A --port P [--tag T]... [--check URL]',
    '                                                  keep an instance registered in etcd (register --help)',
    '  cairn --version | --help',
    '',
    'Flags (each also as env CAIRN_<KEY> or as "<key>:" in the --config YAML;',
    'precedence: flag > env > file > default):',
  ];
  const rows: [string, string][] = [['-c, --config FILE', 'YAML/JSON config file (env CAIRN_CONFIG)']];
  for (const k of configKeys) {
    const flag = `--${k.name}${k.value === undefined ? '' : ` ${k.value}`}`;
    let help = k.help;
    if (k.default !== undefined) help += ` [${k.default}]`;
    if (k.multiple === true) help += ' (repeatable)';
    rows.push([flag, help]);
  }
  const width = Math.max(...rows.map(([f]) => f.length)) + 2;
  for (const [flag, help] of rows) lines.push(`  ${flag.padEnd(width)}${help}`);
  lines.push('', `Example: ${envName('tag-prefix')}=svc- cairn routes --registry file:./routes.yaml`);
  return lines.join('\n');
}
