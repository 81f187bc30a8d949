// etcd with password auth and with TLS (client certificates): Cairn and the Registrar connect
// with the configured credentials, and report a clear failure without them. The certificates are
// made for the test with openssl (a throwaway CA, a server certificate for 127.0.0.1, a client one).

import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { Etcd3 } from 'etcd3';
import { register } from '../../lib/register/registrar.ts';
import { EtcdRegistry } from '../../registry-adapters/etcd/index.ts';
import {
  type EtcdServer,
  findEtcdBinary,
  freePort,
  type ManagedProcess,
  spawnManaged,
  startEtcd,
} from '../support/servers.ts';
import type { Cairn } from './helpers/cairn.ts';
import {
  dst,
  etcdClient,
  putInstance,
  registryStatus,
  startEtcdCairn,
  waitFor,
  waitForTargets,
} from './helpers/etcd.ts';
import { closeAll, startUpstream, type Upstream } from './helpers/upstream.ts';

interface Pki {
  readonly dir: string;
  readonly ca: string;
  readonly serverCert: string;
  readonly serverKey: string;
  readonly clientCert: string;
  readonly clientKey: string;
}

/** A CA, a server certificate for 127.0.0.1 and a client certificate, as PEM files in `dir`. */
function makePki(dir: string): Pki {
  const f = (name: string) => join(dir, name);
  const ssl = (...args: string[]) => execFileSync('openssl', args, { stdio: 'pipe' });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  ssl(
    'req',
    '-x509',
    ...ec,
    '-keyout',
    f('ca-key.pem'),
    '-out',
    f('ca.pem'),
    '-days',
    '2',
    '-subj',
    '/CN=cairn-test-ca',
  );
  const leaf = (name: string, cn: string, ext: string) => {
    writeFileSync(f(`${name}.ext`), ext);
    ssl('req', ...ec, '-keyout', f(`${name}-key.pem`), '-out', f(`${name}.csr`), '-subj', `/CN=${cn}`);
    ssl(
      'x509',
      '-req',
      '-in',
      f(`${name}.csr`),
      '-CA',
      f('ca.pem'),
      '-CAkey',
      f('ca-key.pem'),
      '-CAcreateserial',
      '-out',
      f(`${name}.pem`),
      '-days',
      '2',
      '-extfile',
      f(`${name}.ext`),
    );
  };
  leaf('server', '127.0.0.1', 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
  leaf('client', 'cairn', 'extendedKeyUsage=clientAuth\n');
  return {
    dir,
    ca: f('ca.pem'),
    serverCert: f('server.pem'),
    serverKey: f('server-key.pem'),
    clientCert: f('client.pem'),
    clientKey: f('client-key.pem'),
  };
}

function httpsHealthy(endpoint: string, pki: Pki): Promise<boolean> {
  return new Promise((resolve) => {
    const req = https.get(
      `${endpoint}/health`,
      {
        ca: readFileSync(pki.ca),
        cert: readFileSync(pki.clientCert),
        key: readFileSync(pki.clientKey),
        // No SNI: the server is addressed by IP (RFC 6066 allows host names only).
        servername: '',
        timeout: 1000,
      },
      (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve(res.statusCode === 200 && body.includes('"health":"true"')));
      },
    );
    req.on('error', () => resolve(false));
    req.on('timeout', () => req.destroy());
  });
}

