import assert from 'node:assert/strict';
import { instanceConditions, READY_REASONS, SYNCED_REASONS, type ConditionFacts } from '../../src/domain/instance-conditions.ts';
import { INSTANCE_STATES } from '../../src/domain/instance-state.ts';
import { CHANGE_STATUSES } from '../../src/domain/changes/change-status.ts';

const at = new Date('2026-12-02T17:00:00Z');
const base: ConditionFacts = {
  state: 'ready',
  desiredState: 'present',
  observedPresent: true,
  drift: null,
  lastError: null,
  latest: { status: 'merged', pullRequestUrl: 'https://github.com/gsv/gsv-gitops/pull/7', lastError: null, updatedAt: at },
  stateChangedAt: at,
  pastDeadlineAt: null,
};
const pick = (facts: Partial<ConditionFacts>) => Object.fromEntries(instanceConditions({ ...base, ...facts }).map((c) => [c.type, [c.status, c.reason, c.message]]));

describe('instance conditions (Synced, Ready) say why an instance is in its state', () => {
  it('a merged request main holds, Healthy: Synced and Ready', () => {
    const c = pick({});
    assert.deepEqual([c.Synced![0], c.Synced![1], c.Ready![0], c.Ready![1]], ['True', 'MainHoldsRequest', 'True', 'Healthy']);
  });

  it('names what the instance waits for: a pending commit, an open pull request (with its link and why auto-merge waits), a failed or closed change', () => {
    assert.equal(pick({ latest: { ...base.latest!, status: 'pending' } }).Synced![1], 'ChangePending');
    const open = pick({ latest: { ...base.latest!, status: 'open', lastError: 'auto-merge waits for a person: checks pending' } }).Synced!;
    assert.equal(open[1], 'PullRequestOpen');
    assert.match(String(open[2]), /pull\/7.*checks pending/);
    const failed = pick({ latest: { ...base.latest!, status: 'failed', lastError: 'GitHub refused the tree' } }).Synced!;
    assert.deepEqual([failed[0], failed[1]], ['False', 'ChangeFailed']);
    assert.match(String(failed[2]), /GitHub refused the tree/);
    assert.equal(pick({ latest: { ...base.latest!, status: 'closed' } }).Synced![1], 'ChangeClosed');
    assert.equal(pick({ drift: 'main holds 1.0.0 …' }).Synced![1], 'Drift');
    assert.equal(pick({ desiredState: 'absent', state: 'deleting' }).Synced![1], 'AwaitingMainReadBack');
    assert.equal(pick({ desiredState: 'absent', observedPresent: false, state: 'deleted' }).Synced![1], 'RemovedFromMain');
  });

  it("passes Argo CD's word through: Degraded and a failed sync carry its message; syncing is Unknown, not False", () => {
    const degraded = pick({ state: 'degraded', lastError: 'health is Degraded: Back-off restarting failed container' }).Ready!;
    assert.deepEqual([degraded[0], degraded[1]], ['False', 'Degraded']);
    assert.match(String(degraded[2]), /Back-off/);
    assert.equal(pick({ state: 'failed', lastError: 'sync failed: x' }).Ready![1], 'SyncFailed');
    assert.deepEqual(pick({ state: 'syncing' }).Ready!.slice(0, 2), ['Unknown', 'AwaitingArgoCD']);
    assert.deepEqual(pick({ state: 'syncing', pastDeadlineAt: at }).Ready!.slice(0, 2), ['False', 'ProgressDeadlineExceeded']);
    assert.equal(pick({ state: 'ready', pastDeadlineAt: at }).Ready![1], 'Healthy', 'it may still turn ready');
  });

  it('is total: every state and every latest change status gives both conditions, with a reason of the published lists', () => {
    for (const state of INSTANCE_STATES) {
      for (const status of [...CHANGE_STATUSES, null]) {
        for (const desiredState of ['present', 'absent'] as const) {
          const conditions = instanceConditions({ ...base, state, desiredState, latest: status ? { ...base.latest!, status } : null });
          assert.deepEqual(conditions.map((c) => c.type), ['Synced', 'Ready']);
          assert.ok((SYNCED_REASONS as readonly string[]).includes(conditions[0]!.reason), conditions[0]!.reason);
          assert.ok((READY_REASONS as readonly string[]).includes(conditions[1]!.reason), conditions[1]!.reason);
          for (const c of conditions) assert.ok(c.message.length > 0 && c.lastTransitionTime === at.toISOString());
        }
      }
    }
  });
});
