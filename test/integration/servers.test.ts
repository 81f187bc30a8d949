// The test-server helpers start real etcd and Consul servers that answer, and stop them cleanly.
import { existsSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { expect } from 'chai';
import { Etcd3 } from 'etcd3';
import { startConsul, startEtcd } from '../support/servers.ts';

describe('test servers', function () {
  this.timeout(20_000);

  it('starts etcd, serves v3 put/get, stops and removes its data dir', async () => {
    const started = Date.now();
    const etcd = await startEtcd();
    const client = new Etcd3({ hosts: etcd.endpoint });
    try {
      expect(etcd.endpoint).to.match(/^http:\/\/127\.0\.0\.1:\d+$/);
      await client.put('/cairn/test/key').value('hello');
      expect(await client.get('/cairn/test/key').string()).to.equal('hello');
    } finally {
      client.close();
      await etcd.stop();
    }
    expect(etcd.process().running()).to.equal(false);
    expect(existsSync(etcd.dataDir)).to.equal(false);
    expect(Date.now() - started).to.be.below(10_000);
  });

  it('starts Consul, registers a service that shows in the catalog, stops', async () => {
    const started = Date.now();
    const consul = await startConsul();
    try {
      expect(consul.address).to.match(/^http:\/\/127\.0\.0\.1:\d+$/);
      const register = await fetch(`${consul.address}/v1/agent/service/register`, {
        method: 'PUT',
        body: JSON.stringify({
          ID: 'api-1',
          Name: 'api',
          Address: '127.0.0.1',
          Port: 8081,
          Tags: ['urlprefix-/api'],
        }),
      });
      expect(register.status).to.equal(200);
      // The agent syncs its services to the catalog asynchronously (normally within milliseconds).
      let services: Record<string, string[]> = {};
      for (let i = 0; i < 100 && services.api === undefined; i++) {
        if (i > 0) await sleep(50);
        services = (await (await fetch(`${consul.address}/v1/catalog/services`)).json()) as typeof services;
      }
      expect(services.api).to.deep.equal(['urlprefix-/api']);
    } finally {
      await consul.stop();
    }
    expect(consul.process().running()).to.equal(false);
    expect(Date.now() - started).to.be.below(10_000);
  });

  it('starts Consul with ACLs: anonymous requests are denied, the master token works', async () => {
    const consul = await startConsul({ aclMasterToken: 'cairn-test-master' });
    try {
      const body = JSON.stringify({ ID: 'db-1', Name: 'db', Port: 5432 });
      const anonymous = await fetch(`${consul.address}/v1/agent/service/register`, { method: 'PUT', body });
      expect(anonymous.status).to.equal(403);
      const withToken = await fetch(`${consul.address}/v1/agent/service/register`, {
        method: 'PUT',
        body,
        headers: { 'X-Consul-Token': 'cairn-test-master' },
      });
      expect(withToken.status).to.equal(200);
    } finally {
      await consul.stop();
    }
  });

  it('restarts etcd keeping its data, and Consul empty on the same address', async () => {
    const etcd = await startEtcd();
    const consul = await startConsul();
    const client = new Etcd3({ hosts: etcd.endpoint });
    try {
      await client.put('/cairn/test/persist').value('kept');
      await etcd.restart();
      expect(await client.get('/cairn/test/persist').string()).to.equal('kept');

      await fetch(`${consul.address}/v1/kv/cairn/config`, {
        method: 'PUT',
        body: 'route add a /a http://x/',
      });
      await consul.restart();
      const after = await fetch(`${consul.address}/v1/kv/cairn/config`);
      expect(after.status).to.equal(404);
    } finally {
      client.close();
      await Promise.all([etcd.stop(), consul.stop()]);
    }
  });
});
