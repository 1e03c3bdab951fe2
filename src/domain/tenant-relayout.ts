import { QueryTypes, type Sequelize } from 'sequelize';
import type { MergePolicies } from './changes/change-kinds.ts';
import { insertChangeRequest } from './changes/change-requests.ts';

/** Serialises proposals, so two at once cannot both find nothing and both insert. */
const PROPOSE_LOCK_KEY = 0x6370_726c; // "cprl"

export interface ProposedRelayout {
  /** Null when no org is left in the flat layout. */
  changeId: string | null;
  /** The orgs the change moves. */
  orgs: string[];
  /** False when a relayout was already pending or open (that one is answered). */
  created: boolean;
}

/**
 * Proposes moving every org still in the flat layout (tenants/<org>/) to the bucketed one
 * (tenants/_<bucket>/<org>/, gitops/tenant-paths.ts) as one change, reviewed and merged like any
 * other. The worker publishes it once every change asked for before it is merged, closed or
 * failed, and holds every later one until it is (change-queue.ts, RELAYOUT_BARRIER); it moves
 * what main holds then, file for file. Convergence reads where each org sits from main, so the
 * orgs count as moved when main says so, whatever order the merge and its webhooks come in.
 */
export async function proposeTenantRelayout(sequelize: Sequelize, requestedBy: string, mergePolicies: MergePolicies, reason?: string): Promise<ProposedRelayout> {
  return sequelize.transaction(async (transaction) => {
    await sequelize.query('SELECT pg_advisory_xact_lock(:key)', { type: QueryTypes.SELECT, transaction, replacements: { key: PROPOSE_LOCK_KEY } });
    const [existing] = await sequelize.query<{ id: string; orgs: string[] }>(
      `SELECT id, ARRAY(SELECT jsonb_array_elements_text(payload->'orgs')) AS orgs FROM change_requests
        WHERE kind = 'tenants.relayout' AND status IN ('pending', 'open') ORDER BY created_at LIMIT 1`,
      { type: QueryTypes.SELECT, transaction },
    );
    if (existing) return { changeId: existing.id, orgs: existing.orgs, created: false };
    const flat = await sequelize.query<{ slug: string }>(`SELECT slug FROM organizations WHERE tenant_layout = 'flat' ORDER BY slug LIMIT 100000`, { type: QueryTypes.SELECT, transaction });
    const orgs = flat.map((row) => row.slug);
    if (orgs.length === 0) return { changeId: null, orgs, created: false };
    const changeId = await insertChangeRequest(sequelize, transaction, { kind: 'tenants.relayout', payload: { orgs }, requestedBy, mergePolicy: mergePolicies, ...(reason ? { reason } : {}) });
    return { changeId, orgs, created: true };
  });
}
