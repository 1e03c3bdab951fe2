import { QueryTypes, type Sequelize, type Transaction } from 'sequelize';
import { lastMergedWriteOf } from './change-requests.ts';
import { applyInstanceEvent, type InstanceEventCause } from './instance-events.ts';
import type { InstanceEventType, InstanceState } from './instance-state.ts';

type ChangeStatus = 'pending' | 'open' | 'merged' | 'closed' | 'failed';

export interface ChangeRow {
  id: string;
  status: ChangeStatus;
  instance_id: string | null;
  branch: string | null;
  pull_request_number: number | null;
  commit_sha: string | null;
  merge_commit_sha: string | null;
}

/** What recording a change's fate did, for the delivery's outcome and the logs. */
export interface ChangeOutcome {
  changeId: string;
  from: ChangeStatus;
  to: ChangeStatus;
  instance?: { id: string; from: InstanceState; to: InstanceState | null; note?: string };
}

/** Who reported the change's fate; the change id is filled in per change. */
export type ChangeCause = Omit<InstanceEventCause, 'changeId'>;

const COLUMNS = 'id, status, instance_id, branch, pull_request_number, commit_sha, merge_commit_sha';

/**
 * The change requests behind a pull request, locked: by number, or by head branch for a PR
 * whose number the worker has not recorded yet (the webhook can beat the worker's commit).
 */
export async function findChangesOfPullRequest(
  sequelize: Sequelize,
  tx: Transaction,
  pullRequest: { number: number; branch: string },
): Promise<ChangeRow[]> {
  return sequelize.query<ChangeRow>(
    `SELECT ${COLUMNS} FROM change_requests
      WHERE pull_request_number = $number OR (branch = $branch AND pull_request_number IS NULL)
      ORDER BY created_at, id FOR UPDATE`,
    { type: QueryTypes.SELECT, bind: pullRequest, transaction: tx },
  );
}

/** Not-yet-merged change requests whose commit is one of `shas` (commits pushed to the base branch), locked. */
export async function findUnmergedChangesByCommit(sequelize: Sequelize, tx: Transaction, shas: string[]): Promise<ChangeRow[]> {
  if (shas.length === 0) return [];
  return sequelize.query<ChangeRow>(
    `SELECT ${COLUMNS} FROM change_requests
      WHERE commit_sha = ANY($shas) AND status IN ('pending', 'open')
      ORDER BY created_at, id FOR UPDATE`,
    { type: QueryTypes.SELECT, bind: { shas }, transaction: tx },
  );
}

/**
 * The change reached the base branch. Git is the record of what runs, so a merge is recorded
 * whatever the row said before. `mergeCommitSha` replaces a recorded one only when
 * `authoritative` (the PR's own merge commit beats the pushed commit a push event saw first).
 */
export async function recordChangeMerged(
  sequelize: Sequelize,
  tx: Transaction,
  change: ChangeRow,
  merge: { mergeCommitSha: string; authoritative: boolean },
  cause: ChangeCause,
): Promise<ChangeOutcome> {
  await sequelize.query(
    `UPDATE change_requests
        SET status = 'merged', updated_at = now(), last_error = NULL,
            merge_commit_sha = CASE WHEN $authoritative OR merge_commit_sha IS NULL THEN $sha ELSE merge_commit_sha END
      WHERE id = $id`,
    { type: QueryTypes.UPDATE, bind: { id: change.id, sha: merge.mergeCommitSha, authoritative: merge.authoritative }, transaction: tx },
  );
  return { changeId: change.id, from: change.status, to: 'merged', instance: await moveInstance(sequelize, tx, change, 'change.merged', cause) };
}

