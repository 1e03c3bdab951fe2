import { QueryTypes, type Sequelize, type Transaction } from 'sequelize';
import { applyInstanceEvent } from './instance-events.ts';
import type { InstanceState } from './instance-state.ts';
import { judgeApplication, type ApplicationObservation } from './application-status.ts';
import { INSTANCE_ID_LABEL } from '../gitops/labels.ts';

export interface ApplicationSyncDeps {
  sequelize: Sequelize;
  /**
   * The GitOps repository's ancestry check (GitopsRepository.isAncestor). Give it cached
   * (cacheAncestry): each observation asks the same question more than once.
   */
  repository: { isAncestor(ancestor: string, descendant: string): Promise<boolean> };
}

export interface ObservationCause {
  cause: string;
  actor: string;
  deliveryId?: string;
}

export interface ObservationOutcome {
  instanceId: string | undefined;
  event: string | null;
  reason: string;
  from?: InstanceState;
  to?: InstanceState | null;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Asks the repository the ancestry questions an observation will raise, outside any
 * transaction, so that with a caching repository (cacheAncestry) the transaction that applies
 * it holds its connection and the instance's row lock only for database work. Best effort:
 * errors surface again, in the transaction, when the question is asked for real.
 */
export async function prefetchAncestry(deps: ApplicationSyncDeps, observation: ApplicationObservation): Promise<void> {
  if (!observation.instanceId || !UUID.test(observation.instanceId)) return;
  const [row] = await deps.sequelize.query<{ merge_commit_sha: string | null }>(
    `SELECT observed_commit_sha AS merge_commit_sha FROM instances WHERE id = $id AND observed_state = 'present'`,
    { type: QueryTypes.SELECT, bind: { id: observation.instanceId } },
  );
  const merge = row?.merge_commit_sha;
  if (!merge) return;
  const revisions = new Set([observation.syncRevision, observation.operation?.revision].filter((r): r is string => Boolean(r)));
  await Promise.all([...revisions].map((revision) => deps.repository.isAncestor(merge, revision).catch(() => undefined)));
}

/**
 * Applies what Argo CD reports about an Application to its instance, in the caller's
 * transaction: looks up the instance's latest change and its merge commit, checks ancestry in
 * the GitOps repository, asks the readiness rule, and moves the instance through the state
 * machine with an event naming the cause and the change.
 */
export async function applyApplicationObservation(
  deps: ApplicationSyncDeps,
  tx: Transaction,
  observation: ApplicationObservation,
  cause: ObservationCause,
): Promise<ObservationOutcome> {
  const instanceId = observation.instanceId;
  if (!instanceId || !UUID.test(instanceId)) return { instanceId, event: null, reason: `not an instance Application (no ${INSTANCE_ID_LABEL} label)` };

  // Argo CD speaks about what main holds: the commit that last changed the instance's directory
  // there (observed by convergence), whichever change or person put it there.
  const [row] = await deps.sequelize.query<{ change_id: string | null; observed_state: string; observed_commit_sha: string | null }>(
    'SELECT last_change_id AS change_id, observed_state, observed_commit_sha FROM instances WHERE id = $id',
    { type: QueryTypes.SELECT, bind: { id: instanceId }, transaction: tx },
  );
  if (!row) return { instanceId, event: null, reason: 'no such instance' };

  const merge = row.observed_state === 'present' ? row.observed_commit_sha : null;
  // Usually both revisions are the same commit: the cached repository answers the second.
  const contains = (revision: string | null | undefined): Promise<boolean> =>
    merge && revision ? deps.repository.isAncestor(merge, revision) : Promise.resolve(false);
  const verdict = judgeApplication(observation, {
    mergeCommitSha: merge,
    syncRevisionContainsMerge: await contains(observation.syncRevision),
    operationRevisionContainsMerge: await contains(observation.operation?.revision),
  });
  if (!verdict.event) return { instanceId, event: null, reason: verdict.reason };

  const failing = verdict.event === 'sync.failed' || verdict.event === 'sync.degraded';
  const applied = await applyInstanceEvent(deps.sequelize, tx, instanceId, verdict.event, {
    cause: cause.cause,
    actor: cause.actor,
    changeId: row.change_id ?? undefined,
    deliveryId: cause.deliveryId,
    lastError: failing ? verdict.reason : verdict.event === 'sync.healthy' ? null : undefined,
    detail: {
      application: observation.application,
      syncRevision: observation.syncRevision,
      health: observation.healthStatus,
      healthObservedAt: observation.healthObservedAt,
      operationFinishedAt: observation.operation?.finishedAt ?? null,
      reason: verdict.reason,
    },
  });
  return applied.ok
    ? { instanceId, event: verdict.event, reason: verdict.reason, from: applied.from, to: applied.to }
    : { instanceId, event: verdict.event, reason: `${verdict.reason}; ${applied.detail}`, from: applied.from, to: null };
}
