import { randomUUID } from 'node:crypto';
import { QueryTypes, type Sequelize, type Transaction } from 'sequelize';
import type { ChangeToPublish, PublishResult } from './change-publisher.ts';
import { applyInstanceEvents, lockInstances } from '../instance-events.ts';
import { batchBranch, SERVICE_ACTOR, type ChangeKind, type MergePolicy } from './change-kinds.ts';
import { lockChanges, moveChanges } from './change-requests.ts';
import { withInstances } from './pull-request-fate.ts';
import type { TenantLayout } from '../../gitops/tenant-paths.ts';

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
  /**
   * A change waits this long after it was accepted, so close arrivals share a commit; a change
   * with nothing else queued does not wait (the window would only add latency).
   */
  windowMs: number;
  maxBatch: number;
  /** GITOPS_BATCH_COMMITS=per-org-pull-requests: a batch holds the changes of one org only. */
  perOrg?: boolean;
  /**
   * Most orgs in one batch (per-org commits on GitHub: each org's commit costs 2 writes, and a
   * batch must fit in the write budget's burst). Undefined: no limit.
   */
  maxOrgs?: number;
}

interface Row {
  id: string;
  kind: ChangeKind;
  payload: unknown;
  instance_id: string | null;
  organization_id: string | null;
  requested_by: string;
  merge_policy: MergePolicy;
  batch_id: string | null;
  attempts: number;
  reason: string | null;
  requester_name: string | null;
  requester_email: string | null;
  tenant_layout: TenantLayout | null;
}

/** The change's columns a publish needs, and who asked for it as a person (users is not locked). */
const CLAIMED_COLUMNS = `id, kind, payload, instance_id, organization_id, requested_by, merge_policy, batch_id, attempts, reason,
  (SELECT u.username FROM users u WHERE u.subject = requested_by) AS requester_name,
  (SELECT u.email FROM users u WHERE u.subject = requested_by) AS requester_email,
  (SELECT o.tenant_layout FROM organizations o WHERE o.id = organization_id) AS tenant_layout`;

const CLAIMABLE = `status = 'pending' AND next_attempt_at <= now()
  AND (lease_expires_at IS NULL OR lease_expires_at < now())`;

/**
 * A tenants.relayout moves orgs' files as main holds them when it is published: it waits for
 * every change of those orgs asked for before it to be merged, closed or failed (else it would
 * leave their files behind at the flat path), and every change of those orgs asked for after it
 * waits for it (else it would be written where the org no longer is). Ordered by (created_at,
 * id), so neither can wait for the other; other orgs' changes go on. The relayout side names the
 * orgs (payload.orgs), the other side its org. A relayout is always a batch of its own.
 * An ordinary change looks only for relayouts in flight (a partial index holds them: there are
 * none almost always); only a relayout looks through the other changes. Written as one
 * NOT EXISTS over both directions, every candidate of every claim scanned every open change:
 * with 13,000 open pull requests the claim became the bottleneck of the sustained-load bench.
 */
const RELAYOUT_BARRIER = `(CASE WHEN change_requests.kind = 'tenants.relayout'
    THEN NOT EXISTS (SELECT 1 FROM change_requests earlier JOIN organizations o ON o.id = earlier.organization_id
      WHERE earlier.status IN ('pending', 'open') AND earlier.kind <> 'tenants.relayout'
        AND (earlier.created_at, earlier.id) < (change_requests.created_at, change_requests.id)
        AND jsonb_exists(change_requests.payload -> 'orgs', o.slug))
    ELSE NOT EXISTS (SELECT 1 FROM change_requests relayout JOIN organizations o ON o.id = change_requests.organization_id
      WHERE relayout.kind = 'tenants.relayout' AND relayout.status IN ('pending', 'open')
        AND (relayout.created_at, relayout.id) < (change_requests.created_at, change_requests.id)
        AND jsonb_exists(relayout.payload -> 'orgs', o.slug))
  END)`;