/** The change's pull request was closed without merging. A merged change stays merged. */
export async function recordChangeClosed(sequelize: Sequelize, tx: Transaction, change: ChangeRow, cause: ChangeCause): Promise<ChangeOutcome> {
  if (change.status === 'merged') return { changeId: change.id, from: change.status, to: change.status };
  await sequelize.query(`UPDATE change_requests SET status = 'closed', updated_at = now() WHERE id = $id`, {
    type: QueryTypes.UPDATE,
    bind: { id: change.id },
    transaction: tx,
  });
  const instance = await moveInstance(sequelize, tx, change, 'change.closed', cause);
  // An update or delete closed unmerged: the instance runs what Git holds, so its row says so
  // again (version, parameters, desired state present), not what the closed change asked for.
  if (instance?.to === 'ready') await restoreMergedDesiredState(sequelize, tx, instance.id);
  return { changeId: change.id, from: change.status, to: 'closed', instance };
}

/**
 * Puts the instance row back on its last merged create or update: the offering version and
 * parameters in Git, and desired state present. Without a merged change it is left alone.
 */
async function restoreMergedDesiredState(sequelize: Sequelize, tx: Transaction, instanceId: string): Promise<void> {
  await sequelize.query(
    `UPDATE instances i SET desired_state = 'present', offering_version_id = v.id, parameters = c.payload->'parameters', updated_at = now()
     FROM (${lastMergedWriteOf('$id')}) c
     JOIN offerings f ON f.slug = c.payload->>'offering'
     JOIN offering_versions v ON v.offering_id = f.id AND v.version = c.payload->>'version'
     WHERE i.id = $id`,
    { type: QueryTypes.UPDATE, bind: { id: instanceId }, transaction: tx },
  );
}

/**
 * An auto-merge change whose pull request did not merge (yet): the reason is its last_error
 * (GET /changes/:id), and it stays open. Returns how many rows had another reason before.
 */
export async function recordAutoMergeWaiting(sequelize: Sequelize, tx: Transaction, changes: ChangeRow[], reason: string): Promise<number> {
  if (changes.length === 0) return 0;
  const [, updated] = await sequelize.query(
    `UPDATE change_requests SET last_error = $reason, updated_at = now()
      WHERE id = ANY($ids) AND status = 'open' AND last_error IS DISTINCT FROM $reason`,
    { type: QueryTypes.UPDATE, bind: { ids: changes.map((c) => c.id), reason }, transaction: tx },
  );
  return updated;
}

/**
 * A closed pull request was reopened: the change is open again (so the PR reconciler watches
 * it). An instance already rejected stays rejected (the state machine keeps `rejected`
 * terminal; its hold is gone): the outcome says so, and a later merge will not revive it.
 */
export async function recordChangeReopened(sequelize: Sequelize, tx: Transaction, change: ChangeRow, cause: ChangeCause): Promise<ChangeOutcome> {
  if (change.status !== 'closed') return { changeId: change.id, from: change.status, to: change.status };
  await sequelize.query(`UPDATE change_requests SET status = 'open', updated_at = now() WHERE id = $id`, {
    type: QueryTypes.UPDATE,
    bind: { id: change.id },
    transaction: tx,
  });
  return { changeId: change.id, from: change.status, to: 'open', instance: await moveInstance(sequelize, tx, change, 'change.opened', cause) };
}

/**
 * Applies the change's event to its instance, but only while the change is the instance's
 * latest: an older change's late news must not move an instance that a newer change drives.
 */
async function moveInstance(
  sequelize: Sequelize,
  tx: Transaction,
  change: ChangeRow,
  event: InstanceEventType,
  cause: ChangeCause,
): Promise<ChangeOutcome['instance']> {
  if (!change.instance_id) return undefined;
  const [instance] = await sequelize.query<{ state: InstanceState; last_change_id: string | null }>(
    'SELECT state, last_change_id FROM instances WHERE id = $id',
    { type: QueryTypes.SELECT, bind: { id: change.instance_id }, transaction: tx },
  );
  if (!instance) return undefined;
  if (instance.last_change_id !== null && instance.last_change_id !== change.id) {
    return { id: change.instance_id, from: instance.state, to: null, note: `not the instance's latest change (${instance.last_change_id})` };
  }
  const applied = await applyInstanceEvent(sequelize, tx, change.instance_id, event, { ...cause, changeId: change.id });
  return applied.ok
    ? { id: change.instance_id, from: applied.from, to: applied.to }
    : { id: change.instance_id, from: applied.from, to: null, note: applied.detail };
}
