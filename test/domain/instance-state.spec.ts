import assert from 'node:assert/strict';
import { INSTANCE_STATES, transition, type InstanceEventType, type InstanceState } from '../../src/domain/instance-state.ts';

const EVENTS: InstanceEventType[] = [
  'change.opened',
  'change.merged',
  'change.closed',
  'change.failed',
  'sync.healthy',
  'sync.degraded',
  'sync.failed',
  'app.gone',
  'update.requested',
  'delete.requested',
  'wallet.exhausted',
];

const to = (from: InstanceState, event: InstanceEventType, desired: 'present' | 'absent' = 'present') => {
  const result = transition(from, event, { desired });
  return result.ok ? result.to : result.reason;
};

describe('instance state machine', () => {
  it('walks the happy path: requested → pending_review → syncing → ready', () => {
    assert.equal(to('requested', 'change.opened'), 'pending_review');
    assert.equal(to('pending_review', 'change.merged'), 'syncing');
    assert.equal(to('syncing', 'sync.healthy'), 'ready');
  });

  it('commits directly: requested → syncing without a PR', () => {
    assert.equal(to('requested', 'change.merged'), 'syncing');
  });

  it('rejects a first change closed unmerged, but returns an update closed unmerged to ready', () => {
    assert.equal(to('pending_review', 'change.closed'), 'rejected');
    assert.equal(to('requested', 'change.closed'), 'rejected');
    assert.equal(to('updating', 'change.closed'), 'ready');
    assert.equal(to('deleting', 'change.closed'), 'ready');
  });

  it('lets users update and delete only settled instances (delete also before the PR merges)', () => {
    for (const state of ['ready', 'degraded', 'failed', 'suspended'] as const) {
      assert.equal(to(state, 'update.requested'), 'updating', state);
      assert.equal(to(state, 'delete.requested'), 'deleting', state);
    }
    for (const state of ['requested', 'pending_review', 'syncing', 'updating', 'deleting'] as const) {
      assert.equal(to(state, 'update.requested'), 'not-allowed', state);
    }
    assert.equal(to('pending_review', 'delete.requested'), 'deleting');
    assert.equal(to('syncing', 'delete.requested'), 'not-allowed');
  });

  it('carries deletion by the desired state: a merged delete waits for the Application to go', () => {
    assert.equal(to('deleting', 'change.merged', 'absent'), 'no-op');
    assert.equal(to('syncing', 'change.merged', 'absent'), 'deleting');
    assert.equal(to('deleting', 'app.gone'), 'deleted');
    assert.equal(to('deleting', 'sync.healthy', 'absent'), 'not-allowed');
    assert.equal(to('ready', 'app.gone'), 'not-allowed');
  });

  it('moves between ready, degraded and failed on Argo CD health, and suspends on an empty wallet', () => {
    assert.equal(to('ready', 'sync.degraded'), 'degraded');
    assert.equal(to('degraded', 'sync.healthy'), 'ready');
    assert.equal(to('syncing', 'sync.failed'), 'failed');
    assert.equal(to('ready', 'wallet.exhausted'), 'suspended');
    assert.equal(to('syncing', 'wallet.exhausted'), 'not-allowed');
  });

  it('reports a repeated event as a no-op, not a transition', () => {
    const result = transition('ready', 'sync.healthy');
    assert.deepEqual(result, { ok: false, reason: 'no-op', detail: 'instance is already ready' });
    assert.equal(to('pending_review', 'change.opened'), 'no-op');
  });

  it('never leaves rejected or deleted, whatever arrives', () => {
    for (const state of ['rejected', 'deleted'] as const) {
      for (const event of EVENTS) {
        for (const desired of ['present', 'absent'] as const) {
          assert.equal(transition(state, event, { desired }).ok, false, `${state} + ${event}`);
        }
      }
    }
  });

  it('always answers with a known state or a reason, for every state and event', () => {
    for (const state of INSTANCE_STATES) {
      for (const event of EVENTS) {
        const result = transition(state, event);
        if (result.ok) {
          assert.ok(INSTANCE_STATES.includes(result.to));
          assert.notEqual(result.to, state);
        } else {
          assert.match(result.detail, new RegExp(state));
        }
      }
    }
  });
});
