import type { Transaction } from 'sequelize';
import { AuthorizationResolvedError, PaymentRequiredError } from '../../errors.ts';
import type { InstanceState } from '../instance-state.ts';
import { authorize, settle, voidAuthorization, type Authorization } from './authorizations.ts';
import type { Pricing } from '../catalog.ts';
import { select, toMinor, type LedgerDeps } from './ledger.ts';

/** What workspace and instance creation need to know about billing (from the config). */
export interface BillingSettings {
  trialCurrency: string;
  trialCreditMinor: number;
  holdTtlSeconds: number;
}

/** Actor of the holds the service places itself; members cannot resolve these. */
export const SERVICE_ACTOR = 'control-plane';

/**
 * POST /instances: holds the offering version's setup fee on the org's wallet in the version's
 * currency, with the instance id as reference, in the instance-creation transaction, so a 402
 * leaves nothing behind. A version without a setup fee places no hold. `pricing` is the
 * version's, as the caller read it in the same transaction.
 */
export async function holdSetupFee(
  deps: LedgerDeps,
  tx: Transaction,
  input: { instanceId: string; organizationId: string; offeringVersionId: string; pricing: Pick<Pricing, 'currency' | 'setupFee'>; expiresInSeconds: number },
): Promise<Authorization | undefined> {
  const fee = BigInt(input.pricing.setupFee);
  if (fee === 0n) return undefined;
  return authorize(deps, tx, {
    organizationId: input.organizationId,
    currency: input.pricing.currency,
    amount: fee,
    reference: input.instanceId,
    purpose: { instanceId: input.instanceId, offeringVersionId: input.offeringVersionId },
    expiresInSeconds: input.expiresInSeconds,
    actor: SERVICE_ACTOR,
  });
}

/**
 * PATCH /instances/:id and a retried create or update: the setup fee of the version the new
 * change asks for, held like a create's, unless main already runs that version (a change of
 * parameters only) or a live hold for it is there (a change superseding one for the same
 * version). Refused with 402 when the wallet cannot cover it; the caller's transaction goes.
 */
export async function holdVersionFee(
  deps: LedgerDeps,
  tx: Transaction,
  input: { instanceId: string; offeringVersionId: string; expiresInSeconds: number },
): Promise<Authorization | undefined> {
  const [row] = await select<{ organization_id: string; currency: string; setup_fee_minor: string; runs_it: boolean; held: boolean }>(
    deps,
    tx,
    `SELECT i.organization_id, v.currency, v.setup_fee_minor,
            i.observed_state = 'present' AND i.observed_offering_version_id = v.id AS runs_it,
            EXISTS (SELECT 1 FROM billing_authorizations a WHERE a.instance_id = i.id AND a.offering_version_id = v.id
                      AND a.status = 'pending' AND a.expires_at > :now) AS held
       FROM instances i, offering_versions v WHERE i.id = :instanceId AND v.id = :versionId`,
    { instanceId: input.instanceId, versionId: input.offeringVersionId, now: deps.now() },
  );
  if (!row || row.runs_it || row.held || toMinor(row.setup_fee_minor) === 0n) return undefined;
  return holdSetupFee(deps, tx, {
    instanceId: input.instanceId,
    organizationId: row.organization_id,
    offeringVersionId: input.offeringVersionId,
    pricing: { currency: row.currency, setupFee: Number(row.setup_fee_minor) },
    expiresInSeconds: input.expiresInSeconds,
  });
}

/** States after which an instance will not run again through the service. */
const ENDED: ReadonlySet<InstanceState> = new Set(['rejected', 'deleted']);

/**
 * Over, whatever its changes said: ended, or on its way out with nothing of it left on main (a
 * merged delete, an engineer's removal): a delete can still be closed while main holds it.
 */
function released(row: FeeRow): boolean {
  return ENDED.has(row.state) || (row.state === 'deleting' && !row.observed_present);
}

interface FeeRow {
  id: string;
  instance_id: string;
  offering_version_id: string;
  organization_id: string;
  currency: string;
  amount: string;
  status: 'pending' | 'settled' | 'voided' | 'expired';
  live: boolean;
  lifetime_seconds: number;
  state: InstanceState;
  observed_present: boolean;
  on_main: boolean;
  /** The latest change asks for this version: on its way (pending, open) or merged. */
  wanted: 'in-flight' | 'merged' | null;
}

