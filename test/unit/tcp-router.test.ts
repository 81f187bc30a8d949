import { expect } from 'chai';
import { compileTcpRouter } from '../../routing/tcp-router.ts';
import type { Route, RouteProto } from '../../routing/types.ts';

function route(src: string, host: string, port: number, proto: RouteProto, service: string): Route {
  return {
    src,
    host,
    path: '',
    port,
    proto,
    targets: [
      {
        key: `${service}|tcp://10.0.0.1:5432|`,
        service,
        dst: 'tcp://10.0.0.1:5432',
        url: {
          protocol: 'tcp:',
          hostname: '10.0.0.1',
          port: 5432,
          host: '10.0.0.1:5432',
          pathname: '',
          search: '',
        },
        tags: [],
        fixedWeight: 0,
        instanceWeight: 1,
        share: 1,
        weight: 1,
        opts: { proto },
        rawOpts: { proto },
      },
    ],
    starved: [],
    totalWeight: 1,
  };
}

const svc = (r: Route | undefined) => r?.targets[0]?.service;

describe('routing/tcp-router', () => {
  const router = compileTcpRouter([
    route(':3306', '', 3306, 'tcp', 'mysql'),
    route(':5432', '', 5432, 'tcp', 'pg'),
    route(':5432', '', 5432, 'tcp', 'pg-duplicate'),
    route('db.example.com:443', 'db.example.com', 443, 'tcp+sni', 'db'),
    route('*.example.com:443', '*.example.com', 443, 'tcp+sni', 'wild'),
    route('*.eu.example.com:443', '*.eu.example.com', 443, 'tcp+sni', 'wild-eu'),
    route('db.example.com:8443', 'db.example.com', 8443, 'tcp+sni', 'db-8443'),
    // The builder may also leave the port in `host`; both shapes work.
    route('mq.example.com:443', 'mq.example.com:443', 443, 'tcp+sni', 'mq'),
    // fabio's port-less SNI form: any SNI listener.
    route('legacy.example.org/', 'legacy.example.org', 0, 'tcp+sni', 'legacy'),
  ]);

  describe('lookupPort (proto tcp)', () => {
    it('finds the route of the listener port', () => {
      expect(svc(router.lookupPort(3306))).to.equal('mysql');
      expect(svc(router.lookupPort(5432))).to.equal('pg');
    });
    it('has no route for other ports, nor for SNI-only ports', () => {
      expect(router.lookupPort(1234)).to.equal(undefined);
      expect(router.lookupPort(443)).to.equal(undefined);
    });
  });

  describe('lookupSni (proto tcp+sni)', () => {
    it('matches the exact server name on the listener port, case-insensitively', () => {
      expect(svc(router.lookupSni('db.example.com', 443))).to.equal('db');
      expect(svc(router.lookupSni('DB.Example.COM', 443))).to.equal('db');
      expect(svc(router.lookupSni('db.example.com.', 443))).to.equal('db');
      expect(svc(router.lookupSni('db.example.com', 8443))).to.equal('db-8443');
      expect(svc(router.lookupSni('mq.example.com', 443))).to.equal('mq');
    });
    it('falls back to host globs, most specific first', () => {
      expect(svc(router.lookupSni('api.example.com', 443))).to.equal('wild');
      expect(svc(router.lookupSni('a.b.example.com', 443))).to.equal('wild');
      expect(svc(router.lookupSni('x.eu.example.com', 443))).to.equal('wild-eu');
    });
    it('keeps ports apart', () => {
      expect(router.lookupSni('api.example.com', 8443)).to.equal(undefined);
      expect(router.lookupSni('mq.example.com', 8443)).to.equal(undefined);
    });
    it('serves port-less SNI routes on every port, after the port-specific ones', () => {
      expect(svc(router.lookupSni('legacy.example.org', 443))).to.equal('legacy');
      expect(svc(router.lookupSni('legacy.example.org', 9999))).to.equal('legacy');
    });
    it('returns nothing for unknown names', () => {
      expect(router.lookupSni('example.com', 443)).to.equal(undefined);
      expect(router.lookupSni('', 443)).to.equal(undefined);
    });
  });

  it('ignores HTTP routes and builds from nothing', () => {
    const empty = compileTcpRouter([]);
    expect(empty.lookupPort(80)).to.equal(undefined);
    expect(empty.lookupSni('a', 443)).to.equal(undefined);
    const httpOnly = compileTcpRouter([{ ...route('/', '', 0, 'http', 'web'), path: '/' }]);
    expect(httpOnly.lookupPort(0)).to.equal(undefined);
  });
});
