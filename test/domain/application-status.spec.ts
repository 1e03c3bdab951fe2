import assert from 'node:assert/strict';
import { judgeApplications, type ApplicationObservation, type RevisionFacts } from '../../src/domain/application-status.ts';
import { specAnnotation, type InstanceSpec } from '../../src/gitops/instance-spec.ts';

const spec: InstanceSpec = { offering: 'studio', version: '1.0.0', parameters: { size: 'small' } };
// The parent (source gsv-gitops) applied main at 03:40:02; its revisions are gsv-gitops commits.
const parent: ApplicationObservation = {
  application: 'apps--acme--main',
  subject: { tier: 'parent', org: 'acme', instanceName: 'main' },
  spec: null,
  syncStatus: 'Synced',
  syncRevision: 'r2',
  operation: { phase: 'Succeeded', startedAt: '2026-11-28T03:40:00Z', finishedAt: '2026-11-28T03:40:02Z', revision: 'r2', message: null },
  healthStatus: 'Healthy',
  healthMessage: null,
  healthObservedAt: '2026-11-28T03:40:03Z',
  deleting: false,
};
// The child (source a Helm chart): its revision is the chart version, never a gsv-gitops commit.
const child: ApplicationObservation = {
  application: 'app--acme--main',
  subject: { tier: 'child', instanceId: 'i' },
  spec: specAnnotation(spec),
  syncStatus: 'Synced',
  syncRevision: '0.1.1',
  operation: { phase: 'Succeeded', startedAt: '2026-11-28T03:40:03Z', finishedAt: '2026-11-28T03:40:05Z', revision: '0.1.1', message: null },
  healthStatus: 'Healthy',
  healthMessage: null,
  healthObservedAt: '2026-11-28T03:40:06Z',
  deleting: false,
};
const contains: RevisionFacts = { mergeCommitSha: 'm', spec, parentSyncContainsMerge: true, parentOperationContainsMerge: true };
const op = (o: ApplicationObservation, over: Partial<NonNullable<ApplicationObservation['operation']>>) => ({ operation: { ...o.operation!, ...over } });

describe('judgeApplications (the readiness rule: parent and instance Application)', () => {
  const cases: Array<[string, Partial<ApplicationObservation> | undefined, Partial<ApplicationObservation> | undefined, Partial<RevisionFacts>, string | null]> = [
    ['parent applied main, child carries main’s spec, Synced, Healthy after both syncs', {}, {}, {}, 'sync.healthy'],
    ['child revision is a chart version: it is never asked to contain the merge', {}, { syncRevision: '0.1.1' }, {}, 'sync.healthy'],
    ['child with no operation recorded, Healthy after the parent applied it', {}, { operation: null }, {}, 'sync.healthy'],
    ['no word from the parent yet', undefined, {}, {}, null],
    ['no word from the child yet', {}, undefined, {}, null],
    ['parent at a revision without the merge (the tenant’s merge not applied)', {}, {}, { parentSyncContainsMerge: false, parentOperationContainsMerge: false }, null],
    ['parent OutOfSync', { syncStatus: 'OutOfSync' }, {}, {}, null],
    ['parent syncing', op(parent, { phase: 'Running' }), {}, {}, null],
    ['parent failed to apply main', op(parent, { phase: 'Failed', message: 'one or more objects failed to apply' }), {}, {}, 'sync.failed'],
    ['parent failed at an older revision', op(parent, { phase: 'Error' }), {}, { parentOperationContainsMerge: false }, null],
    ['change not merged', {}, {}, { mergeCommitSha: null }, null],
    ['child still carries an older spec', {}, { spec: specAnnotation({ ...spec, version: '0.9.0' }) }, {}, null],
    ['child carries no spec annotation', {}, { spec: null }, {}, null],
    ['child OutOfSync', {}, { syncStatus: 'OutOfSync' }, {}, null],
    ['child health assessed in the second its sync finished', {}, { healthObservedAt: '2026-11-28T03:40:05Z' }, {}, null],
    ['child health assessed before the parent applied the spec', {}, { operation: null, healthObservedAt: '2026-11-28T03:40:01Z' }, {}, null],
    ['child health assessed in the second the parent finished', {}, { operation: null, healthObservedAt: '2026-11-28T03:40:02Z' }, {}, null],
    ['child health time unknown', {}, { healthObservedAt: null }, {}, null],
    ['child Progressing', {}, { healthStatus: 'Progressing' }, {}, null],
    ['child Degraded after its sync', {}, { healthStatus: 'Degraded' }, {}, 'sync.degraded'],
    ['child Missing after its sync', {}, { healthStatus: 'Missing' }, {}, 'sync.degraded'],
    ['child stale Degraded', {}, { healthStatus: 'Degraded', healthObservedAt: '2026-11-28T03:00:00Z' }, {}, null],
    ['child sync of main’s spec failed', {}, op(child, { phase: 'Failed' }), {}, 'sync.failed'],
    ['child sync errored', {}, op(child, { phase: 'Error' }), {}, 'sync.failed'],
    ['child sync that began before the parent applied the spec failed', {}, op(child, { phase: 'Failed', startedAt: '2026-11-28T03:39:00Z', finishedAt: '2026-11-28T03:39:30Z' }), {}, null],
    ['child syncing', {}, op(child, { phase: 'Running' }), {}, null],
    ['child being deleted', {}, { deleting: true }, { mergeCommitSha: null }, 'app.gone'],
    ['parent being deleted says nothing (the child’s deletion does)', { deleting: true }, undefined, { mergeCommitSha: null }, null],
  ];
  for (const [name, parentOver, childOver, facts, expected] of cases) {
    it(`${name} → ${expected ?? 'nothing'}`, () => {
      const verdict = judgeApplications(
        { parent: parentOver ? { ...parent, ...parentOver } : undefined, child: childOver ? { ...child, ...childOver } : undefined },
        { ...contains, ...facts },
      );
      assert.equal(verdict.event, expected, verdict.reason);
      assert.ok(verdict.reason.length > 0);
    });
  }
});