describe('etcd registry: password auth and TLS (real etcd)', function () {
  this.timeout(60_000);

  let ups: Upstream[] = [];
  let cairn: Cairn | undefined;

  afterEach(async () => {
    await cairn?.stop();
    cairn = undefined;
    await closeAll(ups);
    ups = [];
  });

  describe('password auth', () => {
    let etcd: EtcdServer;
    let admin: Etcd3;

    before(async () => {
      etcd = await startEtcd();
      const plain = etcdClient(etcd.endpoint);
      await plain.user('root').create('root-pw');
      await plain.user('root').addRole('root');
      await plain.auth.authEnable({});
      plain.close();
      admin = new Etcd3({ hosts: etcd.endpoint, auth: { username: 'root', password: 'root-pw' } });
    });
    after(async () => {
      admin?.close();
      await etcd?.stop();
    });

    it('routes with --etcd-user and --etcd-password', async () => {
      const [a] = (ups = [await startUpstream('a')]) as [Upstream];
      await putInstance(admin, '/auth', 'api', 'a', { port: a.port, tags: ['urlprefix-/api'] });
      cairn = await startEtcdCairn(etcd.endpoint, '/auth', {
        args: ['--etcd-user', 'root', '--etcd-password', 'root-pw'],
      });
      expect(registryStatus(cairn, `etcd:${etcd.endpoint}`).status).to.equal('up');
      expect((await cairn.fetch('/api')).headers['x-upstream']).to.equal('a');
      await putInstance(admin, '/auth', 'api', 'a2', { port: a.port, tags: ['urlprefix-/api2'] });
      await waitForTargets(cairn, '/api2', [`api|${dst(a.port)}`], 1000);
    });

    it('reports the registry down with the reason when the credentials are wrong or missing', async () => {
      for (const creds of [{ username: 'root', password: 'wrong' }, {}]) {
        const r = new EtcdRegistry({ endpoints: [etcd.endpoint], prefix: '/auth', ...creds });
        const states: string[] = [];
        const snapshots: unknown[] = [];
        await r.start(
          (s) => snapshots.push(s),
          (s) => states.push(`${s.state}: ${s.error ?? ''}`),
        );
        await r.stop();
        expect(snapshots, JSON.stringify(creds)).to.deep.equal([]);
        expect(states[0], JSON.stringify(creds)).to.match(
          /^down: etcd etcd:http:\/\/127\.0\.0\.1:\d+: 3 INVALID_ARGUMENT: etcdserver: (authentication failed|user name is empty)/,
        );
      }
    });

    it('the Registrar authenticates too', async () => {
      const reg = await register({
        endpoints: [etcd.endpoint],
        username: 'root',
        password: 'root-pw',
        prefix: '/auth-reg',
        service: 'api',
        address: '127.0.0.1',
        port: 8080,
      });
      expect(Object.keys(await admin.getAll().prefix('/auth-reg/').strings())).to.deep.equal([reg.key]);
      await reg.stop();
      expect(await admin.getAll().prefix('/auth-reg/').strings()).to.deep.equal({});
    });
  });

  describe('TLS with client certificates', () => {
    let pki: Pki;
    let proc: ManagedProcess;
    let endpoint: string;
    let admin: Etcd3;

    before(async () => {
      const dir = await mkdtemp(join(tmpdir(), 'cairn-etcd-tls-'));
      pki = makePki(dir);
      const clientPort = await freePort();
      const peerPort = await freePort();
      endpoint = `https://127.0.0.1:${clientPort}`;
      const peer = `http://127.0.0.1:${peerPort}`;
      proc = spawnManaged(`etcd tls :${clientPort}`, findEtcdBinary(), [
        '--name',
        'tls',
        '--data-dir',
        join(dir, 'data'),
        '--listen-client-urls',
        endpoint,
        '--advertise-client-urls',
        endpoint,
        '--listen-peer-urls',
        peer,
        '--initial-advertise-peer-urls',
        peer,
        '--initial-cluster',
        `tls=${peer}`,
        '--cert-file',
        pki.serverCert,
        '--key-file',
        pki.serverKey,
        '--trusted-ca-file',
        pki.ca,
        '--client-cert-auth',
        '--logger',
        'zap',
        '--log-level',
        'warn',
      ]);
      const deadline = Date.now() + 15_000;
      while (!(await httpsHealthy(endpoint, pki))) {
        if (!proc.running() || Date.now() > deadline)
          throw new Error(`TLS etcd did not start:\n${proc.output()}`);
        await new Promise((r) => setTimeout(r, 100));
      }
      admin = new Etcd3({
        hosts: endpoint,
        credentials: {
          rootCertificate: readFileSync(pki.ca),
          certChain: readFileSync(pki.clientCert),
          privateKey: readFileSync(pki.clientKey),
        },
      });
    });
    after(async () => {
      admin?.close();
      await proc?.stop();
      if (pki !== undefined) await rm(pki.dir, { recursive: true, force: true });
    });

    it('routes with --etcd-ca, --etcd-cert and --etcd-key', async () => {
      const [a] = (ups = [await startUpstream('a')]) as [Upstream];
      await putInstance(admin, '/tls', 'api', 'a', { port: a.port, tags: ['urlprefix-/api'] });
      cairn = await startEtcdCairn(endpoint, '/tls', {
        args: ['--etcd-ca', pki.ca, '--etcd-cert', pki.clientCert, '--etcd-key', pki.clientKey],
      });
      expect(registryStatus(cairn, `etcd:${endpoint}`).status).to.equal('up');
      expect((await cairn.fetch('/api')).headers['x-upstream']).to.equal('a');
      await admin.delete().key('/tls/services/api/a');
      await waitFor(() => cairn?.server.controller.current.table.routes.length === 0, 1000, 'route gone');
    });

    it('is down without a client certificate (etcd requires one)', async () => {
      const r = new EtcdRegistry({ endpoints: [endpoint], prefix: '/tls', caFile: pki.ca, timeoutMs: 2000 });
      const states: string[] = [];
      await r.start(
        () => undefined,
        (s) => states.push(s.state),
      );
      await r.stop();
      expect(states).to.deep.equal(['down']);
    });

    it('the Registrar registers over TLS', async () => {
      const reg = await register({
        endpoints: [endpoint],
        caFile: pki.ca,
        certFile: pki.clientCert,
        keyFile: pki.clientKey,
        prefix: '/tls-reg',
        service: 'api',
        address: '127.0.0.1',
        port: 8080,
      });
      expect(Object.keys(await admin.getAll().prefix('/tls-reg/').strings())).to.deep.equal([reg.key]);
      await reg.stop();
      expect(await admin.getAll().prefix('/tls-reg/').strings()).to.deep.equal({});
    });
  });
});
