import { expect } from 'chai';
import { checkManual, chooseManualStore, MemoryManualStore } from '../../lib/admin/manual.ts';
import { Controller } from '../../lib/controller.ts';
import { TargetHealth } from '../../lib/health/target-health.ts';
import { memoryManualRegistry } from '../../lib/stats/telemetry.ts';
import type { ManualValue, RegistryAdapter, WriteManualResult } from '../../registry-adapters/types.ts';

function controller(): Controller {
  return new Controller({ build: {}, strategy: 'rr', health: new TargetHealth() });
}

const instances = [
  { service: 'api', id: 'a1', address: '10.0.0.1', port: 80, tags: ['urlprefix-/api'] },
  { service: 'api', id: 'a2', address: '10.0.0.2', port: 80, tags: ['urlprefix-/api'] },
];

describe('admin: manual route store', () => {
  it('uses the first registry that can store overrides', () => {
    const plain: RegistryAdapter = { name: 'plain:x', start: async () => {}, stop: async () => {} };
    const storing: RegistryAdapter = {
      name: 'file:r.yaml',
      start: async () => {},
      stop: async () => {},
      readManual: async (): Promise<ManualValue> => ({ value: '', version: 'v' }),
      writeManual: async (): Promise<WriteManualResult> => ({ ok: true, version: 'w' }),
    };
    expect(chooseManualStore([plain, storing], controller()).where).to.equal('file:r.yaml');
    expect(chooseManualStore([plain], controller()).where).to.equal('memory');
    expect(chooseManualStore([], controller()).where).to.equal('memory');
  });

  it('memory: compare-and-swap by version, and the table follows', async () => {
    const c = controller();
    c.updateSnapshot('file:r', { instances, manual: '' });
    const store = new MemoryManualStore(c);
    expect(await store.read()).to.deep.equal({ value: '', version: '0' });
    const w = await store.write('route weight api /api weight 1 tags "x"', '0');
    expect(w).to.deep.equal({ ok: true, version: '1' });
    expect(c.registryInfos().map((r) => r.name)).to.include(memoryManualRegistry);
    const stale = await store.write('route del api', '0');
    expect(stale).to.deep.equal({
      ok: false,
      conflict: { value: 'route weight api /api weight 1 tags "x"', version: '1' },
    });
    await store.write('route del api /api http://10.0.0.2:80/', '1');
    expect(c.current.table.routes[0]?.targets.map((t) => t.dst)).to.deep.equal(['http://10.0.0.1:80/']);
  });
});

describe('admin: checking an overrides text', () => {
  it('reports bad lines as errors with their line numbers', () => {
    const c = controller();
    const r = checkManual('route add api /x http://10.0.0.9/\nroute frobnicate\n', c, {}, 'memory');
    expect(r.errors).to.equal(1);
    expect(r.problems[0]).to.deep.include({ source: 'manual', line: 2, severity: 'error' });
  });

  it('reports bad options of a command too', () => {
    const r = checkManual(
      'route add api /x http://10.0.0.9/ opts "strip=nolead"',
      controller(),
      {},
      'memory',
    );
    expect(r.errors).to.be.greaterThan(0);
  });

  it('shows what the text would change in the live table, replacing the stored overrides', () => {
    const c = controller();
    c.updateSnapshot('file:r', { instances, manual: 'route del api /api http://10.0.0.2:80/' });
    expect(c.current.table.routes[0]?.targets).to.have.length(1);
    const r = checkManual('route add web /web http://10.0.0.7/', c, {}, 'file:r');
    expect(r.errors).to.equal(0);
    // The stored `route del` is replaced: a2 comes back, and /web is new.
    expect(r.changes.added.some((l) => l.includes('http://10.0.0.2:80/'))).to.equal(true);
    expect(r.changes.added.some((l) => l.includes('/web'))).to.equal(true);
    expect(r.changes.removed).to.deep.equal([]);
  });
});
