// Configuration loading: precedence (flag > env > file > default), every key's validation and
// one-line errors, fabio's listener strings, registry specs and durations.

import { expect } from 'chai';
import { availableParallelism } from 'node:os';
import {
  type CairnConfig,
  type ConfigResult,
  configKeys,
  envName,
  loadConfig,
  parseDuration,
  parseListen,
  parseListenList,
  parseRegistryList,
  tableOptions,
} from '../../lib/config/index.ts';

type Env = Record<string, string | undefined>;

function load(args: string[], env: Env = {}, files: Record<string, string> = {}): ConfigResult {
  return loadConfig(args, env, {
    readFile: (p) => {
      const text = files[p];
      if (text === undefined) throw Object.assign(new Error(`ENOENT: ${p}`), { code: 'ENOENT' });
      return text;
    },
  });
}

function config(args: string[], env: Env = {}, files: Record<string, string> = {}): CairnConfig {
  const r = load(args, env, files);
  if (r.kind !== 'config') throw new Error(`expected a config, got ${JSON.stringify(r)}`);
  return r.config;
}

function error(args: string[], env: Env = {}, files: Record<string, string> = {}): string {
  const r = load(args, env, files);
  if (r.kind !== 'error') throw new Error(`expected an error, got ${JSON.stringify(r)}`);
  const msg = r.error.message;
  expect(msg, 'one line').to.not.include('\n');
  expect(msg).to.match(/^cairn: /);
  return msg;
}

describe('config: defaults', () => {
  it('has the documented defaults', () => {
    const c = config([]);
    expect(c.listen).to.deep.equal([
      { text: ':9999', address: '', port: 9999, proto: 'http', proxyProtocol: false },
    ]);
    expect(c.admin).to.deep.equal({ text: '127.0.0.1:9998', address: '127.0.0.1', port: 9998 });
    expect(c.adminToken).to.equal(undefined);
    expect(c.adminReadonly).to.equal(false);
    expect(c.registries).to.deep.equal([]);
    expect(c.strategy).to.equal('wrr');
    expect(c.matcher).to.equal('prefix');
    expect(c.tagPrefix).to.equal('urlprefix-');
    expect(c.healthStatus).to.deep.equal(['passing']);
    expect(c.globMatching).to.equal(true);
    // Default `auto`: one worker process per CPU.
    expect(c.workers).to.equal(availableParallelism());
    expect(c.logLevel).to.equal('info');
    expect(c.accessLog).to.equal('off');
    expect(c.shutdownWaitMs).to.equal(10_000);
    expect(c.norouteStatus).to.equal(404);
    expect(c.consulToken).to.equal(undefined);
    expect(c.etcdPrefix).to.equal('/cairn');
    expect(c.demo).to.equal(false);
    expect(c.configFile).to.equal(undefined);
  });

  it('maps to table build options', () => {
    const c = config(['--tag-prefix', 'svc-', '--health-status', 'passing,warning', '--matcher', 'segment']);
    expect(tableOptions(c)).to.deep.equal({
      tagPrefix: 'svc-',
      acceptedStatus: ['passing', 'warning'],
      matcher: 'segment',
      globMatching: true,
    });
  });

  it('derives env names in upper snake case', () => {
    expect(envName('tag-prefix')).to.equal('CAIRN_TAG_PREFIX');
    expect(envName('listen')).to.equal('CAIRN_LISTEN');
    for (const k of configKeys) expect(envName(k.name)).to.match(/^CAIRN_[A-Z0-9_]+$/);
  });

  it('returns help, version and positionals', () => {
    expect(load(['--help']).kind).to.equal('help');
    expect(load(['-h', '--strategy', 'bogus']).kind).to.equal('help');
    expect(load(['--version']).kind).to.equal('version');
    expect(load(['-v']).kind).to.equal('version');
    const r = load(['explain', '--registry', 'file:r.yaml', 'http://a/b']);
    expect(r.kind === 'config' && r.positionals).to.deep.equal(['explain', 'http://a/b']);
  });
});