export async function claimBatch(sequelize: Sequelize, options: ClaimOptions): Promise<ClaimedBatch | undefined> {
  return sequelize.transaction(async (tx) => {
    const [head] = await sequelize.query<{ batch_id: string | null; merge_policy: MergePolicy; kind: ChangeKind; organization_id: string | null }>(
      `SELECT batch_id, merge_policy, kind, organization_id FROM change_requests
       WHERE ${CLAIMABLE} AND ${RELAYOUT_BARRIER}
         AND (batch_id IS NOT NULL OR created_at <= now() - make_interval(secs => :windowMs / 1000.0)
              OR NOT EXISTS (SELECT 1 FROM change_requests other
                             WHERE other.status = 'pending' AND other.batch_id IS NULL AND other.id <> change_requests.id))
       ORDER BY created_at, id LIMIT 1 FOR UPDATE SKIP LOCKED`,
      { type: QueryTypes.SELECT, transaction: tx, replacements: { windowMs: options.windowMs } },
    );
    if (!head) return undefined;
    const batchId = head.batch_id ?? randomUUID();
    let rows = head.batch_id
      ? await sequelize.query<Row>(
          `SELECT ${CLAIMED_COLUMNS} FROM change_requests
           WHERE batch_id = :batchId AND ${CLAIMABLE} ORDER BY created_at, id FOR UPDATE SKIP LOCKED`,
          { type: QueryTypes.SELECT, transaction: tx, replacements: { batchId } },
        )
      : await sequelize.query<Row>(
          `SELECT ${CLAIMED_COLUMNS} FROM change_requests
           WHERE batch_id IS NULL AND merge_policy = :policy AND ${CLAIMABLE} AND ${RELAYOUT_BARRIER}
             AND (kind = 'tenants.relayout') = :relayout
             AND (NOT :perOrg OR organization_id IS NOT DISTINCT FROM CAST(:org AS uuid))
           ORDER BY created_at, id LIMIT :max FOR UPDATE SKIP LOCKED`,
          {
            type: QueryTypes.SELECT,
            transaction: tx,
            replacements: { policy: head.merge_policy, max: head.kind === 'tenants.relayout' ? 1 : options.maxBatch, relayout: head.kind === 'tenants.relayout', perOrg: options.perOrg ?? false, org: head.organization_id },
          },
        );
    // The first maxOrgs orgs in queue order, with all their queued changes; the rest wait for the next batch.
    if (options.maxOrgs !== undefined && !head.batch_id) {
      const orgs = new Set<string | null>();
      for (const r of rows) if (orgs.size < options.maxOrgs) orgs.add(r.organization_id);
      rows = rows.filter((r) => orgs.has(r.organization_id));
    }
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
      changes: rows.map((r) => ({
        id: r.id,
        kind: r.kind,
        payload: r.payload,
        instanceId: r.instance_id ?? undefined,
        requestedBy: r.requested_by,
        ...(r.requester_name || r.requester_email ? { requester: { name: r.requester_name ?? undefined, email: r.requester_email ?? undefined } } : {}),
        ...(r.reason ? { reason: r.reason } : {}),
        attempts: r.attempts + 1,
        layout: r.tenant_layout ?? 'bucketed',
      })),
    };
  });
}

const ACTOR = SERVICE_ACTOR;

/**
 * Records a publish: the batch's changes opened (or merged), their instances derived again,
 * rejected changes failed. A change superseded or cancelled while it was being published keeps
 * its status and gets its pull request recorded, so the withdrawal can close or trim it. Instances are
 * locked before changes; a fixed number of statements for the whole batch.
 */
