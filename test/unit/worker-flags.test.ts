// The Node flags a worker process starts with: Cairn's tuning flags, unless the user set the
// same flag on Cairn's own command line (which the workers inherit).

import { expect } from 'chai';
import { workerFlagsFor, workerNodeFlags } from '../../lib/workers/control.ts';
import { oneCpuGcFlags, oneCpuGcFlagsFor } from '../../lib/workers/lean-heap.ts';

describe('workers: Node flags', () => {
  it('adds the tuning flags the command line did not set', () => {
    expect(workerFlagsFor([], '')).to.deep.equal([...workerNodeFlags]);
    expect(workerFlagsFor(['--enable-source-maps', '--max-old-space-size=512'], '')).to.deep.equal([
      ...workerNodeFlags,
    ]);
  });

  it('leaves out a flag the user set, in either spelling, on the command line or in NODE_OPTIONS', () => {
    for (const f of workerNodeFlags) {
      const name = f.replace(/=.*$/, '');
      expect(workerFlagsFor([`${name}=4`], '')).to.not.include(f);
      expect(workerFlagsFor([`${name.replaceAll('-', '_').replace(/^__/, '--')}=4`], '')).to.not.include(f);
      expect(workerFlagsFor([], `--trace-gc ${name}=4`)).to.not.include(f);
    }
  });
});

describe('one-CPU GC flags', () => {
  it('turns parallel scavenging off only when the process may use a single CPU', () => {
    expect(oneCpuGcFlagsFor(1, [], '')).to.deep.equal([...oneCpuGcFlags]);
    expect(oneCpuGcFlagsFor(2, [], '')).to.deep.equal([]);
    expect(oneCpuGcFlagsFor(64, [], '')).to.deep.equal([]);
  });

  it("keeps the user's own choice either way, on the command line or in NODE_OPTIONS", () => {
    expect(oneCpuGcFlagsFor(1, ['--parallel-scavenge'], '')).to.deep.equal([]);
    expect(oneCpuGcFlagsFor(1, ['--no-parallel_scavenge'], '')).to.deep.equal([]);
    expect(oneCpuGcFlagsFor(1, [], '--parallel-scavenge')).to.deep.equal([]);
  });
});
