import assert from 'node:assert/strict';
import { instanceDirOf, landedBy } from '../../src/domain/convergence/commit-attribution.ts';

describe('commit attribution (who put a commit on main)', () => {
  it("recognises GitHub's default merge and squash messages, our trailers, and everyone else", () => {
    assert.deepEqual(landedBy({ message: 'Merge pull request #42 from gsv/control-plane/batch-1\n\nCreate …', trailers: {} }), { kind: 'pull-request', number: 42 });
    assert.deepEqual(landedBy({ message: 'Create studio 1.0.0 instance x in bob (#7)\n\n* Change-Id: c', trailers: {} }), { kind: 'pull-request', number: 7 });
    assert.deepEqual(landedBy({ message: 'Add x\n\nChange-Id: c1', trailers: { 'Change-Id': ['c1'] } }), { kind: 'direct', changeIds: ['c1'] });
    assert.deepEqual(landedBy({ message: 'Give the studio more CPU', trailers: {} }), { kind: 'external' });
    assert.deepEqual(landedBy({ message: 'Merge branch main into feature', trailers: {} }), { kind: 'external' });
  });

  it('maps paths to instance directories and nothing else', () => {
    assert.equal(instanceDirOf('tenants/bob/apps/x-y/application.yaml'), 'tenants/bob/apps/x-y');
    assert.equal(instanceDirOf('tenants/bob/apps/x-y/deep/values.yaml'), 'tenants/bob/apps/x-y');
    assert.equal(instanceDirOf('tenants/bob/apps/x-y'), 'tenants/bob/apps/x-y');
    assert.equal(instanceDirOf('tenants/bob/base/appproject.yaml'), undefined);
    assert.equal(instanceDirOf('tenants/bob/apps/kustomization.yaml'), undefined);
    assert.equal(instanceDirOf('platform/base/x/y.yaml'), undefined);
  });
});