/**
 * Money follows what Git says runs, in the transaction that moves the instances. Each version
 * an instance was asked to run has its setup fee (its latest hold for that version says where it
 * stands):
 * - ready at that version on main: captured. A hold that lapsed (or was released while a closed
 *   pull request waited to be reopened) is placed again and captured at once: what runs is paid
 *   for. A wallet that cannot pay it suspends the instance, as an unpaid hour does (returned).
 * - still wanted (the latest change asks for it: on its way; or merged, main not read back yet)
 *   or on main and not yet ready, and the instance not released (ended, or leaving main): held; a lapsed hold is placed again when the wallet can cover it (else it is tried
 *   again at the next event, and at ready).
 * - neither (the change was closed, failed, superseded by another version, cancelled; the
 *   instance left main or ended): released.
 */
export async function applySetupFees(deps: LedgerDeps, tx: Transaction, instanceIds: string[]): Promise<{ unpaid: string[] }> {
  if (instanceIds.length === 0) return { unpaid: [] };
  const rows = await select<FeeRow>(
    deps,
    tx,
    `SELECT DISTINCT ON (a.instance_id, a.offering_version_id)
            a.id, a.instance_id, a.offering_version_id, w.organization_id, w.currency, a.amount, a.status,
            a.status = 'pending' AND a.expires_at > :now AS live,
            extract(epoch FROM a.expires_at - a.created_at)::int AS lifetime_seconds, i.state,
            i.observed_state = 'present' AS observed_present,
            i.observed_state = 'present' AND i.observed_offering_version_id = a.offering_version_id AS on_main,
            CASE WHEN c.kind NOT IN ('instance.create', 'instance.update') OR c.payload->>'version' IS DISTINCT FROM v.version THEN NULL
                 WHEN c.status IN ('pending', 'open') THEN 'in-flight' WHEN c.status = 'merged' THEN 'merged' END AS wanted
       FROM billing_authorizations a
       JOIN ledger_accounts w ON w.id = a.wallet_id
       JOIN instances i ON i.id = a.instance_id
       JOIN offering_versions v ON v.id = a.offering_version_id
       LEFT JOIN change_requests c ON c.id = i.last_change_id
      WHERE a.instance_id IN (:ids)
      ORDER BY a.instance_id, a.offering_version_id, a.created_at DESC, (a.status = 'pending') DESC`,
    { ids: instanceIds, now: deps.now() },
  );
  const unpaid: string[] = [];
  for (const row of rows) {
    if (row.status === 'settled') continue;
    if (row.state === 'ready' && row.on_main) {
      try {
        const hold = row.live ? row.id : (await placeAgain(deps, tx, row)).id;
        await settle(deps, tx, { authorizationId: hold, actor: SERVICE_ACTOR });
      } catch (error) {
        if (error instanceof PaymentRequiredError) unpaid.push(row.instance_id);
        // Expired a moment ago: placed again at the next event, or the instance suspended then.
        else if (!(error instanceof AuthorizationResolvedError)) throw error;
      }
    } else if (row.wanted === 'in-flight' || ((row.wanted === 'merged' || row.on_main) && !released(row))) {
      if (row.live) continue;
      try {
        await placeAgain(deps, tx, row);
      } catch (error) {
        // The change cannot be refused (a person reopened its pull request): charged at ready.
        if (!(error instanceof PaymentRequiredError)) throw error;
      }
    } else if (row.live) {
      await voidAuthorization(deps, tx, { authorizationId: row.id }).catch((error: unknown) => {
        if (!(error instanceof AuthorizationResolvedError)) throw error;
      });
    }
  }
  return { unpaid: [...new Set(unpaid)] };
}

/** The fee held again, for as long as its earlier hold was. */
async function placeAgain(deps: LedgerDeps, tx: Transaction, row: FeeRow): Promise<Authorization> {
  return authorize(deps, tx, {
    organizationId: row.organization_id,
    currency: row.currency,
    amount: toMinor(row.amount),
    reference: row.instance_id,
    purpose: { instanceId: row.instance_id, offeringVersionId: row.offering_version_id },
    expiresInSeconds: Math.max(1, row.lifetime_seconds),
    actor: SERVICE_ACTOR,
  });
}
