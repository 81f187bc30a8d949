// etcd record values -> ServiceInstances or Problems (never a throw).

import { expect } from 'chai';
import {
  encodeRecord,
  parseInstanceRecord,
  parseNamingRecord,
  type RecordParse,
} from '../../registry-adapters/etcd/record.ts';
import type { Problem, ServiceInstance } from '../../routing/types.ts';

const reg = 'etcd:http://127.0.0.1:2379';
const key = '/cairn/services/api/a1';

function ok(r: RecordParse): { instance: ServiceInstance; warnings: readonly Problem[] } {
  if (!('instance' in r)) throw new Error(`expected an instance, got ${JSON.stringify(r)}`);
  return r;
}

function bad(r: RecordParse): Problem {
  if (!('problem' in r)) throw new Error(`expected a problem, got ${JSON.stringify(r)}`);
  return r.problem;
}

describe('etcd records', () => {
  describe('Cairn instance records', () => {
    it('reads every field', () => {
      const value = JSON.stringify({
        address: '10.0.0.5',
        port: 8080,
        tags: ['urlprefix-/api strip=/api', 'v2'],
        weight: 3,
        status: 'warning',
        meta: { version: '1.4', build: 7, canary: true },
      });
      expect(ok(parseInstanceRecord(key, value, 'api', 'a1', reg))).to.deep.equal({
        instance: {
          service: 'api',
          id: 'a1',
          address: '10.0.0.5',
          port: 8080,
          tags: ['urlprefix-/api strip=/api', 'v2'],
          registry: reg,
          weight: 3,
          status: 'warning',
          meta: { version: '1.4', build: '7', canary: 'true' },
        },
        warnings: [],
      });
    });

    it('needs only address and port (tags default to none)', () => {
      const r = ok(parseInstanceRecord(key, '{"address":"api.internal","port":"8080"}', 'api', 'a1', reg));
      expect(r.instance).to.deep.equal({
        service: 'api',
        id: 'a1',
        address: 'api.internal',
        port: 8080,
        tags: [],
        registry: reg,
      });
    });

    it('accepts IPv6 addresses with or without brackets', () => {
      expect(
        ok(parseInstanceRecord(key, '{"address":"[fd00::5]","port":80}', 'api', 'a1', reg)).instance.address,
      ).to.equal('fd00::5');
      expect(
        ok(parseInstanceRecord(key, '{"address":"fd00::5","port":80}', 'api', 'a1', reg)).instance.address,
      ).to.equal('fd00::5');
    });

    it('round-trips what a registrar encodes', () => {
      const value = encodeRecord({
        address: '10.0.0.5',
        port: 8080,
        tags: ['urlprefix-/api'],
        status: 'critical',
        weight: 2,
        meta: { a: 'b' },
      });
      expect(value).to.equal(
        '{"address":"10.0.0.5","port":8080,"tags":["urlprefix-/api"],"weight":2,"status":"critical","meta":{"a":"b"}}',
      );
      const i = ok(parseInstanceRecord(key, value, 'api', 'a1', reg)).instance;
      expect([i.address, i.port, i.tags, i.weight, i.status, i.meta]).to.deep.equal([
        '10.0.0.5',
        8080,
        ['urlprefix-/api'],
        2,
        'critical',
        { a: 'b' },
      ]);
      expect(encodeRecord({ address: 'h', port: 1 })).to.equal('{"address":"h","port":1,"tags":[]}');
    });

    it('warns about unknown fields and still uses the record', () => {
      const r = ok(
        parseInstanceRecord(key, '{"address":"10.0.0.5","port":80,"Tags":["x"]}', 'api', 'a1', reg),
      );
      expect(r.instance.port).to.equal(80);
      expect(r.warnings).to.have.length(1);
      expect(r.warnings[0]).to.include({
        source: 'registry',
        severity: 'warning',
        service: 'api',
        instance: 'a1',
      });
      expect(r.warnings[0]?.reason).to.equal(
        `${key}: unknown field "Tags" ignored (expected address, port, tags, weight, status, meta)`,
      );
    });

    const badCases: [string, string][] = [
      ['', 'empty value (expected a JSON object)'],
      ['not json', 'not valid JSON: '],
      ['[1,2]', 'expected a JSON object {"address","port","tags"}, got a list'],
      ['"10.0.0.5:80"', 'expected a JSON object {"address","port","tags"}, got a string'],
      ['{"port":80}', 'address: expected a host name or IP (no scheme, no port), got nothing'],
      [
        '{"address":"http://x","port":80}',
        'address: expected a host name or IP (no scheme, no port), got "http://x"',
      ],
      ['{"address":"10.0.0.5:80","port":80}', 'address: expected a host name or IP'],
      ['{"address":"999.1.1.1","port":80}', 'address: expected a host name or IP'],
      ['{"address":"10.0.0.5"}', 'port: expected an integer from 1 to 65535, got nothing'],
      ['{"address":"10.0.0.5","port":0}', 'port: expected an integer from 1 to 65535, got 0'],
      ['{"address":"10.0.0.5","port":70000}', 'port: expected an integer from 1 to 65535, got 70000'],
      ['{"address":"10.0.0.5","port":80.5}', 'port: expected an integer from 1 to 65535, got 80.5'],
      [
        '{"address":"10.0.0.5","port":80,"tags":"urlprefix-/"}',
        'tags: expected a list of strings, got "urlprefix-/"',
      ],
      ['{"address":"10.0.0.5","port":80,"tags":[1]}', 'tags: expected a list of strings, got an element 1'],
      ['{"address":"10.0.0.5","port":80,"weight":0}', 'weight: expected an integer from 1 to 1000000, got 0'],
      ['{"address":"10.0.0.5","port":80,"status":"up"}', 'status: expected one of passing|warning|critical'],
      ['{"address":"10.0.0.5","port":80,"meta":[1]}', 'meta: expected an object of strings, got a list'],
      ['{"address":"10.0.0.5","port":80,"meta":{"a":{}}}', 'meta.a: expected a string, got an object'],
    ];
    for (const [value, reason] of badCases) {
      it(`reports ${JSON.stringify(value)} and skips it`, () => {
        const p = bad(parseInstanceRecord(key, value, 'api', 'a1', reg));
        expect(p).to.include({
          source: 'registry',
          severity: 'error',
          service: 'api',
          instance: 'a1',
          input: value,
        });
        expect(p.reason.startsWith(`${key}: ${reason}`), p.reason).to.equal(true);
      });
    }

    it('reports service names and ids with spaces (route commands could not name them)', () => {
      expect(bad(parseInstanceRecord(key, '{"address":"h","port":1}', 'my api', 'a1', reg)).reason).to.equal(
        `${key}: service name "my api" must not contain spaces`,
      );
      expect(bad(parseInstanceRecord(key, '{"address":"h","port":1}', 'api', 'a 1', reg)).reason).to.equal(
        `${key}: instance id "a 1" must not contain spaces`,
      );
    });

    it('keeps a long bad value short and on one line in the problem', () => {
      const value = `{"address":\n"${'x'.repeat(400)}"}`;
      const p = bad(parseInstanceRecord(key, value, 'api', 'a1', reg));
      expect(p.input).to.not.include('\n');
      expect(p.input.length).to.be.at.most(303);
    });
  });

  describe('gRPC naming records', () => {
    const nkey = '/grpc/greeter/10.0.0.5:50051';

    it('reads {"Op":0,"Addr":...} and the newer {"Addr":...} without Op', () => {
      for (const value of [
        '{"Op":0,"Addr":"10.0.0.5:50051","Metadata":{}}',
        '{"Addr":"10.0.0.5:50051"}',
        '{"Op":0,"Addr":"10.0.0.5:50051","Metadata":"anything"}',
      ]) {
        expect(
          ok(parseNamingRecord(nkey, value, 'greeter', '10.0.0.5:50051', reg)).instance,
          value,
        ).to.deep.equal({
          service: 'greeter',
          id: '10.0.0.5:50051',
          address: '10.0.0.5',
          port: 50051,
          tags: [],
          registry: reg,
        });
      }
    });

    it('takes tags, weight and status from an object Metadata', () => {
      const value = JSON.stringify({
        Op: 0,
        Addr: '[fd00::5]:50051',
        Metadata: { tags: ['urlprefix-/greeter proto=grpc'], weight: 2, status: 'passing', other: { x: 1 } },
      });
      const i = ok(parseNamingRecord(nkey, value, 'greeter', 'x', reg)).instance;
      expect(i).to.deep.include({
        address: 'fd00::5',
        port: 50051,
        tags: ['urlprefix-/greeter proto=grpc'],
        weight: 2,
      });
      expect(i.status).to.equal('passing');
      expect(i.meta).to.equal(undefined);
    });

    it('skips Op 1 (delete) without a problem', () => {
      expect(parseNamingRecord(nkey, '{"Op":1,"Addr":"10.0.0.5:50051"}', 'greeter', 'x', reg)).to.deep.equal({
        skip: true,
      });
    });

    const badCases: [string, string][] = [
      ['{"Op":2,"Addr":"10.0.0.5:1"}', 'Op: expected 0 (add) or 1 (delete), got 2'],
      ['{"Op":0}', 'Addr: expected "host:port", got nothing'],
      ['{"Addr":"10.0.0.5"}', 'Addr: expected "host:port", got "10.0.0.5"'],
      ['{"Addr":"fd00::5:80"}', 'Addr: expected "host:port", got "fd00::5:80"'],
      ['{"Addr":"h:0"}', 'Addr: expected "host:port", got "h:0"'],
      ['{"Addr":"h:1","Metadata":{"tags":"x"}}', 'Metadata.tags: expected a list of strings, got "x"'],
      ['[]', 'expected a gRPC naming record {"Op":0,"Addr":"host:port"}, got a list'],
      ['{', 'not valid JSON: '],
    ];
    for (const [value, reason] of badCases) {
      it(`reports ${JSON.stringify(value)}`, () => {
        const p = bad(parseNamingRecord(nkey, value, 'greeter', 'x', reg));
        expect(p).to.include({ source: 'registry', severity: 'error', service: 'greeter', instance: 'x' });
        expect(p.reason.startsWith(`${nkey}: ${reason}`), p.reason).to.equal(true);
      });
    }
  });
});
