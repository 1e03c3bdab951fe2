import assert from 'node:assert/strict';
import { judgeApplication, type ApplicationObservation, type RevisionFacts } from '../../src/domain/application-status.ts';

const healthy: ApplicationObservation = {
  application: 'app--acme--main',
  instanceId: 'i',
  syncStatus: 'Synced',
  syncRevision: 'r2',
  operation: { phase: 'Succeeded', finishedAt: '2026-11-28T03:40:05Z', revision: 'r2', message: null },
  healthStatus: 'Healthy',
  healthMessage: null,
  healthObservedAt: '2026-11-28T03:40:06Z',
  deleting: false,
};
const contains: RevisionFacts = { mergeCommitSha: 'm', syncRevisionContainsMerge: true, operationRevisionContainsMerge: true };

describe('judgeApplication (the readiness rule)', () => {
  const cases: Array<[string, Partial<ApplicationObservation>, Partial<RevisionFacts>, string | null]> = [
    ['Synced, Healthy after the sync, revision contains the merge', {}, {}, 'sync.healthy'],
    ['no operation recorded, Healthy observed', { operation: null }, {}, 'sync.healthy'],
    ['revision does not contain the merge', {}, { syncRevisionContainsMerge: false, operationRevisionContainsMerge: false }, null],
    ['change not merged', {}, { mergeCommitSha: null }, null],
    ['OutOfSync', { syncStatus: 'OutOfSync' }, {}, null],
    ['health observed in the second the sync finished', { healthObservedAt: '2026-11-28T03:40:05Z' }, {}, null],
    ['health observed before the sync', { healthObservedAt: '2026-11-28T03:39:00Z' }, {}, null],
    ['health time unknown', { healthObservedAt: null }, {}, null],
    ['Progressing', { healthStatus: 'Progressing' }, {}, null],
    ['Degraded after the sync', { healthStatus: 'Degraded' }, {}, 'sync.degraded'],
    ['Missing after the sync', { healthStatus: 'Missing' }, {}, 'sync.degraded'],
    ['stale Degraded', { healthStatus: 'Degraded', healthObservedAt: '2026-11-28T03:00:00Z' }, {}, null],
    ['sync of the merged revision failed', { operation: { ...healthy.operation!, phase: 'Failed' } }, {}, 'sync.failed'],
    ['sync errored', { operation: { ...healthy.operation!, phase: 'Error' } }, {}, 'sync.failed'],
    ['an older revision failed to sync', { operation: { ...healthy.operation!, phase: 'Failed' } }, { operationRevisionContainsMerge: false }, null],
    ['sync running', { operation: { ...healthy.operation!, phase: 'Running' } }, {}, null],
    ['Application being deleted', { deleting: true }, { mergeCommitSha: null }, 'app.gone'],
  ];
  for (const [name, observation, facts, expected] of cases) {
    it(`${name} → ${expected ?? 'nothing'}`, () => {
      const verdict = judgeApplication({ ...healthy, ...observation }, { ...contains, ...facts });
      assert.equal(verdict.event, expected);
      assert.ok(verdict.reason.length > 0);
    });
  }
});
