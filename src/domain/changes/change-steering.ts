import { QueryTypes, type Sequelize, type Transaction } from 'sequelize';
import { ConflictError, ForbiddenError, NotFoundError } from '../../errors.ts';
import type { Principal } from '../principal.ts';
import type { MembershipRole } from '../organization-access.ts';
import { applyInstanceEvent, lockInstances } from '../instance-events.ts';
import { holdVersionFee, type BillingSettings } from '../billing/instance-billing.ts';
import { parseChange, type ParsedChange } from '../../gitops/render/change-payloads.ts';
import { insertChangeRequest, lockChanges, moveChanges } from './change-requests.ts';
import { proposeInstanceChange } from '../instances.ts';
import type { MergePolicies } from './change-kinds.ts';
import type { ChangeStatus } from './change-status.ts';

/**
 * Cancel and retry: the requester of a change (or an owner of its org, or a platform admin)
 * withdraws it while it is on its way, or re-proposes it after it failed for good. Both go
 * through the status machine and the instance's derivation like every other move, so what the
 * instance shows afterwards is what main holds.
 */
export interface SteeringDeps {
  sequelize: Sequelize;
  mergePolicy: MergePolicies;
  billing: Pick<BillingSettings, 'holdTtlSeconds'>;
}

interface SteeredChange {
  id: string;
  kind: ParsedChange['kind'];
  status: ChangeStatus;
  organization_id: string | null;
  org: string | null;
  instance_id: string | null;
  requested_by: string;
  payload: unknown;
  superseded_by: string | null;
  role: MembershipRole | null;
}

/**
 * The change, if the caller may see it: platform admins see every change; a member sees its
 * org's changes (404 for any other, whether or not it exists). `steer` also requires the
 * caller to be allowed to cancel or retry it: its requester with write access, or an owner.
 */
async function visibleChange(sequelize: Sequelize, tx: Transaction, principal: Principal, id: string, steer: 'cancel' | 'retry'): Promise<SteeredChange> {
  const [row] = await sequelize.query<SteeredChange>(
    `SELECT c.id, c.kind, c.status, c.organization_id, o.slug AS org, c.instance_id, c.requested_by, c.payload, c.superseded_by, m.role
       FROM change_requests c
       LEFT JOIN organizations o ON o.id = c.organization_id
       LEFT JOIN memberships m ON m.organization_id = c.organization_id AND m.subject = $subject
      WHERE c.id = $id`,
    { type: QueryTypes.SELECT, transaction: tx, bind: { id, subject: principal.subject } },
  );
  if (!row || (!principal.platformAdmin && row.role === null)) throw new NotFoundError(`Change ${id} does not exist.`);
  if (principal.platformAdmin) return row;
  if (row.organization_id === null) throw new NotFoundError(`Change ${id} does not exist.`);
  const requester = row.requested_by === principal.subject && (row.role === 'owner' || row.role === 'member');
  if (!requester && row.role !== 'owner') {
    throw new ForbiddenError(`Only the person who asked for change ${id} or an owner of ${row.org} may ${steer} it.`);
  }
  return row;
}

/**
 * POST /changes/:id/cancel. A pending change leaves its batch (the worker claims only pending
 * ones); an open one is withdrawn by the outbox (its pull request closed with a comment, or its
 * files put back on a shared batch branch); the instance is derived again from what main holds:
 * a create that never merged ends `rejected` (its setup-fee hold voided), a cancelled delete
 * wants the instance again. Cancelling a cancelled change answers it again (idempotent).
 */
export async function cancelChange(deps: SteeringDeps, tx: Transaction, principal: Principal, id: string): Promise<{ changed: boolean }> {
  const { sequelize } = deps;
  const change = await visibleChange(sequelize, tx, principal, id, 'cancel');
  if (change.kind === 'workspace.create') {
    throw new ConflictError('change-not-cancellable', "A workspace's tenant must reach Git for its instances to run; its change cannot be cancelled.");
  }
  // Instances before changes, as everywhere.
  if (change.instance_id) await lockInstances(sequelize, tx, [change.instance_id]);
  const [locked] = await lockChanges(sequelize, tx, [id]);
  const status = locked!.status;
  if (status === 'cancelled') return { changed: false };
  if (status !== 'pending' && status !== 'open') throw notInFlight(id, status, change.superseded_by);
  await moveChanges(sequelize, tx, [locked!], 'cancelled', { cancelledBy: principal.subject });
  if (change.instance_id) {
    // A cancelled delete: the instance is wanted again, as main holds it.
    if (change.kind === 'instance.delete') {
      await sequelize.query("UPDATE instances SET desired_state = 'present' WHERE id = $id", { type: QueryTypes.UPDATE, transaction: tx, bind: { id: change.instance_id } });
    }
    await applyInstanceEvent(sequelize, tx, change.instance_id, 'change.cancelled', {
      cause: 'change.cancelled',
      actor: principal.subject,
      changeId: id,
      recordUnchanged: true,
      detail: { change: { from: status, to: 'cancelled' } },
    });
  }
  return { changed: true };
}