describe('config: precedence flag > env > file > default', () => {
  const files = { 'cairn.yaml': 'strategy: rr\nmatcher: glob\ntag-prefix: file-\nlog-level: debug\n' };

  it('file beats default', () => {
    const c = config(['--config', 'cairn.yaml'], {}, files);
    expect(c.strategy).to.equal('rr');
    expect(c.matcher).to.equal('glob');
    expect(c.configFile).to.equal('cairn.yaml');
  });

  it('env beats file', () => {
    const c = config(['--config', 'cairn.yaml'], { CAIRN_STRATEGY: 'p2c', CAIRN_TAG_PREFIX: 'env-' }, files);
    expect(c.strategy).to.equal('p2c');
    expect(c.tagPrefix).to.equal('env-');
    expect(c.matcher).to.equal('glob');
  });

  it('flag beats env and file', () => {
    const c = config(['--config', 'cairn.yaml', '--strategy', 'random'], { CAIRN_STRATEGY: 'p2c' }, files);
    expect(c.strategy).to.equal('random');
    expect(c.logLevel).to.equal('debug');
  });

  it('an empty env value counts as unset', () => {
    expect(config(['--config', 'cairn.yaml'], { CAIRN_STRATEGY: '' }, files).strategy).to.equal('rr');
  });

  it('CAIRN_CONFIG names the file; --config beats it', () => {
    const more = { ...files, 'other.yaml': 'strategy: p2c\n' };
    expect(config([], { CAIRN_CONFIG: 'cairn.yaml' }, more).strategy).to.equal('rr');
    expect(config(['-c', 'other.yaml'], { CAIRN_CONFIG: 'cairn.yaml' }, more).strategy).to.equal('p2c');
  });

  it('repeatable keys: flags replace env and file entirely', () => {
    const f = { 'c.yaml': 'listen: [":1000", ":1001;proto=tcp"]\nregistry:\n  - file:a.yaml\n' };
    const fromFile = config(['-c', 'c.yaml'], {}, f);
    expect(fromFile.listen.map((l) => l.port)).to.deep.equal([1000, 1001]);
    expect(fromFile.registries.map((r) => r.text)).to.deep.equal(['file:a.yaml']);
    const fromEnv = config(['-c', 'c.yaml'], { CAIRN_LISTEN: ':2000,:2001' }, f);
    expect(fromEnv.listen.map((l) => l.port)).to.deep.equal([2000, 2001]);
    const fromFlags = config(
      ['-c', 'c.yaml', '--listen', ':3000', '--listen', ':3001'],
      { CAIRN_LISTEN: ':2000' },
      f,
    );
    expect(fromFlags.listen.map((l) => l.port)).to.deep.equal([3000, 3001]);
  });

  it('booleans: --flag, --no-flag, --flag=false, env and file', () => {
    expect(config(['--demo']).demo).to.equal(true);
    expect(config(['--demo=false'], { CAIRN_DEMO: 'true' }).demo).to.equal(false);
    expect(config([], { CAIRN_DEMO: 'yes' }).demo).to.equal(true);
    expect(config(['--no-glob-matching']).globMatching).to.equal(false);
    expect(config(['--glob-matching=true'], { CAIRN_GLOB_MATCHING: 'false' }).globMatching).to.equal(true);
    expect(config([], { CAIRN_GLOB_MATCHING: '0' }).globMatching).to.equal(false);
    expect(config(['-c', 'x.yaml'], {}, { 'x.yaml': 'admin-readonly: true\n' }).adminReadonly).to.equal(true);
  });

  it('file keys may be snake_case or camelCase; numbers and booleans are accepted', () => {
    const c = config(
      ['-c', 'x.yaml'],
      {},
      {
        'x.yaml': 'tag_prefix: a-\nnorouteStatus: 502\nworkers: 4\nglob_matching: false\nshutdown-wait: 2s\n',
      },
    );
    expect(c.tagPrefix).to.equal('a-');
    expect(c.norouteStatus).to.equal(502);
    expect(c.workers).to.equal(4);
    expect(c.globMatching).to.equal(false);
    expect(c.shutdownWaitMs).to.equal(2000);
  });

  it('reads a JSON config file', () => {
    expect(
      config(['-c', 'c.json'], {}, { 'c.json': '{"strategy": "rnd", "listen": [":8080"]}' }).strategy,
    ).to.equal('random');
  });

  it('an empty config file is fine', () => {
    expect(config(['-c', 'e.yaml'], {}, { 'e.yaml': '# nothing yet\n' }).strategy).to.equal('wrr');
  });
});

