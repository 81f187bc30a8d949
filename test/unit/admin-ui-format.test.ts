import { expect } from 'chai';
import type { RouteRow } from '../../lib/admin/routes-json.ts';
import {
  destinationAddress,
  formatAgo,
  formatMs,
  formatPercent,
  formatRate,
  parseFilter,
  rowMatches,
  sortRows,
} from '../../lib/admin/ui/format.ts';

function row(o: Partial<RouteRow> & { id: number }): RouteRow {
  return {
    service: 'api',
    host: '',
    path: '/api',
    src: '/api',
    dst: 'http://10.0.0.1:8080/',
    opts: '',
    weight: 1,
    cmd: 'route add',
    rate1: 0,
    pct99: 0,
    proto: 'http',
    healthy: true,
    health: 'passing',
    weight_effective: 1,
    stats: {
      req_per_sec_1m: 0,
      req_per_sec_5m: 0,
      p50_ms: null,
      p99_ms: null,
      errors_5xx_ratio_1m: 0,
      connect_errors_ratio_1m: 0,
      open: 0,
      requests_total: 0,
    },
    ...o,
  };
}

describe('admin UI: formatting', () => {
  it('rates', () => {
    expect([0, 0.35, 2, 12.34, 999.96, 1234, 20_000].map(formatRate)).to.deep.equal([
      '0',
      '0.35',
      '2',
      '12.3',
      '1000',
      '1.2k',
      '20k',
    ]);
  });

  it('latencies', () => {
    expect([null, 0.42, 3, 12.6, 999, 1300, 2000].map(formatMs)).to.deep.equal([
      '–',
      '0.42 ms',
      '3 ms',
      '13 ms',
      '999 ms',
      '1.3 s',
      '2 s',
    ]);
  });

  it('percentages', () => {
    expect([0, 0.005, 0.1, 0.3333, 1].map(formatPercent)).to.deep.equal([
      '0 %',
      '0.5 %',
      '10 %',
      '33 %',
      '100 %',
    ]);
  });

  it('relative times', () => {
    const now = 1_000_000_000;
    expect(formatAgo(now - 3_000, now)).to.equal('3 s ago');
    expect(formatAgo(now - 5 * 60_000, now)).to.equal('5 min ago');
    expect(formatAgo(now - 2 * 3_600_000, now)).to.equal('2 h ago');
    expect(formatAgo(now - 3 * 86_400_000, now)).to.equal('3 d ago');
    expect(formatAgo(now + 5_000, now)).to.equal('0 s ago');
  });

  it('destination addresses', () => {
    expect(destinationAddress('http://10.0.0.1:8080/x')).to.equal('10.0.0.1:8080');
    expect(destinationAddress('tcp://DB.internal:5432')).to.equal('db.internal:5432');
    expect(destinationAddress('https://[::1]:443?q')).to.equal('[::1]:443');
  });
});

describe('admin UI: filter', () => {
  const rows = [
    row({ id: 1, service: 'api', src: '/api', path: '/api', tags: ['canary'] }),
    row({
      id: 2,
      service: 'web',
      src: 'www.example.com/',
      host: 'www.example.com',
      path: '/',
      dst: 'http://10.0.0.2:80/',
    }),
    row({ id: 3, service: 'db', src: ':5432', path: '', proto: 'tcp', dst: 'tcp://10.0.9.9:5432' }),
  ];
  const ids = (text: string) => rows.filter((r) => rowMatches(r, parseFilter(text))).map((r) => r.id);

  it('an empty filter shows everything', () => {
    expect(ids('  ')).to.deep.equal([1, 2, 3]);
  });

  it('matches service, host, path, tag and address, case-insensitively', () => {
    expect(ids('WEB')).to.deep.equal([2]);
    expect(ids('example.com')).to.deep.equal([2]);
    expect(ids('/api')).to.deep.equal([1]);
    expect(ids('canary')).to.deep.equal([1]);
    expect(ids('10.0.9.9')).to.deep.equal([3]);
    expect(ids(':5432')).to.deep.equal([3]);
  });

  it('every word must match', () => {
    expect(ids('api canary')).to.deep.equal([1]);
    expect(ids('api web')).to.deep.equal([]);
  });
});

describe('admin UI: sort', () => {
  const rows = [
    row({ id: 1, service: 'b', stats: { ...row({ id: 0 }).stats, req_per_sec_1m: 5, p99_ms: 10 } }),
    row({ id: 2, service: 'a', health: 'ejected', stats: { ...row({ id: 0 }).stats, req_per_sec_1m: 50 } }),
    row({ id: 3, service: 'c', stats: { ...row({ id: 0 }).stats, req_per_sec_1m: 5, p99_ms: 3 } }),
  ];
  const order = (key: Parameters<typeof sortRows>[1], dir: Parameters<typeof sortRows>[2]) =>
    sortRows(rows, key, dir).map((r) => r.id);

  it('keeps table order without a sort key', () => {
    expect(order(undefined, 'ascending')).to.deep.equal([1, 2, 3]);
  });

  it('sorts by text and by numbers, both ways, stable on ties', () => {
    expect(order('service', 'ascending')).to.deep.equal([2, 1, 3]);
    expect(order('rate', 'descending')).to.deep.equal([2, 1, 3]);
    expect(order('rate', 'ascending')).to.deep.equal([1, 3, 2]);
    expect(order('p99', 'descending')).to.deep.equal([1, 3, 2]);
  });

  it('sorts unhealthy targets first by health', () => {
    expect(order('health', 'ascending')[0]).to.equal(2);
  });
});
