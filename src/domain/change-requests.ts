import { QueryTypes, type Sequelize, type Transaction } from 'sequelize';

export type MergePolicy = 'pull-request' | 'auto-merge' | 'direct';
export type ChangeKind = 'workspace.create' | 'instance.create' | 'instance.update' | 'instance.delete';

export interface NewChangeRequest {
  kind: ChangeKind;
  organizationId: string;
  instanceId?: string;
  /** What to render, fixed now: the worker never re-reads mutable rows to decide it. */
  payload: Record<string, unknown>;
  requestedBy: string;
  mergePolicy: MergePolicy;
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
        mergePolicy: change.mergePolicy,
      },
    },
  );
  return row!.id;
}
