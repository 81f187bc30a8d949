import { expect } from 'chai';
import { CairnMetrics, type MetricsSource, type TargetState } from '../../lib/metrics/prometheus.ts';
import { histogramSamples } from '../../lib/metrics/scrape-metric.ts';
import { TrafficCell } from '../../lib/stats/traffic-cell.ts';
import { Traffic } from '../../lib/stats/traffic.ts';
import { buildTable } from '../../routing/table.ts';
import type { RouteTable } from '../../routing/types.ts';

/** The exposition's samples as `name{labels} value` lines (comments dropped). */
function samples(text: string): string[] {
  return text.split('\n').filter((l) => l !== '' && !l.startsWith('#'));
}

function value(text: string, series: string): number | undefined {
  const line = samples(text).find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

interface Fake {
  traffic: Traffic;
  targets: TargetState[];
  registries: { name: string; up: boolean }[];
  problems: number;
  routes: number;
  tcp: { route: string; service: string; connections: number; bytesIn: number; bytesOut: number }[];
}

function fakeSource(f: Fake): MetricsSource {
  return {
    cells: () => f.traffic.cells(),
    targets: () => f.targets,
    registries: () => f.registries,
    routes: () => f.routes,
    problems: () => f.problems,
    tcpRoutes: () => f.tcp,
    openConnections: () => ({ http: 3, tcp: 1, websocket: 0 }),
  };
}

function table(manual: string): RouteTable {
  return buildTable({ instances: [], manual });
}

describe('metrics: histogram samples', () => {
  it('turns bucket counts into cumulative buckets, +Inf, sum and count', () => {
    const out = histogramSamples('d', { route: '/' }, [0.1, 1], [2, 3, 1], 4.5);
    expect(out.map((s) => [s.metricName, s.labels.le ?? '', s.value])).to.deep.equal([
      ['d_bucket', '0.1', 2],
      ['d_bucket', '1', 5],
      ['d_bucket', '+Inf', 6],
      ['d_sum', '', 4.5],
      ['d_count', '', 6],
    ]);
  });
});

describe('metrics: Prometheus exposition', () => {
  it('exports every DESIGN.md metric with its labels, plus process metrics', async () => {
    const traffic = new Traffic();
    const t = table('route add api /api http://10.0.0.1:80/\nroute add api /api http://10.0.0.2:80/');
    traffic.bind(t);
    const r = t.routes[0];
    const [a, b] = r?.targets ?? [];
    if (r === undefined || a === undefined || b === undefined) throw new Error('table');
    traffic.onResponse(r, a, 200, 2);
    traffic.onResponse(r, b, 201, 30);
    traffic.onResponse(r, b, 503, 4);
    traffic.onResponse(undefined, undefined, 404, 0.1);
    traffic.onUpstreamError(r, a, 'connect', true);
    const f: Fake = {
      traffic,
      targets: [
        { service: 'api', target: a.dst, up: true, ejected: false },
        { service: 'api', target: b.dst, up: false, ejected: true },
      ],
      registries: [{ name: 'file:r.yaml', up: true }],
      problems: 2,
      routes: 1,
      tcp: [{ route: ':5432', service: 'db', connections: 7, bytesIn: 100, bytesOut: 2000 }],
    };
    const m = new CairnMetrics(fakeSource(f));
    m.onSwap();
    const text = await m.exposition();
    expect(m.contentType).to.include('text/plain');

    // Several targets of one route share its route/service series.
    expect(value(text, 'cairn_requests_total{route="/api",service="api",code="2xx"}')).to.equal(2);
    expect(value(text, 'cairn_requests_total{route="/api",service="api",code="5xx"}')).to.equal(1);
    expect(value(text, 'cairn_requests_total{route="",service="",code="4xx"}')).to.equal(1);
    expect(value(text, 'cairn_request_duration_seconds_count{route="/api",service="api"}')).to.equal(3);
    expect(
      value(text, 'cairn_request_duration_seconds_bucket{route="/api",service="api",le="0.0025"}'),
    ).to.equal(1);
    expect(
      value(text, 'cairn_request_duration_seconds_bucket{route="/api",service="api",le="+Inf"}'),
    ).to.equal(3);
    expect(value(text, 'cairn_request_duration_seconds_sum{route="/api",service="api"}')).to.be.closeTo(
      0.036,
      1e-9,
    );
    expect(
      value(text, `cairn_upstream_errors_total{service="api",target="${a.dst}",kind="connect"}`),
    ).to.equal(1);
    expect(value(text, 'cairn_retries_total{route="/api",service="api"}')).to.equal(1);
    expect(value(text, `cairn_target_up{service="api",target="${a.dst}"}`)).to.equal(1);
    expect(value(text, `cairn_target_up{service="api",target="${b.dst}"}`)).to.equal(0);
    expect(value(text, `cairn_target_ejected{service="api",target="${b.dst}"}`)).to.equal(1);
    expect(value(text, 'cairn_table_swaps_total')).to.equal(1);
    expect(value(text, 'cairn_registry_up{registry="file:r.yaml"}')).to.equal(1);
    expect(value(text, 'cairn_config_problems')).to.equal(2);
    expect(value(text, 'cairn_routes')).to.equal(1);
    expect(value(text, 'cairn_tcp_connections_total{route=":5432",service="db"}')).to.equal(7);
    expect(value(text, 'cairn_tcp_bytes_total{route=":5432",service="db",direction="out"}')).to.equal(2000);
    expect(value(text, 'cairn_open_connections{kind="http"}')).to.equal(3);
    expect(text).to.match(/^# TYPE cairn_request_duration_seconds histogram$/m);
    expect(text).to.match(/^# TYPE cairn_requests_total counter$/m);
    expect(text).to.match(/^process_cpu_user_seconds_total /m);
  });

  it('drops the series of routes, targets and registries that left', async () => {
    const traffic = new Traffic();
    const t1 = table('route add api /api http://10.0.0.1:80/\nroute add old /old http://10.0.0.9:80/');
    traffic.bind(t1);
    for (const r of t1.routes) traffic.onResponse(r, r.targets[0], 200, 1);
    const f: Fake = {
      traffic,
      targets: [{ service: 'old', target: 'http://10.0.0.9:80/', up: true, ejected: false }],
      registries: [{ name: 'consul:x', up: true }],
      problems: 0,
      routes: 2,
      tcp: [],
    };
    const m = new CairnMetrics(fakeSource(f));
    expect(await m.exposition()).to.include('route="/old"');

    traffic.bind(table('route add api /api http://10.0.0.1:80/'));
    f.targets = [];
    f.registries = [];
    const text = await m.exposition();
    expect(text).to.not.include('/old');
    expect(text).to.not.include('consul:x');
    expect(value(text, 'cairn_requests_total{route="/api",service="api",code="2xx"}')).to.equal(1);
  });

  it('escapes label values', async () => {
    const cell = new TrafficCell({ route: 'a"b\\c\nd', service: 's', target: '', key: '', tcp: false });
    cell.record(200, 1, 0);
    const source = fakeSource({
      traffic: new Traffic(),
      targets: [],
      registries: [],
      problems: 0,
      routes: 1,
      tcp: [],
    });
    const m = new CairnMetrics({ ...source, cells: () => [cell] });
    const text = await m.exposition();
    expect(text).to.include('cairn_requests_total{route="a\\"b\\\\c\\nd",service="s",code="2xx"} 1');
  });
});
