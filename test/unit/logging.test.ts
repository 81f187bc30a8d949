// Access-log formats (JSON, fabio's common/combined) and the batched stdout writer.

import { mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
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
});
