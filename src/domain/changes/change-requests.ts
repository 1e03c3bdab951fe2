import { QueryTypes, type Sequelize, type Transaction } from 'sequelize';
import { mergePolicyFor, type MergePolicies } from './change-kinds.ts';
import type { ParsedChange } from '../../gitops/render/change-payloads.ts';
import { nextChangeStatus, type ChangeEvent, type ChangeStatus } from './change-status.ts';

/**
 * The owner of change_requests: the only SQL that writes it (with change-queue.ts, the worker's
 * side of the same table). Producers hand in a typed payload (ParsedChange); the worker reads it
 * back and validates it again at its edge.
 */
export type NewChangeRequest = ParsedChange & {
  /** Every kind but platform.bootstrap belongs to an organization. */
  organizationId?: string;
  instanceId?: string;
  requestedBy: string;
  mergePolicy: MergePolicies;
  reason?: string;
  /** The failed change this one proposes again (POST /changes/:id/retry). */
  retryOf?: string;
};

/** Adds a pending change to the outbox in the caller's transaction; returns its id. */
export async function insertChangeRequest(sequelize: Sequelize, tx: Transaction, change: NewChangeRequest): Promise<string> {
  const [row] = await sequelize.query<{ id: string }>(
    `INSERT INTO change_requests (kind, organization_id, instance_id, payload, requested_by, merge_policy, reason, retry_of)
     VALUES (:kind, :organizationId, :instanceId, :payload, :requestedBy, :mergePolicy, :reason, :retryOf) RETURNING id`,
    {
      type: QueryTypes.SELECT,
      transaction: tx,
      replacements: {
        kind: change.kind,
        organizationId: change.organizationId ?? null,
        instanceId: change.instanceId ?? null,
        payload: JSON.stringify(change.payload),
        requestedBy: change.requestedBy,
        mergePolicy: mergePolicyFor(change.mergePolicy, change.kind),
        reason: change.reason ?? null,
        retryOf: change.retryOf ?? null,
      },
    },
  );
  return row!.id;
}

/** A change row as the lifecycle functions need it. */
export interface ChangeRow {
  id: string;
  kind: ParsedChange['kind'];
  status: ChangeStatus;
  instance_id: string | null;
  branch: string | null;
  pull_request_number: number | null;
  commit_sha: string | null;
  merge_commit_sha: string | null;
  files: { path: string; action: 'write' | 'delete' }[] | null;
}

const COLUMNS = 'id, kind, status, instance_id, branch, pull_request_number, commit_sha, merge_commit_sha, files';

/**
 * The change requests behind a pull request: by number, or by head branch for a PR whose number
 * the worker has not recorded yet (the webhook can beat the worker's commit). With `lock`, the
 * rows are locked (lock their instances first: lockInstances).
 */
export async function findChangesOfPullRequest(
  sequelize: Sequelize,
  tx: Transaction | undefined,
  pullRequest: { number: number; branch: string | null },
  options: { lock?: boolean } = {},
): Promise<ChangeRow[]> {
  return sequelize.query<ChangeRow>(
    `SELECT ${COLUMNS} FROM change_requests
      WHERE pull_request_number = $number OR (branch = $branch AND pull_request_number IS NULL)
      ORDER BY created_at, id ${options.lock ? 'FOR UPDATE' : ''}`,
    { type: QueryTypes.SELECT, bind: { number: pullRequest.number, branch: pullRequest.branch ?? '' }, transaction: tx ?? null },
  );
}

/** Changes by id, locked. */
export async function lockChanges(sequelize: Sequelize, tx: Transaction, ids: string[]): Promise<ChangeRow[]> {
  if (ids.length === 0) return [];
  return sequelize.query<ChangeRow>(`SELECT ${COLUMNS} FROM change_requests WHERE id = ANY($ids) ORDER BY created_at, id FOR UPDATE`, {
    type: QueryTypes.SELECT,
    bind: { ids },
    transaction: tx,
  });
}

/** What moving a change did, for the delivery's outcome and the logs. */
export interface ChangeMove {
  changeId: string;
  instanceId: string | null;
  from: ChangeStatus;
  to: ChangeStatus;
}

/**
 * Moves each change through the status machine on `event`, in one statement: the ones that do
 * not move on it are left as they are (and not returned). `mergeCommitSha` is recorded with a
 * merge; it replaces a recorded one only when `authoritative` (the PR's own merge commit beats
 * the commit a push showed first).
 */
