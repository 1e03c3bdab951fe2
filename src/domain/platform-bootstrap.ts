import { QueryTypes, type Sequelize } from 'sequelize';
import type { PlatformBootstrap } from '../gitops/render/change-payloads.ts';
import { mergePolicyFor, type MergePolicies } from './changes/change-kinds.ts';

/** Serialises proposals, so two at once cannot both find nothing and both insert. */
const PROPOSE_LOCK_KEY = 0x6370_6273; // "cpbs"

export interface ProposedBootstrap {
  changeId: string;
  /** False when the same payload was already proposed and is not merged, closed or failed yet. */
  created: boolean;
}

/**
 * Proposes the platform's own manifests (templates/platform/) as a change like any other:
 * a change request the worker renders into platform/base/ and opens as a pull request.
 * Idempotent: while a proposal of the same payload is pending or open, that one is returned
 * (POST /platform/bootstrap and `npm run bootstrap` both come through here).
 */
export async function proposePlatformBootstrap(sequelize: Sequelize, payload: PlatformBootstrap, requestedBy: string, mergePolicies: MergePolicies): Promise<ProposedBootstrap> {
  return sequelize.transaction(async (transaction) => {
    await sequelize.query('SELECT pg_advisory_xact_lock(:key)', { type: QueryTypes.SELECT, transaction, replacements: { key: PROPOSE_LOCK_KEY } });
    const [existing] = await sequelize.query<{ id: string }>(
      `SELECT id FROM change_requests WHERE kind = 'platform.bootstrap' AND status IN ('pending', 'open') AND payload = CAST(:payload AS jsonb)
        ORDER BY created_at LIMIT 1`,
      { type: QueryTypes.SELECT, transaction, replacements: { payload: JSON.stringify(payload) } },
    );
    if (existing) return { changeId: existing.id, created: false };
    const [row] = await sequelize.query<{ id: string }>(
      `INSERT INTO change_requests (kind, payload, requested_by, merge_policy) VALUES ('platform.bootstrap', :payload, :by, :policy) RETURNING id`,
      { type: QueryTypes.SELECT, transaction, replacements: { payload: JSON.stringify(payload), by: requestedBy, policy: mergePolicyFor(mergePolicies, 'platform.bootstrap') } },
    );
    return { changeId: row!.id, created: true };
  });
}
