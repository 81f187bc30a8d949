// The etcd key layout: `<prefix>/services/<service>/<id>`, `<prefix>/config`, gRPC naming keys.

import { expect } from 'chai';
import {
  classifyKey,
  etcdLayout,
  instanceKey,
  parseInstanceKey,
  parseNamingKey,
} from '../../registry-adapters/etcd/layout.ts';

describe('etcd layout', () => {
  it('derives the keys from the prefix (default /cairn)', () => {
    expect(etcdLayout()).to.deep.equal({
      prefix: '/cairn',
      services: '/cairn/services/',
      config: '/cairn/config',
      naming: [],
    });
    const cases: [string, string, string][] = [
      ['/cairn', '/cairn/services/', '/cairn/config'],
      ['/cairn/', '/cairn/services/', '/cairn/config'],
      ['/prod/cairn', '/prod/cairn/services/', '/prod/cairn/config'],
      ['prod', '/prod/services/', '/prod/config'],
      ['/', '/services/', '/config'],
    ];
    for (const [prefix, services, config] of cases) {
      const l = etcdLayout(prefix);
      expect([l.services, l.config], prefix).to.deep.equal([services, config]);
    }
  });

  it('keeps naming prefixes as written, with one trailing slash, without duplicates', () => {
    expect(etcdLayout('/cairn', ['services/grpc', 'services/grpc/', '/greeter//', ' ']).naming).to.deep.equal(
      ['services/grpc/', '/greeter/'],
    );
  });

  it('builds and parses instance keys', () => {
    const l = etcdLayout('/cairn');
    expect(instanceKey(l, 'api', '10.0.0.5:8080')).to.equal('/cairn/services/api/10.0.0.5:8080');
    expect(parseInstanceKey(l, '/cairn/services/api/10.0.0.5:8080')).to.deep.equal({
      service: 'api',
      id: '10.0.0.5:8080',
    });
    // An id may contain slashes: everything after the service segment.
    expect(parseInstanceKey(l, '/cairn/services/api/zone-a/1')).to.deep.equal({
      service: 'api',
      id: 'zone-a/1',
    });
  });

  it('reports instance keys without a service or an id', () => {
    const l = etcdLayout('/cairn');
    const expected = 'expected a key /cairn/services/<service>/<instance-id>';
    expect(parseInstanceKey(l, '/cairn/services/api')).to.deep.equal({ error: expected, service: 'api' });
    expect(parseInstanceKey(l, '/cairn/services/api/')).to.deep.equal({ error: expected, service: 'api' });
    expect(parseInstanceKey(l, '/cairn/services//x')).to.deep.equal({ error: expected });
    expect(parseInstanceKey(l, '/cairn/services/')).to.deep.equal({ error: expected });
  });

  it('parses gRPC naming keys: the last segment is the id, the segments before it the service', () => {
    expect(parseNamingKey('/grpc/', '/grpc/greeter/10.0.0.5:50051')).to.deep.equal({
      service: 'greeter',
      id: '10.0.0.5:50051',
    });
    expect(parseNamingKey('services/', 'services/team/greeter/10.0.0.5:50051')).to.deep.equal({
      service: 'team/greeter',
      id: '10.0.0.5:50051',
    });
    // A prefix that is the whole target: the service is its last segment.
    expect(parseNamingKey('/grpc/greeter/', '/grpc/greeter/10.0.0.5:50051')).to.deep.equal({
      service: 'greeter',
      id: '10.0.0.5:50051',
    });
    expect(parseNamingKey('/grpc/', '/grpc/greeter/')).to.have.property('error');
    expect(parseNamingKey('/grpc/', '/grpc//x')).to.have.property('error');
  });

  it('classifies keys', () => {
    const l = etcdLayout('/cairn', ['/grpc']);
    expect(classifyKey(l, '/cairn/config')).to.deep.equal({ kind: 'config' });
    expect(classifyKey(l, '/cairn/config/x')).to.deep.equal({ kind: 'other' });
    expect(classifyKey(l, '/cairn/services/a/b')).to.deep.equal({ kind: 'instance' });
    expect(classifyKey(l, '/grpc/a/b')).to.deep.equal({ kind: 'naming', prefix: '/grpc/' });
    expect(classifyKey(l, '/grpcx/a/b')).to.deep.equal({ kind: 'other' });
    expect(classifyKey(l, '/cairn/servicesx/a/b')).to.deep.equal({ kind: 'other' });
  });
});
