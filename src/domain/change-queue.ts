import { randomUUID } from 'node:crypto';
import { QueryTypes, type Sequelize, type Transaction } from 'sequelize';
import type { ChangeKind } from '../gitops/render/change-payloads.ts';
import type { ChangeToPublish, MergePolicy, PublishResult } from '../gitops/change-publisher.ts';
import { applyInstanceEvents } from './instance-events.ts';

/**
 * The change_requests outbox seen from the worker: claim a batch under a lease, then record
 * what publishing it did. Claims use FOR UPDATE SKIP LOCKED, so any number of workers (in any
 * number of replicas) share the queue; a lease that expires (the worker died) makes the batch
 * claimable again, with the same batch id and branch, so the retry adopts what was done.
 */
export interface ClaimedBatch {
  batchId: string;
  branch: string;
  mergePolicy: MergePolicy;
  changes: (ChangeToPublish & { attempts: number })[];
}

export interface ClaimOptions {
  workerId: string;
  leaseMs: number;
  /** A change waits this long after it was accepted, so close arrivals share a commit. */
  windowMs: number;
  maxBatch: number;
}

interface Row {
  id: string;
  kind: ChangeKind;
  payload: unknown;
  instance_id: string | null;
  requested_by: string;
  merge_policy: MergePolicy;
  batch_id: string | null;
  attempts: number;
}

const CLAIMABLE = `status = 'pending' AND next_attempt_at <= now()
  AND (lease_expires_at IS NULL OR lease_expires_at < now())`;

/** Every branch the service writes starts with this (the remote pusher may force-move them). */
export const BATCH_BRANCH_PREFIX = 'control-plane/';

export function batchBranch(batchId: string): string {
  return `${BATCH_BRANCH_PREFIX}batch-${batchId}`;
}

export async function claimBatch(sequelize: Sequelize, options: ClaimOptions): Promise<ClaimedBatch | undefined> {
  return sequelize.transaction(async (tx) => {
    const [head] = await sequelize.query<{ batch_id: string | null; merge_policy: MergePolicy }>(
      `SELECT batch_id, merge_policy FROM change_requests
       WHERE ${CLAIMABLE}
         AND (batch_id IS NOT NULL OR created_at <= now() - make_interval(secs => :windowMs / 1000.0))
       ORDER BY created_at, id LIMIT 1 FOR UPDATE SKIP LOCKED`,
      { type: QueryTypes.SELECT, transaction: tx, replacements: { windowMs: options.windowMs } },
    );
    if (!head) return undefined;
    const batchId = head.batch_id ?? randomUUID();
    const rows = head.batch_id
      ? await sequelize.query<Row>(
          `SELECT id, kind, payload, instance_id, requested_by, merge_policy, batch_id, attempts FROM change_requests
           WHERE batch_id = :batchId AND ${CLAIMABLE} ORDER BY created_at, id FOR UPDATE SKIP LOCKED`,
          { type: QueryTypes.SELECT, transaction: tx, replacements: { batchId } },
        )
      : await sequelize.query<Row>(
          `SELECT id, kind, payload, instance_id, requested_by, merge_policy, batch_id, attempts FROM change_requests
           WHERE batch_id IS NULL AND merge_policy = :policy AND ${CLAIMABLE}
           ORDER BY created_at, id LIMIT :max FOR UPDATE SKIP LOCKED`,
          { type: QueryTypes.SELECT, transaction: tx, replacements: { policy: head.merge_policy, max: options.maxBatch } },
        );
    if (rows.length === 0) return undefined;
    const branch = batchBranch(batchId);
    // The batch id and branch are durable before anything touches Git.
    await sequelize.query(
      `UPDATE change_requests SET batch_id = :batchId, branch = :branch, lease_owner = :worker,
         lease_expires_at = now() + make_interval(secs => :leaseMs / 1000.0), attempts = attempts + 1, updated_at = now()
       WHERE id IN (:ids)`,
      { type: QueryTypes.UPDATE, transaction: tx, replacements: { batchId, branch, worker: options.workerId, leaseMs: options.leaseMs, ids: rows.map((r) => r.id) } },
    );
    return {
      batchId,
      branch,
      mergePolicy: rows[0]!.merge_policy,
      changes: rows.map((r) => ({ id: r.id, kind: r.kind, payload: r.payload, instanceId: r.instance_id ?? undefined, requestedBy: r.requested_by, attempts: r.attempts + 1 })),
    };
  });
}

const ACTOR = 'control-plane';

