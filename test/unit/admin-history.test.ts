import { expect } from 'chai';
import { ChangeHistory } from '../../lib/stats/history.ts';
import { diffTables } from '../../lib/stats/table-diff.ts';
import { buildTable } from '../../routing/table.ts';

const t = (manual: string) => buildTable({ instances: [], manual });

describe('admin: table diff', () => {
  it('everything is added against no table', () => {
    const d = diffTables(undefined, t('route add a /a http://10.0.0.1/'));
    expect(d).to.deep.equal({
      added: ['route add a /a http://10.0.0.1/ weight 1.0000'],
      removed: [],
      changed: [],
      truncated: 0,
    });
  });

  it('reports added, removed and changed (weight or options) target lines', () => {
    const before = t(`route add a /a http://10.0.0.1/
route add a /a http://10.0.0.2/
route add b /b http://10.0.0.3/`);
    const after = t(`route add a /a http://10.0.0.1/
route add a /a http://10.0.0.4/
route add b /b http://10.0.0.3/ opts "strip=/b"`);
    const d = diffTables(before, after);
    expect(d.added).to.deep.equal(['route add a /a http://10.0.0.4/ weight 0.5000']);
    expect(d.removed).to.deep.equal(['route add a /a http://10.0.0.2/ weight 0.5000']);
    expect(d.changed).to.deep.equal([
      {
        from: 'route add b /b http://10.0.0.3/ weight 1.0000',
        to: 'route add b /b http://10.0.0.3/ weight 1.0000 opts "strip=/b"',
      },
    ]);
  });

  it('caps each list and counts what it left out', () => {
    const lines = Array.from({ length: 10 }, (_, i) => `route add s /p${i} http://10.0.0.${i + 1}/`).join(
      '\n',
    );
    const d = diffTables(undefined, t(lines), 3);
    expect(d.added).to.have.length(3);
    expect(d.truncated).to.equal(7);
  });
});

describe('admin: change history', () => {
  it('keeps the last N swaps, newest first', () => {
    const h = new ChangeHistory(2);
    const a = t('route add a /a http://10.0.0.1/');
    const b = t('route add a /a http://10.0.0.2/');
    const c = t('route add a /a http://10.0.0.3/');
    h.record(undefined, a, 1);
    h.record(a, b, 2);
    h.record(b, c, 3);
    const list = h.list();
    expect(list.map((e) => e.seq)).to.deep.equal([3, 2]);
    expect(list[0]).to.deep.include({
      at: 3,
      version: c.version,
      previous: b.version,
      routes: 1,
      problems: 0,
    });
    expect(list[0]?.added).to.have.length(1);
    expect(list[0]?.removed).to.have.length(1);
  });
});
