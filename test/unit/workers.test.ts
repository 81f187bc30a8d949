// The pieces of `--workers` that need no processes: the table's wire form (rebuilt to the same
// version, a mismatch rejected), the metrics merge (sums, min/max gauges, control-owned series),
// and the stats round trip (a worker's deltas absorbed by the control's cells).

import { expect } from 'chai';
import { Controller } from '../../lib/controller.ts';
import { TargetHealth } from '../../lib/health/target-health.ts';
import { aggregatedExposition, controlShare, workerShare } from '../../lib/metrics/aggregate.ts';
import { CairnMetrics, type MetricsSource } from '../../lib/metrics/prometheus.ts';
import { Traffic } from '../../lib/stats/traffic.ts';
import type { Telemetry } from '../../lib/stats/telemetry.ts';
import { reusePortSupported } from '../../lib/workers/listen.ts';
import { StatsReporter } from '../../lib/workers/stats-report.ts';
import { rebuildTable, reuseRecords, serialiseInputs } from '../../lib/workers/table-wire.ts';
import { buildTable, IncrementalTableBuilder } from '../../routing/table.ts';
import type { Route, RouteTable, RouteTarget, ServiceInstance } from '../../routing/types.ts';

function controller(): Controller {
  return new Controller({ build: {}, strategy: 'rr', health: new TargetHealth() });
}