describe('config: validation (one line naming the key and the expected form)', () => {
  it('names the key as the user wrote it: flag, env or file key', () => {
    expect(error(['--strategy', 'fast'])).to.equal(
      'cairn: --strategy: expected one of wrr|rr|random|p2c, got "fast"',
    );
    expect(error([], { CAIRN_STRATEGY: 'fast' })).to.equal(
      'cairn: CAIRN_STRATEGY: expected one of wrr|rr|random|p2c, got "fast"',
    );
    expect(error(['-c', 'c.yaml'], {}, { 'c.yaml': 'strategy: fast\n' })).to.equal(
      'cairn: c.yaml: strategy: expected one of wrr|rr|random|p2c, got "fast"',
    );
  });

  const cases: [string, string[], RegExp][] = [
    ['strategy', ['--strategy', 'least'], /--strategy: expected one of wrr\|rr\|random\|p2c/],
    [
      'matcher',
      ['--matcher', 'regex'],
      /--matcher: expected one of prefix\|iprefix\|glob\|segment, got "regex"/,
    ],
    ['tag-prefix empty', ['--tag-prefix', ''], /--tag-prefix: expected a non-empty value/],
    ['tag-prefix spaces', ['--tag-prefix', 'a b'], /--tag-prefix: expected a prefix without spaces/],
    [
      'health-status',
      ['--health-status', 'critical'],
      /--health-status: expected passing or passing,warning/,
    ],
    ['glob-matching', ['--glob-matching=maybe'], /--glob-matching: expected true or false, got "maybe"/],
    ['admin-readonly', ['--admin-readonly=2'], /--admin-readonly: expected true or false/],
    ['demo', ['--demo=x'], /--demo: expected true or false/],
    ['workers', ['--workers', 'many'], /--workers: expected auto or a number from 1 to 1024, got "many"/],
    ['workers 0', ['--workers', '0'], /--workers: expected auto or a number from 1 to 1024/],
    [
      'log-level',
      ['--log-level', 'verbose'],
      /--log-level: expected one of trace\|debug\|info\|warn\|error\|fatal\|silent/,
    ],
    ['access-log', ['--access-log', 'apache'], /--access-log: expected one of off\|json\|common\|combined/],
    [
      'shutdown-wait',
      ['--shutdown-wait', '10'],
      /--shutdown-wait: expected a duration like 10s, 500ms or 1m30s, got "10"/,
    ],
    [
      'noroute-status',
      ['--noroute-status', '99'],
      /--noroute-status: expected an HTTP status from 200 to 599, got "99"/,
    ],
    ['noroute-status text', ['--noroute-status', 'nope'], /--noroute-status: expected an HTTP status/],
    ['admin', ['--admin', 'localhost'], /--admin: expected \[host\]:port/],
    ['admin port', ['--admin', ':99999'], /--admin: port must be 0\.\.65535/],
    ['admin-token', ['--admin-token', ' '], /--admin-token: expected a non-empty value/],
    ['consul-token', ['--consul-token', ''], /--consul-token: expected a non-empty value/],
    ['etcd-prefix', ['--etcd-prefix', 'cairn'], /--etcd-prefix: expected a key prefix starting with '\/'/],
    [
      'registry',
      ['--registry', 'zookeeper:x'],
      /--registry: expected file:PATH\|consul:URL\|etcd:URL, got "zookeeper:x"/,
    ],
    ['registry file', ['--registry', 'file:'], /--registry: file: needs a path/],
    ['registry consul', ['--registry', 'consul:ftp://x'], /--registry: consul: expected an http\(s\) URL/],
    ['listen', ['--listen', '9999'], /--listen: "9999": expected \[host\]:port/],
    ['unknown flag', ['--strategyy', 'wrr'], /^cairn: --strategyy: unknown flag \(see cairn --help\)$/],
    ['missing value', ['--strategy'], /^cairn: --strategy: expected a value/],
    ['empty boolean value', ['--demo='], /--demo: expected true or false/],
  ];
  for (const [name, args, re] of cases) {
    it(name, () => {
      expect(error(args)).to.match(re);
    });
  }

  it('accepts the valid forms of every key', () => {
    const c = config([
      '--admin',
      '[::1]:0',
      '--admin-token',
      's3cret',
      '--admin-readonly',
      '--registry',
      'file:./routes.yaml',
      '--registry',
      'consul:',
      '--strategy',
      'rnd',
      '--matcher',
      'iprefix',
      '--health-status',
      'warning,passing,warning',
      '--workers',
      'auto',
      '--log-level',
      'warn',
      '--access-log',
      'combined',
      '--shutdown-wait',
      '1m30s',
      '--noroute-status',
      '503',
      '--consul-token',
      'tok',
      '--etcd-prefix',
      '/prod/cairn/',
      '--demo',
    ]);
    expect(c.admin).to.deep.equal({ text: '[::1]:0', address: '::1', port: 0 });
    expect(c.adminToken).to.equal('s3cret');
    expect(c.adminReadonly).to.equal(true);
    expect(c.registries.map((r) => r.text)).to.deep.equal([
      'file:./routes.yaml',
      'consul:http://127.0.0.1:8500',
    ]);
    expect(c.strategy).to.equal('random');
    expect(c.matcher).to.equal('iprefix');
    expect(c.healthStatus).to.deep.equal(['warning', 'passing']);
    expect(c.workers).to.be.at.least(1);
    expect(c.logLevel).to.equal('warn');
    expect(c.accessLog).to.equal('combined');
    expect(c.shutdownWaitMs).to.equal(90_000);
    expect(c.norouteStatus).to.equal(503);
    expect(c.consulToken).to.equal('tok');
    expect(c.etcdPrefix).to.equal('/prod/cairn');
    expect(c.demo).to.equal(true);
  });

  it('config file errors', () => {
    expect(error(['--config', 'missing.yaml'])).to.equal(
      'cairn: --config: cannot read "missing.yaml": no such file',
    );
    expect(error([], { CAIRN_CONFIG: 'missing.yaml' })).to.match(/^cairn: CAIRN_CONFIG: cannot read/);
    expect(error(['-c', 'b.yaml'], {}, { 'b.yaml': 'strategy: [a\n' })).to.match(
      /^cairn: b\.yaml: not valid YAML or JSON: /,
    );
    expect(error(['-c', 'b.yaml'], {}, { 'b.yaml': '- a\n- b\n' })).to.equal(
      'cairn: b.yaml: expected a mapping of keys (listen:, registry:, ...)',
    );
    expect(error(['-c', 'b.yaml'], {}, { 'b.yaml': 'stratgy: rr\n' })).to.equal(
      'cairn: b.yaml: stratgy: unknown key (see cairn --help)',
    );
    expect(error(['-c', 'b.yaml'], {}, { 'b.yaml': 'strategy: [rr, wrr]\n' })).to.equal(
      'cairn: b.yaml: strategy: expected a single value, got a list',
    );
    expect(error(['-c', 'b.yaml'], {}, { 'b.yaml': 'listen: {a: 1}\n' })).to.equal(
      'cairn: b.yaml: listen: expected a string, number or boolean',
    );
  });
});

