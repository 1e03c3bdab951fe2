import type { Transaction } from 'sequelize';
import { AuthorizationResolvedError } from '../../errors.ts';
import type { InstanceState } from '../instance-state.ts';
import { authorize, pendingAuthorizationsFor, settle, voidAuthorization, type Authorization } from './authorizations.ts';
import type { Pricing } from '../catalog.ts';
import type { LedgerDeps } from './ledger.ts';

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
  input: { instanceId: string; organizationId: string; pricing: Pick<Pricing, 'currency' | 'setupFee'>; expiresInSeconds: number },
): Promise<Authorization | undefined> {
  const fee = BigInt(input.pricing.setupFee);
  if (fee === 0n) return undefined;
  return authorize(deps, tx, {
    organizationId: input.organizationId,
    currency: input.pricing.currency,
    amount: fee,
    reference: input.instanceId,
    expiresInSeconds: input.expiresInSeconds,
    actor: SERVICE_ACTOR,
  });
}

/**
 * States in which an instance that never became ready is over: its setup fee is released. Not
 * `deleting` while main holds it: a delete can still be closed, and the instance runs on.
 */
const RELEASING: ReadonlySet<InstanceState> = new Set(['rejected', 'failed', 'deleted']);

/**
 * Money follows the instance's state, in the transaction that moves it: reaching `ready`
 * captures the pending setup-fee hold; ending before that (rejected, failed, deleted) releases
 * it. A hold already resolved or expired is left as it is (there is nothing left to do).
 */
export async function applySetupFeeOutcome(deps: LedgerDeps, tx: Transaction, instanceId: string, to: InstanceState, facts: { everPresent: boolean; observed: 'present' | 'absent' }): Promise<void> {
  // Deleting while main does not hold it (never did, or its directory has left): it never ran
  // and never will, whatever Argo CD still has to remove. Settling needs `ready` first.
  const releasing = RELEASING.has(to) || (to === 'deleting' && (!facts.everPresent || facts.observed === 'absent'));
  if (to !== 'ready' && !releasing) return;
  for (const hold of await pendingAuthorizationsFor(deps, tx, instanceId)) {
    if (hold.createdBy !== SERVICE_ACTOR) continue;
    try {
      if (to === 'ready') await settle(deps, tx, { authorizationId: hold.id, actor: SERVICE_ACTOR });
      else await voidAuthorization(deps, tx, { authorizationId: hold.id });
    } catch (error) {
      // Expired a moment ago: released already; the state change must still go through.
      if (!(error instanceof AuthorizationResolvedError)) throw error;
    }
  }
}
