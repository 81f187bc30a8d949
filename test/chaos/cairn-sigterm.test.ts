// Cairn itself goes: two `cairn` processes on the same file registry, a client that knows both
// (the HA story: DNS or a VIP with two addresses, failing over on a refused connection). SIGTERM
// to the first one under load: every request it had accepted and sent upstream completes on it
// (none cut), the process exits 0, and the client's later requests go to the second one: nothing
// fails.

import { expect } from 'chai';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import type http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { waitFor } from '../integration/helpers/cairn.ts';
import { closeAll, startUpstream, type Upstream } from '../integration/helpers/upstream.ts';
import {
  type ChildCairn,
  describeFailures,
  report,
  startChildCairn,
  startLoad,
  summarize,
} from './support/chaos.ts';

/** Answers after `ms`, tracking the x-load-id of every request it is answering. */
function tracked(name: string, ms: number, open: Set<number>) {
  return (req: http.IncomingMessage, res: http.ServerResponse): void => {
    const id = Number(req.headers['x-load-id']);
    open.add(id);
    req.resume();
    const timer = setTimeout(() => {
      res.writeHead(200, { 'content-type': 'text/plain', 'x-upstream': name });
      res.end(`${name}\n`);
    }, ms);
    res.once('close', () => {
      clearTimeout(timer);
      open.delete(id);
    });
  };
}

describe('chaos: Cairn SIGTERM under load, a second Cairn keeps serving', function () {
  this.timeout(90_000);
  let ups: Upstream[] = [];
  let cairns: ChildCairn[] = [];
  let dir = '';

  afterEach(async () => {
    await Promise.all(cairns.map((c) => c.stop()));
    cairns = [];
    await closeAll(ups);
    if (dir !== '') await rm(dir, { recursive: true, force: true });
  });

  it('drains in-flight requests (none cut) and the client fails over to the second instance', async () => {
    const open = new Set<number>();
    ups = await Promise.all(['h1', 'h2'].map((n) => startUpstream(n)));
    for (const u of ups) u.behaviour = tracked(u.name, 300, open);
    dir = await mkdtemp(join(tmpdir(), 'cairn-chaos-ha-'));
    const file = join(dir, 'routes.yaml');
    const instances = ups.map(
      (u) => `      - { id: ${u.name}, address: 127.0.0.1, port: ${u.port}, tags: ["urlprefix-/ha"] }`,
    );
    await writeFile(file, `services:\n  - name: ha\n    instances:\n${instances.join('\n')}\n`);
    const args = ['--registry', `file:${file}`, '--shutdown-wait', '10s'];
    cairns = await Promise.all([startChildCairn(args), startChildCairn(args)]);
    const [first, second] = cairns as [ChildCairn, ChildCairn];

    const load = startLoad({
      origins: [first.origin, second.origin],
      path: '/ha',
      concurrency: 8,
      maxRequests: 100_000,
      maxMs: 60_000,
    });
    await sleep(1_500);
    // Wait for requests of the first Cairn being answered upstream, then SIGTERM it.
    const onFirst = () => [...open].filter((id) => load.attempts.get(id) === 0);
    await waitFor(() => onFirst().length >= 2, 5_000, 'requests in flight through the first Cairn');
    const inFlight = new Set(onFirst());
    const termAt = Date.now();
    const exit = await first.terminate();
    const exitedMs = Date.now() - termAt;
    await sleep(1_500);
    const r = await load.stop();

    const drained = summarize(r.outcomes.filter((o) => inFlight.has(o.id)));
    const drainedOnFirst = r.outcomes.filter(
      (o) => inFlight.has(o.id) && o.origin === 0 && o.failovers === 0,
    );
    const afterExit = summarize(r.outcomes.filter((o) => o.start > termAt + exitedMs));
    report(
      'Cairn SIGTERM: in flight on the stopping instance',
      drained,
      `failed 0, all ${inFlight.size} answered by it`,
    );
    report(
      'Cairn SIGTERM: whole run, client with two Cairns',
      r,
      `failed 0 (${r.outcomes.filter((o) => o.failovers > 0).length} failed over)`,
    );
    report('Cairn SIGTERM: after the first exited', afterExit, 'failed 0, all on the second');
    expect(exit, `exit status of the SIGTERMed Cairn:\n${first.proc.output()}`).to.equal(0);
    expect(drained.sent).to.equal(inFlight.size);
    expect(drained.failed, describeFailures(drained)).to.equal(0);
    expect(drainedOnFirst.length, 'answered by the draining Cairn itself').to.equal(inFlight.size);
    expect(r.failed, describeFailures(r)).to.equal(0);
    expect(afterExit.sent).to.be.above(10);
    expect(afterExit.outcomes.every((o) => o.origin === 1)).to.equal(true);
    expect(exitedMs, 'drain took about one request time, not the whole shutdown-wait').to.be.below(5_000);
  });
});
