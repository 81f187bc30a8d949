// The file registry: parsing (YAML and JSON, per-record problems, whole-file errors) and the
// watching adapter on a real temporary directory (edits, rename-replace, broken edits, deletion,
// manual writes with compare-and-swap).

import { expect } from 'chai';
import { mkdir, mkdtemp, readFile, rename, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { FileRegistry, manualVersion, parseFileRegistry } from '../../registry-adapters/file/index.ts';
import type { RegistryState } from '../../registry-adapters/types.ts';
import type { Problem, Snapshot } from '../../routing/types.ts';

function snapshotOf(text: string, fileName = 'routes.yaml'): Snapshot {
  const r = parseFileRegistry(text, fileName);
  if ('error' in r) throw new Error(r.error);
  return r.snapshot;
}

function errorOf(text: string, fileName = 'routes.yaml'): string {
  const r = parseFileRegistry(text, fileName);
  if (!('error' in r)) throw new Error(`expected an error, got ${JSON.stringify(r.snapshot)}`);
  expect(r.error).to.not.include('\n');
  return r.error;
}

const designExample = `services:
  - name: api
    instances:
      - { id: api-1, address: 127.0.0.1, port: 8081, tags: ["urlprefix-/api strip=/api"], weight: 1 }
routes: |
  route weight api /api weight 0.1 tags "canary"
`;

describe('file registry: parse', () => {
  it('parses the DESIGN.md example', () => {
    const s = snapshotOf(designExample);
    expect(s.instances).to.deep.equal([
      {
        service: 'api',
        id: 'api-1',
        address: '127.0.0.1',
        port: 8081,
        tags: ['urlprefix-/api strip=/api'],
        weight: 1,
        registry: 'file:routes.yaml',
      },
    ]);
    expect(s.manual).to.equal('route weight api /api weight 0.1 tags "canary"\n');
    expect(s.problems).to.deep.equal([]);
  });

  it('parses the same content as JSON (by extension or by content)', () => {
    const json = JSON.stringify({
      services: [
        {
          name: 'api',
          instances: [
            { id: 'api-1', address: '127.0.0.1', port: 8081, tags: ['urlprefix-/api strip=/api'], weight: 1 },
          ],
        },
      ],
      routes: 'route weight api /api weight 0.1 tags "canary"\n',
    });
    const yaml = snapshotOf(designExample);
    const a = snapshotOf(json, 'routes.json');
    const b = snapshotOf(json, 'routes.conf');
    expect(a.manual).to.equal(yaml.manual);
    expect(a.instances.map((i) => ({ ...i, registry: '' }))).to.deep.equal(
      yaml.instances.map((i) => ({ ...i, registry: '' })),
    );
    expect(b.instances).to.have.length(1);
  });

  it('keeps status, meta, IPv6 and host names; defaults the id to address:port', () => {
    const s = snapshotOf(`services:
  - name: svc
    instances:
      - { address: "[::1]", port: "9000", status: warning, meta: { zone: a, rack: 3 } }
      - { address: backend.internal, port: 80 }
`);
    expect(s.instances.map((i) => [i.id, i.address, i.port, i.status, i.meta])).to.deep.equal([
      ['[::1]:9000', '::1', 9000, 'warning', { zone: 'a', rack: '3' }],
      ['backend.internal:80', 'backend.internal', 80, undefined, undefined],
    ]);
  });

  it('accepts routes as a list of lines, and no routes at all', () => {
    expect(snapshotOf('services: []\nroutes: ["route del a", "route del b"]\n').manual).to.equal(
      'route del a\nroute del b',
    );
    expect(snapshotOf('services: []\n').manual).to.equal('');
    expect(snapshotOf('routes: "route del x"\n').instances).to.deep.equal([]);
  });

  describe('a bad record is a problem and is skipped; the rest loads', () => {
    const cases: [string, string, { instance: string; reason: RegExp }][] = [
      [
        'missing address',
        '{ id: x, port: 80 }',
        { instance: 'x', reason: /^address: expected a host name or IP.*got nothing/ },
      ],
      [
        'URL as address',
        '{ id: x, address: "http://a", port: 80 }',
        { instance: 'x', reason: /^address: .*got "http:\/\/a"/ },
      ],
      ['address with port', '{ id: x, address: "a:80", port: 80 }', { instance: 'x', reason: /^address: / }],
      ['bad IPv4', '{ id: x, address: 10.0.0.300, port: 80 }', { instance: 'x', reason: /^address: / }],
      [
        'missing port',
        '{ id: x, address: a }',
        { instance: 'x', reason: /^port: expected an integer from 1 to 65535, got nothing/ },
      ],
      [
        'port out of range',
        '{ id: x, address: a, port: 70000 }',
        { instance: 'x', reason: /^port: .*got 70000/ },
      ],
      [
        'port not a number',
        '{ id: x, address: a, port: http }',
        { instance: 'x', reason: /^port: .*got "http"/ },
      ],
      ['fractional port', '{ id: x, address: a, port: 80.5 }', { instance: 'x', reason: /^port: / }],
      [
        'tags a string',
        '{ id: x, address: a, port: 80, tags: "urlprefix-/" }',
        { instance: 'x', reason: /^tags: expected a list of strings, got "urlprefix-\/"/ },
      ],
      [
        'tags with a number',
        '{ id: x, address: a, port: 80, tags: [1] }',
        { instance: 'x', reason: /^tags: expected a list of strings, got an element 1/ },
      ],
      [
        'weight 0',
        '{ id: x, address: a, port: 80, weight: 0 }',
        { instance: 'x', reason: /^weight: expected an integer from 1 to 1000000, got 0/ },
      ],
      [
        'weight fraction',
        '{ id: x, address: a, port: 80, weight: 1.5 }',
        { instance: 'x', reason: /^weight: .*got 1\.5/ },
      ],
      [
        'weight text',
        '{ id: x, address: a, port: 80, weight: heavy }',
        { instance: 'x', reason: /^weight: .*got "heavy"/ },
      ],
      [
        'bad status',
        '{ id: x, address: a, port: 80, status: ok }',
        {
          instance: 'x',
          reason: /^status: expected one of passing\|warning\|critical\|maintenance\|unknown, got "ok"/,
        },
      ],
      [
        'bad meta',
        '{ id: x, address: a, port: 80, meta: [a] }',
        { instance: 'x', reason: /^meta: expected a mapping of strings, got a list/ },
      ],
      [
        'id with spaces',
        '{ id: "a b", address: a, port: 80 }',
        { instance: '#1', reason: /^id: expected an instance id without spaces, got "a b"/ },
      ],
      ['not a mapping', '"just text"', { instance: '#1', reason: /^instance #1: expected a mapping/ }],
    ];
    for (const [name, record, expected] of cases) {
      it(name, () => {
        const s = snapshotOf(`services:
  - name: svc
    instances:
      - ${record}
      - { id: good, address: 10.0.0.1, port: 80, tags: ["urlprefix-/"] }
`);
        expect(s.instances.map((i) => i.id)).to.deep.equal(['good']);
        const problems = s.problems ?? [];
        expect(problems).to.have.length(1);
        const p = problems[0] as Problem;
        expect(p.source).to.equal('registry');
        expect(p.severity).to.equal('error');
        expect(p.service).to.equal('svc');
        expect(p.instance).to.equal(expected.instance);
        expect(p.reason).to.match(expected.reason);
        expect(p.input).to.be.a('string').and.not.include('\n');
      });
    }

    it('a duplicate id within a service keeps the first', () => {
      const s = snapshotOf(`services:
  - name: svc
    instances:
      - { id: a, address: 10.0.0.1, port: 80 }
      - { id: a, address: 10.0.0.2, port: 80 }
  - name: other
    instances:
      - { id: a, address: 10.0.0.3, port: 80 }
`);
      expect(s.instances.map((i) => `${i.service}/${i.id}/${i.address}`)).to.deep.equal([
        'svc/a/10.0.0.1',
        'other/a/10.0.0.3',
      ]);
      expect(s.problems).to.have.length(1);
      expect(s.problems?.[0]).to.include({ service: 'svc', instance: 'a', severity: 'error' });
      expect(s.problems?.[0]?.reason).to.equal(
        'id: duplicate instance id "a" in service "svc" (first one kept)',
      );
    });

    it('a bad service is skipped', () => {
      const s = snapshotOf(`services:
  - { instances: [] }
  - name: "two words"
  - name: listless
    instances: { id: a }
  - 42
  - name: ok
    instances: [{ id: a, address: 10.0.0.1, port: 80 }]
`);
      expect(s.instances.map((i) => i.service)).to.deep.equal(['ok']);
      expect((s.problems ?? []).map((p) => p.reason)).to.deep.equal([
        'services[0]: name: expected a service name without spaces, got nothing',
        'services[1]: name: expected a service name without spaces, got "two words"',
        'instances: expected a list, got a mapping',
        'services[3]: expected a mapping with "name:" and "instances:"',
      ]);
      expect(s.problems?.[2]?.service).to.equal('listless');
    });

    it('unknown keys are warnings; the record still loads', () => {
      const s = snapshotOf(`services:
  - name: svc
    instance: []
    instances:
      - { id: a, address: 10.0.0.1, port: 80, lbweight: 2 }
extra: 1
`);
      expect(s.instances.map((i) => i.id)).to.deep.equal(['a']);
      const problems = s.problems ?? [];
      expect(problems.map((p) => p.severity)).to.deep.equal(['warning', 'warning', 'warning']);
      expect(problems.map((p) => p.reason)).to.deep.equal([
        'unknown top-level key "extra" ignored (expected services, routes)',
        'unknown key "instance" ignored (expected name, instances)',
        'unknown key "lbweight" ignored (expected id, address, port, tags, weight, status, meta)',
      ]);
    });
  });

  describe('a file that does not parse as a whole is an error', () => {
    const cases: [string, string, string, RegExp][] = [
      ['empty', '', 'routes.yaml', /^routes\.yaml: file is empty/],
      ['only comments', '# nothing\n', 'routes.yaml', /^routes\.yaml: no content/],
      [
        'YAML syntax',
        'services:\n  - name: [api\n',
        'routes.yaml',
        /^routes\.yaml: invalid YAML at line \d+, column \d+: /,
      ],
      [
        'duplicate key',
        'services: []\nservices: []\n',
        'routes.yaml',
        /^routes\.yaml: invalid YAML at line 2, column 1: /,
      ],
      ['JSON syntax', '{"services": [}', 'routes.json', /^routes\.json: invalid JSON: /],
      [
        'top-level list',
        '- a\n',
        'routes.yaml',
        /^routes\.yaml: expected a mapping with "services:" and "routes:"/,
      ],
      [
        'services not a list',
        'services: {api: {}}\n',
        'routes.yaml',
        /^routes\.yaml: services: expected a list of services/,
      ],
      ['routes a number', 'routes: 3\n', 'routes.yaml', /^routes\.yaml: routes: expected text/],
    ];
    for (const [name, text, file, re] of cases) {
      it(name, () => {
        expect(errorOf(text, file)).to.match(re);
      });
    }
  });
});

// ---- the watching adapter ----

interface Recorder {
  readonly snapshots: Snapshot[];
  readonly states: RegistryState[];
  readonly onSnapshot: (s: Snapshot) => void;
  readonly onState: (s: RegistryState) => void;
}

function recorder(): Recorder {
  const snapshots: Snapshot[] = [];
  const states: RegistryState[] = [];
  return { snapshots, states, onSnapshot: (s) => snapshots.push(s), onState: (s) => states.push(s) };
}

async function until(what: string, cond: () => boolean, timeoutMs = 1500): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

const oneService = (port: number, extra = ''): string => `services:
  - name: api
    instances:
      - { id: api-1, address: 127.0.0.1, port: ${port}, tags: ["urlprefix-/api"] }
routes: |
  route weight api /api weight 0.5 tags "x"
${extra}`;

describe('file registry: watching adapter', function () {
  this.timeout(5000);
  let dir: string;
  let file: string;
  let reg: FileRegistry | undefined;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cairn-file-registry-'));
    file = join(dir, 'routes.yaml');
  });

  afterEach(async () => {
    await reg?.stop();
    reg = undefined;
    await rm(dir, { recursive: true, force: true });
  });

  function start(path = file) {
    const rec = recorder();
    reg = new FileRegistry(path, { debounceMs: 20, rewatchMs: 50 });
    return { rec, started: reg.start(rec.onSnapshot, rec.onState) };
  }

  it('emits the first snapshot and state up before start() resolves', async () => {
    await writeFile(file, oneService(8081));
    const { rec, started } = start();
    await started;
    expect(reg?.name).to.equal(`file:${file}`);
    expect(rec.snapshots).to.have.length(1);
    expect(rec.snapshots[0]?.instances[0]).to.include({ id: 'api-1', port: 8081, registry: `file:${file}` });
    expect(rec.states.map((s) => s.state)).to.deep.equal(['up']);
    expect(rec.states[0]?.registry).to.equal(`file:${file}`);
  });

  it('applies an in-place edit', async () => {
    await writeFile(file, oneService(8081));
    const { rec, started } = start();
    await started;
    await writeFile(file, oneService(8082));
    await until('second snapshot', () => rec.snapshots.length === 2);
    expect(rec.snapshots[1]?.instances[0]?.port).to.equal(8082);
  });

  it('applies a rename-replace (editor style) edit, repeatedly', async () => {
    await writeFile(file, oneService(8081));
    const { rec, started } = start();
    await started;
    for (const port of [8082, 8083]) {
      const tmp = join(dir, `.routes.yaml.${port}.tmp`);
      await writeFile(tmp, oneService(port));
      await rename(tmp, file);
      await until(`snapshot for ${port}`, () => rec.snapshots.at(-1)?.instances[0]?.port === port);
    }
    expect(rec.snapshots.map((s) => s.instances[0]?.port)).to.deep.equal([8081, 8082, 8083]);
  });

  it('a broken edit reports the error (stale) and emits no snapshot; the fix goes back to up', async () => {
    await writeFile(file, oneService(8081));
    const { rec, started } = start();
    await started;
    await writeFile(file, 'services:\n  - name: [broken\n');
    await until('stale state', () => rec.states.at(-1)?.state === 'stale');
    expect(rec.snapshots).to.have.length(1);
    expect(rec.states.at(-1)?.error).to.match(/invalid YAML at line/);
    expect(reg?.currentState()?.state).to.equal('stale');
    await sleep(60);
    expect(rec.snapshots).to.have.length(1);

    await writeFile(file, oneService(8081));
    await until('up again', () => rec.states.at(-1)?.state === 'up');
    expect(rec.snapshots).to.have.length(2);
    expect(rec.states.map((s) => s.state)).to.deep.equal(['up', 'stale', 'up']);
  });

  it('bad records load partially (a snapshot with problems, state up)', async () => {
    await writeFile(file, oneService(8081));
    const { rec, started } = start();
    await started;
    await writeFile(
      file,
      `services:
  - name: api
    instances:
      - { id: api-1, address: 127.0.0.1, port: 8081 }
      - { id: api-2, address: 127.0.0.1, port: nope }
`,
    );
    await until('second snapshot', () => rec.snapshots.length === 2);
    expect(rec.snapshots[1]?.instances.map((i) => i.id)).to.deep.equal(['api-1']);
    expect(rec.snapshots[1]?.problems?.map((p) => p.instance)).to.deep.equal(['api-2']);
    expect(rec.states.map((s) => s.state)).to.deep.equal(['up']);
  });

  it('an unchanged rewrite emits nothing', async () => {
    await writeFile(file, oneService(8081));
    const { rec, started } = start();
    await started;
    await writeFile(file, oneService(8081));
    await writeFile(join(dir, 'unrelated.txt'), 'x');
    await sleep(120);
    expect(rec.snapshots).to.have.length(1);
  });

  it('debounces a burst of writes into one re-read', async () => {
    await writeFile(file, oneService(8081));
    const { rec, started } = start();
    await started;
    for (let p = 8090; p < 8095; p++) await writeFile(file, oneService(p));
    await until('burst applied', () => rec.snapshots.at(-1)?.instances[0]?.port === 8094);
    await sleep(60);
    expect(rec.snapshots.length).to.be.at.most(3);
  });

  it('a file rewritten faster than the debounce is still re-read during the burst (no starvation)', async () => {
    // Found by the chaos suite's table churn: a trailing-only debounce never fired while changes
    // kept coming faster than debounceMs, so the table stopped following the file.
    await writeFile(file, oneService(8081));
    const { rec, started } = start();
    await started;
    const burstEnd = Date.now() + 400;
    let p = 8100;
    let duringBurst = 0;
    while (Date.now() < burstEnd) {
      await writeFile(file, oneService(p++));
      await sleep(5);
      duringBurst = rec.snapshots.length - 1;
    }
    expect(duringBurst, 're-reads while the writes kept coming').to.be.at.least(3);
    await until('last write applied', () => rec.snapshots.at(-1)?.instances[0]?.port === p - 1);
  });

  it('a deleted file goes stale and comes back when recreated', async () => {
    await writeFile(file, oneService(8081));
    const { rec, started } = start();
    await started;
    await unlink(file);
    await until('stale', () => rec.states.at(-1)?.state === 'stale');
    expect(rec.states.at(-1)?.error).to.match(/cannot read .*routes\.yaml: no such file/);
    await writeFile(file, oneService(8081));
    await until('up', () => rec.states.at(-1)?.state === 'up');
    expect(rec.snapshots).to.have.length(2);
  });

  it('a missing file at start is down (start resolves); creating it brings it up', async () => {
    const { rec, started } = start();
    await started;
    expect(rec.snapshots).to.have.length(0);
    expect(rec.states.map((s) => s.state)).to.deep.equal(['down']);
    await writeFile(file, oneService(8081));
    await until('up', () => rec.states.at(-1)?.state === 'up');
    expect(rec.snapshots).to.have.length(1);
  });

  it('a missing directory is down and is watched once it exists', async () => {
    const sub = join(dir, 'later');
    const { rec, started } = start(join(sub, 'routes.yaml'));
    await started;
    expect(rec.states.at(-1)?.state).to.equal('down');
    await mkdir(sub);
    await writeFile(join(sub, 'routes.yaml'), oneService(8081));
    await until('up', () => rec.states.at(-1)?.state === 'up', 3000);
  });

  it('emits nothing after stop()', async () => {
    await writeFile(file, oneService(8081));
    const { rec, started } = start();
    await started;
    await reg?.stop();
    await writeFile(file, oneService(8082));
    await sleep(80);
    expect(rec.snapshots).to.have.length(1);
  });

  it('start() twice is a programming error', async () => {
    await writeFile(file, oneService(8081));
    const { rec, started } = start();
    await started;
    let err: unknown;
    try {
      await reg?.start(rec.onSnapshot, rec.onState);
    } catch (e) {
      err = e;
    }
    expect(String(err)).to.match(/already started/);
  });

  describe('manual routes (compare-and-swap)', () => {
    it('reads and writes routes, keeping comments, and the watcher applies the write', async () => {
      await writeFile(file, `# my registry\n${oneService(8081)}`);
      const { rec, started } = start();
      await started;
      const cur = await reg?.readManual();
      expect(cur).to.deep.equal({
        value: 'route weight api /api weight 0.5 tags "x"\n',
        version: manualVersion('route weight api /api weight 0.5 tags "x"\n'),
      });
      const value = 'route weight api /api weight 0.2 tags "x"\nroute del api /old\n';
      const w = await reg?.writeManual(value, cur?.version ?? '');
      expect(w).to.deep.equal({ ok: true, version: manualVersion(value) });
      const text = await readFile(file, 'utf8');
      expect(text).to.match(/^# my registry\n/);
      expect(snapshotOf(text).manual).to.equal(value);
      expect((await reg?.readManual())?.version).to.equal(manualVersion(value));
      await until('snapshot with new routes', () => rec.snapshots.at(-1)?.manual === value);
    });

    it('refuses a stale version with the current value', async () => {
      await writeFile(file, oneService(8081));
      const { started } = start();
      await started;
      const w = await reg?.writeManual('route del api\n', 'not-the-version');
      expect(w).to.deep.equal({
        ok: false,
        conflict: {
          value: 'route weight api /api weight 0.5 tags "x"\n',
          version: manualVersion('route weight api /api weight 0.5 tags "x"\n'),
        },
      });
    });

    it('writes JSON files as JSON', async () => {
      const jsonFile = join(dir, 'routes.json');
      await writeFile(jsonFile, JSON.stringify({ services: [], routes: '' }));
      const { started } = start(jsonFile);
      await started;
      const w = await reg?.writeManual('route del x', manualVersion(''));
      expect(w).to.deep.include({ ok: true });
      expect(JSON.parse(await readFile(jsonFile, 'utf8'))).to.deep.equal({
        services: [],
        routes: 'route del x',
      });
    });

    it('reports a file that does not parse', async () => {
      await writeFile(file, 'services: [\n');
      const { started } = start();
      await started;
      const w = await reg?.writeManual('route del x', manualVersion(''));
      expect(w)
        .to.have.property('error')
        .that.match(/invalid YAML/);
    });
  });
});