function value(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

function source(
  traffic: Traffic,
  table: RouteTable,
  up: boolean,
  ejected: boolean,
  open: number,
): MetricsSource {
  return {
    cells: () => traffic.cells(),
    targets: () =>
      table.routes.flatMap((r) => r.targets.map((t) => ({ service: t.service, target: t.dst, up, ejected }))),
    registries: () => [{ name: 'file:r.yaml', up: true }],
    routes: () => table.routes.length,
    problems: () => 0,
    tcpRoutes: () => [],
    openConnections: () => ({ http: open, tcp: 0, websocket: 0 }),
  };
}

describe('workers: table wire form', () => {
  it('rebuilds the control table from the merged registry inputs, same version', () => {
    const c = controller();
    c.updateSnapshot('file:a.yaml', {
      instances: [
        { service: 'api', id: 'a1', address: '10.0.0.1', port: 80, tags: ['urlprefix-/api'] },
        {
          service: 'web',
          id: 'w1',
          address: '10.0.0.2',
          port: 80,
          tags: ['urlprefix-/ strip=/x'],
          weight: 3,
        },
      ],
      manual: 'route weight api /api weight 0.5 tags "canary"',
    });
    c.updateSnapshot('consul', {
      instances: [
        { service: 'db', id: 'd1', address: '10.0.0.3', port: 5432, tags: ['urlprefix-:5432 proto=tcp'] },
      ],
      manual: '',
      problems: [{ source: 'registry', reason: 'bad record', input: '{', severity: 'error' }],
    });
    const json = serialiseInputs(c.inputs);
    const r = rebuildTable(json, c.current.table.version, {});
    expect(r.ok).to.equal(true);
    if (!r.ok) return;
    expect(r.table.version).to.equal(c.current.table.version);
    expect(r.table.routes.map((x) => x.src)).to.deep.equal(c.current.table.routes.map((x) => x.src));
    expect(r.table.problems).to.deep.equal(c.current.table.problems);
  });

  it('rejects inputs that do not hash to the expected version (the worker keeps its table)', () => {
    const json = serialiseInputs({ instances: [], manual: 'route add a / http://10.0.0.1:80/' });
    const r = rebuildTable(json, 'not-the-version', {});
    expect(r.ok).to.equal(false);
    if (r.ok) return;
    expect(r.error).to.equal('table version mismatch');
    expect(r.got).to.equal(
      buildTable({ instances: [], manual: 'route add a / http://10.0.0.1:80/' }).version,
    );
    expect(rebuildTable('{not json', 'v', {}).ok).to.equal(false);
  });

  it('a worker keeps the records of unchanged instances and one copy of repeated strings', () => {
    const inst = (i: number, tags = [`urlprefix-/s${i}`]): ServiceInstance => ({
      service: `s${i % 3}`,
      id: `i${i}`,
      address: '10.0.0.1',
      port: 8000 + i,
      tags,
      registry: 'file:/etc/cairn/routes.yaml',
      meta: { zone: 'a' },
    });
    const first = Array.from({ length: 40 }, (_, i) => inst(i));
    const builder = new IncrementalTableBuilder({});
    const send = (instances: ServiceInstance[]) => {
      const inputs = { instances, manual: '' };
      const r = rebuildTable(serialiseInputs(inputs), buildTable(inputs).version, builder);
      expect(r.ok).to.equal(true);
      if (!r.ok) throw new Error(r.error);
      return r.table;
    };
    const t1 = send(first);
    // New records: one string per value among them (JSON.parse makes a copy per occurrence).
    const got1 = reuseRecords(JSON.parse(serialiseInputs({ instances: first, manual: '' })).instances, []);
    expect(got1).to.deep.equal(first);
    expect(new Set(got1.map((i) => i.registry)).size).to.equal(1);
    for (let i = 3; i < got1.length; i++) {
      expect(Object.is(got1[i]?.service, got1[i - 3]?.service)).to.equal(true);
      expect(Object.is(got1[i]?.address, got1[0]?.address)).to.equal(true);
    }
    // One changed instance in the middle: every other record is the object of the previous message.
    const second = first.slice();
    second[20] = inst(20, ['urlprefix-/changed']);
    const t2 = send(second);
    const before = new Map(t1.routes.map((r) => [r.src, r]));
    let same = 0;
    for (const r of t2.routes) if (before.get(r.src) === r) same++;
    expect(same).to.equal(t2.routes.length - 1);
    // A record that equals the previous one at its place is that object.
    const prev = reuseRecords(JSON.parse(serialiseInputs({ instances: second, manual: '' })).instances, []);
    const next = reuseRecords(JSON.parse(serialiseInputs({ instances: second, manual: '' })).instances, prev);
    for (let i = 0; i < next.length; i++) expect(next[i]).to.equal(prev[i]);
    const changed = second.slice(0, 39);
    changed[5] = { ...inst(5), port: 1 };
    const after = reuseRecords(
      JSON.parse(serialiseInputs({ instances: changed, manual: '' })).instances,
      prev,
    );
    expect(after).to.deep.equal(changed);
    for (let i = 0; i < after.length; i++) {
      if (i === 5) expect(after[i]).to.not.equal(prev[i]);
      else if (i < 5) expect(after[i]).to.equal(prev[i]);
    }
  });

  it('installs a table built elsewhere with a swap event', () => {
    const swaps: string[] = [];
    const c = new Controller({
      build: {},
      strategy: 'rr',
      health: new TargetHealth(),
      onSwap: (e) => swaps.push(e.current.version),
    });
    const t = buildTable({ instances: [], manual: 'route add a / http://10.0.0.1:80/' });
    c.install(t);
    expect(c.current.table).to.equal(t);
    expect(c.current.balancer(t.routes[0] as Route)).to.not.equal(undefined);
    expect(swaps).to.deep.equal([t.version]);
  });

  it('SO_REUSEPORT is used where Node supports it', () => {
    expect(reusePortSupported('linux')).to.equal(true);
    expect(reusePortSupported('darwin')).to.equal(false);
    expect(reusePortSupported('win32')).to.equal(false);
  });
});

describe('workers: metrics merge', () => {
  it('sums counters and histograms, keeps target gauges 0/1, takes table series from the control', async () => {
    const t = buildTable({ instances: [], manual: 'route add api /api http://10.0.0.1:80/' });
    const route = t.routes[0] as Route;
    const target = route.targets[0] as RouteTarget;
    const worker = (requests: number, ejected: boolean, open: number) => {
      const traffic = new Traffic();
      traffic.bind(t);
      for (let i = 0; i < requests; i++) traffic.onResponse(route, target, 200, 3);
      return new CairnMetrics(source(traffic, t, !ejected, ejected, open));
    };
    const w1 = worker(3, false, 2);
    const w2 = worker(4, true, 5);
    // The control proxies nothing, but its table series are the truth.
    const control = new CairnMetrics(source(new Traffic(), t, true, false, 0));
    control.onSwap();
    const text = await aggregatedExposition(
      '# process metrics\n',
      controlShare(await control.registry.getMetricsAsJSON()),
      [workerShare(await w1.registry.getMetricsAsJSON()), workerShare(await w2.registry.getMetricsAsJSON())],
    );
    expect(text.startsWith('# process metrics\n')).to.equal(true);
    expect(value(text, 'cairn_requests_total{route="/api",service="api",code="2xx"}')).to.equal(7);
    expect(value(text, 'cairn_request_duration_seconds_count{route="/api",service="api"}')).to.equal(7);
    expect(
      value(text, 'cairn_request_duration_seconds_bucket{route="/api",service="api",le="0.005"}'),
    ).to.equal(7);
    expect(value(text, 'cairn_open_connections{kind="http"}')).to.equal(7);
    // Up only while every worker sends it traffic; ejected while any worker has ejected it.
    expect(value(text, `cairn_target_up{service="api",target="${target.dst}"}`)).to.equal(0);
    expect(value(text, `cairn_target_ejected{service="api",target="${target.dst}"}`)).to.equal(1);
    // Once, from the control: not multiplied by the number of workers.
    expect(value(text, 'cairn_table_swaps_total')).to.equal(1);
    expect(value(text, 'cairn_routes')).to.equal(1);
    expect(value(text, 'cairn_registry_up{registry="file:r.yaml"}')).to.equal(1);
  });
});

describe('workers: live stats round trip', () => {
  it("a worker's deltas land on the control's cells: counts, rates, percentiles, open", () => {
    const t = buildTable({ instances: [], manual: 'route add api /api http://10.0.0.1:80/' });
    const route = t.routes[0] as Route;
    const target = route.targets[0] as RouteTarget;
    const workerTraffic = new Traffic();
    workerTraffic.bind(t);
    const telemetry = {
      traffic: workerTraffic,
      openCounts: () => () => 2,
      tableRoutes: () => t.routes,
      targetHealth: () => ({ health: 'ejected' }),
    } as unknown as Telemetry;
    const reporter = new StatsReporter(telemetry);
    for (let i = 1; i <= 10; i++) workerTraffic.onResponse(route, target, i === 10 ? 502 : 200, i);
    workerTraffic.onResponse(undefined, undefined, 404, 1);

    const control = new Traffic();
    control.bind(t);
    const first = reporter.report();
    expect(first.open).to.deep.equal([[`/api\u0000${target.key}`, 2]]);
    expect(first.ejected).to.deep.equal([target.key]);
    for (const c of first.cells) control.absorb(c.key, c.requests, c.errors5xx, c.connectErrors, c.latencies);
    // Nothing new: the next report is empty, nothing counted twice.
    expect(reporter.report().cells).to.deep.equal([]);
    workerTraffic.onResponse(route, target, 200, 5);
    for (const c of reporter.report().cells)
      control.absorb(c.key, c.requests, c.errors5xx, c.connectErrors, c.latencies);

    control.tick();
    const s = control.stats(control.cellOf(route, target));
    expect(s.requests).to.equal(11);
    expect(s.rate1m).to.equal(11);
    expect(s.errors5xx).to.be.closeTo(1 / 11, 1e-9);
    expect(s.p50ms).to.equal(5);
    expect(s.p99ms).to.equal(10);
    expect(control.noRoute.requests).to.equal(1);
  });
});
