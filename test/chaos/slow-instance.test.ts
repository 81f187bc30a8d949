// A slow instance (answers after 2 s) among fast ones. With `--strategy p2c` the slow one piles
// up in-flight requests and is picked less, so the fast ones' p99 stays low. With a response
// timeout, requests that reach the slow one answer 504 at the timeout: nothing hangs.

import { expect } from 'chai';
import type http from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { type Cairn, startCairn } from '../integration/helpers/cairn.ts';
import { closeAll, startUpstream, type Upstream } from '../integration/helpers/upstream.ts';
import { describeFailures, percentile, report, scaled, startLoad } from './support/chaos.ts';

function slowly(name: string, ms: number) {
  return (req: http.IncomingMessage, res: http.ServerResponse): void => {
    req.resume();
    const timer = setTimeout(() => {
      res.writeHead(200, { 'content-type': 'text/plain', 'x-upstream': name });
      res.end(`${name}\n`);
    }, ms);
    res.once('close', () => clearTimeout(timer));
  };
}

describe('chaos: slow instance among fast ones', function () {
  this.timeout(90_000);
  let ups: Upstream[] = [];
  let cairn: Cairn | undefined;

  beforeEach(async () => {
    ups = await Promise.all([startUpstream('fast1'), startUpstream('fast2'), startUpstream('slow')]);
    (ups[2] as Upstream).behaviour = slowly('slow', 2_000);
  });
  afterEach(async () => {
    await cairn?.stop();
    cairn = undefined;
    await closeAll(ups);
  });

  const content = () => ({
    services: [
      {
        name: 'mixed',
        instances: ups.map((u) => ({
          id: u.name,
          address: '127.0.0.1',
          port: u.port,
          tags: ['urlprefix-/mixed'],
        })),
      },
      {
        name: 'slowonly',
        instances: [
          {
            id: 'slow',
            address: '127.0.0.1',
            port: (ups[2] as Upstream).port,
            tags: ['urlprefix-/slowonly'],
          },
        ],
      },
    ],
  });

  it('p2c keeps the fast instances p99 low', async () => {
    const c = await startCairn(content(), { args: ['--strategy', 'p2c'] });
    cairn = c;
    const load = startLoad({
      origins: [c.origin],
      path: '/mixed',
      concurrency: 8,
      maxRequests: 50_000,
      maxMs: scaled(6_000, 20_000),
      pauseMs: 2,
    });
    const r = await load.done;
    const fast = r.outcomes.filter((o) => o.upstream.startsWith('fast'));
    const slow = r.outcomes.filter((o) => o.upstream === 'slow');
    const p99 = percentile(
      fast.map((o) => o.end - o.start),
      99,
    );
    report(
      'slow instance, p2c',
      r,
      `failed 0, fast p99 < 250 ms (was ${p99} ms), slow share < 2% (${slow.length})`,
    );
    expect(r.failed, describeFailures(r)).to.equal(0);
    expect(r.sent).to.be.above(500);
    expect(p99, 'p99 of the fast instances (ms)').to.be.below(250);
    expect(slow.length / r.sent, 'share of the slow instance').to.be.below(0.02);
  });

  it('with --response-timeout the slow one answers 504 at the timeout, never hangs', async () => {
    const c = await startCairn(content(), {
      args: ['--strategy', 'p2c', '--response-timeout', '500ms', '--eject-after', '3'],
    });
    cairn = c;
    const timeoutMs = 500;
    const only = startLoad({
      origins: [c.origin],
      path: '/slowonly',
      concurrency: 4,
      maxRequests: 40,
      maxMs: scaled(5_000, 15_000),
      requestTimeoutMs: 10_000,
      okStatuses: [504],
    });
    const mixed = startLoad({
      origins: [c.origin],
      path: '/mixed',
      concurrency: 4,
      maxRequests: 50_000,
      maxMs: scaled(5_000, 15_000),
      pauseMs: 2,
      requestTimeoutMs: 10_000,
      okStatuses: [200],
    });
    const [ro, rm] = await Promise.all([only.done, mixed.done]);
    await sleep(100);
    const slowest = Math.max(...ro.outcomes.map((o) => o.end - o.start));
    report(
      'slow instance alone, response timeout 500 ms (succeeded = answered 504)',
      ro,
      `all 504 within ~${timeoutMs} ms (slowest ${slowest} ms)`,
    );
    expect(ro.sent).to.be.above(3);
    expect(ro.failed, describeFailures(ro)).to.equal(0);
    expect(slowest, 'no request hangs past the timeout').to.be.below(timeoutMs + 1_500);
    expect(Math.min(...ro.outcomes.map((o) => o.end - o.start))).to.be.at.least(timeoutMs - 50);

    // Timeouts count toward ejection like 5xx: after 3 in a row the slow instance is out, so the
    // 504s are those 3 plus what was already in flight on it (at most the 4 workers).
    const mixedSlowest = Math.max(...rm.outcomes.map((o) => o.end - o.start));
    const slowKey =
      c.server.controller.current.table.routes
        .find((r) => r.src === '/mixed')
        ?.targets.find((t) => t.service === 'mixed' && t.dst.includes(`:${(ups[2] as Upstream).port}/`))
        ?.key ?? '';
    report(
      'slow among fast, response timeout 500 ms, eject after 3',
      rm,
      `failed <= 7, each a 504 at the timeout, then the slow one ejected (slowest ${mixedSlowest} ms)`,
    );
    expect(
      rm.failures.every((o) => o.status === 504),
      describeFailures(rm),
    ).to.equal(true);
    expect(rm.failed, 'requests that reached the slow instance before its ejection').to.be.at.most(7);
    expect(c.server.health.isEjected(slowKey), 'slow instance ejected after its timeouts').to.equal(true);
    expect(mixedSlowest, 'no request hangs past the timeout').to.be.below(timeoutMs + 1_500);
  });
});
