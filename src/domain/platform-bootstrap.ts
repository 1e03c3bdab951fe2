import { QueryTypes, type Sequelize } from 'sequelize';
import type { PlatformBootstrap } from '../gitops/render/change-payloads.ts';
import { contradictingPlatformSettings, missingPlatformSettings } from '../gitops/render/platform-variables.ts';
import { ValidationError } from '../errors.ts';
import type { MergePolicies } from './changes/change-kinds.ts';
import { findInFlightChange, insertChangeRequest } from './changes/change-requests.ts';

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
  // Refused here rather than by the worker: a role rendered without its host is the caller's to fix.
  const missing = missingPlatformSettings(payload);
  if (missing.length > 0) {
    throw new ValidationError(
      missing.map((m) => ({ in: 'body', pointer: `/${m.field}`, message: `is required while ${m.component} is rendered (or list ${m.component} in without)` })),
      'A platform role to render lacks its settings.',
    );
  }
  const contradicting = contradictingPlatformSettings(payload);
  if (contradicting.length > 0) {
    throw new ValidationError(
      contradicting.map((m) => ({ in: 'body', pointer: `/${m.field}`, message: `is defined by the rendered ${m.component} role: give it only with ${m.component} in without` })),
      'A setting was given that a rendered platform role defines itself.',
    );
  }
  return sequelize.transaction(async (transaction) => {
    await sequelize.query('SELECT pg_advisory_xact_lock(:key)', { type: QueryTypes.SELECT, transaction, replacements: { key: PROPOSE_LOCK_KEY } });
    const existing = await findInFlightChange(sequelize, transaction, 'platform.bootstrap', payload);
    if (existing) return { changeId: existing, created: false };
    const changeId = await insertChangeRequest(sequelize, transaction, { kind: 'platform.bootstrap', payload, requestedBy, mergePolicy: mergePolicies });
    return { changeId, created: true };
  });
}
