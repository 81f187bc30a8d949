// The etcd adapter's key store: puts and deletes in any order -> a deterministic snapshot.

import { expect } from 'chai';
import { etcdLayout } from '../../registry-adapters/etcd/layout.ts';
import { RecordStore } from '../../registry-adapters/etcd/store.ts';

const reg = 'etcd:test';
const rec = (port: number, tags: string[] = []) => JSON.stringify({ address: '127.0.0.1', port, tags });

function store(naming: string[] = []): RecordStore {
  return new RecordStore(etcdLayout('/cairn', naming), reg);
}

describe('etcd record store', () => {
  it('lists instances in key order whatever order they arrived in', () => {
    const a = store();
    const b = store();
    const keys = [
      '/cairn/services/web/2',
      '/cairn/services/api/1',
      '/cairn/services/web/1',
      '/cairn/services/api/0',
    ];
    keys.forEach((k, i) => a.put(k, rec(8000 + i)));
    [...keys].reverse().forEach((k) => b.put(k, rec(8000 + keys.indexOf(k))));
    const ids = (s: RecordStore) => s.snapshot().instances.map((i) => `${i.service}/${i.id}`);
    expect(ids(a)).to.deep.equal(['api/0', 'api/1', 'web/1', 'web/2']);
    expect(a.snapshot()).to.deep.equal(b.snapshot());
  });

  it('applies changes and deletes', () => {
    const s = store();
    s.put('/cairn/services/api/1', rec(1));
    s.put('/cairn/services/api/2', rec(2));
    s.put('/cairn/services/api/1', rec(11, ['urlprefix-/api']));
    s.delete('/cairn/services/api/2');
    s.delete('/cairn/services/api/never');
    expect(s.snapshot().instances).to.deep.equal([
      { service: 'api', id: '1', address: '127.0.0.1', port: 11, tags: ['urlprefix-/api'], registry: reg },
    ]);
    expect(s.size).to.equal(1);
  });

  it('reads the manual routes from <prefix>/config and clears them on delete', () => {
    const s = store();
    s.put('/cairn/config', 'route add api /api http://10.0.0.1/');
    expect(s.snapshot().manual).to.equal('route add api /api http://10.0.0.1/');
    s.delete('/cairn/config');
    expect(s.snapshot().manual).to.equal('');
  });

  it('reports bad records and bad keys as problems, and keeps the good ones', () => {
    const s = store();
    s.put('/cairn/services/api/good', rec(1));
    s.put('/cairn/services/api/bad', '{"address":"127.0.0.1"}');
    s.put('/cairn/services/lonely', rec(2));
    const snap = s.snapshot();
    expect(snap.instances.map((i) => i.id)).to.deep.equal(['good']);
    expect(snap.problems?.map((p) => p.reason)).to.deep.equal([
      '/cairn/services/api/bad: port: expected an integer from 1 to 65535, got nothing',
      '/cairn/services/lonely: expected a key /cairn/services/<service>/<instance-id>',
    ]);
    // A fixed record replaces its problem.
    s.put('/cairn/services/api/bad', rec(3));
    expect(s.snapshot().problems).to.deep.equal([
      {
        source: 'registry',
        severity: 'error',
        reason: '/cairn/services/lonely: expected a key /cairn/services/<service>/<instance-id>',
        input: rec(2),
        service: 'lonely',
      },
    ]);
  });

  it('ignores keys outside the layout', () => {
    const s = store();
    s.put('/other/services/api/1', rec(1));
    s.put('/cairn/configx', 'route add x / http://x/');
    expect(s.snapshot()).to.deep.equal({ instances: [], manual: '', problems: [] });
    expect(s.size).to.equal(0);
  });

  it('merges gRPC naming records; a deleted one (Op 1) does not count', () => {
    const s = store(['/grpc']);
    s.put(
      '/grpc/greeter/10.0.0.5:50051',
      '{"Op":0,"Addr":"10.0.0.5:50051","Metadata":{"tags":["urlprefix-/g"]}}',
    );
    s.put('/grpc/greeter/10.0.0.6:50051', '{"Op":1,"Addr":"10.0.0.6:50051"}');
    s.put('/cairn/services/api/1', rec(1));
    const snap = s.snapshot();
    expect(snap.instances.map((i) => `${i.service}/${i.id}/${i.address}:${i.port}`)).to.deep.equal([
      'api/1/127.0.0.1:1',
      'greeter/10.0.0.5:50051/10.0.0.5:50051',
    ]);
    expect(snap.problems).to.deep.equal([]);
  });

  it('keeps the first key of a duplicated service/id and reports the other', () => {
    const s = store(['/grpc']);
    s.put('/grpc/api/1', '{"Addr":"10.0.0.9:80"}');
    s.put('/cairn/services/api/1', rec(1));
    const snap = s.snapshot();
    expect(snap.instances.map((i) => i.port)).to.deep.equal([1]);
    expect(snap.problems?.[0]?.reason).to.equal(
      '/grpc/api/1: instance api/1 is already registered at /cairn/services/api/1 (that one is used)',
    );
  });

  it('clear() forgets everything (a relist starts from scratch)', () => {
    const s = store();
    s.put('/cairn/services/api/1', rec(1));
    s.put('/cairn/config', 'route del api');
    s.clear();
    expect(s.snapshot()).to.deep.equal({ instances: [], manual: '', problems: [] });
  });
});
