import type { Sequelize, Transaction } from 'sequelize';
import { ForbiddenError, NotFoundError } from '../../errors.ts';
import { requireOrgAccess, type OrgAction } from '../organization-access.ts';
import type { Principal } from '../principal.ts';
import type { Authorization } from './authorizations.ts';
import { findOrganizationId, type LedgerDeps } from './ledger.ts';
import { getWallet, type Wallet } from './wallets.ts';

/**
 * Who may see and move what: platform admins everything; members of a wallet's org their
 * wallets (others get 404, as if it did not exist).
 */
export async function requireWalletAccess(
  deps: LedgerDeps,
  tx: Transaction | undefined,
  principal: Principal,
  walletId: string,
  action: OrgAction,
): Promise<Wallet> {
  const wallet = await getWallet(deps, tx, walletId);
  if (!principal.platformAdmin) await requireMembership(deps.sequelize, tx, principal, wallet.organizationSlug, action, `No wallet ${walletId}.`);
  return wallet;
}

/** The id of the org a caller may place holds for (write access, or a platform admin). */
export async function organizationForHold(deps: LedgerDeps, tx: Transaction, principal: Principal, org: string): Promise<string> {
  if (principal.platformAdmin) return findOrganizationId(deps, tx, org);
  return (await requireOrgAccess(deps.sequelize, tx, principal, org, 'write')).organizationId;
}

/**
 * Holds are resolved by the service (instance lifecycle), by platform admins, or by the member
 * who placed the hold through the API; a member may not void a hold the platform placed.
 */
export async function requireResolveAccess(
  deps: LedgerDeps,
  tx: Transaction,
  principal: Principal,
  authorization: Authorization,
): Promise<void> {
  if (principal.platformAdmin) return;
  await requireMembership(deps.sequelize, tx, principal, authorization.organizationSlug, 'write', `No authorization ${authorization.id}.`);
  if (authorization.createdBy !== principal.subject) {
    throw new ForbiddenError(`Authorization ${authorization.id} was placed by someone else; only they or a platform admin may resolve it.`);
  }
}

async function requireMembership(
  sequelize: Sequelize,
  tx: Transaction | undefined,
  principal: Principal,
  orgSlug: string,
  action: OrgAction,
  notFound: string,
): Promise<void> {
  try {
    await requireOrgAccess(sequelize, tx, principal, orgSlug, action);
  } catch (error) {
    // Say nothing about the org itself: for a non-member the resource does not exist.
    if (error instanceof NotFoundError) throw new NotFoundError(notFound);
    throw error;
  }
}