describe('config: fabio listener strings', () => {
  const ok: [string, Record<string, unknown>][] = [
    [':9999', { address: '', port: 9999, proto: 'http', proxyProtocol: false }],
    [
      '0.0.0.0:443;proto=https;cert=c.pem;key=k.pem',
      { address: '0.0.0.0', port: 443, proto: 'https', cert: 'c.pem', key: 'k.pem' },
    ],
    [':5432;proto=tcp', { address: '', port: 5432, proto: 'tcp' }],
    ['[::1]:80', { address: '::1', port: 80, proto: 'http' }],
    [
      '[::]:8443;proto=https;cert=both.pem',
      { address: '::', port: 8443, proto: 'https', cert: 'both.pem', key: 'both.pem' },
    ],
    ['localhost:8080', { address: 'localhost', port: 8080 }],
    [':443;cert=c.pem;key=k.pem', { proto: 'https', cert: 'c.pem' }],
    [':443;proto=tcp+sni', { proto: 'tcp+sni' }],
    [':6379;proto=tcp;cert=c.pem;key=k.pem', { proto: 'tcp', cert: 'c.pem' }],
    [':9000;proto=grpc', { proto: 'grpc' }],
    [':0;proto=tcp-dynamic;refresh=1s', { proto: 'tcp-dynamic', refreshMs: 1000 }],
    [':443;proto=https+tcp+sni;cert=c.pem', { proto: 'https+tcp+sni', cert: 'c.pem', key: 'c.pem' }],
    [
      ':5432;proto=tcp;maxconn=100;ct=2s;it=10m;drain=30s',
      { maxConnections: 100, connectTimeoutMs: 2000, idleTimeoutMs: 600_000, drainMs: 30_000 },
    ],
    [':443;proto=tcp+sni;rt=2s;pxyproto=true', { readTimeoutMs: 2000, proxyProtocol: true }],
    [':8080;maxconn=5', { proto: 'http', maxConnections: 5 }],
    [':9443;proto=grpcs;cert=c.pem;key=k.pem;ca=clients.pem', { proto: 'grpcs', ca: 'clients.pem' }],
    [':80;pxyproto=true;pxytimeout=250ms', { proxyProtocol: true, proxyProtocolTimeoutMs: 250 }],
    [':80;rt=5s;wt=10s;it=1m', { readTimeoutMs: 5000, writeTimeoutMs: 10_000, idleTimeoutMs: 60_000 }],
    [' :80 ; proto=http ; ', { port: 80, proto: 'http' }],
    [':0', { port: 0 }],
  ];
  for (const [text, expected] of ok) {
    it(`parses ${text}`, () => {
      const r = parseListen(text);
      if ('detail' in r) throw new Error(r.detail);
      expect(r.value).to.include(expected);
      expect(r.value.text).to.equal(text.trim());
    });
  }

  const bad: [string, RegExp][] = [
    ['9999', /expected \[host\]:port/],
    ['', /expected \[host\]:port/],
    [':99999', /port must be 0\.\.65535/],
    [':http', /port must be 0\.\.65535/],
    ['::1:80', /IPv6 addresses need brackets/],
    ['[foo]:80', /is not an IPv6 address/],
    ['300.1.1.1:80', /is not a host name or IP/],
    [
      ':80;proto=htp',
      /proto: expected one of http\|https\|tcp\|tcp\+sni\|grpc\|grpcs\|tcp-dynamic\|https\+tcp\+sni, got "htp"/,
    ],
    [':443;proto=https', /proto=https needs cert=FILE/],
    [':9443;proto=grpcs', /proto=grpcs needs cert=FILE/],
    [':80;proto=http;cert=c.pem', /cert= needs proto=https, grpcs, tcp or https\+tcp\+sni, not http/],
    [':443;proto=tcp+sni;cert=c.pem', /cert= needs proto=https, grpcs, tcp or https\+tcp\+sni, not tcp\+sni/],
    [
      ':0;proto=tcp-dynamic;cert=c.pem',
      /cert= needs proto=https, grpcs, tcp or https\+tcp\+sni, not tcp-dynamic/,
    ],
    [':443;proto=https+tcp+sni', /proto=https\+tcp\+sni needs cert=FILE/],
    [
      ':80;ct=1s',
      /ct= applies to TCP listeners \(proto=tcp\|tcp\+sni\|tcp-dynamic\|https\+tcp\+sni\), not http/,
    ],
    [':443;proto=https;cert=c.pem;drain=5s', /drain= applies to TCP listeners/],
    [':5432;proto=tcp;refresh=5s', /refresh= applies to proto=tcp-dynamic listeners, not tcp/],
    [':5432;proto=tcp;maxconn=-1', /maxconn: expected an integer from 0 to 10000000, got "-1"/],
    [':5432;proto=tcp;ct=soon', /ct: expected a duration/],
    [':80;key=k.pem', /key= needs cert=FILE/],
    [':443;cs=vault', /cert sources \(cs=\) are not supported/],
    [':80;foo=bar', /unknown option "foo"/],
    [':80;proto', /proto: expected proto=VALUE/],
    [':80;pxyproto=maybe', /pxyproto: expected true or false/],
    [':80;rt=5', /rt: expected a duration/],
  ];
  for (const [text, re] of bad) {
    it(`rejects ${JSON.stringify(text)}`, () => {
      const r = parseListen(text);
      expect('detail' in r && r.detail).to.match(re);
    });
  }

  it('splits fabio comma lists', () => {
    const r = parseListenList(':80, :443;proto=https;cert=c.pem;key=k.pem,,:5432;proto=tcp');
    if ('detail' in r) throw new Error(r.detail);
    expect(r.value.map((l) => `${l.port}/${l.proto}`)).to.deep.equal(['80/http', '443/https', '5432/tcp']);
  });

  it('reports the listener and the key in a one-line error', () => {
    expect(error(['--listen', ':80', '--listen', ':443;proto=https'])).to.equal(
      'cairn: --listen: ":443;proto=https": proto=https needs cert=FILE (and key=FILE unless the cert file holds the key)',
    );
  });
});

