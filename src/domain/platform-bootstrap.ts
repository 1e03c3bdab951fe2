import { QueryTypes, type Sequelize } from 'sequelize';
import type { PlatformBootstrap } from '../gitops/render/change-payloads.ts';
import type { MergePolicy } from '../gitops/change-publisher.ts';

/**
 * Proposes the platform's own manifests (templates/platform/) as a change like any other:
 * a change request the worker renders into platform/base/ and opens as a pull request.
 */
export async function proposePlatformBootstrap(sequelize: Sequelize, payload: PlatformBootstrap, requestedBy: string, mergePolicy: MergePolicy): Promise<string> {
  const [row] = await sequelize.query<{ id: string }>(
    `INSERT INTO change_requests (kind, payload, requested_by, merge_policy) VALUES ('platform.bootstrap', :payload, :by, :policy) RETURNING id`,
    { type: QueryTypes.SELECT, replacements: { payload: JSON.stringify(payload), by: requestedBy, policy: mergePolicy } },
  );
  return row!.id;
}
