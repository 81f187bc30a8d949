import { expect } from 'chai';
import { AdminAccess, adminStartupProblem, isLoopbackAddress } from '../../lib/admin/access.ts';

const base = { admin: { address: '127.0.0.1', text: '127.0.0.1:9998' }, adminReadonly: false };

describe('admin access: loopback addresses', () => {
  const cases: [string, boolean][] = [
    ['127.0.0.1', true],
    ['127.1.2.3', true],
    ['::1', true],
    ['[::1]', true],
    ['::ffff:127.0.0.1', true],
    ['localhost', true],
    ['LOCALHOST', true],
    ['app.localhost', true],
    ['', false],
    ['0.0.0.0', false],
    ['::', false],
    ['10.0.0.1', false],
    ['128.0.0.1', false],
    ['example.com', false],
    ['localhost.example.com', false],
  ];
  for (const [address, loopback] of cases) {
    it(`${JSON.stringify(address)} is ${loopback ? '' : 'not '}loopback`, () => {
      expect(isLoopbackAddress(address)).to.equal(loopback);
    });
  }
});

describe('admin access: startup', () => {
  it('starts on loopback without a token', () => {
    expect(adminStartupProblem(base)).to.equal(undefined);
  });

  it('refuses a non-loopback address without a token, naming the ways out', () => {
    const p = adminStartupProblem({ ...base, admin: { address: '0.0.0.0', text: '0.0.0.0:9998' } });
    expect(p).to.be.a('string');
    expect(p).to.include('--admin 0.0.0.0:9998');
    expect(p).to.include('--admin-token');
    expect(p).to.include('--admin-readonly');
  });

  it('refuses every interface ("" address) without a token', () => {
    expect(adminStartupProblem({ ...base, admin: { address: '' } })).to.include('every interface');
  });

  it('starts beyond loopback with a token, or read-only', () => {
    const wide = { ...base, admin: { address: '10.0.0.5' } };
    expect(adminStartupProblem({ ...wide, adminToken: 's3cret' })).to.equal(undefined);
    expect(adminStartupProblem({ ...wide, adminReadonly: true })).to.equal(undefined);
  });
});

describe('admin access: mutations', () => {
  const req = (headers: Record<string, string>) => ({ headers });

  it('read-only refuses every mutation, even with the right token', () => {
    const a = new AdminAccess({ ...base, adminReadonly: true, adminToken: 't' });
    const r = a.checkMutation(req({ host: '127.0.0.1:9998', authorization: 'Bearer t' }));
    expect(r).to.deep.include({ ok: false, status: 403 });
  });

  it('with a token: only the right bearer token passes, on any host', () => {
    const a = new AdminAccess({ ...base, adminToken: 'right-token' });
    expect(a.tokenRequired).to.equal(true);
    expect(a.checkMutation(req({ host: 'lb.example.com' }))).to.deep.include({ ok: false, status: 401 });
    expect(a.checkMutation(req({ host: 'x', authorization: 'Bearer wrong' }))).to.deep.include({
      status: 401,
    });
    expect(a.checkMutation(req({ host: 'x', authorization: 'Basic right-token' }))).to.deep.include({
      status: 401,
    });
    expect(
      a.checkMutation(req({ host: 'lb.example.com', authorization: 'Bearer right-token' })),
    ).to.deep.equal({
      ok: true,
    });
    expect(a.checkMutation(req({ host: 'x', authorization: 'bearer right-token' }))).to.deep.equal({
      ok: true,
    });
  });

  it('without a token: loopback host names pass', () => {
    const a = new AdminAccess(base);
    expect(a.tokenRequired).to.equal(false);
    for (const host of ['127.0.0.1:9998', 'localhost:9998', '[::1]:9998', 'localhost']) {
      expect(a.checkMutation(req({ host })), host).to.deep.equal({ ok: true });
    }
  });

  it('without a token: another host name is refused (DNS rebinding)', () => {
    const a = new AdminAccess(base);
    const r = a.checkMutation(req({ host: 'rebind.attacker.example:9998' }));
    expect(r).to.deep.include({ ok: false, status: 403 });
  });

  it('without a token: a cross-origin browser request is refused, a same-origin one passes', () => {
    const a = new AdminAccess(base);
    expect(a.checkMutation(req({ host: '127.0.0.1:9998', origin: 'https://evil.example' }))).to.deep.include({
      status: 403,
    });
    expect(a.checkMutation(req({ host: '127.0.0.1:9998', origin: 'http://127.0.0.1:9998' }))).to.deep.equal({
      ok: true,
    });
  });
});
