import { QueryTypes, type Sequelize } from 'sequelize';
import type { PlatformBootstrap } from '../gitops/render/change-payloads.ts';
import { mergePolicyFor, type MergePolicies } from './change-requests.ts';

/**
 * Proposes the platform's own manifests (templates/platform/) as a change like any other:
 * a change request the worker renders into platform/base/ and opens as a pull request.
 */
export async function proposePlatformBootstrap(sequelize: Sequelize, payload: PlatformBootstrap, requestedBy: string, mergePolicies: MergePolicies): Promise<string> {
  const [row] = await sequelize.query<{ id: string }>(
    `INSERT INTO change_requests (kind, payload, requested_by, merge_policy) VALUES ('platform.bootstrap', :payload, :by, :policy) RETURNING id`,
    { type: QueryTypes.SELECT, replacements: { payload: JSON.stringify(payload), by: requestedBy, policy: mergePolicyFor(mergePolicies, 'platform.bootstrap') } },
  );
  return row!.id;
}
