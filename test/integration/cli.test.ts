// The real `cairn` CLI (node lib/cli/main.ts) on the example registry and on broken inputs:
// stdout lines, `# problem:` lines, the explain JSON, exit codes 0/1/2, one-line config errors.

import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const cli = join(root, 'lib', 'cli', 'main.ts');
const exampleYaml = 'file:examples/file/routes.yaml';
const exampleJson = 'file:examples/file/routes.json';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  lines: string[];
}

function cairn(args: string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    // A clean environment: no CAIRN_* of the developer's shell leaks into the assertions.
    const base: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env))
      if (!k.startsWith('CAIRN_') && v !== undefined) base[k] = v;
    const child = spawn(process.execPath, [cli, ...args], { cwd: root, env: { ...base, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
    });
    child.on('error', reject);
    child.on('close', (code) => {
      resolve({ code, stdout, stderr, lines: stdout.split('\n').filter((l) => l !== '') });
    });
  });
}

const exampleRoutes = [
  'route add web www.example.com/assets http://10.0.2.21:80/ weight 0.7500 opts "prepend=/static strip=/assets"',
  'route add web www.example.com/assets http://10.0.2.22:80/ weight 0.2500 opts "prepend=/static strip=/assets"',
  'route add web www.example.com/ http://10.0.2.21:80/ weight 0.7500',
  'route add web www.example.com/ http://10.0.2.22:80/ weight 0.2500',
  'route add db :5432 tcp://10.0.3.31:5432 weight 1.0000',
  'route add api /api http://10.0.1.11:8080/ weight 0.6000 opts "strip=/api"',
  'route add api /api http://10.0.1.12:8080/ weight 0.3000 opts "strip=/api"',
  'route add api /api http://10.0.1.13:8080/ weight 0.1000 tags "canary" opts "strip=/api"',
];