/** Why a change that is not on its way cannot be cancelled, and what to do instead. */
function notInFlight(id: string, status: ChangeStatus, supersededBy: string | null): ConflictError {
  switch (status) {
    case 'merged':
      return new ConflictError('change-merged', `Change ${id} is on the base branch already: cancelling cannot take it back. PATCH the instance to change it again, or DELETE it.`, { extensions: { status } });
    case 'superseded':
      return new ConflictError('change-superseded', `Change ${id} was replaced by a later request${supersededBy ? ` (change ${supersededBy})` : ''}; cancel that one instead.`, {
        extensions: { status, supersededBy },
      });
    case 'failed':
      return new ConflictError('change-failed', `Change ${id} failed and will not be committed: there is nothing to cancel. POST /changes/${id}/retry proposes it again.`, { extensions: { status } });
    default:
      return new ConflictError('change-closed', `Change ${id}'s pull request was closed without merging: there is nothing to cancel (reopening it on GitHub brings it back).`, { extensions: { status } });
  }
}

/**
 * POST /changes/:id/retry: a failed change proposed again as a new change with the same kind
 * and payload (`retry_of` names the failed one; one retry per failed change, so a second call
 * answers the first retry). Only the instance's latest request can be retried: a later request
 * has replaced anything older. A failed create whose setup-fee hold was released holds it again
 * (402 when the wallet cannot cover it, and nothing is written).
 */
export async function retryChange(deps: SteeringDeps, tx: Transaction, principal: Principal, id: string): Promise<{ changeId: string; created: boolean }> {
  const { sequelize } = deps;
  const change = await visibleChange(sequelize, tx, principal, id, 'retry');
  if (change.instance_id) await lockInstances(sequelize, tx, [change.instance_id]);
  const [locked] = await lockChanges(sequelize, tx, [id]);
  // Read again under the locks: another retry may have committed meanwhile.
  const [again] = await sequelize.query<{ retry_id: string | null; latest_change_id: string | null; instance_state: string | null }>(
    `SELECT (SELECT r.id FROM change_requests r WHERE r.retry_of = c.id) AS retry_id, i.last_change_id AS latest_change_id, i.state AS instance_state
       FROM change_requests c LEFT JOIN instances i ON i.id = c.instance_id WHERE c.id = $id`,
    { type: QueryTypes.SELECT, transaction: tx, bind: { id } },
  );
  if (again!.retry_id) return { changeId: again!.retry_id, created: false };
  if (locked!.status !== 'failed') {
    throw new ConflictError('change-not-failed', `Change ${id} is ${locked!.status}; only a failed change can be retried.`, { extensions: { status: locked!.status } });
  }
  if (change.instance_id && again!.latest_change_id !== id) {
    throw new ConflictError('change-outdated', `A later request (change ${again!.latest_change_id}) replaced change ${id}; retry or cancel that one.`, {
      extensions: { latestChangeId: again!.latest_change_id },
    });
  }
  if (again!.instance_state === 'deleted') throw new ConflictError('instance-deleted', `The instance of change ${id} is deleted; create a new one.`);
  let parsed: ParsedChange;
  try {
    // Validated again at this edge: the retry is what the worker will read back.
    parsed = parseChange(change.kind, change.payload);
  } catch (error) {
    throw new ConflictError('change-not-retryable', `Change ${id} cannot be proposed again as it is: ${(error as Error).message}. Send a new request instead.`);
  }
  const retry = {
    ...parsed,
    ...(change.organization_id ? { organizationId: change.organization_id } : {}),
    requestedBy: principal.subject,
    mergePolicy: deps.mergePolicy,
    reason: `retry of change ${id}`,
    retryOf: id,
  };
  if (!change.instance_id) return { changeId: await insertChangeRequest(sequelize, tx, retry), created: true };
  // The instance's new latest request, superseding what is on its way, as PATCH and DELETE do.
  const changeId = await proposeInstanceChange(sequelize, tx, { change: { ...retry, instanceId: change.instance_id }, cause: 'change.retried', detail: { retryOf: id }, recordUnchanged: true });
  if (parsed.kind === 'instance.create' || parsed.kind === 'instance.update') await holdVersionFeeAgain(deps, tx, change.instance_id, parsed.payload);
  return { changeId, created: true };
}

/**
 * The retried change's version fee, held again when its earlier hold was released (the change
 * failed); a retry the wallet cannot cover is refused with 402.
 */
async function holdVersionFeeAgain(deps: SteeringDeps, tx: Transaction, instanceId: string, payload: { offering: string; version: string }): Promise<void> {
  const { sequelize } = deps;
  const [version] = await sequelize.query<{ id: string }>(
    `SELECT v.id FROM offering_versions v JOIN offerings o ON o.id = v.offering_id WHERE o.slug = $offering AND v.version = $version`,
    { type: QueryTypes.SELECT, transaction: tx, bind: { offering: payload.offering, version: payload.version } },
  );
  if (!version) throw new ConflictError('version-gone', `Version ${payload.version} of ${payload.offering} no longer exists; create the instance again with another version.`);
  await holdVersionFee({ sequelize, now: () => new Date() }, tx, { instanceId, offeringVersionId: version.id, expiresInSeconds: deps.billing.holdTtlSeconds });
}
