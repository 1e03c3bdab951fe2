import assert from 'node:assert/strict';
import { cacheAncestry } from '../../src/gitops/ancestry-cache.ts';

describe('cacheAncestry', () => {
  const a = 'a'.repeat(40);
  const b = 'b'.repeat(40);
  const c = 'c'.repeat(40);

  it('asks the repository once per pair of full commit ids, and again for short or symbolic revisions', async () => {
    const asked: string[] = [];
    const cached = cacheAncestry({ isAncestor: async (x, y) => (asked.push(`${x}..${y}`), x === a) });
    assert.equal(await cached.isAncestor(a, b), true);
    assert.equal(await cached.isAncestor(a, b), true);
    assert.equal(await cached.isAncestor(b, a), false);
    assert.equal(await cached.isAncestor(b, a), false);
    await cached.isAncestor('abc', b);
    await cached.isAncestor('abc', b);
    assert.deepEqual(asked, [`${a}..${b}`, `${b}..${a}`, `abc..${b}`, `abc..${b}`]);
  });

  it('does not cache failures, and forgets the oldest answer beyond its size', async () => {
    let calls = 0;
    let fail = true;
    const cached = cacheAncestry({ isAncestor: async () => { calls += 1; if (fail) throw new Error('502 from GitHub'); return true; } }, 1);
    await assert.rejects(cached.isAncestor(a, b));
    fail = false;
    assert.equal(await cached.isAncestor(a, b), true);
    await cached.isAncestor(a, c);
    await cached.isAncestor(a, b);
    assert.equal(calls, 4);
  });
});
