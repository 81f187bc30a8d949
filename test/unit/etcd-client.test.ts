// etcd client settings -> etcd3 options: deadlines, quick reconnects, TLS files, password auth.

import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { etcdClientOptions } from '../../registry-adapters/etcd/client.ts';

interface Backoff {
  readonly duration: number;
  next(): Backoff;
}

describe('etcd client options', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cairn-etcd-client-'));
    await writeFile(join(dir, 'ca.pem'), 'CA');
    await writeFile(join(dir, 'cert.pem'), 'CERT');
    await writeFile(join(dir, 'key.pem'), 'KEY');
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('passes the endpoints and gives every unary call a deadline, streams none', () => {
    const o = etcdClientOptions({ endpoints: ['http://a:2379', 'http://b:2379'], timeoutMs: 1500 });
    expect(o.hosts).to.deep.equal(['http://a:2379', 'http://b:2379']);
    expect(o.dialTimeout).to.equal(1500);
    const f = o.defaultCallOptions as (ctx: { isStream: boolean }) => { deadline?: number };
    const before = Date.now();
    const unary = f({ isStream: false }).deadline ?? 0;
    expect(unary).to.be.within(before + 1500, Date.now() + 1500);
    expect(f({ isStream: true })).to.deep.equal({});
    expect(o.credentials).to.equal(undefined);
    expect(o.auth).to.equal(undefined);
  });

  it('caps the reconnect backoffs (etcd3 waits up to 30 s, gRPC up to 2 min)', () => {
    const o = etcdClientOptions({ endpoints: ['http://a:2379'] });
    let b = o.faultHandling?.watchBackoff as unknown as Backoff;
    const delays: number[] = [];
    for (let i = 0; i < 8; i++) {
      b = b.next();
      delays.push(b.duration);
    }
    expect(delays).to.deep.equal([100, 200, 400, 800, 1600, 2000, 2000, 2000]);
    expect(o.grpcOptions?.['grpc.max_reconnect_backoff_ms']).to.equal(1000);
    expect(o.grpcOptions?.['grpc.keepalive_time_ms']).to.be.at.least(5000);
  });

  it('runs a call once per host: no circuit breaker keeps a recovered etcd out', async () => {
    const one = etcdClientOptions({ endpoints: ['http://a:2379'] }).faultHandling;
    let calls = 0;
    const failing = () => {
      calls++;
      throw Object.assign(new Error('14 UNAVAILABLE'), { code: 14 });
    };
    const host = one?.host?.('a:2379');
    for (let i = 0; i < 5; i++) await host?.execute(failing).catch(() => undefined);
    expect(calls).to.equal(5);
    expect(await host?.execute(() => 'ok')).to.equal('ok');
  });

  it('reads the TLS files (CA alone, or with a client certificate and key)', () => {
    const ca = etcdClientOptions({ endpoints: ['https://a:2379'], caFile: join(dir, 'ca.pem') });
    expect(ca.credentials?.rootCertificate.toString()).to.equal('CA');
    const mtls = etcdClientOptions({
      endpoints: ['https://a:2379'],
      caFile: join(dir, 'ca.pem'),
      certFile: join(dir, 'cert.pem'),
      keyFile: join(dir, 'key.pem'),
    });
    expect(mtls.credentials?.certChain?.toString()).to.equal('CERT');
    expect(mtls.credentials?.privateKey?.toString()).to.equal('KEY');
  });

  it('says which TLS file it cannot read, in one line', () => {
    expect(() =>
      etcdClientOptions({ endpoints: ['https://a:2379'], caFile: join(dir, 'nope.pem') }),
    ).to.throw(`cannot read the etcd TLS CA "${join(dir, 'nope.pem')}": no such file`);
  });

  it('needs both halves of a client certificate and of password auth', () => {
    expect(() =>
      etcdClientOptions({ endpoints: ['https://a:2379'], certFile: join(dir, 'cert.pem') }),
    ).to.throw('an etcd client certificate needs both a certificate and a key file');
    expect(() => etcdClientOptions({ endpoints: ['http://a:2379'], username: 'root' })).to.throw(
      'etcd password auth needs both a user and a password',
    );
    expect(() => etcdClientOptions({ endpoints: [] })).to.throw('no etcd endpoints given');
  });

  it('passes user and password to etcd3', () => {
    const o = etcdClientOptions({ endpoints: ['http://a:2379'], username: 'root', password: 'pw' });
    expect(o.auth).to.include({ username: 'root', password: 'pw' });
  });
});
