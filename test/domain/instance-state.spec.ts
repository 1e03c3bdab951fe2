import assert from 'node:assert/strict';
import fc from 'fast-check';
import { applyEventToFacts, deriveInstanceState, HEALTHS, INSTANCE_STATES, REQUESTED_FACTS, type InstanceFacts } from '../../src/domain/instance-state.ts';
import { CHANGE_STATUSES } from '../../src/domain/changes/change-status.ts';
import { INSTANCE_CHANGE_KINDS } from '../../src/domain/changes/change-kinds.ts';

const facts = (over: Partial<InstanceFacts> = {}): InstanceFacts => ({ ...REQUESTED_FACTS, ...over });

describe('instance state, derived from facts', () => {
  it('walks the happy path: requested → pending_review → syncing → ready', () => {
    assert.equal(deriveInstanceState(facts()), 'requested');
    assert.equal(deriveInstanceState(facts({ latest: { kind: 'instance.create', status: 'open' } })), 'pending_review');
    assert.equal(deriveInstanceState(facts({ latest: { kind: 'instance.create', status: 'merged' } })), 'syncing');
    const present = facts({ observed: 'present', everPresent: true, latest: { kind: 'instance.create', status: 'merged' } });
    assert.equal(deriveInstanceState(present), 'syncing');
    assert.equal(deriveInstanceState(applyEventToFacts(present, 'sync.healthy')), 'ready');
  });

  it('follows main, not the change: a closed create whose files are on main anyway is deployed', () => {
    assert.equal(deriveInstanceState(facts({ latest: { kind: 'instance.create', status: 'closed' } })), 'rejected');
    assert.equal(deriveInstanceState(facts({ observed: 'present', everPresent: true, latest: { kind: 'instance.create', status: 'closed' } })), 'syncing');
  });

  it('a delete in flight is deleting; merged and gone from main, deleted once Argo CD removed the Application', () => {
    const present = facts({ observed: 'present', everPresent: true, health: 'healthy' });
    assert.equal(deriveInstanceState({ ...present, latest: { kind: 'instance.delete', status: 'open' } }), 'deleting');
    assert.equal(deriveInstanceState({ ...present, latest: { kind: 'instance.delete', status: 'closed' } }), 'ready');
    const removed = { ...present, observed: 'absent' as const, latest: { kind: 'instance.delete' as const, status: 'merged' as const } };
    assert.equal(deriveInstanceState(removed), 'deleting');
    assert.equal(deriveInstanceState(applyEventToFacts(removed, 'app.gone')), 'deleted');
  });

  it('a merged delete that left the directory on main, once main is read back, yields to main: it runs, it is not deleting for ever', () => {
    const present = facts({ observed: 'present', everPresent: true, health: 'healthy', latest: { kind: 'instance.delete', status: 'merged' }, readBack: false });
    assert.equal(deriveInstanceState(present), 'deleting', 'merged, main not read since');
    assert.equal(deriveInstanceState({ ...present, readBack: true }), 'ready', 'read back: main holds it, so it runs');
    assert.equal(deriveInstanceState({ ...present, readBack: true, health: 'unknown' }), 'syncing');
  });

  it('an Application gone while main still holds the instance is not a deletion', () => {
    const present = facts({ observed: 'present', everPresent: true, health: 'healthy', latest: { kind: 'instance.delete', status: 'open' } });
    assert.equal(deriveInstanceState(applyEventToFacts(present, 'app.gone')), 'deleting');
    assert.equal(deriveInstanceState(applyEventToFacts({ ...present, latest: { kind: 'instance.delete', status: 'closed' } }, 'app.gone')), 'syncing');
  });

  it('ignores Argo CD health for what main no longer holds (a late Healthy does not revive a deleted instance)', () => {
    const gone = facts({ everPresent: true, health: 'gone', latest: { kind: 'instance.delete', status: 'merged' } });
    assert.equal(deriveInstanceState(applyEventToFacts(gone, 'sync.healthy')), 'deleted');
  });

  it('an update in flight is updating; the wallet suspends only what runs', () => {
    const ready = facts({ observed: 'present', everPresent: true, health: 'healthy', latest: { kind: 'instance.update', status: 'open' } });
    assert.equal(deriveInstanceState(ready), 'updating');
    const settled = { ...ready, latest: { kind: 'instance.update' as const, status: 'merged' as const } };
    assert.equal(deriveInstanceState(applyEventToFacts(settled, 'wallet.exhausted')), 'suspended');
    assert.equal(applyEventToFacts(facts(), 'wallet.exhausted').suspended, false);
  });

  it('ends an instance whose name another instance holds, whatever its changes say', () => {
    for (const status of CHANGE_STATUSES) {
      assert.equal(deriveInstanceState(facts({ displaced: true, latest: { kind: 'instance.create', status } })), 'deleted', status);
    }
    assert.equal(deriveInstanceState(facts({ displaced: true, observed: 'present', everPresent: true, health: 'healthy', latest: undefined })), 'ready');
  });

  it('is total and order-independent: the same facts give the same state, whatever events came before', () => {
    const arbitraryFacts = fc.record({
      observed: fc.constantFrom('present' as const, 'absent' as const),
      everPresent: fc.boolean(),
      latest: fc.option(fc.record({ kind: fc.constantFrom(...INSTANCE_CHANGE_KINDS), status: fc.constantFrom(...CHANGE_STATUSES) }), { nil: undefined }),
      health: fc.constantFrom(...HEALTHS),
      suspended: fc.boolean(),
      displaced: fc.boolean(),
      readBack: fc.boolean(),
      wanted: fc.constantFrom('present' as const, 'absent' as const),
    });
    fc.assert(
      fc.property(arbitraryFacts, (f) => {
        const state = deriveInstanceState(f);
        assert.ok((INSTANCE_STATES as readonly string[]).includes(state));
        // Files on main ⇔ not deleted, not rejected.
        if (f.observed === 'present') assert.ok(state !== 'deleted' && state !== 'rejected', `${state} for ${JSON.stringify(f)}`);
        if (state === 'ready') assert.equal(f.observed, 'present');
        // One path, one instance: one whose name another holds is deleted, unless main holds it.
        if (f.displaced && f.observed === 'absent') assert.equal(state, 'deleted');
        // Deleting while main holds it only while a delete is on its way: never for good.
        if (state === 'deleting' && f.observed === 'present') {
          assert.equal(f.latest?.kind, 'instance.delete');
          assert.ok(f.latest.status === 'pending' || f.latest.status === 'open' || (f.latest.status === 'merged' && !f.readBack), JSON.stringify(f));
        }
      }),
    );
  });
});