export async function recordPublished(sequelize: Sequelize, batch: ClaimedBatch, result: PublishResult): Promise<void> {
  await sequelize.transaction(async (tx) => {
    const merged = result.mergeCommitSha !== undefined;
    await lockInstances(sequelize, tx, batch.changes.flatMap((c) => (c.instanceId ? [c.instanceId] : [])));
    // Each change names the commit that holds it: its org's, in a batch of per-org commits.
    const rows = result.published.map((p) => ({ id: p.id, commit: p.commitSha ?? null, files: p.files.map((f) => ({ path: f.path, action: 'delete' in f ? 'delete' : 'write' })) }));
    const recorded = await sequelize.query<{ id: string }>(
      `UPDATE change_requests c SET commit_sha = coalesce(r.commit, :commit), pull_request_number = :number, pull_request_url = :url, files = r.files,
         lease_owner = NULL, lease_expires_at = NULL, last_error = :lastError, updated_at = now(),
         supersede_pending = (c.status IN ('superseded', 'cancelled') AND :number::int IS NOT NULL)
       FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS r(id uuid, commit text, files jsonb)
       WHERE c.id = r.id AND c.status IN ('pending', 'superseded', 'cancelled') AND c.commit_sha IS DISTINCT FROM coalesce(r.commit, :commit) RETURNING c.id`,
      {
        type: QueryTypes.SELECT,
        transaction: tx,
        replacements: {
          rows: JSON.stringify(rows),
          commit: result.commitSha ?? null,
          number: result.pullRequest?.number ?? null,
          url: result.pullRequest?.url ?? null,
          lastError: result.mergeError ?? null,
        },
      },
    );
    const changes = await lockChanges(sequelize, tx, recorded.map((r) => r.id));
    const moves = await moveChanges(sequelize, tx, changes, merged ? 'merged' : 'published', merged ? { mergeCommitSha: result.mergeCommitSha, authoritative: true } : {});
    const detail = { batchId: batch.batchId, commitSha: result.commitSha, pullRequest: result.pullRequest?.url, ...(merged ? { mergeCommitSha: result.mergeCommitSha } : {}) };
    await withInstances(sequelize, tx, moves, merged ? 'change.merged' : 'change.opened', { cause: merged ? 'change.merged' : 'change.opened', actor: ACTOR, detail });
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
export async function recordRetry(sequelize: Sequelize, batch: ClaimedBatch, reason: string, backoffMs: number, options: { refundAttempt?: boolean } = {}): Promise<void> {
  // A refunded attempt (the backend's rate limit, not the change) does not count towards failing it.
  await sequelize.query(
    `UPDATE change_requests SET lease_owner = NULL, lease_expires_at = NULL, last_error = :reason,
       next_attempt_at = now() + make_interval(secs => :backoffMs / 1000.0), updated_at = now(),
       attempts = CASE WHEN :refund THEN greatest(attempts - 1, 0) ELSE attempts END
     WHERE id IN (:ids) AND status = 'pending'`,
    { type: QueryTypes.UPDATE, replacements: { reason, backoffMs, refund: options.refundAttempt ?? false, ids: batch.changes.map((c) => c.id) } },
  );
}

/**
 * Fails the batch's changes still pending, each with its reason, and derives their instances
 * again ('change.failed', last_error): a fixed number of statements for any number of changes.
 */
async function failChanges(sequelize: Sequelize, tx: Transaction, batch: ClaimedBatch, failures: { id: string; reason: string }[]): Promise<void> {
  if (failures.length === 0) return;
  const failing = new Set(failures.map((f) => f.id));
  await lockInstances(sequelize, tx, batch.changes.flatMap((c) => (c.instanceId && failing.has(c.id) ? [c.instanceId] : [])));
  // pending → failed is the status machine's 'failed' (change-status.ts); a change another
  // worker recorded first, or one superseded meanwhile, is left alone.
  const updated = await sequelize.query<{ id: string; instance_id: string | null }>(
    `UPDATE change_requests c SET status = 'failed', last_error = f.reason, lease_owner = NULL, lease_expires_at = NULL, updated_at = now()
     FROM jsonb_to_recordset(CAST(:failures AS jsonb)) AS f(id uuid, reason text)
     WHERE c.id = f.id AND c.status = 'pending' RETURNING c.id, c.instance_id`,
    { type: QueryTypes.SELECT, transaction: tx, replacements: { failures: JSON.stringify(failures) } },
  );
  const reasons = new Map(failures.map((f) => [f.id, f.reason]));
  await applyInstanceEvents(
    sequelize,
    tx,
    updated.flatMap((change) => {
      if (!change.instance_id) return [];
      const reason = reasons.get(change.id)!;
      return [{ instanceId: change.instance_id, event: 'change.failed' as const, cause: { cause: 'change.failed', actor: ACTOR, changeId: change.id, detail: { reason }, lastError: reason } }];
    }),
  );
}