describe('config: registries', () => {
  it('parses file, consul and etcd specs', () => {
    const r = parseRegistryList([
      'file:./routes.yaml',
      'consul:127.0.0.1:8500',
      'etcd:http://a:2379,http://b:2379,file:other.json',
      'etcd:',
    ]);
    if ('detail' in r) throw new Error(r.detail);
    expect(r.value).to.deep.equal([
      { kind: 'file', text: 'file:./routes.yaml', path: './routes.yaml' },
      { kind: 'consul', text: 'consul:http://127.0.0.1:8500', url: 'http://127.0.0.1:8500' },
      { kind: 'etcd', text: 'etcd:http://a:2379,http://b:2379', urls: ['http://a:2379', 'http://b:2379'] },
      { kind: 'file', text: 'file:other.json', path: 'other.json' },
      { kind: 'etcd', text: 'etcd:http://127.0.0.1:2379', urls: ['http://127.0.0.1:2379'] },
    ]);
  });

  it('takes a comma list from env', () => {
    const c = config([], { CAIRN_REGISTRY: 'file:a.yaml,consul:https://consul.local:8501/' });
    expect(c.registries.map((r) => r.text)).to.deep.equal([
      'file:a.yaml',
      'consul:https://consul.local:8501',
    ]);
  });

  it('rejects bad specs', () => {
    expect(error(['--registry', 'etcd:http://a:2379,ftp://b'])).to.match(
      /--registry: etcd: expected http\(s\) URLs/,
    );
    expect(error(['--registry', './routes.yaml'])).to.match(
      /--registry: expected file:PATH\|consul:URL\|etcd:URL/,
    );
  });
});

describe('config: durations', () => {
  const ok: [string, number][] = [
    ['0', 0],
    ['10s', 10_000],
    ['500ms', 500],
    ['1m30s', 90_000],
    ['1h', 3_600_000],
    ['1.5s', 1500],
    ['250us', 0.25],
  ];
  for (const [text, ms] of ok) {
    it(`${text} = ${ms} ms`, () => {
      expect(parseDuration(text)).to.deep.equal({ value: ms });
    });
  }
  for (const text of ['', '10', 's', '10 s', '-1s', '1d', '1s2']) {
    it(`rejects ${JSON.stringify(text)}`, () => {
      expect(parseDuration(text))
        .to.have.property('detail')
        .that.match(/expected a duration/);
    });
  }
});
