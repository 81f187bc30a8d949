// Access-log formats (JSON, fabio's common/combined) and the batched stdout writer.

import { spawnSync } from 'node:child_process';
import { mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { BatchedWriter, formatAccessLog } from '../../lib/logging.ts';
import type { AccessLogEntry } from '../../lib/proxy/http-proxy.ts';

const entry: AccessLogEntry = {
  time: Date.UTC(2026, 10, 23, 19, 11, 13, 42),
  method: 'GET',
  host: 'example.com',
  path: '/a?b="c"',
  status: 200,
  bytes: 100,
  durationMs: 1.5,
  remote: '10.0.0.1',
  service: 'api',
  upstream: '10.0.1.1:8080',
  retries: 1,
  userAgent: 'curl/8',
  referer: '',
  proto: 'HTTP/1.1',
};

describe('access log', () => {
  it('formats JSON lines that parse back to the entry, escaping what needs it', () => {
    const line = formatAccessLog('json', entry);
    expect(JSON.parse(line)).to.deep.equal({
      time: '2026-11-23T19:11:13.042Z',
      method: 'GET',
      host: 'example.com',
      path: '/a?b="c"',
      status: 200,
      bytes: 100,
      duration_ms: 1.5,
      remote: '10.0.0.1',
      service: 'api',
      upstream: '10.0.1.1:8080',
      retries: 1,
    });
    const odd = formatAccessLog('json', { ...entry, path: '/\u00e9\n\\' });
    expect(JSON.parse(odd).path).to.equal('/\u00e9\n\\');
  });

  it("formats fabio's common and combined lines", () => {
    expect(formatAccessLog('common', entry)).to.equal(
      '10.0.0.1 - - [23/Nov/2026:19:11:13 +0000] "GET /a?b="c" HTTP/1.1" 200 100',
    );
    expect(formatAccessLog('combined', entry)).to.equal(
      '10.0.0.1 - - [23/Nov/2026:19:11:13 +0000] "GET /a?b="c" HTTP/1.1" 200 100 "-" "curl/8"',
    );
  });

  it('writes batched lines in order and flushes the rest synchronously', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cairn-log-'));
    try {
      const file = join(dir, 'out.log');
      const fd = openSync(file, 'w');
      const w = new BatchedWriter(fd);
      for (let i = 0; i < 5000; i++) w.write(`line ${i}\n`);
      await new Promise((r) => setTimeout(r, 120));
      for (let i = 5000; i < 5010; i++) w.write(`line ${i}\n`);
      w.flushSync();
      await new Promise((r) => setTimeout(r, 50));
      const lines = readFileSync(file, 'utf8').trim().split('\n');
      expect(lines).to.have.length(5010);
      expect(lines[0]).to.equal('line 0');
      expect(lines[5009]).to.equal('line 5009');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('keeps lines whole when several processes share one pipe (shared: pieces of at most 4 KiB)', function () {
    this.timeout(20_000);
    const dir = mkdtempSync(join(tmpdir(), 'cairn-log-'));
    try {
      const script = join(dir, 'writer.ts');
      const logging = new URL('../../lib/logging.ts', import.meta.url).href;
      writeFileSync(
        script,
        [
          `import { BatchedWriter } from ${JSON.stringify(logging)};`,
          `const w = new BatchedWriter(1, { shared: true });`,
          `const id = process.argv[2];`,
          // Batches while earlier writes are still blocked on the full pipe: the shape that mixes.
          `let i = 0;`,
          `const t = setInterval(() => {`,
          `  for (let k = 0; k < 500; k++, i++) w.write(\`<\${id}:\${i}:\${'x'.repeat(300)}>\\n\`);`,
          `  if (i >= 3000) { clearInterval(t); setTimeout(() => w.flushSync(), 200); }`,
          `}, 5);`,
        ].join('\n'),
      );
      const node = process.execPath;
      // Three writers on one pipe, read by a slow consumer so the pipe is often full (without
      // `shared`, this run mixes about a fifth of the lines).
      const r = spawnSync(
        'bash',
        [
          '-c',
          `("${node}" ${script} a & "${node}" ${script} b & "${node}" ${script} c & wait) | (sleep 0.3; cat)`,
        ],
        { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 },
      );
      expect(r.status).to.equal(0, r.stderr);
      const lines = r.stdout.split('\n').filter((l) => l !== '');
      expect(lines).to.have.length(9000);
      const bad = lines.filter((l) => !/^<[abc]:\d+:x{300}>$/.test(l));
      expect(bad, 'interleaved lines').to.deep.equal([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