describe('cli (integration)', function () {
  this.timeout(20_000);
  let dir: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cairn-cli-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  describe('cairn routes', () => {
    it('prints one route add line per target with its effective weight (YAML example)', async () => {
      const r = await cairn(['routes', '--registry', exampleYaml]);
      expect(r.stderr).to.equal('');
      expect(r.code).to.equal(0);
      expect(r.lines).to.deep.equal(exampleRoutes);
    });

    it('gives the same table for the JSON example', async () => {
      const r = await cairn(['routes', '--registry', exampleJson]);
      expect(r.code).to.equal(0);
      expect(r.lines).to.deep.equal(exampleRoutes);
    });

    it('prints problems as # problem: lines after the routes, and still exits 0', async () => {
      const file = join(dir, 'bad.yaml');
      await writeFile(
        file,
        `services:
  - name: api
    instances:
      - { id: api-1, address: 10.0.0.1, port: 8080, tags: ["urlprefix-/api strip=api"] }
      - { id: api-2, address: 10.0.0.2, port: 8080, tags: ["urlprefix-/api"] }
      - { id: api-3, address: 10.0.0.3, port: 80a, tags: ["urlprefix-/api"] }
routes: |
  route add api /x http://10.0.0.9:80/
  route ad api /y http://10.0.0.9:80/
`,
      );
      const r = await cairn(['routes', '--registry', `file:${file}`]);
      expect(r.code).to.equal(0);
      expect(r.stderr).to.equal('');
      expect(r.lines).to.deep.equal([
        'route add api /x http://10.0.0.9:80/ weight 1.0000',
        'route add api /api http://10.0.0.2:8080/ weight 1.0000',
        '# problem: registry api/api-3: port: expected an integer from 1 to 65535, got "80a" ({"id":"api-3","address":"10.0.0.3","port":"80a","tags":["urlprefix-/api"]})',
        `# problem: tag api/api-1: strip must start with '/' (got "api") (urlprefix-/api strip=api)`,
        `# problem: manual line 2: syntax error: 'route' expected (route ad api /y http://10.0.0.9:80/)`,
      ]);
    });

    it('honours --tag-prefix and CAIRN_TAG_PREFIX (flag beats env)', async () => {
      const file = join(dir, 'prefix.yaml');
      await writeFile(
        file,
        'services:\n  - name: s\n    instances:\n      - { id: a, address: 10.0.0.1, port: 80, tags: ["svc-/a", "urlprefix-/b"] }\n',
      );
      const env = await cairn(['routes', '--registry', `file:${file}`], { CAIRN_TAG_PREFIX: 'svc-' });
      // Tags that are not route tags become the target's tags (fabio).
      expect(env.lines).to.deep.equal([
        'route add s /a http://10.0.0.1:80/ weight 1.0000 tags "urlprefix-/b"',
      ]);
      const flag = await cairn(['routes', '--registry', `file:${file}`, '--tag-prefix', 'urlprefix-'], {
        CAIRN_TAG_PREFIX: 'svc-',
      });
      expect(flag.lines).to.deep.equal(['route add s /b http://10.0.0.1:80/ weight 1.0000 tags "svc-/a"']);
    });

    it('exits 1 when the registry file cannot be read or parsed', async () => {
      const missing = await cairn(['routes', '--registry', `file:${join(dir, 'nope.yaml')}`]);
      expect(missing.code).to.equal(1);
      expect(missing.stdout).to.equal('');
      expect(missing.stderr.trim()).to.match(/^cairn: cannot read registry file:.*nope\.yaml: no such file$/);

      const broken = join(dir, 'broken.yaml');
      await writeFile(broken, 'services:\n  - name: [api\n');
      const r = await cairn(['routes', '--registry', `file:${broken}`]);
      expect(r.code).to.equal(1);
      expect(r.stderr.trim().split('\n')).to.have.length(1);
      expect(r.stderr).to.match(
        /^cairn: registry file:.*broken\.yaml: .*invalid YAML at line \d+, column \d+/,
      );
    });

    it('exits 2 without a registry', async () => {
      const none = await cairn(['routes']);
      expect(none.code).to.equal(2);
      expect(none.stderr.trim()).to.equal(
        'cairn: --registry: expected file:PATH|consul:URL|etcd:URL (cairn routes reads a registry)',
      );
    });
  });

  describe('cairn explain', () => {
    it('prints the explain JSON (2-space indent) and exits 0 when a route matches', async () => {
      const r = await cairn(['explain', '--registry', exampleYaml, 'http://localhost/api/users']);
      expect(r.code).to.equal(0);
      expect(r.stderr).to.equal('');
      const out = JSON.parse(r.stdout);
      expect(r.stdout).to.equal(`${JSON.stringify(out, null, 2)}\n`);
      expect(out).to.deep.equal({
        url: 'http://localhost/api/users',
        route: {
          service: 'api',
          src: '/api',
          proto: 'http',
          opts: 'strip=/api',
          targets: [
            { service: 'api', dst: 'http://10.0.1.11:8080/', weight: 0.6, healthy: true },
            { service: 'api', dst: 'http://10.0.1.12:8080/', weight: 0.3, healthy: true },
            { service: 'api', dst: 'http://10.0.1.13:8080/', weight: 0.1, healthy: true },
          ],
        },
        target: 'http://10.0.1.11:8080/',
        rejected: [],
      });
    });

    it('explains host routes and TCP URLs', async () => {
      const web = JSON.parse(
        (await cairn(['explain', '--registry', exampleJson, 'http://www.example.com/assets/app.css'])).stdout,
      );
      expect(web.route.src).to.equal('www.example.com/assets');
      expect(web.route.opts).to.equal('strip=/assets prepend=/static');
      expect(web.rejected.map((x: { src: string }) => x.src)).to.include('www.example.com/');
      const db = await cairn(['explain', '--registry', exampleYaml, 'tcp://localhost:5432']);
      expect(db.code).to.equal(0);
      expect(JSON.parse(db.stdout).target).to.equal('tcp://10.0.3.31:5432');
    });

    it('looks up the path the proxy would (decoded, dot segments resolved)', async () => {
      const r = await cairn(['explain', '--registry', exampleYaml, 'http://x/static/../api%2Fusers']);
      expect(r.code).to.equal(0);
      expect(JSON.parse(r.stdout).route.src).to.equal('/api');
    });

    it('exits 1 with route null when nothing matches', async () => {
      const r = await cairn(['explain', '--registry', exampleYaml, 'http://localhost/nothing']);
      expect(r.code).to.equal(1);
      const out = JSON.parse(r.stdout);
      expect(out.route).to.equal(null);
      expect(out.target).to.equal(null);
      expect(out.rejected).to.deep.equal([{ src: '/api', reason: out.rejected[0].reason }]);
    });

    it('exits 2 without a URL or with an unusable one', async () => {
      const none = await cairn(['explain', '--registry', exampleYaml]);
      expect(none.code).to.equal(2);
      expect(none.stderr.trim()).to.equal(
        'cairn: explain: expected one URL, e.g. cairn explain http://example.com/api',
      );
      const bad = await cairn(['explain', '--registry', exampleYaml, 'ftp://x/']);
      expect(bad.code).to.equal(2);
      expect(bad.stderr.trim()).to.match(/^cairn: explain: unsupported scheme ftp:\/\//);
    });
  });

  describe('flags and usage', () => {
    it('a bad flag value is one line naming the key, exit 2', async () => {
      const r = await cairn(['routes', '--registry', exampleYaml, '--strategy', 'fast']);
      expect(r.code).to.equal(2);
      expect(r.stdout).to.equal('');
      expect(r.stderr).to.equal('cairn: --strategy: expected one of wrr|rr|random|p2c, got "fast"\n');
    });

    it('an unknown flag, a bad env value and a bad listener are one-line errors, exit 2', async () => {
      const unknown = await cairn(['--bogus']);
      expect(unknown.code).to.equal(2);
      expect(unknown.stderr).to.equal('cairn: --bogus: unknown flag (see cairn --help)\n');
      const env = await cairn(['routes', '--registry', exampleYaml], { CAIRN_MATCHER: 'regex' });
      expect(env.code).to.equal(2);
      expect(env.stderr).to.equal(
        'cairn: CAIRN_MATCHER: expected one of prefix|iprefix|glob|segment, got "regex"\n',
      );
      const listen = await cairn(['--listen', ':443;proto=https', '--registry', exampleYaml]);
      expect(listen.code).to.equal(2);
      expect(listen.stderr.trim().split('\n')).to.have.length(1);
      expect(listen.stderr).to.match(/^cairn: --listen: ":443;proto=https": proto=https needs cert=FILE/);
    });

    it('a config file supplies keys; a bad key in it is reported with the file name', async () => {
      const cfg = join(dir, 'cairn.yaml');
      await writeFile(cfg, `registry: ${exampleYaml}\nstrategy: rr\n`);
      const ok = await cairn(['routes', '--config', cfg]);
      expect(ok.code).to.equal(0);
      expect(ok.lines).to.deep.equal(exampleRoutes);
      const bad = join(dir, 'bad-cairn.yaml');
      await writeFile(bad, 'stratgy: rr\n');
      const r = await cairn(['routes', '--config', bad]);
      expect(r.code).to.equal(2);
      expect(r.stderr).to.equal(`cairn: ${bad}: stratgy: unknown key (see cairn --help)\n`);
    });

    it('unknown commands and serving without a registry exit 2', async () => {
      const cmd = await cairn(['frobnicate']);
      expect(cmd.code).to.equal(2);
      expect(cmd.stderr).to.equal(
        'cairn: frobnicate: unknown command (commands: routes, explain; see cairn --help)\n',
      );
      const serve = await cairn([]);
      expect(serve.code).to.equal(2);
      expect(serve.stderr).to.match(/^cairn: --registry: expected file:PATH\|consul:URL\|etcd:URL to serve/);
    });

    it('--version and --help', async () => {
      const v = await cairn(['--version']);
      expect(v.code).to.equal(0);
      expect(v.stdout).to.match(/^cairn \d+\.\d+\.\d+\S*\n$/);
      const h = await cairn(['--help']);
      expect(h.code).to.equal(0);
      for (const word of [
        'cairn routes',
        'cairn explain',
        '--listen',
        '--registry',
        '--strategy',
        'CAIRN_',
      ]) {
        expect(h.stdout).to.include(word);
      }
    });
  });
});