/** Records a publish: rows opened or merged, instances moved, rejected changes failed. */
export async function recordPublished(sequelize: Sequelize, batch: ClaimedBatch, result: PublishResult): Promise<void> {
  await sequelize.transaction(async (tx) => {
    const merged = result.mergeCommitSha !== undefined;
    // A fixed number of statements for the whole batch: one UPDATE of its changes, one of their
    // instances' last change, then the instance events (applyInstanceEvents, in bulk).
    const rows = result.published.map((p) => ({ id: p.id, files: p.files.map((f) => ({ path: f.path, action: 'delete' in f ? 'delete' : 'write' })) }));
    const updated = await sequelize.query<{ id: string }>(
      `UPDATE change_requests c SET status = :status, commit_sha = :commit, merge_commit_sha = :merge,
         pull_request_number = :number, pull_request_url = :url, files = r.files,
         lease_owner = NULL, lease_expires_at = NULL, last_error = :lastError, updated_at = now()
       FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS r(id uuid, files jsonb)
       WHERE c.id = r.id AND c.status = 'pending' RETURNING c.id`,
      {
        type: QueryTypes.SELECT,
        transaction: tx,
        replacements: {
          rows: JSON.stringify(rows),
          status: merged ? 'merged' : 'open',
          commit: result.commitSha ?? null,
          merge: result.mergeCommitSha ?? null,
          number: result.pullRequest?.number ?? null,
          url: result.pullRequest?.url ?? null,
          lastError: result.mergeError ?? null,
        },
      },
    );
    const changes = await linkInstances(sequelize, tx, batch, updated.map((row) => row.id));
    if (changes.length > 0) {
      const detail = { batchId: batch.batchId, commitSha: result.commitSha, pullRequest: result.pullRequest?.url };
      await applyInstanceEvents(
        sequelize,
        tx,
        changes.flatMap((change) => [
          { instanceId: change.instanceId, event: 'change.opened' as const, cause: { cause: 'change.opened', actor: ACTOR, changeId: change.id, detail } },
          ...(merged
            ? [{ instanceId: change.instanceId, event: 'change.merged' as const, cause: { cause: 'change.merged', actor: ACTOR, changeId: change.id, detail: { ...detail, mergeCommitSha: result.mergeCommitSha } } }]
            : []),
        ]),
      );
    }
    await failChanges(sequelize, tx, batch, result.rejected);
  });
}

/** A terminal failure of some or all changes of the batch. */
export async function recordFailed(sequelize: Sequelize, batch: ClaimedBatch, ids: string[], reason: string): Promise<void> {
  await sequelize.transaction(async (tx) => {
    await failChanges(sequelize, tx, batch, ids.map((id) => ({ id, reason })));
  });
}

/** A transient failure: the batch goes back to the queue after an exponential backoff. */
export async function recordRetry(sequelize: Sequelize, batch: ClaimedBatch, reason: string, backoffMs: number): Promise<void> {
  await sequelize.query(
    `UPDATE change_requests SET lease_owner = NULL, lease_expires_at = NULL, last_error = :reason,
       next_attempt_at = now() + make_interval(secs => :backoffMs / 1000.0), updated_at = now()
     WHERE id IN (:ids) AND status = 'pending'`,
    { type: QueryTypes.UPDATE, replacements: { reason, backoffMs, ids: batch.changes.map((c) => c.id) } },
  );
}

/**
 * Fails the batch's changes still pending, each with its reason, and moves their instances
 * ('change.failed', last_error): a fixed number of statements for any number of changes.
 */
async function failChanges(sequelize: Sequelize, tx: Transaction, batch: ClaimedBatch, failures: { id: string; reason: string }[]): Promise<void> {
  if (failures.length === 0) return;
  const updated = await sequelize.query<{ id: string }>(
    `UPDATE change_requests c SET status = 'failed', last_error = f.reason, lease_owner = NULL, lease_expires_at = NULL, updated_at = now()
     FROM jsonb_to_recordset(CAST(:failures AS jsonb)) AS f(id uuid, reason text)
     WHERE c.id = f.id AND c.status = 'pending' RETURNING c.id`,
    { type: QueryTypes.SELECT, transaction: tx, replacements: { failures: JSON.stringify(failures) } },
  );
  const reasons = new Map(failures.map((f) => [f.id, f.reason]));
  const changes = await linkInstances(sequelize, tx, batch, updated.map((row) => row.id));
  await applyInstanceEvents(
    sequelize,
    tx,
    changes.map((change) => {
      const reason = reasons.get(change.id)!;
      return { instanceId: change.instanceId, event: 'change.failed' as const, cause: { cause: 'change.failed', actor: ACTOR, changeId: change.id, detail: { reason }, lastError: reason } };
    }),
  );
}

/**
 * The batch's changes among `recorded` (the ones this worker's statement changed; one another
 * worker recorded first keeps its events) that have an instance, each instance now pointing
 * at its change as its last one.
 */
async function linkInstances(sequelize: Sequelize, tx: Transaction, batch: ClaimedBatch, recorded: string[]): Promise<(ClaimedBatch['changes'][number] & { instanceId: string })[]> {
  const ids = new Set(recorded);
  const changes = batch.changes.filter((c) => ids.has(c.id) && c.instanceId !== undefined) as (ClaimedBatch['changes'][number] & { instanceId: string })[];
  if (changes.length === 0) return [];
  await sequelize.query(
    `UPDATE instances i SET last_change_id = l.change_id
     FROM jsonb_to_recordset(CAST(:links AS jsonb)) AS l(instance_id uuid, change_id uuid) WHERE i.id = l.instance_id`,
    { type: QueryTypes.UPDATE, transaction: tx, replacements: { links: JSON.stringify(changes.map((c) => ({ instance_id: c.instanceId, change_id: c.id }))) } },
  );
  return changes;
}