export async function moveChanges(
  sequelize: Sequelize,
  tx: Transaction,
  changes: ChangeRow[],
  event: ChangeEvent,
  extra: { mergeCommitSha?: string; authoritative?: boolean; lastError?: string | null; supersededBy?: string; cancelledBy?: string } = {},
): Promise<ChangeMove[]> {
  const moves = changes.flatMap((change) => {
    const to = nextChangeStatus(change.status, event);
    return to === undefined ? [] : [{ changeId: change.id, instanceId: change.instance_id, from: change.status, to, open: change.status === 'open' || change.pull_request_number !== null }];
  });
  if (moves.length === 0) return [];
  await sequelize.query(
    `UPDATE change_requests c SET status = m.to_status::change_status, updated_at = now(),
       merge_commit_sha = CASE WHEN $sha::text IS NULL THEN c.merge_commit_sha
                               WHEN $authoritative OR c.merge_commit_sha IS NULL THEN $sha ELSE c.merge_commit_sha END,
       last_error = CASE WHEN $setError THEN $lastError ELSE c.last_error END,
       superseded_by = coalesce($supersededBy::uuid, c.superseded_by),
       cancelled_by = CASE WHEN m.to_status = 'cancelled' THEN $cancelledBy ELSE c.cancelled_by END,
       -- A withdrawn change with a pull request (or one being published) still has one to close.
       supersede_pending = CASE WHEN m.to_status IN ('superseded', 'cancelled') THEN m.open OR c.lease_expires_at IS NOT NULL
                                WHEN m.to_status IN ('merged', 'open') THEN false ELSE c.supersede_pending END
     FROM jsonb_to_recordset($moves::jsonb) AS m(id uuid, to_status text, open boolean)
     WHERE c.id = m.id`,
    {
      type: QueryTypes.UPDATE,
      transaction: tx,
      bind: {
        moves: JSON.stringify(moves.map((m) => ({ id: m.changeId, to_status: m.to, open: m.open }))),
        sha: extra.mergeCommitSha ?? null,
        authoritative: extra.authoritative ?? false,
        setError: extra.lastError !== undefined,
        lastError: extra.lastError ?? null,
        supersededBy: extra.supersededBy ?? null,
        cancelledBy: extra.cancelledBy ?? null,
      },
    },
  );
  return moves.map(({ open: _open, ...move }) => move);
}

/** The instances' changes that a new request (or the name's holder) replaces: pending or open, locked (the instances are locked already). */
export async function supersedableChangesOf(sequelize: Sequelize, tx: Transaction, instanceIds: string | string[]): Promise<ChangeRow[]> {
  const ids = typeof instanceIds === 'string' ? [instanceIds] : instanceIds;
  if (ids.length === 0) return [];
  return sequelize.query<ChangeRow>(
    `SELECT ${COLUMNS} FROM change_requests WHERE instance_id = ANY($ids) AND status IN ('pending', 'open') ORDER BY created_at, id FOR UPDATE`,
    { type: QueryTypes.SELECT, bind: { ids }, transaction: tx },
  );
}

/**
 * SQL for the instance's last merged create or update (its `payload`): what its directory in
 * Git holds now. `instance` is the placeholder naming the instance (`:id` or `$id`).
 */
export function lastMergedWriteOf(instance: string): string {
  return `SELECT payload FROM change_requests
    WHERE instance_id = ${instance} AND kind IN ('instance.create', 'instance.update') AND status = 'merged'
    ORDER BY created_at DESC, id DESC LIMIT 1`;
}

/** Auto-merge changes whose pull request did not merge (yet): the reason is their last_error. Returns how many had another reason before. */
export async function recordAutoMergeWaiting(sequelize: Sequelize, tx: Transaction, changes: ChangeRow[], reason: string): Promise<number> {
  if (changes.length === 0) return 0;
  const [, updated] = await sequelize.query(
    `UPDATE change_requests SET last_error = $reason, updated_at = now()
      WHERE id = ANY($ids) AND status = 'open' AND last_error IS DISTINCT FROM $reason`,
    { type: QueryTypes.UPDATE, bind: { ids: changes.map((c) => c.id), reason }, transaction: tx },
  );
  return updated;
}

/** Changes by the ids their commits carry (Change-Id trailers), for what main shows. */
export async function changesByIds(sequelize: Sequelize, tx: Transaction | undefined, ids: string[]): Promise<ChangeRow[]> {
  const uuids = ids.filter((id) => /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(id));
  if (uuids.length === 0) return [];
  return sequelize.query<ChangeRow>(`SELECT ${COLUMNS} FROM change_requests WHERE id = ANY($ids)`, { type: QueryTypes.SELECT, bind: { ids: uuids }, transaction: tx ?? null });
}

/** Numbers of pull requests of ours among `numbers`. */
export async function ourPullRequests(sequelize: Sequelize, numbers: number[]): Promise<Set<number>> {
  if (numbers.length === 0) return new Set();
  const rows = await sequelize.query<{ n: number }>('SELECT DISTINCT pull_request_number AS n FROM change_requests WHERE pull_request_number = ANY($numbers)', {
    type: QueryTypes.SELECT,
    bind: { numbers },
  });
  return new Set(rows.map((r) => r.n));
}

/** A pending or open change of `kind` with exactly this payload, if any (for idempotent proposals). */
export async function findInFlightChange(sequelize: Sequelize, tx: Transaction, kind: ParsedChange['kind'], payload: unknown): Promise<string | undefined> {
  const [row] = await sequelize.query<{ id: string }>(
    `SELECT id FROM change_requests WHERE kind = CAST($kind AS change_kind) AND status IN ('pending', 'open') AND payload = CAST($payload AS jsonb)
      ORDER BY created_at LIMIT 1`,
    { type: QueryTypes.SELECT, transaction: tx, bind: { kind, payload: JSON.stringify(payload) } },
  );
  return row?.id;
}

/**
 * Pull requests with open changes, for the PR reconciler: one row per pull request, in number
 * order after `after` (a page of the round the reconciler is walking; 0 starts a new round).
 */
export async function openPullRequests(
  sequelize: Sequelize,
  limit: number,
  after = 0,
): Promise<{ pull_request_number: number; branch: string | null; auto_merge: boolean }[]> {
  return sequelize.query(
    `SELECT pull_request_number, min(branch) AS branch, bool_or(merge_policy = 'auto-merge') AS auto_merge FROM change_requests
      WHERE status = 'open' AND pull_request_number > $after GROUP BY pull_request_number ORDER BY pull_request_number LIMIT $limit`,
    { type: QueryTypes.SELECT, bind: { limit, after } },
  );
}
