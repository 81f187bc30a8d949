// `cairn register` argument handling and the Registrar's option checks (no etcd needed: every
// case here fails or answers before connecting).

import { expect } from 'chai';
import { isRegisterCommand, registerCommand, registerUsage } from '../../lib/register/cli.ts';
import { defaultInstanceId, Registrar } from '../../lib/register/registrar.ts';
import { runCli } from '../../lib/cli/run.ts';
import { usage } from '../../lib/cli/usage.ts';

interface Out {
  code: number;
  stdout: string[];
  stderr: string[];
}

async function run(args: string[], env: Record<string, string> = {}): Promise<Out> {
  const stdout: string[] = [];
  const stderr: string[] = [];
  const code = await registerCommand(args, {
    stdout: (t) => stdout.push(t),
    stderr: (t) => stderr.push(t),
    env,
    signals: { once: () => undefined },
  });
  return { code, stdout, stderr };
}

const base = [
  'register',
  '--registry',
  'etcd:http://127.0.0.1:1',
  '--service',
  'api',
  '--address',
  '10.0.0.5',
];

describe('cairn register', () => {
  it('is recognised by its first positional argument, skipping flag values', () => {
    expect(isRegisterCommand(['register', '--service', 'x'])).to.equal(true);
    expect(isRegisterCommand(['--registry', 'etcd:', 'register'])).to.equal(true);
    expect(isRegisterCommand(['--log-level=warn', '--etcd-prefix', '/x', 'register'])).to.equal(true);
    expect(isRegisterCommand(['--tag-prefix', 'register'])).to.equal(false);
    expect(isRegisterCommand(['routes', 'register'])).to.equal(false);
    expect(isRegisterCommand(['--demo'])).to.equal(false);
    expect(isRegisterCommand([])).to.equal(false);
  });

  it('prints its usage for --help, and cairn --help mentions it', async () => {
    const r = await run(['register', '--help']);
    expect(r.code).to.equal(0);
    expect(r.stdout.join('\n')).to.equal(registerUsage());
    expect(usage()).to.include('cairn register --registry etcd:URL');
  });

  const errors: [string[], string][] = [
    [['register', '--registry', 'etcd:http://127.0.0.1:1'], 'cairn: --service: required (the service name)'],
    [
      ['register', '--registry', 'etcd:http://127.0.0.1:1', '--service', 'api'],
      'cairn: --address: required (the host or IP Cairn forwards to)',
    ],
    [base, 'cairn: --port: required (the port Cairn forwards to)'],
    [[...base, '--port', '0'], 'cairn: --port: expected a port from 1 to 65535, got "0"'],
    [
      [...base, '--port', '80', '--weight', 'x'],
      'cairn: --weight: expected a weight from 1 to 1000000, got "x"',
    ],
    [[...base, '--port', '80', '--meta', 'novalue'], 'cairn: --meta: expected KEY=VALUE, got "novalue"'],
    [[...base, '--port', '80', '--ttl', '500ms'], 'cairn: --ttl: expected at least 1s, got "500ms"'],
    [
      [...base, '--port', '80', '--ttl', 'soon'],
      'cairn: --ttl: expected a duration like 10s, 500ms or 1m30s, got "soon"',
    ],
    [
      [...base, '--port', '80', '--check', 'tcp://x:1'],
      'cairn: --check: expected an http(s) URL, got "tcp://x:1"',
    ],
    [[...base, '--port', '80', '--check-interval', '1s'], 'cairn: --check-interval: needs --check URL'],
    [
      [...base, '--port', '80', '--service', 'a b'],
      'cairn: register: service: expected a name without spaces or \'/\', got "a b"',
    ],
    [[...base, '--port'], 'cairn: --port: expected a value'],
    [
      ['register', '--service', 'api', '--address', 'h', '--port', '1'],
      'cairn: --registry: cairn register needs exactly one etcd:URL[,URL...] registry',
    ],
    [
      [...base, '--port', '80', '--registry', 'file:x.yaml'],
      'cairn: --registry: cairn register needs exactly one etcd:URL[,URL...] registry',
    ],
    [[...base, '--port', '80', 'extra'], 'cairn: register: unexpected argument "extra"'],
    [
      [...base, '--port', '80', '--strategy', 'nope'],
      'cairn: --strategy: expected one of wrr|rr|random|p2c, got "nope"',
    ],
    [
      [...base, '--port', '80', '--etcd-user', 'u'],
      'cairn: --etcd-user: needs --etcd-password too (etcd password auth)',
    ],
  ];
  for (const [args, message] of errors) {
    it(`exits 2 with one line: ${message}`, async () => {
      const r = await run(args);
      expect(r.stderr).to.deep.equal([message]);
      expect(r.code).to.equal(2);
    });
  }

  it('is reached through runCli', async () => {
    const stderr: string[] = [];
    const code = await runCli(['register', '--registry', 'etcd:http://127.0.0.1:1'], {
      stdout: () => undefined,
      stderr: (t) => stderr.push(t),
      env: {},
    });
    expect([code, stderr]).to.deep.equal([2, ['cairn: --service: required (the service name)']]);
  });

  it('defaults the instance id to address:port ([v6]:port)', () => {
    expect(defaultInstanceId('10.0.0.5', 8080)).to.equal('10.0.0.5:8080');
    expect(defaultInstanceId('fd00::5', 8080)).to.equal('[fd00::5]:8080');
    expect(defaultInstanceId('api.internal', 80)).to.equal('api.internal:80');
  });

  it('builds the key from the prefix, service and id', async () => {
    const r = new Registrar({
      endpoints: ['http://127.0.0.1:1'],
      prefix: '/prod',
      service: 'api',
      address: 'h',
      port: 1,
    });
    expect(r.key).to.equal('/prod/services/api/h:1');
    await r.stop();
    const s = new Registrar({
      endpoints: ['http://127.0.0.1:1'],
      service: 'api',
      id: 'api-1',
      address: 'h',
      port: 1,
    });
    expect(s.key).to.equal('/cairn/services/api/api-1');
    await s.stop();
  });

  it('refuses options etcd or Cairn could not use', () => {
    const mk = (o: Record<string, unknown>) => () =>
      new Registrar({ endpoints: ['http://127.0.0.1:1'], service: 'api', address: 'h', port: 1, ...o });
    expect(mk({ port: 70000 })).to.throw('port: expected 1 to 65535, got 70000');
    expect(mk({ address: 'http://h' })).to.throw('address: expected a host name or IP');
    expect(mk({ service: 'a/b' })).to.throw("service: expected a name without spaces or '/'");
    expect(mk({ id: 'a b' })).to.throw('id: expected an id without spaces');
    expect(mk({ weight: 0 })).to.throw('weight: expected a positive integer, got 0');
    expect(mk({ tags: [' '] })).to.throw('tag: expected a non-empty tag');
  });
});
