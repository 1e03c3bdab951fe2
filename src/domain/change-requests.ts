import { QueryTypes, type Sequelize, type Transaction } from 'sequelize';

import type { MergePolicy } from '../gitops/change-publisher.ts';

export type { MergePolicy };
export type ChangeKind = 'workspace.create' | 'instance.create' | 'instance.update' | 'instance.delete' | 'platform.bootstrap';

/** One merge policy for every kind of change, or a default with exceptions per kind. */
export type MergePolicies = MergePolicy | ({ default: MergePolicy } & Partial<Record<ChangeKind, MergePolicy>>);

export function mergePolicyFor(policies: MergePolicies, kind: ChangeKind): MergePolicy {
  return typeof policies === 'string' ? policies : (policies[kind] ?? policies.default);
}

export interface NewChangeRequest {
  kind: Exclude<ChangeKind, 'platform.bootstrap'>;
  organizationId: string;
  instanceId?: string;
  /** What to render, fixed now: the worker never re-reads mutable rows to decide it. */
  payload: Record<string, unknown>;
  requestedBy: string;
  mergePolicy: MergePolicies;
}

/** Adds a pending change to the outbox in the caller's transaction; returns its id. */
export async function insertChangeRequest(sequelize: Sequelize, tx: Transaction, change: NewChangeRequest): Promise<string> {
  const [row] = await sequelize.query<{ id: string }>(
    `INSERT INTO change_requests (kind, organization_id, instance_id, payload, requested_by, merge_policy)
     VALUES (:kind, :organizationId, :instanceId, :payload, :requestedBy, :mergePolicy) RETURNING id`,
    {
      type: QueryTypes.SELECT,
      transaction: tx,
      replacements: {
        kind: change.kind,
        organizationId: change.organizationId,
        instanceId: change.instanceId ?? null,
        payload: JSON.stringify(change.payload),
        requestedBy: change.requestedBy,
        mergePolicy: mergePolicyFor(change.mergePolicy, change.kind),
      },
    },
  );
  return row!.id;
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
